//! Pod sysctls: the safe set, namespaced vs node-level, `allowedUnsafeSysctls`, admission.
//!
//! The kubelet admits a pod's `securityContext.sysctls` only if each one is on its allowlist:
//! the safe sysctls (always-safe legacy names, plus newer names gated on the kernel version)
//! and the operator's `allowedUnsafeSysctls` (names or `prefix*` patterns, each of which must be
//! namespaced). A namespaced sysctl is still refused when the pod shares that namespace with the
//! host (`hostNetwork` for `net.*`, `hostIPC` for the IPC ones). Names may use `/` as separator
//! (`net/ipv4/tcp_rmem`); they are normalized to dots first.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::version::{KernelVersion, constants};

/// The admission reason the kubelet reports.
pub const FORBIDDEN_REASON: &str = "SysctlForbidden";

/// The maximum length of a sysctl name or pattern.
pub const SYSCTL_MAX_LENGTH: usize = 253;

/// The kernel namespace that isolates a sysctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SysctlNamespace {
    /// IPC namespace (`kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`).
    #[serde(rename = "IPC")]
    Ipc,
    /// Network namespace (`net.*`).
    #[serde(rename = "Net")]
    Net,
}

impl std::fmt::Display for SysctlNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ipc => "IPC",
            Self::Net => "Net",
        })
    }
}

/// A safe sysctl: its name, the kernel where it became namespaced (the seed's table), and
/// whether the current kubelet checks that version before allowing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SafeSysctl {
    /// Dotted name.
    pub name: &'static str,
    /// The kernel where the sysctl became per-namespace, when documented.
    #[serde(serialize_with = "ser_parts")]
    pub namespaced_since: Option<&'static [u64]>,
    /// The kubelet checks `namespaced_since` (newer entries); legacy entries are always allowed
    /// "to avoid regressions", whatever the kernel.
    pub kernel_gated: bool,
}

fn ser_parts<S: serde::Serializer>(
    v: &Option<&'static [u64]>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(p) => s.serialize_str(&KernelVersion::from_parts(p).to_string()),
        None => s.serialize_none(),
    }
}

/// The kubelet's safe sysctls (`pkg/kubelet/sysctl/safe_sysctls.go`, newest), with the seed's
/// kernel minimums.
pub const SAFE_SYSCTLS: &[SafeSysctl] = &[
    SafeSysctl {
        name: "kernel.shm_rmid_forced",
        namespaced_since: None,
        kernel_gated: false,
    },
    SafeSysctl {
        name: "net.ipv4.ip_local_port_range",
        namespaced_since: None,
        kernel_gated: false,
    },
    SafeSysctl {
        name: "net.ipv4.tcp_syncookies",
        namespaced_since: Some(&[4, 6]),
        kernel_gated: false,
    },
    SafeSysctl {
        name: "net.ipv4.ping_group_range",
        namespaced_since: None,
        kernel_gated: false,
    },
    SafeSysctl {
        name: "net.ipv4.ip_unprivileged_port_start",
        namespaced_since: None,
        kernel_gated: false,
    },
    SafeSysctl {
        name: "net.ipv4.tcp_keepalive_time",
        namespaced_since: Some(constants::TCP_KEEPALIVE_NAMESPACED),
        kernel_gated: false,
    },
    SafeSysctl {
        name: "net.ipv4.tcp_fin_timeout",
        namespaced_since: Some(constants::TCP_FIN_TIMEOUT_NAMESPACED),
        kernel_gated: false,
    },
    SafeSysctl {
        name: "net.ipv4.tcp_keepalive_intvl",
        namespaced_since: Some(constants::TCP_KEEPALIVE_NAMESPACED),
        kernel_gated: false,
    },
    SafeSysctl {
        name: "net.ipv4.tcp_keepalive_probes",
        namespaced_since: Some(constants::TCP_KEEPALIVE_NAMESPACED),
        kernel_gated: false,
    },
    SafeSysctl {
        name: "net.ipv4.ip_local_reserved_ports",
        namespaced_since: Some(constants::IP_LOCAL_RESERVED_PORTS_NAMESPACED),
        kernel_gated: true,
    },
    SafeSysctl {
        name: "net.ipv4.tcp_rmem",
        namespaced_since: Some(constants::TCP_MEMORY_NAMESPACED),
        kernel_gated: true,
    },
    SafeSysctl {
        name: "net.ipv4.tcp_wmem",
        namespaced_since: Some(constants::TCP_MEMORY_NAMESPACED),
        kernel_gated: true,
    },
];

