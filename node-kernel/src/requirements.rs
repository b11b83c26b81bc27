//! The kernel requirement table, as data, and its evaluation against [`NodeFacts`].
//!
//! Each entry names a feature, the kernel it needs, any extra conditions, and where that is
//! documented (with the corrections the seed needs against upstream code). Evaluation prefers
//! evidence in this order: a definitive capability probe, then the kernel config, then the
//! version number, because distro kernels backport features (RHEL 8's 4.18 has PSI) and any
//! kernel can have a feature compiled out or disabled at boot (`psi=0`).

use serde::Serialize;

use crate::cgroup::CgroupVersion;
use crate::facts::NodeFacts;
use crate::verdict::{DecidedBy, Verdict};
use crate::version::{KernelVersion, constants};

/// The environment variable that lets kube-proxy's nftables mode skip its kernel check.
pub const NFTABLES_SKIP_ENV: &str = "KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK";

/// The minimum `nft` for kube-proxy's nftables mode (knftables).
pub const NFT_MIN_VERSION: &[u64] = &[1, 0, 1];

/// Which evaluation applies to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Check {
    /// The unified hierarchy is mounted.
    CgroupV2,
    /// Root `cpu.stat` on cgroup v2.
    CgroupV2RootCpuStat,
    /// The cgroup v2 freezer.
    CgroupV2Freezer,
    /// Pressure Stall Information.
    Psi,
    /// The kubelet's PSI metrics (`KubeletPSI`): PSI plus cgroup v2.
    KubeletPsi,
    /// kube-proxy nftables mode.
    NftablesKubeProxy,
    /// Recursive read-only mounts (`mount_setattr`).
    RecursiveReadOnlyMounts,
    /// Pod user namespaces.
    UserNamespaces,
    /// tmpfs `noswap`.
    TmpfsNoswap,
    /// Node swap for pods (LimitedSwap).
    NodeSwap,
    /// MemoryQoS (memory.high without the reclaim livelock).
    MemoryQos,
    /// kube-proxy ipvs `conn_reuse_mode`.
    IpvsConnReuseMode,
    /// A kernel-gated safe sysctl (by version, as the kubelet checks it).
    Sysctl,
}

/// One row of the requirement table.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirement {
    /// Feature name as shown in reports.
    pub name: &'static str,
    /// The kernel version the feature needs, if any.
    #[serde(serialize_with = "ser_parts")]
    pub min_kernel: Option<&'static [u64]>,
    /// Other conditions, in words.
    pub conditions: &'static str,
    /// Where it is documented, and what the seed gets wrong.
    pub documented: &'static str,
    /// How it is evaluated.
    pub check: Check,
}

fn ser_parts<S: serde::Serializer>(v: &Option<&'static [u64]>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(p) => s.serialize_str(&KernelVersion::from_parts(p).to_string()),
        None => s.serialize_none(),
    }
}

