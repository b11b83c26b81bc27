//! nftables: the `nft` tool's version and kernel `nf_tables` support.

use serde::Serialize;

use crate::kconfig::{ConfigValue, KernelConfig};
use crate::root::HostRoot;
use crate::version::KernelVersion;

/// What is known about nftables on the node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NftFacts {
    /// `nft --version` ran (only on the live root, and only when asked).
    pub probed: bool,
    /// `nft` was found and printed a version.
    pub version: Option<KernelVersion>,
    /// The first line `nft --version` printed, or why it could not run.
    pub detail: String,
    /// Kernel support for nf_tables: `/sys/module/nf_tables` exists, or the config says y/m.
    pub kernel_support: Option<bool>,
    /// How `kernel_support` was decided.
    pub kernel_support_evidence: String,
}

/// Parses `nftables v1.0.6 (Lester Gooch #5)` into `1.0.6`.
#[must_use]
pub fn parse_nft_version(output: &str) -> Option<KernelVersion> {
    output
        .split_whitespace()
        .find(|t| t.starts_with('v') && t.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
        .and_then(|t| KernelVersion::parse(t).ok())
}

/// Runs `nft --version` from `PATH`.
#[must_use]
pub fn run_nft_version() -> (Option<KernelVersion>, String) {
    match std::process::Command::new("nft").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().next().unwrap_or("").trim().to_string();
            match parse_nft_version(&line) {
                Some(v) => (Some(v), line),
                None => (
                    None,
                    format!("nft --version printed {line:?}: no version in it"),
                ),
            }
        }
        Ok(out) => (
            None,
            format!(
                "nft --version failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (None, "nft is not installed (not found in PATH)".to_string())
        }
        Err(e) => (None, format!("running nft --version: {e}")),
    }
}

/// Gathers nftables facts. `run_nft` runs the host's `nft`; it is only meaningful when `root`
/// is the live system, so callers pass `false` for fixture trees.
#[must_use]
pub fn probe_nft(root: &HostRoot, config: Option<&KernelConfig>, run_nft: bool) -> NftFacts {
    let (version, detail) = if run_nft {
        run_nft_version()
    } else if root.is_live() {
        (None, "nft --version not run (disabled)".to_string())
    } else {
        (
            None,
            "nft --version not run: the root is a fixture tree, not the live system".to_string(),
        )
    };
    let (kernel_support, kernel_support_evidence) = if root.is_dir("/sys/module/nf_tables") {
        (Some(true), "/sys/module/nf_tables exists".to_string())
    } else {
        match config.map(|c| c.get("NF_TABLES")) {
            Some(v) if v.is_enabled() => {
                (Some(true), format!("CONFIG_NF_TABLES is {}", v.describe()))
            }
            Some(v @ (ConfigValue::Disabled | ConfigValue::NotSet)) => {
                (Some(false), format!("CONFIG_NF_TABLES is {}", v.describe()))
            }
            _ => (
                None,
                "no /sys/module/nf_tables and no readable kernel config".to_string(),
            ),
        }
    };
    NftFacts {
        probed: run_nft,
        version,
        detail,
        kernel_support,
        kernel_support_evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nft_output() {
        assert_eq!(
            parse_nft_version("nftables v1.0.6 (Lester Gooch #5)")
                .unwrap()
                .to_string(),
            "1.0.6"
        );
        assert_eq!(
            parse_nft_version("nftables v0.9.3 (Topsy)")
                .unwrap()
                .to_string(),
            "0.9.3"
        );
        assert!(parse_nft_version("nftables version unknown").is_none());
        assert!(parse_nft_version("").is_none());
    }
}
