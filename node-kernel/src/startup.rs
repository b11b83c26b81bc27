//! The hard node requirements a kubelet checks before anything is touched: swap with
//! `failSwapOn`, and a cgroup v1 host with `failCgroupV1`; and the node's swap policy for the
//! pods, decided once (`cmd/kubelet/app/server.go`). Other kernel findings are advisory
//! ([`crate::Report`], `nodectl preflight`) and, as with the kubelet, never stop an agent.
//!
//! ```no_run
//! use node_kernel::{HostRoot, StartupRequirements, check_startup};
//! let requirements = StartupRequirements::default()
//!     .with_fail_swap_on(false)
//!     .with_swap_behavior("LimitedSwap");
//! let swap_policy = check_startup(&HostRoot::live(), &requirements)?;
//! # Ok::<(), node_kernel::Error>(())
//! ```

use crate::cgroup::{CgroupVersion, probe_cgroups};
use crate::error::{Error, Result};
use crate::root::HostRoot;
use crate::swap::{check_fail_swap_on, probe_swap};
use crate::swap_limit::{SwapBehavior, SwapPolicy, probe_swap_controller};

/// The settings the startup check reads (from `KubeletConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StartupRequirements {
    /// `failSwapOn` (default true).
    pub fail_swap_on: bool,
    /// `failCgroupV1` (default true in 1.35).
    pub fail_cgroup_v1: bool,
    /// `memorySwap.swapBehavior` (`""`, `NoSwap` or `LimitedSwap`).
    pub swap_behavior: String,
}

impl Default for StartupRequirements {
    /// The 1.35 defaults.
    fn default() -> Self {
        Self {
            fail_swap_on: true,
            fail_cgroup_v1: true,
            swap_behavior: String::new(),
        }
    }
}

impl StartupRequirements {
    /// Sets [`fail_swap_on`](Self::fail_swap_on).
    #[must_use]
    pub fn with_fail_swap_on(mut self, fail_swap_on: bool) -> Self {
        self.fail_swap_on = fail_swap_on;
        self
    }

    /// Sets [`fail_cgroup_v1`](Self::fail_cgroup_v1).
    #[must_use]
    pub fn with_fail_cgroup_v1(mut self, fail_cgroup_v1: bool) -> Self {
        self.fail_cgroup_v1 = fail_cgroup_v1;
        self
    }

    /// Sets [`swap_behavior`](Self::swap_behavior).
    #[must_use]
    pub fn with_swap_behavior(mut self, swap_behavior: impl Into<String>) -> Self {
        self.swap_behavior = swap_behavior.into();
        self
    }
}

/// The kubelet's refusal to start on a cgroup v1 host.
pub const CGROUP_V1_REFUSED: &str = "kubelet is configured to not run on a host using cgroup v1. cgroup v1 support is unsupported and will be removed in a future release";