/// The table.
pub const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        name: "cgroup-v2",
        min_kernel: None,
        conditions: "unified hierarchy at /sys/fs/cgroup; v1 is in maintenance since 1.31 and failCgroupV1 defaults to true in 1.35",
        documented: "seed §2; kubelet cgroupVersionCheck (pkg/kubelet/kubelet_linux.go); KEP-5573",
        check: Check::CgroupV2,
    },
    Requirement {
        name: "cgroup-v2-root-cpu-stat",
        min_kernel: Some(constants::CGROUP_V2_ROOT_CPU_STAT),
        conditions: "root cgroup has cpu.stat; without it the kubelet warns CgroupV2KernelWarning",
        documented: "seed §2; pkg/kubelet/kubelet_linux.go",
        check: Check::CgroupV2RootCpuStat,
    },
    Requirement {
        name: "cgroup-v2-freezer",
        min_kernel: Some(constants::CGROUP_V2_FREEZER),
        conditions: "child cgroups have cgroup.freeze; runc advises against older kernels",
        documented: "seed §2; runc docs/cgroup-v2.md",
        check: Check::CgroupV2Freezer,
    },
    Requirement {
        name: "psi",
        min_kernel: Some(constants::PSI),
        conditions: "CONFIG_PSI=y; psi=1 on the command line if built with CONFIG_PSI_DEFAULT_DISABLED=y; /proc/pressure/* readable",
        documented: "seed §2; kernel Documentation/accounting/psi.rst",
        check: Check::Psi,
    },
    Requirement {
        name: "kubelet-psi-metrics",
        min_kernel: Some(constants::PSI),
        conditions: "PSI available and cgroup v2 (per-cgroup *.pressure files); feature gate KubeletPSI (beta 1.34)",
        documented: "k8s blog 2025-09-04 \"PSI Metrics for Kubernetes Graduates to Beta\"",
        check: Check::KubeletPsi,
    },
    Requirement {
        name: "nftables-kube-proxy",
        min_kernel: Some(constants::NFTABLES_KUBE_PROXY),
        conditions: "nft >= 1.0.1 and kernel nf_tables; KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK lowers the floor to 5.4 (test/dev; the seed calls it nftables.skipKernelVersionCheck)",
        documented: "seed §2; pkg/proxy/nftables/proxier.go (reads the environment variable)",
        check: Check::NftablesKubeProxy,
    },
    Requirement {
        name: "recursive-read-only-mounts",
        min_kernel: Some(constants::RECURSIVE_READ_ONLY_MOUNTS),
        conditions: "mount_setattr(2) with MOUNT_ATTR_RDONLY and AT_RECURSIVE; the kubelet itself defers to the CRI runtime handler feature RecursiveReadOnlyMounts",
        documented: "seed §2; pkg/kubelet/kuberuntime/helpers.go",
        check: Check::RecursiveReadOnlyMounts,
    },
    Requirement {
        name: "user-namespaces",
        min_kernel: Some(constants::USER_NAMESPACES_IDMAP_TMPFS),
        conditions: "CONFIG_USER_NS, max_user_namespaces > 0, idmapped tmpfs mounts (6.3; KEP-127 recommends 6.5); the kubelet's 6.3 check was reverted in 1.33, the CRI runtime reports support",
        documented: "seed §2 says 6.5; kubernetes#124731 and its revert #130243",
        check: Check::UserNamespaces,
    },
    Requirement {
        name: "tmpfs-noswap",
        min_kernel: Some(constants::TMPFS_NOSWAP),
        conditions: "not inside a user namespace; below 6.4 the kubelet test-mounts a tmpfs with -o noswap",
        documented: "seed §2 says 6.3; code constant TmpfsNoswapSupportKernelVersion is 6.4 (pkg/kubelet/util/swap/swap_util.go)",
        check: Check::TmpfsNoswap,
    },
    Requirement {
        name: "node-swap",
        min_kernel: None,
        conditions: "swap provisioned before the kubelet starts, cgroup v2, a swap controller (memory.swap.max), failSwapOn=false and swapBehavior LimitedSwap",
        documented: "seed §11; website swap-memory-management.md; NodeSwap GA in 1.34",
        check: Check::NodeSwap,
    },
    Requirement {
        name: "memory-qos",
        min_kernel: Some(constants::MEMORY_QOS_MIN),
        conditions: "cgroup v2 (memory.high); older kernels can livelock in reclaim at memory.high",
        documented: "pkg/util/kernel/constants.go MemoryQoSMinKernelVersion",
        check: Check::MemoryQos,
    },
    Requirement {
        name: "ipvs-conn-reuse-mode",
        min_kernel: Some(constants::IPVS_CONN_REUSE_MODE_MIN_SUPPORTED),
        conditions: "net.ipv4.vs.conn_reuse_mode for kube-proxy ipvs mode; fixed behaviour from 5.9",
        documented: "seed §2; pkg/util/kernel/constants.go",
        check: Check::IpvsConnReuseMode,
    },
    Requirement {
        name: "sysctl net.ipv4.ip_local_reserved_ports",
        min_kernel: Some(constants::IP_LOCAL_RESERVED_PORTS_NAMESPACED),
        conditions: "safe sysctl only when the kernel version is at least this (the kubelet checks the version)",
        documented: "seed §2 (k8s 1.27+); pkg/kubelet/sysctl/safe_sysctls.go",
        check: Check::Sysctl,
    },
    Requirement {
        name: "sysctl net.ipv4.tcp_rmem",
        min_kernel: Some(constants::TCP_MEMORY_NAMESPACED),
        conditions: "safe sysctl only when the kernel version is at least this",
        documented: "seed §2 (k8s 1.32+); pkg/kubelet/sysctl/safe_sysctls.go",
        check: Check::Sysctl,
    },
    Requirement {
        name: "sysctl net.ipv4.tcp_wmem",
        min_kernel: Some(constants::TCP_MEMORY_NAMESPACED),
        conditions: "safe sysctl only when the kernel version is at least this",
        documented: "seed §2 (k8s 1.32+); pkg/kubelet/sysctl/safe_sysctls.go",
        check: Check::Sysctl,
    },
];