/// The safe sysctls allowed on a kernel: every legacy entry, plus gated entries whose minimum
/// the kernel meets. An unknown kernel gets the legacy entries only, as in the kubelet.
#[must_use]
pub fn safe_sysctls_for(kernel: Option<&KernelVersion>) -> Vec<&'static str> {
    SAFE_SYSCTLS
        .iter()
        .filter(|s| match (s.kernel_gated, s.namespaced_since, kernel) {
            (false, _, _) => true,
            (true, Some(min), Some(k)) => k.at_least(&KernelVersion::from_parts(min)),
            (true, None, Some(_)) => true,
            (true, _, None) => false,
        })
        .map(|s| s.name)
        .collect()
}

/// Converts a `/`-separated sysctl name to dots (`net/ipv4/conf/eno2.100/rp_filter` becomes
/// `net.ipv4.conf.eno2/100.rp_filter`): if the first separator is a `/`, dots and slashes swap.
#[must_use]
pub fn normalize_name(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    }
}

/// Which namespace isolates a (normalized) sysctl name, if any. Everything else is node-level:
/// setting it from a pod would change the whole node.
#[must_use]
pub fn namespace_of(name: &str) -> Option<SysctlNamespace> {
    const EXACT_IPC: &[&str] = &[
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
        "kernel.shm",
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.msg",
    ];
    if EXACT_IPC.contains(&name) {
        return Some(SysctlNamespace::Ipc);
    }
    if name.starts_with("net.") {
        return Some(SysctlNamespace::Net);
    }
    if name.starts_with("fs.mqueue.") {
        return Some(SysctlNamespace::Ipc);
    }
    None
}

/// How the kubelet classifies a sysctl on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "class", content = "namespace")]
pub enum SysctlClass {
    /// On the safe list for this kernel: allowed without configuration.
    Safe(SysctlNamespace),
    /// Namespaced but not safe: allowed only through `allowedUnsafeSysctls`.
    Unsafe(SysctlNamespace),
    /// Not namespaced: can never be set from a pod.
    NodeLevel,
}

/// Validates a sysctl name or pattern like `IsValidSysctlPattern`: dot- or slash-separated
/// segments of `[a-z0-9]([-_a-z0-9]*[a-z0-9])?`, the last of which may end in `*`.
#[must_use]
pub fn is_valid_sysctl_pattern(p: &str) -> bool {
    if p.is_empty() || p.len() > SYSCTL_MAX_LENGTH {
        return false;
    }
    let segments: Vec<&str> = p.split(['.', '/']).collect();
    let last = segments.len() - 1;
    segments.iter().enumerate().all(|(i, seg)| {
        let b = seg.as_bytes();
        if i < last {
            segment_ok(b)
        } else {
            // `([a-z0-9][-_a-z0-9]*)?[a-z0-9*]`
            match b.split_last() {
                Some((end, rest)) => {
                    (end.is_ascii_lowercase() || end.is_ascii_digit() || *end == b'*')
                        && (rest.is_empty()
                            || ((rest[0].is_ascii_lowercase() || rest[0].is_ascii_digit())
                                && rest.iter().all(|c| seg_char(*c))))
                }
                None => false,
            }
        }
    })
}

fn seg_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'
}

fn segment_ok(b: &[u8]) -> bool {
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => alnum(f) && alnum(l) && b.iter().all(|c| seg_char(*c)),
        _ => false,
    }
}

/// A pod's sysctl refused at admission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SysctlRejection {
    /// Always [`FORBIDDEN_REASON`].
    pub reason: &'static str,
    /// The kubelet's message, e.g. `forbidden sysctl: "kernel.panic" not allowlisted`.
    pub message: String,
    /// The sysctl that was refused (normalized).
    pub sysctl: String,
}

/// The kubelet's sysctl allowlist for one node.
#[derive(Debug, Clone)]
pub struct SysctlPolicy {
    exact: Vec<(String, SysctlNamespace)>,
    prefixes: Vec<(String, SysctlNamespace)>,
    safe: Vec<&'static str>,
}

