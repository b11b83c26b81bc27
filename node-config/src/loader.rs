//! Building the effective configuration: `--config` file, then `--config-dir` drop-ins, then
//! command-line flags, with defaults applied as the kubelet applies them and one validation at
//! the end.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::decode::{Document, Strictness, decode_document, from_merged};
use crate::defaults::{apply_legacy_flag_defaults, default_eviction_hard_if_unset, set_defaults};
use crate::error::ConfigError;
use crate::flags::{FlagOverrides, KubeletFlags};
use crate::gates::FeatureGates;
use crate::types::{API_VERSION, KIND, KubeletConfiguration};
use crate::validate::validate;

/// The extension a drop-in must have (compared case-sensitively, as the kubelet does).
pub const DROP_IN_EXTENSION: &str = "conf";

/// Path fields the kubelet resolves against the directory of the file that sets them.
const PATH_FIELDS: &[&[&str]] = &[
    &["staticPodPath"],
    &["authentication", "x509", "clientCAFile"],
    &["tlsCertFile"],
    &["tlsPrivateKeyFile"],
    &["resolvConf"],
    &["volumePluginDir"],
    &["podLogsDir"],
];

/// Loads a kubelet configuration the way the kubelet does.
///
/// ```no_run
/// use node_config::{FlagOverrides, Loader};
/// let flags = FlagOverrides::parse_args(["--port=10251"])?;
/// let loaded = Loader::new()
///     .config_file("/var/lib/kubelet/config.yaml")
///     .config_dir("/etc/kubernetes/kubelet.conf.d")
///     .flags(flags)
///     .load()?;
/// assert_eq!(loaded.config.port, 10251);
/// # Ok::<(), node_config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Loader {
    config_file: Option<PathBuf>,
    config_dir: Option<PathBuf>,
    flags: FlagOverrides,
    strictness: Strictness,
}

/// The effective configuration and what was noticed while building it.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The final configuration, defaults applied, validated.
    pub config: KubeletConfiguration,
    /// Command-line-only settings (`--root-dir`, `--hostname-override`, ...).
    pub flags: KubeletFlags,
    /// Feature gates in force.
    pub feature_gates: FeatureGates,
    /// Non-fatal findings: ignored unknown fields (with their file), GA/deprecated gates set,
    /// insecure flag defaults.
    pub warnings: Vec<String>,
    /// The files applied, in order (config file first, then drop-ins).
    pub sources: Vec<PathBuf>,
}

impl Loader {
    /// A loader with no file, no drop-ins and no flags (the kubelet's flag defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `--config`.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Sets `--config-dir`.
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_dir = Some(dir.into());
        self
    }

    /// Sets the command-line flags, which override the file and the drop-ins.
    pub fn flags(mut self, flags: FlagOverrides) -> Self {
        self.flags = flags;
        self
    }

    /// Chooses what happens to unknown fields (default: warn, as the kubelet does).
    pub fn strictness(mut self, strictness: Strictness) -> Self {
        self.strictness = strictness;
        self
    }

    /// Builds, validates and returns the effective configuration.
    pub fn load(&self) -> Result<LoadedConfig, ConfigError> {
        let mut warnings = Vec::new();
        let mut sources = Vec::new();
        let flag_gates = self.flags.feature_gates();
        let gates_for = |kc: &KubeletConfiguration| {
            let mut all = kc.feature_gates.clone();
            all.extend(flag_gates.clone());
            FeatureGates::new_lossy(&all)
        };

        let mut config = match &self.config_file {
            Some(path) => {
                let abs = absolute(path);
                let mut doc = self.read_document(&abs, &mut warnings)?;
                resolve_relative_paths(&mut doc.json, parent_dir(&abs));
                let mut kc = from_merged(doc.json)?;
                let gates = gates_for(&kc);
                set_defaults(&mut kc, &gates);
                default_eviction_hard_if_unset(&mut kc);
                sources.push(abs);
                kc
            }
            None => {
                let mut kc = KubeletConfiguration::default();
                let gates = gates_for(&kc);
                set_defaults(&mut kc, &gates);
                apply_legacy_flag_defaults(&mut kc);
                warnings.push(
                    "no --config file: starting from the kubelet's command-line defaults (anonymous auth on, authorization AlwaysAllow, read-only port 10255)"
                        .to_owned(),
                );
                kc
            }
        };

        if let Some(dir) = &self.config_dir {
            let files = list_drop_ins(dir)?;
            let mut merged = to_json(&config);
            for file in files {
                let mut doc = self.read_document(&file, &mut warnings)?;
                resolve_relative_paths(&mut doc.json, parent_dir(&file));
                json_patch::merge(&mut merged, &doc.json);
                sources.push(file);
            }
            config = from_merged(merged)?;
            let gates = gates_for(&config);
            set_defaults(&mut config, &gates);
        }

        if !self.flags.is_empty() {
            let mut json = to_json(&config);
            self.flags.apply(&mut json);
            config = from_merged(json)?;
        }
        default_eviction_hard_if_unset(&mut config);
        API_VERSION.clone_into(&mut config.api_version);
        KIND.clone_into(&mut config.kind);

        let feature_gates = FeatureGates::new(&config.feature_gates)
            .map_err(|errors| ConfigError::FeatureGates { errors })?;
        let violations = validate(&config, &feature_gates);
        if !violations.is_empty() {
            return Err(ConfigError::Invalid { violations });
        }
        warnings.extend(feature_gates.warnings());
        Ok(LoadedConfig {
            config,
            flags: self.flags.kubelet_flags(),
            feature_gates,
            warnings,
            sources,
        })
    }

    fn read_document(
        &self,
        path: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<Document, ConfigError> {
        let text = read_capped(path)?;
        let doc = decode_document(path, &text, self.strictness)?;
        if !doc.unknown_fields.is_empty() {
            warnings.push(format!(
                "{}: unknown field(s) ignored (lenient decoding, as strict decoding failed): {}",
                path.display(),
                doc.unknown_fields.join(", ")
            ));
        }
        Ok(doc)
    }
}

