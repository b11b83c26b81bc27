//! A re-implementation of `kubernetes/system-validators` (the checks `kubeadm` runs): the
//! default system spec, and the kernel, OS and cgroup validators with their `KEY: value` lines
//! and their split between errors and warnings.

use serde::Serialize;

use crate::cgroup::CgroupVersion;
use crate::facts::NodeFacts;
use crate::kconfig::{ConfigValue, KernelConfig};

/// How a line is judged (the validators colour them green, red, yellow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Fine.
    Good,
    /// A failure: preflight exits non-zero.
    Bad,
    /// Worth knowing; does not fail preflight.
    Warn,
}

/// One `KEY: value` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckLine {
    /// `KERNEL_VERSION`, `CONFIG_NAMESPACES`, `OS`, `CGROUPS_CPU`, ...
    pub key: String,
    /// `enabled`, `not set - Required for ...`, ...
    pub value: String,
    /// Good, bad or warning.
    pub status: Status,
}

/// A kernel config item of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConfigItem {
    /// Name without `CONFIG_`.
    pub name: &'static str,
    /// Other names for the same option.
    pub aliases: &'static [&'static str],
    /// Appended to the value when the item is not good.
    pub description: &'static str,
}

const fn item(name: &'static str, description: &'static str) -> ConfigItem {
    ConfigItem {
        name,
        aliases: &[],
        description,
    }
}

/// Required on every host.
pub const REQUIRED_CONFIG: &[ConfigItem] = &[
    item("NAMESPACES", "Required for namespaces."),
    item("NET_NS", "Required for network namespaces."),
    item("PID_NS", "Required for PID namespaces."),
    item("IPC_NS", "Required for IPC namespaces."),
    item("UTS_NS", "Required for UTS namespaces."),
    item("CPUSETS", "Required for the cpuset controller."),
    item("MEMCG", "Required for the memory controller."),
    item("INET", "Required for networking."),
    item("EXT4_FS", "Required for ext4 file systems."),
    item("PROC_FS", "Required for /proc."),
    ConfigItem {
        name: "NETFILTER_XT_TARGET_REDIRECT",
        aliases: &["IP_NF_TARGET_REDIRECT"],
        description: "Required for the iptables REDIRECT target.",
    },
    item(
        "NETFILTER_XT_MATCH_COMMENT",
        "Required for iptables rule comments.",
    ),
    item("FAIR_GROUP_SCHED", "Required for CPU shares."),
];

/// Required on cgroup v1 hosts.
pub const REQUIRED_CONFIG_V1: &[ConfigItem] = &[
    item("CGROUPS", "Required for cgroups."),
    item("CGROUP_CPUACCT", "Required for the cpuacct controller."),
    item("CGROUP_DEVICE", "Required for the devices controller."),
    item("CGROUP_FREEZER", "Required for the freezer controller."),
    item("CGROUP_PIDS", "Required for the pids controller."),
    item("CGROUP_SCHED", "Required for the cpu controller."),
];

/// Required on cgroup v2 hosts.
pub const REQUIRED_CONFIG_V2: &[ConfigItem] = &[
    item("CGROUPS", "Required for cgroups."),
    item("CGROUP_BPF", "Required for the device controller (eBPF)."),
    item("CGROUP_PIDS", "Required for the pids controller."),
    item("CGROUP_SCHED", "Required for the cpu controller."),
];

/// Optional everywhere.
pub const OPTIONAL_CONFIG: &[ConfigItem] = &[
    ConfigItem {
        name: "OVERLAY_FS",
        aliases: &["OVERLAYFS_FS"],
        description: "Required for overlayfs.",
    },
    item("AUFS_FS", "Required for aufs."),
    item("BLK_DEV_DM", "Required for devicemapper."),
    item("CFS_BANDWIDTH", "Required for CPU quota."),
    item("SECCOMP", "Required for seccomp."),
    item("SECCOMP_FILTER", "Required for seccomp mode 2."),
    item("CGROUP_HUGETLB", "Required for hugetlb cgroup."),
];