/// Checks the hard requirements on `root` (the live `/` in an agent) and returns the node's
/// swap policy for the pods: `memorySwap.swapBehavior`, the cgroup mode, whether there is a
/// swap controller (the kubelet's `swapControllerAvailable()`, decided once), node memory and
/// swap. The log says what containers will get.
///
/// # Errors
/// [`Error::Requirement`] with the kubelet's message when a requirement fails (swap on with
/// `failSwapOn`, cgroup v1 with `failCgroupV1`, LimitedSwap on cgroup v1, an unknown swap
/// behavior, unreadable swap facts).
pub fn check_startup(root: &HostRoot, req: &StartupRequirements) -> Result<SwapPolicy> {
    let refused = |message: String| Error::Requirement { message };
    let fail_swap_on = req.fail_swap_on;
    let swap = probe_swap(root).map_err(|e| refused(e.to_string()))?;
    check_fail_swap_on(&swap, fail_swap_on).map_err(|e| {
        refused(format!(
            "{e}. /proc/swaps contained: {:?}",
            swap.devices.iter().map(|d| &d.filename).collect::<Vec<_>>()
        ))
    })?;
    let cgroups = probe_cgroups(root);
    if cgroups.version == Some(CgroupVersion::V1) {
        if req.fail_cgroup_v1 {
            return Err(refused(format!(
                "{CGROUP_V1_REFUSED} (set failCgroupV1: false in the configuration to run anyway; detected by {})",
                cgroups.detected_by
            )));
        }
        tracing::warn!("cgroup v1 host: cgroup v1 support is in maintenance mode");
    }
    // The kubelet's isCgroup2UnifiedMode: anything but a cgroup2 /sys/fs/cgroup is v1.
    let version = cgroups.version.unwrap_or(CgroupVersion::V1);
    let behavior = SwapBehavior::parse(&req.swap_behavior).map_err(|e| refused(e.to_string()))?;
    let controller = probe_swap_controller(root, version);
    // cmd/kubelet/app/server.go refuses LimitedSwap on cgroup v1 before anything starts.
    let policy = SwapPolicy::new(
        behavior,
        version,
        controller.available,
        swap.mem_total_bytes.unwrap_or(0),
        swap.total_bytes,
    )
    .map_err(|e| refused(e.to_string()))?;
    if !fail_swap_on && req.swap_behavior.is_empty() {
        // The kubelet's own line for this case (server.go).
        tracing::info!(
            memory_swap_behavior = "",
            fail_swap_on,
            "NoSwap is set due to memorySwapBehavior not specified"
        );
    }
    let applied = swap_summary(&policy);
    let devices: Vec<&String> = swap.devices.iter().map(|d| &d.filename).collect();
    if swap.enabled && !controller.available {
        tracing::warn!(
            swap_behavior = ?behavior,
            cgroup = version.number(),
            swap_controller = %controller.evidence,
            ?devices,
            node_swap_bytes = swap.total_bytes,
            "swap is on but there is no swap cgroup controller: {applied}"
        );
    } else {
        tracing::info!(
            swap_behavior = ?behavior,
            cgroup = version.number(),
            swap_controller = %controller.evidence,
            ?devices,
            node_swap_bytes = swap.total_bytes,
            node_memory_bytes = swap.mem_total_bytes.unwrap_or(0),
            "swap: {applied}"
        );
    }
    Ok(policy)
}

