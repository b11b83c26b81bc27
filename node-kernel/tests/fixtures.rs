//! Preflight against fixture trees laid out like `/` on real hosts: each test asserts on the
//! report (versions, verdicts and what decided them, validator lines, errors and warnings).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use node_kernel::{
    CgroupVersion, ContainerResources, DecidedBy, EvalOptions, HostRoot, PodSwapInput,
    PreflightOptions, ProbeOptions, Report, SwapBehavior, SwapPolicy, SwapSetting, preflight,
    probe, validators::Status,
};

fn fixture(name: &str) -> HostRoot {
    let root = HostRoot::new(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    );
    assert!(
        !root.is_live(),
        "a fixture must never count as the live system"
    );
    root
}

fn report(name: &str) -> Report {
    preflight(&fixture(name), PreflightOptions::default())
}

fn feature<'a>(r: &'a Report, name: &str) -> (Option<bool>, DecidedBy, &'a str) {
    let f = r
        .feature(name)
        .unwrap_or_else(|| panic!("no feature {name}"));
    (f.available, f.decided_by, f.reason.as_str())
}

fn check<'a>(r: &'a Report, key: &str) -> (&'a str, Status) {
    let c = r
        .check(key)
        .unwrap_or_else(|| panic!("no check line {key}"));
    (c.value.as_str(), c.status)
}

#[test]
fn cgroup_v1_host() {
    let r = report("cgroup-v1-host");
    assert_eq!(r.kernel.release.as_deref(), Some("5.4.0-182-generic"));
    assert_eq!(r.kernel.version.as_deref(), Some("5.4.0"));
    assert!(r.kernel.supported, "5.4 is on the validators' LTS list");
    assert_eq!(r.cgroup.version, Some(1));
    assert_eq!(r.cgroup.detected_by, "/proc/mounts");
    // /proc/cgroups: rdma has enabled=0 and is not listed.
    assert_eq!(
        r.cgroup.controllers,
        [
            "blkio",
            "cpu",
            "cpuacct",
            "cpuset",
            "devices",
            "freezer",
            "hugetlb",
            "memory",
            "net_cls",
            "net_prio",
            "perf_event",
            "pids"
        ]
    );
    assert_eq!(r.cgroup.hybrid_unified_mount, None);
    assert_eq!(r.cgroup.freezer, Some(true));
    // The v1 config list is checked, not the v2 one.
    assert_eq!(
        check(&r, "CONFIG_CGROUP_FREEZER"),
        ("enabled", Status::Good)
    );
    assert!(r.check("CONFIG_CGROUP_BPF").is_none());
    assert_eq!(
        check(&r, "CONFIG_NETFILTER_XT_TARGET_REDIRECT"),
        ("enabled (as module)", Status::Good)
    );
    assert_eq!(
        check(&r, "CONFIG_AUFS_FS"),
        ("not set - Required for aufs.", Status::Warn)
    );
    assert_eq!(check(&r, "CGROUPS_CPUACCT"), ("enabled", Status::Good));
    assert_eq!(check(&r, "CGROUPS_BLKIO"), ("enabled", Status::Good));
    // cgroup v1 fails preflight for kubelet 1.35 unless failCgroupV1 is false.
    assert!(!r.passed);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(
        r.errors[0].starts_with("cgroups v1 support is deprecated"),
        "{}",
        r.errors[0]
    );
    assert_eq!(feature(&r, "cgroup-v2").0, Some(false));
    assert_eq!(feature(&r, "cgroup-v2").1, DecidedBy::Probe);
    assert_eq!(
        feature(&r, "memory-qos"),
        (Some(false), DecidedBy::Probe, "memory.high needs cgroup v2")
    );
    assert_eq!(feature(&r, "kubelet-psi-metrics").0, Some(false));
    assert_eq!(feature(&r, "psi").0, Some(true), "PSI itself works on v1");
    // kube-proxy nftables: 5.4 < 5.13 by version; the skip switch lowers the floor to 5.4,
    // after which only nft (not run on a fixture) is left unknown.
    let (avail, by, reason) = feature(&r, "nftables-kube-proxy");
    assert_eq!((avail, by), (Some(false), DecidedBy::Version));
    assert!(
        reason.starts_with("kube-proxy in nftables mode requires kernel 5.13 or later"),
        "{reason}"
    );
    let skip = preflight(
        &fixture("cgroup-v1-host"),
        PreflightOptions::default()
            .with_eval(EvalOptions::default().with_nftables_skip_kernel_check(true))
            .with_fail_cgroup_v1(false),
    );
    assert_eq!(feature(&skip, "nftables-kube-proxy").0, None);
    assert!(skip.passed, "{:?}", skip.errors);
    assert!(
        skip.warnings.iter().any(|w| w.contains("maintenance mode")),
        "{:?}",
        skip.warnings
    );
    // Fixture trees never run live probes, and say so.
    assert!(
        r.live_probes.note.starts_with("not run:"),
        "{}",
        r.live_probes.note
    );
    assert_eq!(r.live_probes.mount_setattr, None);
    // v1 swap controller: memory.memsw.limit_in_bytes.
    let facts = probe(&fixture("cgroup-v1-host"), ProbeOptions::default());
    assert_eq!(facts.cgroup.swap_controller, Some(true));
}