/// Required cgroup controllers on v1.
pub const REQUIRED_CGROUPS_V1: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids",
];
/// Optional cgroup controllers on v1.
pub const OPTIONAL_CGROUPS_V1: &[&str] = &["hugetlb", "blkio"];
/// Required cgroup controllers on v2.
pub const REQUIRED_CGROUPS_V2: &[&str] = &["cpu", "cpuset", "devices", "freezer", "memory", "pids"];
/// Optional cgroup controllers on v2.
pub const OPTIONAL_CGROUPS_V2: &[&str] = &["hugetlb", "io"];

/// The spec's note for unsupported kernel releases.
pub const VERSIONS_NOTE: &str = "Supported LTS versions from the 5.x series are 5.4, 5.10 and 5.15. Any 6.x version is also supported. For cgroups v2 support, the recommended version is 5.10 or newer";

/// The cgroup v1 message (an error for kubelet 1.35+ unless `failCgroupV1` is false).
pub const CGROUP_V1_MESSAGE: &str = "cgroups v1 support is deprecated and will be removed in a future release. Please migrate to cgroups v2. To explicitly enable cgroups v1 support for kubelet v1.35 or newer, you must set the kubelet configuration option 'FailCgroupV1' to 'false'. You must also explicitly skip this validation. For more information, see https://git.k8s.io/enhancements/keps/sig-node/5573-remove-cgroup-v1";

/// Whether a release matches one of the spec's kernel regexes:
/// `^5\.4.*$`, `^5\.10.*$`, `^5\.15.*$`, `^([6-9]|[1-9][0-9]+)\.([0-9]+)\.([0-9]+).*$`.
#[must_use]
pub fn kernel_release_supported(release: &str) -> bool {
    if ["5.4", "5.10", "5.15"]
        .iter()
        .any(|p| release.starts_with(p))
    {
        return true;
    }
    let mut parts = release.splitn(3, '.');
    let (Some(major), Some(minor), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let major_ok = digits(major)
        && match major.len() {
            1 => (b'6'..=b'9').contains(&major.as_bytes()[0]),
            _ => major.as_bytes()[0] != b'0',
        };
    let patch_ok = rest.bytes().next().is_some_and(|b| b.is_ascii_digit());
    major_ok && digits(minor) && patch_ok
}

/// What the validators concluded.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// Every line, in the validators' order.
    pub lines: Vec<CheckLine>,
    /// Errors (preflight fails).
    pub errors: Vec<String>,
    /// Warnings.
    pub warnings: Vec<String>,
}

impl Validation {
    fn line(&mut self, key: impl Into<String>, value: impl Into<String>, status: Status) {
        self.lines.push(CheckLine {
            key: key.into(),
            value: value.into(),
            status,
        });
    }
}

/// Settings of the validation that mirror kubelet options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidationOptions {
    /// The kubelet's `failCgroupV1` (default true in 1.35): a v1 host is an error.
    pub fail_cgroup_v1: bool,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        Self {
            fail_cgroup_v1: true,
        }
    }
}

impl ValidationOptions {
    /// Sets [`fail_cgroup_v1`](Self::fail_cgroup_v1).
    #[must_use]
    pub fn with_fail_cgroup_v1(mut self, fail_cgroup_v1: bool) -> Self {
        self.fail_cgroup_v1 = fail_cgroup_v1;
        self
    }
}

fn config_item_value(config: &KernelConfig, item: &ConfigItem) -> (ConfigValue, &'static str) {
    for name in std::iter::once(item.name).chain(item.aliases.iter().copied()) {
        let v = config.get(name);
        if v != ConfigValue::NotSet {
            return (v, name);
        }
    }
    (ConfigValue::NotSet, item.name)
}

