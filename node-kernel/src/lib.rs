//! Node facts and kernel requirement gating for a kubelet-compatible node agent.
//!
//! `node-kernel` answers "will this node run feature X, and if not, why?" the way the kubelet,
//! kube-proxy and `kubernetes/system-validators` would, but without trusting the version number
//! more than it deserves:
//!
//! * [`KernelVersion`] parses a kernel release like the kubelet (`4.18.0-513.el8.x86_64` is
//!   4.18.0, `5.15.153.1-microsoft-standard-WSL2` is 5.15.153.1) and compares numerically.
//! * [`probe`] reads a [`HostRoot`] (`/`, or a fixture tree in tests): kernel release, cgroup
//!   version and controllers, PSI (`/proc/pressure`, `CONFIG_PSI`, `psi=` on the command line),
//!   swap, user-namespace limits, nftables; on the live root only, also a `mount_setattr(2)`
//!   probe, a tmpfs `noswap` test mount and a temporary cgroup.
//! * [`REQUIREMENTS`] is the requirement table as data; [`evaluate_all`] turns facts into
//!   available / unavailable / unknown with a reason and what decided it ([`DecidedBy`]): a
//!   capability probe beats the kernel config, which beats the version number.
//! * [`SysctlPolicy`] admits or rejects a pod's sysctls like the kubelet; [`SwapPolicy`] computes
//!   NoSwap/LimitedSwap per container, down to the `memory.swap.max` value.
//! * [`preflight`] builds a [`Report`] with the system-validators lines and the feature table.
//!
//! ```
//! use node_kernel::{KernelVersion, SwapBehavior, SwapPolicy, CgroupVersion};
//!
//! // Distro suffixes are ignored; a RHEL 8 kernel is 4.18.0, older than PSI's 4.20.
//! let rhel = KernelVersion::parse("4.18.0-513.el8.x86_64")?;
//! assert_eq!(rhel.to_string(), "4.18.0");
//! assert!(!rhel.at_least(&KernelVersion::parse("4.20")?));
//!
//! // LimitedSwap: 2 GiB request on 16 GiB RAM with 8 GiB swap may use 1 GiB of swap.
//! const GI: u64 = 1 << 30;
//! assert_eq!(SwapPolicy::limited_swap_bytes(2 * GI, 16 * GI, 8 * GI)?, GI);
//! // ...and LimitedSwap is refused on cgroup v1, as the kubelet refuses to start with it.
//! assert!(SwapPolicy::new(SwapBehavior::LimitedSwap, CgroupVersion::V1, true, 16 * GI, 8 * GI).is_err());
//! # Ok::<(), node_kernel::Error>(())
//! ```
#![deny(missing_docs)]

mod cgroup;
mod cmdline;
mod error;
mod facts;
mod kconfig;
pub mod live;
mod nft;
mod preflight;
mod process;
mod psi;
mod requirements;
mod root;
mod startup;
mod swap;
mod swap_limit;
mod sysctl;
pub mod validators;
mod verdict;
mod version;

pub use cgroup::{
    CGROUP_ROOT, CgroupFacts, CgroupVersion, MountEntry, parse_mounts, probe_cgroups,
    version_from_mounts,
};
pub use cmdline::KernelCmdline;
pub use error::{Error, Result};
pub use facts::{KernelFacts, LiveFacts, NodeFacts, ProbeOptions, UserNamespaceFacts, probe};
pub use kconfig::{
    ConfigLookup, ConfigValue, KernelConfig, MAX_KERNEL_CONFIG_BYTES, config_search_paths,
    find_kernel_config, gunzip_text,
};
pub use nft::{NftFacts, parse_nft_version, probe_nft};
pub use preflight::{
    CgroupSection, FeatureRow, KernelConfigSection, KernelSection, PreflightOptions, PsiSection,
    Report, SwapSection, preflight,
};
pub use process::ProcessCollector;
pub use psi::{PRESSURE_FILES, PressureProbe, PsiFacts, assess_psi, probe_pressure};
pub use requirements::{
    Check, EvalOptions, FeatureResult, NFT_MIN_VERSION, NFTABLES_SKIP_ENV, REQUIREMENTS,
    Requirement, evaluate, evaluate_all,
};
pub use root::HostRoot;
pub use startup::{CGROUP_V1_REFUSED, StartupRequirements, check_startup, swap_summary};
pub use swap::{
    SwapDevice, SwapFacts, check_fail_swap_on, meminfo_bytes, parse_proc_swaps, probe_swap,
};
pub use swap_limit::{
    ContainerResources, ContainerSwap, ContainerSwapInput, PodSwapInput, QosClass,
    SYSTEM_CRITICAL_PRIORITY, SwapBehavior, SwapControllerProbe, SwapNodeFacts, SwapPolicy,
    SwapSetting, V1_MEMSW_LIMIT_FILE, decide_container_swap, probe_swap_controller,
};
pub use sysctl::{
    FORBIDDEN_REASON, SAFE_SYSCTLS, SYSCTL_MAX_LENGTH, SafeSysctl, SysctlClass, SysctlNamespace,
    SysctlPolicy, SysctlRejection, is_valid_sysctl_pattern, namespace_of, normalize_name,
    safe_sysctls_for,
};
pub use verdict::{DecidedBy, Verdict};
pub use version::{KernelVersion, constants};