#[test]
fn cgroup_v2_host() {
    let r = report("cgroup-v2-host");
    assert_eq!(r.kernel.version.as_deref(), Some("6.1.0"));
    assert_eq!(r.cgroup.version, Some(2));
    assert_eq!(r.cgroup.mountpoint.as_deref(), Some("/sys/fs/cgroup"));
    // cgroup.controllers plus the implicit devices and the probed freezer.
    assert_eq!(
        r.cgroup.controllers,
        [
            "cpu", "cpuset", "devices", "freezer", "hugetlb", "io", "memory", "misc", "pids",
            "rdma"
        ]
    );
    assert_eq!(r.cgroup.root_cpu_stat, Some(true));
    assert_eq!(check(&r, "CONFIG_CGROUP_BPF"), ("enabled", Status::Good));
    assert!(
        r.check("CONFIG_CGROUP_DEVICE").is_none(),
        "v1-only item on a v2 host"
    );
    assert_eq!(check(&r, "CGROUPS_IO"), ("enabled", Status::Good));
    assert_eq!(check(&r, "CGROUP_VERSION"), ("v2", Status::Good));
    assert_eq!(check(&r, "OS"), ("Linux", Status::Good));
    assert_eq!(check(&r, "SWAP"), ("off", Status::Good));
    assert!(r.passed, "{:?}", r.errors);
    assert!(r.bad_checks().is_empty());
    assert_eq!(r.warnings, Vec::<String>::new());
    for name in [
        "cgroup-v2",
        "cgroup-v2-root-cpu-stat",
        "cgroup-v2-freezer",
        "psi",
        "kubelet-psi-metrics",
    ] {
        let (avail, by, reason) = feature(&r, name);
        assert_eq!(
            (avail, by),
            (Some(true), DecidedBy::Probe),
            "{name}: {reason}"
        );
    }
    assert_eq!(feature(&r, "memory-qos").0, Some(true));
    assert_eq!(feature(&r, "node-swap").0, Some(false));
    // nftables: the kernel is fine and nf_tables is there, but nft can only run on the live root.
    let (avail, by, reason) = feature(&r, "nftables-kube-proxy");
    assert_eq!((avail, by), (None, DecidedBy::Version));
    assert!(reason.contains("fixture tree"), "{reason}");
}

#[test]
fn rhel8_with_psi_backported() {
    let r = report("rhel8-psi-backport");
    assert_eq!(r.kernel.release.as_deref(), Some("4.18.0-513.el8.x86_64"));
    assert_eq!(r.kernel.version.as_deref(), Some("4.18.0"));
    // The version says no PSI (4.18 < 4.20); the probe says yes, and the probe wins.
    assert!(r.psi.available);
    assert_eq!(r.psi.decided_by, DecidedBy::Probe);
    assert!(r.psi.reason.contains("backported"), "{}", r.psi.reason);
    assert!(r.psi.reason.contains("psi=1"), "{}", r.psi.reason);
    assert_eq!(feature(&r, "kubelet-psi-metrics").0, Some(true));
    // Likewise the cgroup v2 freezer (5.2) is found by its file, not denied by the version.
    assert_eq!(feature(&r, "cgroup-v2-freezer").0, Some(true));
    assert_eq!(feature(&r, "cgroup-v2-freezer").1, DecidedBy::Probe);
    // No root cpu.stat: the kubelet's CgroupV2KernelWarning.
    assert_eq!(feature(&r, "cgroup-v2-root-cpu-stat").0, Some(false));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("doesn't support root `cpu.stat`")),
        "{:?}",
        r.warnings
    );
    // kube-proxy checks only the number, so nftables mode is refused despite backports.
    assert_eq!(feature(&r, "nftables-kube-proxy").1, DecidedBy::Version);
    assert_eq!(feature(&r, "nftables-kube-proxy").0, Some(false));
    // The release is not on the validators' list: a warning, not an error.
    assert!(!r.kernel.supported);
    assert_eq!(
        check(&r, "KERNEL_VERSION"),
        ("4.18.0-513.el8.x86_64", Status::Warn)
    );
    assert!(
        r.warnings.iter().any(|w| w.starts_with(
            "kernel release 4.18.0-513.el8.x86_64 is unsupported. Supported LTS versions"
        )),
        "{:?}",
        r.warnings
    );
    assert!(r.passed, "{:?}", r.errors);
}