/// The kernel validator: version line and, when the config is readable, one line per item.
pub fn validate_kernel(facts: &NodeFacts, out: &mut Validation) {
    match &facts.kernel.release {
        Some(rel) if kernel_release_supported(rel) => {
            out.line("KERNEL_VERSION", rel.clone(), Status::Good)
        }
        Some(rel) => {
            // A warning since May 2025, not an error.
            out.line("KERNEL_VERSION", rel.clone(), Status::Warn);
            out.warnings.push(format!(
                "kernel release {rel} is unsupported. {VERSIONS_NOTE}"
            ));
        }
        None => {
            let why = facts.kernel.error.clone().unwrap_or_default();
            out.line("KERNEL_VERSION", format!("unknown - {why}"), Status::Bad);
            out.errors
                .push(format!("failed to get kernel release: {why}"));
        }
    }
    if let (Some(rel), None) = (&facts.kernel.release, &facts.kernel.version) {
        out.warnings.push(format!(
            "kernel release {rel:?} has no X.Y version: every version-based check is unknown"
        ));
    }

    let Some(config) = &facts.kernel_config.config else {
        let reason = facts.kernel_config.unavailable_reason().unwrap_or_default();
        out.line(
            "KERNEL_CONFIG",
            format!("unreadable - {reason}"),
            Status::Warn,
        );
        out.warnings
            .push(format!("failed to parse kernel config: {reason}"));
        return;
    };
    let cgroup_list = match facts.cgroup.version {
        Some(CgroupVersion::V2) => REQUIRED_CONFIG_V2,
        _ => REQUIRED_CONFIG_V1,
    };
    let mut bad = Vec::new();
    for (items, required) in [
        (REQUIRED_CONFIG, true),
        (cgroup_list, true),
        (OPTIONAL_CONFIG, false),
    ] {
        for it in items {
            let (value, name) = config_item_value(config, it);
            let key = format!("CONFIG_{name}");
            if value.is_enabled() {
                out.line(key, value.describe(), Status::Good);
            } else if required {
                out.line(
                    key.clone(),
                    format!("{} - {}", value.describe(), it.description),
                    Status::Bad,
                );
                bad.push(key);
            } else {
                out.line(
                    key,
                    format!("{} - {}", value.describe(), it.description),
                    Status::Warn,
                );
            }
        }
    }
    if !bad.is_empty() {
        out.errors
            .push(format!("unexpected kernel config: {}", bad.join(" ")));
    }
}

/// The OS validator.
pub fn validate_os(facts: &NodeFacts, out: &mut Validation) {
    match facts.os.as_deref() {
        Some("Linux") => out.line("OS", "Linux", Status::Good),
        Some(other) => {
            out.line("OS", other, Status::Bad);
            out.errors
                .push(format!("unsupported operating system: {other}"));
        }
        None => {
            out.line("OS", "unknown", Status::Bad);
            out.errors.push(
                "unsupported operating system: unknown (no /proc/sys/kernel/ostype)".to_string(),
            );
        }
    }
}

