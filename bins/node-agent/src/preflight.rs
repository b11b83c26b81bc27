//! The hard node requirements checked before anything is touched: swap with `failSwapOn`, and
//! a cgroup v1 host with `failCgroupV1`. Other kernel findings are advisory (`nodectl
//! preflight` reports them) and, as with the kubelet, never stop the agent.

use node_config::KubeletConfiguration;
use node_kernel::{CgroupVersion, HostRoot, check_fail_swap_on, probe_cgroups, probe_swap};

use crate::error::AgentError;

/// The kubelet's refusal to start on a cgroup v1 host.
pub const CGROUP_V1_REFUSED: &str = "kubelet is configured to not run on a host using cgroup v1. cgroup v1 support is unsupported and will be removed in a future release";

/// Checks the hard requirements on `root` (the live `/` in the agent).
pub fn check(root: &HostRoot, cfg: &KubeletConfiguration) -> Result<(), AgentError> {
    let fail_swap_on = cfg.fail_swap_on.unwrap_or(true);
    let swap = probe_swap(root).map_err(|e| AgentError::Preflight(e.to_string()))?;
    check_fail_swap_on(&swap, fail_swap_on).map_err(|e| {
        AgentError::Preflight(format!(
            "{e}. /proc/swaps contained: {:?}",
            swap.devices.iter().map(|d| &d.filename).collect::<Vec<_>>()
        ))
    })?;
    if swap.enabled {
        tracing::warn!(
            devices = ?swap.devices.iter().map(|d| &d.filename).collect::<Vec<_>>(),
            "swap is on and failSwapOn is false: pods get no swap (swapBehavior NoSwap)"
        );
    }
    let cgroups = probe_cgroups(root);
    if cgroups.version == Some(CgroupVersion::V1) {
        if cfg.fail_cgroup_v1.unwrap_or(true) {
            return Err(AgentError::Preflight(format!(
                "{CGROUP_V1_REFUSED} (set failCgroupV1: false in the configuration to run anyway; detected by {})",
                cgroups.detected_by
            )));
        }
        tracing::warn!("cgroup v1 host: cgroup v1 support is in maintenance mode");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = check(&root, &KubeletConfiguration::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("running with swap on is not supported, please disable swap or set --fail-swap-on flag to false"),
            "{err}"
        );
        assert!(err.contains("/swap.img"), "{err}");
        let cfg = KubeletConfiguration {
            fail_swap_on: Some(false),
            ..Default::default()
        };
        check(&root, &cfg).unwrap();
    }

    #[test]
    fn cgroup_v1_is_fatal_only_with_fail_cgroup_v1() {
        let (_d, root) = fixture(HEADER, V1);
        let err = check(&root, &KubeletConfiguration::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(CGROUP_V1_REFUSED), "{err}");
        let cfg = KubeletConfiguration {
            fail_cgroup_v1: Some(false),
            ..Default::default()
        };
        check(&root, &cfg).unwrap();
        let (_d2, v2) = fixture(HEADER, V2);
        check(&v2, &KubeletConfiguration::default()).unwrap();
    }
}