impl SysctlPolicy {
    /// The allowlist for the kernel running under `root` (its `/proc/sys/kernel/osrelease`)
    /// plus `allowed_unsafe`: what the kubelet's sysctl admission handler builds at startup.
    /// When the kernel version cannot be read, only the sysctls safe on every kernel are
    /// allowed (and a warning says so).
    ///
    /// # Errors
    /// As [`SysctlPolicy::new`]: an invalid `allowedUnsafeSysctls` entry, which stops the
    /// kubelet's startup.
    pub fn for_host(root: &crate::HostRoot, allowed_unsafe: &[String]) -> Result<Self> {
        let kernel = root
            .read("proc/sys/kernel/osrelease")
            .ok()
            .and_then(|r| KernelVersion::parse(r.trim()).ok());
        if kernel.is_none() {
            tracing::warn!(
                "cannot read the kernel version: only the sysctls safe on every kernel are allowed"
            );
        }
        Self::new(kernel.as_ref(), allowed_unsafe)
    }

    /// Builds the allowlist: the safe sysctls for `kernel` plus `allowed_unsafe` (names or
    /// patterns ending in `*`, as in `allowedUnsafeSysctls`).
    ///
    /// # Errors
    /// [`Error::SysctlPattern`] for an entry that is not a valid pattern or not namespaced,
    /// with the kubelet's wording.
    pub fn new(kernel: Option<&KernelVersion>, allowed_unsafe: &[String]) -> Result<Self> {
        let safe = safe_sysctls_for(kernel);
        let mut policy = Self {
            exact: Vec::new(),
            prefixes: Vec::new(),
            safe: safe.clone(),
        };
        for s in safe
            .iter()
            .map(|s| (*s).to_string())
            .chain(allowed_unsafe.iter().cloned())
        {
            if !is_valid_sysctl_pattern(&s) {
                return Err(Error::SysctlPattern {
                    reason: format!(
                        "sysctl {s:?} must have at most {SYSCTL_MAX_LENGTH} characters and match regex ([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]"
                    ),
                    pattern: s,
                });
            }
            let mut name = normalize_name(&s);
            let prefixed = match name.find('*') {
                Some(i) => {
                    name.truncate(i);
                    true
                }
                None => false,
            };
            let Some(ns) = namespace_of(&name) else {
                return Err(Error::SysctlPattern {
                    reason: format!("the sysctls {name:?} are not known to be namespaced"),
                    pattern: s,
                });
            };
            if prefixed {
                policy.prefixes.push((name, ns));
            } else {
                policy.exact.push((name, ns));
            }
        }
        Ok(policy)
    }

    /// Classifies a sysctl for this node.
    #[must_use]
    pub fn classify(&self, sysctl: &str) -> SysctlClass {
        let name = normalize_name(sysctl);
        match namespace_of(&name) {
            None => SysctlClass::NodeLevel,
            Some(ns) if self.safe.contains(&name.as_str()) => SysctlClass::Safe(ns),
            Some(ns) => SysctlClass::Unsafe(ns),
        }
    }