/// Settings that change the evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EvalOptions {
    /// `KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK` is set (non-empty).
    pub nftables_skip_kernel_check: bool,
}

impl EvalOptions {
    /// Reads the switches from the process environment.
    #[must_use]
    pub fn from_env() -> Self {
        Self {
            nftables_skip_kernel_check: std::env::var_os(NFTABLES_SKIP_ENV)
                .is_some_and(|v| !v.is_empty()),
        }
    }

    /// Sets [`nftables_skip_kernel_check`](Self::nftables_skip_kernel_check).
    #[must_use]
    pub fn with_nftables_skip_kernel_check(mut self, nftables_skip_kernel_check: bool) -> Self {
        self.nftables_skip_kernel_check = nftables_skip_kernel_check;
        self
    }
}

/// One evaluated row.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureResult {
    /// Feature name.
    pub name: &'static str,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The row it came from.
    #[serde(skip)]
    pub requirement: Requirement,
}

fn min(parts: &[u64]) -> KernelVersion {
    KernelVersion::from_parts(parts)
}

/// The plain version rule: at least `min_kernel`.
fn by_version(v: Option<&KernelVersion>, min_kernel: &[u64], what: &str) -> Verdict {
    let m = min(min_kernel);
    match v {
        Some(v) if v.at_least(&m) => {
            Verdict::yes(DecidedBy::Version, format!("kernel {v} >= {m}{what}"))
        }
        Some(v) => Verdict::no(DecidedBy::Version, format!("kernel {v} < {m}{what}")),
        None => Verdict::unknown(DecidedBy::Version, "the kernel version is unknown"),
    }
}