#[test]
fn new_kernel_booted_with_psi_0() {
    let r = report("psi-disabled-at-boot");
    assert_eq!(r.kernel.version.as_deref(), Some("6.8.0"));
    assert_eq!(
        r.kernel_config.source.as_deref(),
        Some("/boot/config-6.8.0-45-generic")
    );
    // CONFIG_PSI=y and 6.8 >= 4.20, but the kernel was booted with psi=0: no PSI.
    assert!(!r.psi.available);
    assert_eq!(r.psi.state, "unavailable");
    assert_eq!(r.psi.decided_by, DecidedBy::Probe);
    assert_eq!(
        r.psi.reason,
        "/proc/pressure is missing: the kernel was booted with psi=0"
    );
    assert_eq!(feature(&r, "kubelet-psi-metrics").0, Some(false));
    assert_eq!(check(&r, "PSI").1, Status::Warn);
    assert!(r.passed, "PSI is not required: {:?}", r.errors);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["psi"]["available"], false);
    assert_eq!(
        json["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "psi")
            .unwrap()["decidedBy"],
        "probe"
    );
}

#[test]
fn wsl2_kernel() {
    let r = report("wsl2");
    assert_eq!(
        r.kernel.release.as_deref(),
        Some("5.15.153.1-microsoft-standard-WSL2")
    );
    assert_eq!(r.kernel.version.as_deref(), Some("5.15.153.1"));
    assert!(r.kernel.supported, "5.15 matches the validators' list");
    assert_eq!(
        check(&r, "KERNEL_VERSION"),
        ("5.15.153.1-microsoft-standard-WSL2", Status::Good)
    );
    // The config comes from /proc/config.gz.
    assert_eq!(r.kernel_config.source.as_deref(), Some("/proc/config.gz"));
    assert_eq!(
        check(&r, "CONFIG_CGROUP_HUGETLB"),
        ("disabled - Required for hugetlb cgroup.", Status::Warn)
    );
    assert_eq!(
        check(&r, "CONFIG_BLK_DEV_DM"),
        ("disabled - Required for devicemapper.", Status::Warn)
    );
    // Hybrid cgroups: v1 with an empty unified mount.
    assert_eq!(r.cgroup.version, Some(1));
    assert_eq!(
        r.cgroup.hybrid_unified_mount.as_deref(),
        Some("/sys/fs/cgroup/unified")
    );
    assert!(
        !r.cgroup.controllers.contains(&"rdma".to_string())
            || r.cgroup.controllers.contains(&"misc".to_string())
    );
    assert_eq!(check(&r, "CGROUPS_HUGETLB"), ("enabled", Status::Good));
    assert!(
        feature(&r, "cgroup-v2").2.contains("hybrid"),
        "{}",
        feature(&r, "cgroup-v2").2
    );
    assert_eq!(
        feature(&r, "cgroup-v2-root-cpu-stat"),
        (
            Some(true),
            DecidedBy::Probe,
            "the cgroup2 root has cpu.stat"
        )
    );
    // WSL2 turns swap on by default: failSwapOn and cgroup v1 both fail.
    assert!(r.swap.enabled);
    assert_eq!(r.swap.total_bytes, 4_194_304 * 1024);
    assert_eq!(r.swap.devices[0].filename, "/dev/sdb");
    assert!(!r.passed);
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    assert!(
        r.errors
            .iter()
            .any(|e| e.starts_with("failed to run Kubelet: running with swap on is not supported"))
    );
    assert_eq!(feature(&r, "node-swap").0, Some(false));
    assert!(feature(&r, "node-swap").2.contains("cgroup v1"));
    // The mount list with a drvfs path (escaped backslash) parses.
    let facts = probe(&fixture("wsl2"), ProbeOptions::default());
    assert_eq!(facts.cgroup.version, Some(CgroupVersion::V1));
}

#[test]
fn host_without_readable_kernel_config() {
    let r = report("no-kernel-config");
    assert_eq!(r.kernel.version.as_deref(), Some("5.15.0"));
    assert_eq!(r.kernel_config.source, None);
    let reason = r.kernel_config.reason.as_deref().unwrap();
    assert!(
        reason.starts_with(
            "no config path in [\"/proc/config.gz\", \"/boot/config-5.15.0-1051-azure\""
        ),
        "{reason}"
    );
    // No CONFIG_ lines, one warning line, and preflight still passes.
    assert!(r.checks.iter().all(|c| !c.key.starts_with("CONFIG_")));
    assert_eq!(check(&r, "KERNEL_CONFIG").1, Status::Warn);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("failed to parse kernel config: no config path")),
        "{:?}",
        r.warnings
    );
    assert!(r.passed, "{:?}", r.errors);
    // PSI is still decided by the probe; nf_tables by /sys/module.
    assert_eq!(
        (r.psi.available, r.psi.decided_by),
        (true, DecidedBy::Probe)
    );
    let facts = probe(&fixture("no-kernel-config"), ProbeOptions::default());
    assert_eq!(facts.psi.config_psi, None);
    assert_eq!(facts.nft.kernel_support, Some(true));
    assert_eq!(
        facts.nft.kernel_support_evidence,
        "/sys/module/nf_tables exists"
    );
    assert_eq!(facts.user_namespaces.config_user_ns, None);
    assert_eq!(feature(&r, "user-namespaces").1, DecidedBy::Version);
}