    /// Checks one sysctl (`validateSysctl`).
    ///
    /// # Errors
    /// The reason, worded like the kubelet: `"x" not allowlisted` or
    /// `"x" not allowed with host Net enabled`.
    pub fn validate(&self, sysctl: &str, host_network: bool, host_ipc: bool) -> Result<(), String> {
        let name = normalize_name(sysctl);
        let found = self
            .exact
            .iter()
            .find(|(n, _)| *n == name)
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(p, _)| name.starts_with(p.as_str()))
            })
            .map(|(_, ns)| *ns);
        match found {
            None => Err(format!("{name:?} not allowlisted")),
            Some(SysctlNamespace::Ipc) if host_ipc => Err(format!(
                "{name:?} not allowed with host {} enabled",
                SysctlNamespace::Ipc
            )),
            Some(SysctlNamespace::Net) if host_network => Err(format!(
                "{name:?} not allowed with host {} enabled",
                SysctlNamespace::Net
            )),
            Some(_) => Ok(()),
        }
    }

    /// Admits or rejects a pod's sysctls (`Admit`): the first refused one decides.
    ///
    /// # Errors
    /// A [`SysctlRejection`] with reason `SysctlForbidden`.
    pub fn admit<S: AsRef<str>>(
        &self,
        sysctls: &[S],
        host_network: bool,
        host_ipc: bool,
    ) -> Result<(), SysctlRejection> {
        for s in sysctls {
            if let Err(e) = self.validate(s.as_ref(), host_network, host_ipc) {
                return Err(SysctlRejection {
                    reason: FORBIDDEN_REASON,
                    message: format!("forbidden sysctl: {e}"),
                    sysctl: normalize_name(s.as_ref()),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> KernelVersion {
        KernelVersion::parse(s).unwrap()
    }

    #[test]
    fn legacy_entries_always_gated_entries_by_kernel() {
        let old = safe_sysctls_for(Some(&k("3.10.0-1160.el7.x86_64")));
        assert!(
            old.contains(&"net.ipv4.tcp_keepalive_time"),
            "legacy stays on old kernels"
        );
        assert!(old.contains(&"net.ipv4.tcp_fin_timeout"));
        assert!(
            !old.contains(&"net.ipv4.ip_local_reserved_ports"),
            "3.16 gate"
        );
        assert!(!old.contains(&"net.ipv4.tcp_rmem"));
        let mid = safe_sysctls_for(Some(&k("4.14.0")));
        assert!(mid.contains(&"net.ipv4.ip_local_reserved_ports"));
        assert!(!mid.contains(&"net.ipv4.tcp_wmem"), "4.15 gate");
        let new = safe_sysctls_for(Some(&k("4.15")));
        assert!(new.contains(&"net.ipv4.tcp_rmem") && new.contains(&"net.ipv4.tcp_wmem"));
        assert_eq!(new.len(), SAFE_SYSCTLS.len());
        let unknown = safe_sysctls_for(None);
        assert_eq!(
            unknown.len(),
            9,
            "only the legacy list when the kernel is unknown"
        );
    }

    #[test]
    fn normalization_swaps_separators_only_when_slash_comes_first() {
        assert_eq!(
            normalize_name("net/ipv4/conf/eno2.100/rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
        assert_eq!(
            normalize_name("net.ipv4.conf.eno2/100.rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
        assert_eq!(normalize_name("kernel"), "kernel");
        assert_eq!(normalize_name(""), "");
    }

    #[test]
    fn namespaced_vs_node_level() {
        for (name, want) in [
            ("kernel.sem", Some(SysctlNamespace::Ipc)),
            ("kernel.shmmax", Some(SysctlNamespace::Ipc)),
            ("kernel.shm_rmid_forced", Some(SysctlNamespace::Ipc)),
            ("kernel.msgmnb", Some(SysctlNamespace::Ipc)),
            ("fs.mqueue.msg_max", Some(SysctlNamespace::Ipc)),
            ("net.core.somaxconn", Some(SysctlNamespace::Net)),
            ("net.ipv4.tcp_rmem", Some(SysctlNamespace::Net)),
            ("kernel.panic", None),
            ("kernel.shm_next_id", None),
            ("vm.swappiness", None),
            ("fs.file-max", None),
            ("fs.mqueue", None),
            ("network.x", None),
        ] {
            assert_eq!(namespace_of(name), want, "{name}");
        }
        let p = SysctlPolicy::new(Some(&k("6.1")), &["kernel.msg*".to_string()]).unwrap();
        assert_eq!(
            p.classify("net.ipv4.tcp_syncookies"),
            SysctlClass::Safe(SysctlNamespace::Net)
        );
        assert_eq!(
            p.classify("net/ipv4/tcp_rmem"),
            SysctlClass::Safe(SysctlNamespace::Net)
        );
        assert_eq!(
            p.classify("net.core.somaxconn"),
            SysctlClass::Unsafe(SysctlNamespace::Net)
        );
        assert_eq!(
            p.classify("kernel.msgmax"),
            SysctlClass::Unsafe(SysctlNamespace::Ipc)
        );
        assert_eq!(p.classify("vm.overcommit_memory"), SysctlClass::NodeLevel);
    }

    #[test]
    fn pattern_syntax() {
        for ok in [
            "net.core.*",
            "net.*",
            "kernel.shm*",
            "kernel.sem",
            "net/ipv4/*",
            "a",
            "net.ipv4.conf.eth-0.rp_filter",
            "a1_b",
        ] {
            assert!(is_valid_sysctl_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            "Net.core",
            "net..core",
            "net.core.",
            ".net",
            "net.-x.y",
            "net.*.x",
            "net.co re",
            "net.x-",
            &"a".repeat(254),
        ] {
            assert!(!is_valid_sysctl_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn unsafe_patterns_must_be_valid_and_namespaced() {
        let e = SysctlPolicy::new(None, &["kernel.panic".to_string()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "allowedUnsafeSysctls entry \"kernel.panic\": the sysctls \"kernel.panic\" are not known to be namespaced"
        );
        let e = SysctlPolicy::new(None, &["*".to_string()]).unwrap_err();
        assert!(
            e.to_string()
                .contains("the sysctls \"\" are not known to be namespaced"),
            "{e}"
        );
        let e = SysctlPolicy::new(None, &["vm.*".to_string()]).unwrap_err();
        assert!(e.to_string().contains("not known to be namespaced"), "{e}");
        let e = SysctlPolicy::new(None, &["Net.core.*".to_string()]).unwrap_err();
        assert!(
            e.to_string().contains("must have at most 253 characters"),
            "{e}"
        );
        assert!(
            SysctlPolicy::new(
                None,
                &[
                    "net.*".into(),
                    "kernel.shm*".into(),
                    "fs.mqueue.*".into(),
                    "kernel.sem".into()
                ]
            )
            .is_ok()
        );
    }

    #[test]
    fn admission_rules() {
        let p = SysctlPolicy::new(
            Some(&k("5.15.0-91-generic")),
            &["net.core.*".to_string(), "kernel.msg*".to_string()],
        )
        .unwrap();
        // Safe and explicitly allowed sysctls pass; slashes are accepted.
        assert!(
            p.admit(
                &[
                    "net.ipv4.tcp_syncookies",
                    "net/ipv4/ip_local_port_range",
                    "net.core.somaxconn",
                    "kernel.msgmax",
                    "kernel.shm_rmid_forced"
                ],
                false,
                false
            )
            .is_ok()
        );
        // Not on the allowlist.
        let r = p
            .admit(&["net.ipv4.tcp_syncookies", "kernel.panic"], false, false)
            .unwrap_err();
        assert_eq!(r.reason, "SysctlForbidden");
        assert_eq!(
            r.message,
            "forbidden sysctl: \"kernel.panic\" not allowlisted"
        );
        assert_eq!(r.sysctl, "kernel.panic");
        let r = p
            .admit(&["net.ipv6.conf.all.forwarding"], false, false)
            .unwrap_err();
        assert!(r.message.contains("not allowlisted"), "{}", r.message);
        // Host namespaces.
        let r = p.admit(&["net.core.somaxconn"], true, false).unwrap_err();
        assert_eq!(
            r.message,
            "forbidden sysctl: \"net.core.somaxconn\" not allowed with host Net enabled"
        );
        let r = p
            .admit(&["kernel.shm_rmid_forced"], false, true)
            .unwrap_err();
        assert_eq!(
            r.message,
            "forbidden sysctl: \"kernel.shm_rmid_forced\" not allowed with host IPC enabled"
        );
        assert!(
            p.admit(&["kernel.shm_rmid_forced"], true, false).is_ok(),
            "IPC sysctl with host network only"
        );
        assert!(
            p.admit(&["net.core.somaxconn"], false, true).is_ok(),
            "Net sysctl with host IPC only"
        );
        assert!(p.admit::<&str>(&[], true, true).is_ok());
        // Kernel gating through the policy: tcp_rmem is refused on 4.14, allowed on 4.15.
        let old = SysctlPolicy::new(Some(&k("4.14.0")), &[]).unwrap();
        assert!(old.admit(&["net.ipv4.tcp_rmem"], false, false).is_err());
        let new = SysctlPolicy::new(Some(&k("4.15.0")), &[]).unwrap();
        assert!(new.admit(&["net.ipv4.tcp_rmem"], false, false).is_ok());
    }
}