/// Evaluates one row.
#[must_use]
pub fn evaluate(req: &Requirement, facts: &NodeFacts, opts: EvalOptions) -> FeatureResult {
    let v = facts.kernel.version.as_ref();
    let cg = &facts.cgroup;
    let verdict = match req.check {
        Check::CgroupV2 => match cg.version {
            Some(CgroupVersion::V2) => Verdict::yes(
                DecidedBy::Probe,
                format!(
                    "unified hierarchy at {} ({})",
                    cg.mountpoint.as_deref().unwrap_or("?"),
                    cg.detected_by
                ),
            ),
            Some(CgroupVersion::V1) => Verdict::no(
                DecidedBy::Probe,
                match &cg.hybrid_unified_mount {
                    Some(u) => format!(
                        "cgroup v1 host in hybrid mode (cgroup2 only at {u}, without controllers) ({})",
                        cg.detected_by
                    ),
                    None => format!("cgroup v1 host ({})", cg.detected_by),
                },
            ),
            None => Verdict::unknown(
                DecidedBy::Probe,
                format!("no cgroup hierarchy found ({})", cg.problems.join("; ")),
            ),
        },
        Check::CgroupV2RootCpuStat => match cg.root_cpu_stat {
            Some(true) => Verdict::yes(DecidedBy::Probe, "the cgroup2 root has cpu.stat"),
            Some(false) => Verdict::no(
                DecidedBy::Probe,
                "the cgroup2 root has no cpu.stat: the kubelet warns CgroupV2KernelWarning",
            ),
            None => by_version(
                v,
                constants::CGROUP_V2_ROOT_CPU_STAT,
                " (no cgroup2 mount to look at)",
            ),
        },
        Check::CgroupV2Freezer => match cg.v2_freezer {
            Some(true) => Verdict::yes(DecidedBy::Probe, cg.v2_freezer_evidence.clone()),
            Some(false) => Verdict::no(DecidedBy::Probe, cg.v2_freezer_evidence.clone()),
            None => {
                let mut r = by_version(v, constants::CGROUP_V2_FREEZER, "");
                r.reason = format!("{} ({})", r.reason, cg.v2_freezer_evidence);
                r
            }
        },
        Check::Psi => facts.psi.verdict.clone(),
        Check::KubeletPsi => {
            let psi = &facts.psi.verdict;
            match (psi.available, cg.version) {
                (Some(false), _) => {
                    Verdict::no(psi.decided_by, format!("PSI unavailable: {}", psi.reason))
                }
                (_, Some(CgroupVersion::V1)) => Verdict::no(
                    DecidedBy::Probe,
                    "PSI metrics need cgroup v2 (per-cgroup *.pressure files)",
                ),
                (Some(true), Some(CgroupVersion::V2)) => Verdict::yes(
                    psi.decided_by,
                    format!("PSI available and cgroup v2: {}", psi.reason),
                ),
                _ => Verdict::unknown(
                    psi.decided_by,
                    format!(
                        "PSI {}; cgroup version {}",
                        psi.state(),
                        cg.version
                            .map_or("unknown".to_string(), |c| c.number().to_string())
                    ),
                ),
            }
        }
        Check::NftablesKubeProxy => nftables(facts, opts),
        Check::RecursiveReadOnlyMounts => match facts.live_probes.mount_setattr {
            Some(true) => Verdict::yes(
                DecidedBy::Probe,
                format!(
                    "{} (the CRI runtime must also support it)",
                    facts
                        .live_probes
                        .mount_setattr_detail
                        .as_deref()
                        .unwrap_or("")
                ),
            ),
            Some(false) => Verdict::no(
                DecidedBy::Probe,
                facts
                    .live_probes
                    .mount_setattr_detail
                    .clone()
                    .unwrap_or_default(),
            ),
            None => by_version(
                v,
                constants::RECURSIVE_READ_ONLY_MOUNTS,
                " (mount_setattr not probed: needs the live kernel)",
            ),
        },
        Check::UserNamespaces => user_namespaces(facts),
        Check::TmpfsNoswap => tmpfs_noswap(facts),
        Check::NodeSwap => node_swap(facts),
        Check::MemoryQos => match cg.version {
            Some(CgroupVersion::V1) => Verdict::no(DecidedBy::Probe, "memory.high needs cgroup v2"),
            _ => by_version(v, constants::MEMORY_QOS_MIN, ""),
        },
        Check::IpvsConnReuseMode => {
            let mut r = by_version(v, constants::IPVS_CONN_REUSE_MODE_MIN_SUPPORTED, "");
            if r.available == Some(true)
                && v.is_some_and(|v| !v.at_least(&min(constants::IPVS_CONN_REUSE_MODE_FIXED)))
            {
                r.reason
                    .push_str(" (older than 5.9: conn_reuse_mode=0 is used as a workaround)");
            }
            r
        }
        Check::Sysctl => match (v, req.min_kernel) {
            (None, _) => Verdict::no(
                DecidedBy::Version,
                "kernel version unknown: the kubelet allows only the legacy safe sysctls",
            ),
            (Some(_), Some(m)) => by_version(v, m, ": the kubelet decides by version"),
            (Some(_), None) => Verdict::yes(DecidedBy::Version, "always safe"),
        },
    };
    FeatureResult {
        name: req.name,
        verdict,
        requirement: *req,
    }
}

fn nftables(facts: &NodeFacts, opts: EvalOptions) -> Verdict {
    let v = facts.kernel.version.as_ref();
    let floor = if opts.nftables_skip_kernel_check {
        constants::NFTABLES_KUBE_PROXY_SKIP_FLOOR
    } else {
        constants::NFTABLES_KUBE_PROXY
    };
    // kube-proxy itself checks only the version number: a backport does not help here.
    match v {
        None => return Verdict::unknown(DecidedBy::Version, "the kernel version is unknown"),
        Some(k) if !k.at_least(&min(floor)) => {
            return Verdict::no(
                DecidedBy::Version,
                if opts.nftables_skip_kernel_check {
                    format!("kernel {k} < 5.4, below what the skip switch is documented for")
                } else {
                    format!(
                        "kube-proxy in nftables mode requires kernel 5.13 or later (kernel {k}; {NFTABLES_SKIP_ENV} allows 5.4+)"
                    )
                },
            );
        }
        Some(_) => {}
    }
    let nft = &facts.nft;
    if nft.kernel_support == Some(false) {
        return Verdict::no(
            DecidedBy::Config,
            format!(
                "no nf_tables in the kernel: {}",
                nft.kernel_support_evidence
            ),
        );
    }
    let nft_min = min(NFT_MIN_VERSION);
    match (&nft.version, nft.probed) {
        (Some(nv), _) if nv.at_least(&nft_min) => Verdict::yes(
            DecidedBy::Probe,
            format!(
                "kernel ok, {}, nf_tables: {}",
                nft.detail, nft.kernel_support_evidence
            ),
        ),
        (Some(nv), _) => Verdict::no(
            DecidedBy::Probe,
            format!("nft {nv} < 1.0.1 ({})", nft.detail),
        ),
        (None, true) => Verdict::no(DecidedBy::Probe, nft.detail.clone()),
        (None, false) => Verdict::unknown(
            DecidedBy::Version,
            format!("kernel is new enough; {}", nft.detail),
        ),
    }
}

