//! The kernel build configuration (`CONFIG_*`), found the way system-validators finds it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::root::{HostRoot, read_capped};

/// Where the kernel config is looked for, in order (`<rel>` is the kernel release). This is
/// system-validators' list; the first file that exists wins.
#[must_use]
pub fn config_search_paths(release: &str) -> Vec<String> {
    vec![
        "/proc/config.gz".to_string(),
        format!("/boot/config-{release}"),
        format!("/usr/src/linux-{release}/.config"),
        "/usr/src/linux/.config".to_string(),
        format!("/usr/lib/modules/{release}/config"),
        format!("/usr/lib/ostree-boot/config-{release}"),
        format!("/usr/lib/kernel/config-{release}"),
        format!("/usr/src/linux-headers-{release}/.config"),
        format!("/lib/modules/{release}/build/.config"),
    ]
}

/// One option's value as the validators report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ConfigValue {
    /// `=y`: built in.
    Enabled,
    /// `=m`: built as a module.
    Module,
    /// `=n`.
    Disabled,
    /// Absent, or `# CONFIG_X is not set`.
    NotSet,
}

impl ConfigValue {
    /// `y` or `m`.
    #[must_use]
    pub fn is_enabled(self) -> bool {
        matches!(self, Self::Enabled | Self::Module)
    }

    /// The validators' wording: `enabled`, `enabled (as module)`, `disabled`, `not set`.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Module => "enabled (as module)",
            Self::Disabled => "disabled",
            Self::NotSet => "not set",
        }
    }
}

/// A parsed kernel config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelConfig {
    /// The file it came from, as an absolute path on the host (root not included).
    pub source: String,
    /// `CONFIG_NAME` -> first character of the value (`y`, `m` or `n`).
    #[serde(skip)]
    options: BTreeMap<String, char>,
}

impl KernelConfig {
    /// Parses config text. Like the validators, only `CONFIG_[A-Z0-9_]+=[myn]...` lines count;
    /// `# CONFIG_X is not set` and non-tristate options (`CONFIG_HZ=250`) are skipped.
    #[must_use]
    pub fn parse(source: impl Into<String>, text: &str) -> Self {
        let mut options = BTreeMap::new();
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let valid_name = name.len() > "CONFIG_".len()
                && name.starts_with("CONFIG_")
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            let Some(first) = value.chars().next() else {
                continue;
            };
            if valid_name && matches!(first, 'y' | 'm' | 'n') {
                options.insert(name.to_string(), first);
            }
        }
        Self {
            source: source.into(),
            options,
        }
    }

    /// Looks an option up; `name` may be given with or without the `CONFIG_` prefix.
    #[must_use]
    pub fn get(&self, name: &str) -> ConfigValue {
        let key = if name.starts_with("CONFIG_") {
            name.to_string()
        } else {
            format!("CONFIG_{name}")
        };
        match self.options.get(&key) {
            Some('y') => ConfigValue::Enabled,
            Some('m') => ConfigValue::Module,
            Some('n') => ConfigValue::Disabled,
            _ => ConfigValue::NotSet,
        }
    }

    /// How many tristate options were read (a quick sanity figure for reports).
    #[must_use]
    pub fn len(&self) -> usize {
        self.options.len()
    }

    /// Whether no option was read at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }
}

/// The outcome of looking for the kernel config.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigLookup {
    /// The config, when one was found and read.
    pub config: Option<KernelConfig>,
    /// Every path that was tried, in order.
    pub searched: Vec<String>,
    /// Why a candidate that exists could not be used (unreadable, bad gzip).
    pub errors: Vec<String>,
}

impl ConfigLookup {
    /// A one-line reason when no config is available, worded like the validators.
    #[must_use]
    pub fn unavailable_reason(&self) -> Option<String> {
        if self.config.is_some() {
            return None;
        }
        let mut reason = format!("no config path in {:?} is available", self.searched);
        for e in &self.errors {
            reason.push_str("; ");
            reason.push_str(e);
        }
        Some(reason)
    }
}

/// Finds and parses the kernel config under `root` for `release`.
///
/// Unlike system-validators this never runs `modprobe configs`: preflight does not change the
/// node it inspects. An unreadable candidate is recorded in [`ConfigLookup::errors`] and the
/// search goes on.
#[must_use]
pub fn find_kernel_config(root: &HostRoot, release: &str) -> ConfigLookup {
    let searched = config_search_paths(release);
    let mut errors = Vec::new();
    for candidate in &searched {
        if !root.exists(candidate) {
            continue;
        }
        match read_config(root, candidate) {
            Ok(config) => {
                return ConfigLookup {
                    config: Some(config),
                    searched,
                    errors,
                };
            }
            Err(e) => errors.push(node_util::error_chain(&e)),
        }
    }
    ConfigLookup {
        config: None,
        searched,
        errors,
    }
}

/// The most read of a kernel config, compressed or not, and the most a `config.gz` may
/// decompress to: 16 MiB. A real `.config` is a few hundred KiB; the cap on the decompressed
/// size is what stops a gzip bomb.
pub const MAX_KERNEL_CONFIG_BYTES: u64 = 16 << 20;