/// The cgroup validator, plus the kubelet's own cgroup warnings.
pub fn validate_cgroups(facts: &NodeFacts, opts: ValidationOptions, out: &mut Validation) {
    let cg = &facts.cgroup;
    let (required, optional) = match cg.version {
        Some(CgroupVersion::V2) => (REQUIRED_CGROUPS_V2, OPTIONAL_CGROUPS_V2),
        Some(CgroupVersion::V1) => (REQUIRED_CGROUPS_V1, OPTIONAL_CGROUPS_V1),
        None => {
            out.line("CGROUPS", "not found", Status::Bad);
            out.errors.push(format!(
                "failed to find cgroup mount point: {}",
                cg.problems.join("; ")
            ));
            return;
        }
    };
    let mut missing_required = Vec::new();
    let mut missing_optional = Vec::new();
    for (list, missing, status) in [
        (required, &mut missing_required, Status::Bad),
        (optional, &mut missing_optional, Status::Warn),
    ] {
        for c in list {
            let key = format!("CGROUPS_{}", c.to_uppercase());
            if cg.controllers.iter().any(|x| x == c) {
                out.line(key, "enabled", Status::Good);
            } else {
                out.line(key, "missing", status);
                missing.push(*c);
            }
        }
    }
    if !missing_required.is_empty() {
        out.errors.push(format!(
            "missing required cgroups: {}",
            missing_required.join(" ")
        ));
    }
    if !missing_optional.is_empty() {
        out.warnings.push(format!(
            "missing optional cgroups: {}",
            missing_optional.join(" ")
        ));
    }
    match cg.version {
        Some(CgroupVersion::V1) if opts.fail_cgroup_v1 => {
            out.line("CGROUP_VERSION", "v1", Status::Bad);
            out.errors.push(CGROUP_V1_MESSAGE.to_string());
        }
        Some(CgroupVersion::V1) => {
            out.line("CGROUP_VERSION", "v1", Status::Warn);
            out.warnings.push(
                "cgroup v1 support is in maintenance mode, please migrate to cgroup v2".to_string(),
            );
        }
        _ => {
            out.line("CGROUP_VERSION", "v2", Status::Good);
            if cg.root_cpu_stat == Some(false) {
                out.warnings.push("cgroup v2 is being used on a kernel, which doesn't support root `cpu.stat`. Kubelet will continue, but may experience instability or wrong behavior".to_string());
            }
        }
    }
}

/// Swap under `failSwapOn`, and PSI (informational).
pub fn validate_swap_and_psi(facts: &NodeFacts, fail_swap_on: bool, out: &mut Validation) {
    match &facts.swap {
        Ok(s) if s.enabled && fail_swap_on => {
            out.line(
                "SWAP",
                format!("on ({} bytes) - failSwapOn is true", s.total_bytes),
                Status::Bad,
            );
            if let Err(e) = crate::swap::check_fail_swap_on(s, true) {
                out.errors.push(e.to_string());
            }
        }
        Ok(s) if s.enabled => out.line(
            "SWAP",
            format!("on ({} bytes)", s.total_bytes),
            Status::Good,
        ),
        Ok(_) => out.line("SWAP", "off", Status::Good),
        Err(e) => {
            out.line("SWAP", format!("unknown - {e}"), Status::Warn);
            out.warnings
                .push(format!("cannot tell whether swap is on: {e}"));
        }
    }
    let psi = &facts.psi.verdict;
    let status = if psi.available == Some(true) {
        Status::Good
    } else {
        Status::Warn
    };
    out.line("PSI", format!("{} - {}", psi.state(), psi.reason), status);
}

/// Runs every validator.
#[must_use]
pub fn validate(facts: &NodeFacts, opts: ValidationOptions, fail_swap_on: bool) -> Validation {
    let mut out = Validation::default();
    validate_kernel(facts, &mut out);
    validate_os(facts, &mut out);
    validate_cgroups(facts, opts, &mut out);
    validate_swap_and_psi(facts, fail_swap_on, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_regexes() {
        for ok in [
            "5.4.0-1.el7.elrepo",
            "5.10.0-28-amd64",
            "5.15.153.1-microsoft-standard-WSL2",
            "6.18.44-fc-v669",
            "6.6.74+rpt-rpi-2712",
            "10.0.1",
            "5.40.1",
        ] {
            assert!(kernel_release_supported(ok), "{ok}");
        }
        for bad in [
            "4.18.0-513.el8.x86_64",
            "4.19.0",
            "5.8.0",
            "6.1",
            "6.1.x",
            "06.1.1",
            "3.10.0-1160.el7.x86_64",
            "4.4.0-22621-Microsoft",
            "",
        ] {
            assert!(!kernel_release_supported(bad), "{bad}");
        }
    }
}