/// The largest config file or drop-in read: 4 MiB (a full `KubeletConfiguration` is a few KiB).
/// A longer file, or a device such as `/dev/zero`, is refused instead of filling memory.
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 << 20;

/// Reads a config file or drop-in as UTF-8, at most [`MAX_CONFIG_FILE_BYTES`].
fn read_capped(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_CONFIG_FILE_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            e.utf8_error(),
        ))
    })
}

/// The JSON form of a configuration (Go's `json.Marshal` of the v1beta1 struct).
fn to_json(kc: &KubeletConfiguration) -> Value {
    // Serializing plain data structures to a JSON value cannot fail: every map key is a string.
    serde_json::to_value(kc).unwrap_or(Value::Null)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn parent_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}

/// Makes the kubelet's path fields absolute against `dir`. Empty values stay empty (an empty
/// `resolvConf` disables DNS).
fn resolve_relative_paths(json: &mut Value, dir: &Path) {
    for field in PATH_FIELDS {
        let mut cur = Some(&mut *json);
        for key in *field {
            cur = cur.and_then(|v| v.get_mut(*key));
        }
        if let Some(Value::String(s)) = cur
            && !s.is_empty()
            && Path::new(s.as_str()).is_relative()
        {
            *s = dir.join(s.as_str()).to_string_lossy().into_owned();
        }
    }
}

/// Lists the drop-ins under `dir` in the kubelet's order: a depth-first walk visiting entries
/// in byte-wise lexical order of their names, keeping files whose extension is exactly `.conf`.
/// Symlinked directories are not followed; symlinked files are read through the link.
pub fn list_drop_ins(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ConfigError> {
    let io_err = |source| ConfigError::DropInDir {
        dir: root.to_path_buf(),
        source,
    };
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(io_err)?
        .collect::<Result<_, _>>()
        .map_err(io_err)?;
    // Byte-wise order of the file names, like Go's sort of directory entries.
    entries.sort_by(|a, b| {
        a.file_name()
            .as_encoded_bytes()
            .cmp(b.file_name().as_encoded_bytes())
    });
    for entry in entries {
        let file_type = entry.file_type().map_err(io_err)?;
        let path = entry.path();
        if file_type.is_dir() {
            walk(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == DROP_IN_EXTENSION)
            || entry.file_name() == ".conf"
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (fuzzing audit): config files and drop-ins were read without a limit;
    /// `--config=/dev/zero` filled memory.
    #[test]
    fn config_reads_are_capped() {
        let err = Loader::new().config_file("/dev/zero").load().unwrap_err();
        assert_eq!(
            err.to_string(),
            "kubelet config file \"/dev/zero\" is larger than the 4194304 bytes read at most"
        );
        let dir = tempfile::tempdir().unwrap();
        let dropins = dir.path().join("d");
        std::fs::create_dir(&dropins).unwrap();
        let big = dropins.join("10-big.conf");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_CONFIG_FILE_BYTES + 1)
            .unwrap();
        let err = Loader::new().config_dir(&dropins).load().unwrap_err();
        assert!(
            matches!(&err, ConfigError::TooLarge { path, limit } if *path == big && *limit == MAX_CONFIG_FILE_BYTES),
            "{err}"
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let mut json = serde_json::json!({
            "staticPodPath": "manifests",
            "tlsCertFile": "/abs/cert.pem",
            "resolvConf": "",
            "authentication": {"x509": {"clientCAFile": "pki/ca.crt"}},
        });
        resolve_relative_paths(&mut json, Path::new("/etc/kubelet"));
        assert_eq!(json["staticPodPath"], "/etc/kubelet/manifests");
        assert_eq!(json["tlsCertFile"], "/abs/cert.pem");
        assert_eq!(json["resolvConf"], "");
        assert_eq!(
            json["authentication"]["x509"]["clientCAFile"],
            "/etc/kubelet/pki/ca.crt"
        );
    }
}