fn read_config(root: &HostRoot, candidate: &str) -> Result<KernelConfig> {
    let path = root.join(candidate);
    let bytes = read_capped(&path, MAX_KERNEL_CONFIG_BYTES)?;
    let text = if candidate.ends_with(".gz") {
        gunzip_text(&path, &bytes)?
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(KernelConfig::parse(candidate, &text))
}

/// Decompresses a gzip'd kernel config (`/proc/config.gz`), reading at most
/// [`MAX_KERNEL_CONFIG_BYTES`] of output; `path` names the file in errors.
///
/// # Errors
/// [`Error::Decompress`] for a corrupt stream or text that is not UTF-8; [`Error::TooLarge`]
/// when the content is longer than the cap.
pub fn gunzip_text(path: &Path, gz: &[u8]) -> Result<String> {
    let mut out = Vec::new();
    GzDecoder::new(gz)
        .take(MAX_KERNEL_CONFIG_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|source| Error::Decompress {
            path: path.to_path_buf(),
            source,
        })?;
    if out.len() as u64 > MAX_KERNEL_CONFIG_BYTES {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            what: "decompressed content",
            limit: MAX_KERNEL_CONFIG_BYTES,
        });
    }
    String::from_utf8(out).map_err(|e| Error::Decompress {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_like_the_validators() {
        let c = KernelConfig::parse(
            "/boot/config-x",
            "# comment\nCONFIG_PSI=y\nCONFIG_EXT4_FS=m\nCONFIG_AUFS_FS=n\n# CONFIG_USER_NS is not set\nCONFIG_HZ=250\nCONFIG_lower=y\nCONFIG_X=\n",
        );
        assert_eq!(c.get("PSI"), ConfigValue::Enabled);
        assert_eq!(c.get("CONFIG_EXT4_FS"), ConfigValue::Module);
        assert_eq!(c.get("AUFS_FS"), ConfigValue::Disabled);
        assert_eq!(c.get("USER_NS"), ConfigValue::NotSet);
        assert_eq!(c.get("HZ"), ConfigValue::NotSet);
        assert_eq!(c.get("CONFIG_lower"), ConfigValue::NotSet);
        assert_eq!(c.len(), 3);
        assert_eq!(ConfigValue::Module.describe(), "enabled (as module)");
    }

    #[test]
    fn search_order_prefers_proc_config_gz_and_reports_bad_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path());
        std::fs::create_dir_all(dir.path().join("boot")).unwrap();
        std::fs::write(dir.path().join("boot/config-5.4.0"), "CONFIG_PSI=n\n").unwrap();
        let found = find_kernel_config(&root, "5.4.0");
        assert_eq!(found.config.as_ref().unwrap().source, "/boot/config-5.4.0");
        assert_eq!(found.config.unwrap().get("PSI"), ConfigValue::Disabled);

        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"CONFIG_PSI=y\n").unwrap();
        std::fs::write(dir.path().join("proc/config.gz"), gz.finish().unwrap()).unwrap();
        let found = find_kernel_config(&root, "5.4.0");
        assert_eq!(found.config.as_ref().unwrap().source, "/proc/config.gz");
        assert_eq!(found.config.unwrap().get("PSI"), ConfigValue::Enabled);

        // A corrupt config.gz is reported and the search falls through to /boot.
        std::fs::write(dir.path().join("proc/config.gz"), b"not gzip").unwrap();
        let found = find_kernel_config(&root, "5.4.0");
        assert_eq!(found.config.as_ref().unwrap().source, "/boot/config-5.4.0");
        assert_eq!(found.errors.len(), 1);
        assert!(
            found.errors[0].contains("proc/config.gz"),
            "{:?}",
            found.errors
        );
    }

    /// Regression (fuzzing audit): `/proc/config.gz` was decompressed without a limit, so a
    /// gzip bomb (here 17 MiB of zeros in 17 KiB) filled memory. Now the decompressed size is
    /// capped and the search goes on to the next candidate.
    #[test]
    fn config_gz_bomb_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::create_dir_all(dir.path().join("boot")).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(b"CONFIG_PSI=y\n").unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..17 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        std::fs::write(dir.path().join("proc/config.gz"), &bomb).unwrap();
        std::fs::write(dir.path().join("boot/config-6.1.0"), "CONFIG_PSI=n\n").unwrap();
        let found = find_kernel_config(&HostRoot::new(dir.path()), "6.1.0");
        assert_eq!(found.config.as_ref().unwrap().source, "/boot/config-6.1.0");
        assert_eq!(found.errors.len(), 1, "{:?}", found.errors);
        assert!(
            found.errors[0].ends_with(&format!(
                "proc/config.gz: decompressed content is larger than the {MAX_KERNEL_CONFIG_BYTES} bytes read at most"
            )),
            "{:?}",
            found.errors
        );
        // Exactly at the cap is fine.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![b'#'; 16 << 20]).unwrap();
        let text = gunzip_text(Path::new("x.gz"), &gz.finish().unwrap()).unwrap();
        assert_eq!(text.len() as u64, MAX_KERNEL_CONFIG_BYTES);
    }

    #[test]
    fn nothing_found_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let found = find_kernel_config(&HostRoot::new(dir.path()), "6.1.0");
        let reason = found.unavailable_reason().unwrap();
        assert!(reason.starts_with("no config path in"), "{reason}");
        assert!(reason.contains("/boot/config-6.1.0"), "{reason}");
        assert!(
            reason.contains("/lib/modules/6.1.0/build/.config"),
            "{reason}"
        );
    }
}