/// What every container will get, in words, for the startup log.
pub fn swap_summary(policy: &SwapPolicy) -> &'static str {
    let f = policy.facts();
    match (f.swap_controller, f.cgroup, f.behavior) {
        (false, _, _) => {
            "No swap cgroup controller present: nothing swap-related is set on containers (the runtime's defaults apply)"
        }
        (true, CgroupVersion::V1, _) => {
            "NoSwap: each container's memory+swap limit (MemorySwapLimitInBytes) is set to its memory limit, so it gets no swap beyond it"
        }
        (true, CgroupVersion::V2, SwapBehavior::NoSwap) => {
            "NoSwap: each container gets memory.swap.max=0"
        }
        (true, CgroupVersion::V2, SwapBehavior::LimitedSwap) => {
            "LimitedSwap for containers of non-critical Burstable pods; every pod this agent runs is a static pod, which the kubelet counts as critical, so each container gets memory.swap.max=0"
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn check(root: &HostRoot, req: &StartupRequirements) -> Result<SwapPolicy> {
        check_startup(root, req)
    }

    fn fixture(swaps: &str, mounts: &str) -> (tempfile::TempDir, HostRoot) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/swaps"), swaps).unwrap();
        std::fs::write(dir.path().join("proc/mounts"), mounts).unwrap();
        std::fs::write(dir.path().join("proc/meminfo"), "MemTotal: 1000 kB\n").unwrap();
        let root = HostRoot::new(dir.path());
        (dir, root)
    }

    const HEADER: &str = "Filename\tType\tSize\tUsed\tPriority\n";
    const V2: &str = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
    const V1: &str =
        "tmpfs /sys/fs/cgroup tmpfs ro 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n";

    #[test]
    fn swap_on_is_fatal_only_with_fail_swap_on() {
        let (_d, root) = fixture(&format!("{HEADER}/swap.img file 1024 0 -2\n"), V2);
        let err = check(&root, &StartupRequirements::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("running with swap on is not supported, please disable swap or set --fail-swap-on flag to false"),
            "{err}"
        );
        assert!(err.contains("/swap.img"), "{err}");
        let cfg = StartupRequirements {
            fail_swap_on: false,
            ..Default::default()
        };
        check(&root, &cfg).unwrap();
    }

    #[test]
    fn cgroup_v1_is_fatal_only_with_fail_cgroup_v1() {
        let (_d, root) = fixture(HEADER, V1);
        let err = check(&root, &StartupRequirements::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(CGROUP_V1_REFUSED), "{err}");
        let cfg = StartupRequirements {
            fail_cgroup_v1: false,
            ..Default::default()
        };
        check(&root, &cfg).unwrap();
        let (_d2, v2) = fixture(HEADER, V2);
        check(&v2, &StartupRequirements::default()).unwrap();
    }

    #[test]
    fn swap_policy_follows_the_node() {
        use crate::SwapSetting;
        let v1_no_swap = StartupRequirements {
            fail_cgroup_v1: false,
            ..Default::default()
        };
        // v1 without swap accounting: no controller, nothing is written.
        let (d, root) = fixture(HEADER, V1);
        let policy = check(&root, &v1_no_swap).unwrap();
        let f = *policy.facts();
        assert_eq!((f.cgroup, f.swap_controller), (CgroupVersion::V1, false));
        assert!(swap_summary(&policy).starts_with("No swap cgroup controller present"));
        // v1 with memsw: NoSwap writes MemorySwapLimitInBytes.
        std::fs::create_dir_all(d.path().join("sys/fs/cgroup/memory")).unwrap();
        std::fs::write(
            d.path()
                .join("sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
            "",
        )
        .unwrap();
        let policy = check(&root, &v1_no_swap).unwrap();
        assert!(policy.facts().swap_controller);
        assert_eq!(policy.facts().memory_capacity_bytes, 1000 * 1024);
        let pod = crate::PodSwapInput {
            containers: vec![crate::ContainerResources {
                memory_limit: Some(4096),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            policy.container(&pod, 0).unwrap().setting,
            SwapSetting::MemorySwapLimitInBytes(4096)
        );
        // LimitedSwap on cgroup v1 is refused at startup with the kubelet's message.
        let mut limited = v1_no_swap;
        limited.swap_behavior = "LimitedSwap".to_string();
        let err = check(&root, &limited).unwrap_err().to_string();
        assert!(
            err.contains(
                "swap feature is enabled and LimitedSwap but it is only supported with cgroupv2"
            ),
            "{err}"
        );
        // cgroup v2: the agent's own cgroup decides; LimitedSwap is accepted.
        let (d2, v2) = fixture(HEADER, V2);
        std::fs::write(
            d2.path().join("proc/meminfo"),
            "MemTotal: 1000 kB\nSwapTotal: 500 kB\n",
        )
        .unwrap();
        std::fs::create_dir_all(d2.path().join("proc/self")).unwrap();
        std::fs::write(d2.path().join("proc/self/cgroup"), "0::/agent\n").unwrap();
        std::fs::create_dir_all(d2.path().join("sys/fs/cgroup/agent")).unwrap();
        std::fs::write(
            d2.path().join("sys/fs/cgroup/agent/memory.swap.max"),
            "max\n",
        )
        .unwrap();
        let cfg = StartupRequirements {
            swap_behavior: "LimitedSwap".to_string(),
            ..Default::default()
        };
        let policy = check(&v2, &cfg).unwrap();
        let f = *policy.facts();
        assert_eq!(
            (f.cgroup, f.swap_controller, f.swap_capacity_bytes),
            (CgroupVersion::V2, true, 500 * 1024)
        );
        assert!(swap_summary(&policy).contains("static pod"));
    }
}