fn user_namespaces(facts: &NodeFacts) -> Verdict {
    let u = &facts.user_namespaces;
    if u.max_user_namespaces == Some(0) {
        return Verdict::no(DecidedBy::Probe, "/proc/sys/user/max_user_namespaces is 0");
    }
    if let Some(c) = u.config_user_ns.filter(|c| !c.is_enabled()) {
        return Verdict::no(
            DecidedBy::Config,
            format!("CONFIG_USER_NS is {}", c.describe()),
        );
    }
    let mut r = by_version(
        facts.kernel.version.as_ref(),
        constants::USER_NAMESPACES_IDMAP_TMPFS,
        " (idmapped tmpfs mounts); the CRI runtime's UserNamespaces feature is authoritative",
    );
    if let Some(n) = u.max_user_namespaces {
        r.reason.push_str(&format!("; max_user_namespaces={n}"));
    }
    r
}

fn tmpfs_noswap(facts: &NodeFacts) -> Verdict {
    let live = &facts.live_probes;
    if live.in_user_namespace == Some(true) {
        return Verdict::no(
            DecidedBy::Probe,
            "running inside a user namespace: the kubelet never uses noswap there",
        );
    }
    let v = facts.kernel.version.as_ref();
    if v.is_some_and(|v| v.at_least(&min(constants::TMPFS_NOSWAP))) {
        return by_version(
            v,
            constants::TMPFS_NOSWAP,
            " (the kubelet trusts the version from 6.4)",
        );
    }
    match live.tmpfs_noswap {
        Some(true) => Verdict::yes(
            DecidedBy::Probe,
            format!(
                "{} although the kernel is older than 6.4",
                live.tmpfs_noswap_detail.as_deref().unwrap_or("")
            ),
        ),
        Some(false) => Verdict::no(
            DecidedBy::Probe,
            live.tmpfs_noswap_detail.clone().unwrap_or_default(),
        ),
        None => {
            let why = live
                .tmpfs_noswap_detail
                .clone()
                .unwrap_or_else(|| live.note.clone());
            match v {
                Some(v) => Verdict::unknown(
                    DecidedBy::Version,
                    format!("kernel {v} < 6.4: only a test mount can tell ({why})"),
                ),
                None => Verdict::unknown(
                    DecidedBy::Version,
                    format!("the kernel version is unknown ({why})"),
                ),
            }
        }
    }
}

fn node_swap(facts: &NodeFacts) -> Verdict {
    let swap = match &facts.swap {
        Ok(s) => s,
        Err(e) => return Verdict::unknown(DecidedBy::Probe, format!("swap not readable: {e}")),
    };
    if !swap.enabled {
        return Verdict::no(
            DecidedBy::Probe,
            "no swap is provisioned (/proc/swaps is empty)",
        );
    }
    match facts.cgroup.version {
        Some(CgroupVersion::V1) => Verdict::no(
            DecidedBy::Probe,
            "swap is on but Kubernetes does not support swap on cgroup v1 nodes",
        ),
        None => Verdict::unknown(
            DecidedBy::Probe,
            "swap is on but the cgroup version is unknown",
        ),
        Some(CgroupVersion::V2) => match facts.cgroup.swap_controller {
            Some(false) => Verdict::no(
                DecidedBy::Probe,
                "swap is on but no cgroup has memory.swap.max (no swap controller)",
            ),
            _ => Verdict::yes(
                DecidedBy::Probe,
                format!(
                    "{} bytes of swap on cgroup v2; set failSwapOn: false and swapBehavior: LimitedSwap",
                    swap.total_bytes
                ),
            ),
        },
    }
}

/// Evaluates the whole table.
#[must_use]
pub fn evaluate_all(facts: &NodeFacts, opts: EvalOptions) -> Vec<FeatureResult> {
    REQUIREMENTS
        .iter()
        .map(|r| evaluate(r, facts, opts))
        .collect()
}