#[test]
fn host_with_swap_on() {
    let r = report("swap-on");
    assert!(r.swap.enabled);
    assert_eq!(r.swap.total_bytes, 1_048_572 * 1024);
    assert_eq!(r.swap.mem_total_bytes, Some(8_029_412 * 1024));
    assert_eq!(r.swap.devices.len(), 1);
    assert_eq!(r.swap.devices[0].kind, "file");
    assert_eq!(r.swap.devices[0].used_bytes, 2048 * 1024);
    // failSwapOn (default): the kubelet's exact startup error.
    assert!(!r.passed);
    assert_eq!(
        r.errors,
        [
            "failed to run Kubelet: running with swap on is not supported, please disable swap or set --fail-swap-on flag to false"
        ]
    );
    assert_eq!(check(&r, "SWAP").1, Status::Bad);
    // With failSwapOn: false the node passes and LimitedSwap is usable (cgroup v2, memory.swap.max).
    let ok = preflight(
        &fixture("swap-on"),
        PreflightOptions::default().with_fail_swap_on(false),
    );
    assert!(ok.passed, "{:?}", ok.errors);
    assert_eq!(feature(&ok, "node-swap").0, Some(true));
    assert_eq!(feature(&ok, "node-swap").1, DecidedBy::Probe);
    // The per-container limit from this node's numbers.
    let facts = probe(&fixture("swap-on"), ProbeOptions::default());
    let swap = facts.swap.as_ref().unwrap();
    let policy = SwapPolicy::new(
        SwapBehavior::LimitedSwap,
        facts.cgroup.version.unwrap(),
        facts.cgroup.swap_controller.unwrap(),
        swap.mem_total_bytes.unwrap(),
        swap.total_bytes,
    )
    .unwrap();
    let pod = PodSwapInput {
        containers: vec![ContainerResources {
            memory_request: Some(1 << 30),
            memory_limit: Some(2 << 30),
            ..Default::default()
        }],
        ..Default::default()
    };
    // int64(float64(1073741824) / float64(8222117888) * float64(1073737728)), computed by hand.
    let want = 140_221_427;
    let d = policy.container(&pod, 0).unwrap();
    assert_eq!(d.limit_bytes, want);
    assert_eq!(d.setting, SwapSetting::MemorySwapMax(want.to_string()));
}

#[test]
fn garbage_and_missing_files_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("proc/sys/kernel/osrelease", "garbage-kernel\n");
    w("proc/sys/kernel/ostype", "Linux\n");
    w(
        "proc/swaps",
        "Filename Type Size Used Priority\n/swap file lots 0 -2\n",
    );
    w("proc/mounts", "");
    let r = preflight(&HostRoot::new(dir.path()), PreflightOptions::default());
    assert_eq!(r.kernel.release.as_deref(), Some("garbage-kernel"));
    assert_eq!(r.kernel.version, None);
    assert!(
        r.kernel
            .error
            .as_deref()
            .unwrap()
            .contains("expected a leading version number")
    );
    assert!(!r.passed);
    // No cgroups at all is an error; swap is unreadable (a warning that names the field).
    assert!(
        r.errors
            .iter()
            .any(|e| e.starts_with("failed to find cgroup mount point")),
        "{:?}",
        r.errors
    );
    let swap_err = r.swap.error.as_deref().unwrap();
    assert!(
        swap_err.contains("proc/swaps: field Size: invalid value \"lots\""),
        "{swap_err}"
    );
    // Everything that needs the version is unknown, never "available".
    assert_eq!(feature(&r, "memory-qos").0, None);
    // /proc exists but has no pressure files: that is a definitive "no", whatever the version.
    assert_eq!(
        feature(&r, "psi").0,
        Some(false),
        "{}",
        feature(&r, "psi").2
    );
    assert_eq!(feature(&r, "psi").1, DecidedBy::Probe);
    assert_eq!(
        feature(&r, "sysctl net.ipv4.tcp_rmem").0,
        Some(false),
        "the kubelet keeps only legacy sysctls"
    );
    // JSON form keeps the required shape with nulls.
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["kernel"]["version"].is_null());
    assert!(json["cgroup"]["version"].is_null());
}
