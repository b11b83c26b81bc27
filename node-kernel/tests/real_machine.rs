//! Preflight against the machine the tests run on, checked against `uname -r` and `/proc`
//! read directly (not through the crate).

use node_kernel::{DecidedBy, HostRoot, PreflightOptions, ProbeOptions, preflight, probe};

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[test]
fn report_matches_uname_and_proc() {
    let root = HostRoot::live();
    assert!(root.is_live());
    assert!(HostRoot::new("/").is_live());
    let r = preflight(&root, PreflightOptions::default());

    // Kernel: the release is `uname -r`, and the version is its leading numbers.
    let uname = std::process::Command::new("uname")
        .arg("-r")
        .output()
        .unwrap();
    let release = String::from_utf8(uname.stdout).unwrap().trim().to_string();
    assert_eq!(r.kernel.release.as_deref(), Some(release.as_str()));
    let numeric: String = release
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let numeric = numeric.trim_end_matches('.');
    let version = r.kernel.version.clone().unwrap();
    assert!(
        version == numeric || version.starts_with(&format!("{numeric}.")),
        "version {version} from release {release}"
    );
    assert_eq!(r.os.as_deref(), Some("Linux"));

    // cgroups: the same version and v1 controller list as /proc says.
    let mounts = read("/proc/mounts").unwrap();
    let unified = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 2 && f[1] == "/sys/fs/cgroup" && f[2] == "cgroup2"
    });
    assert_eq!(
        r.cgroup.version,
        Some(if unified { 2 } else { 1 }),
        "{}",
        r.cgroup.detected_by
    );
    assert!(
        r.cgroup.detected_by.contains("(live)"),
        "{}",
        r.cgroup.detected_by
    );
    if unified {
        let listed = read("/sys/fs/cgroup/cgroup.controllers").unwrap();
        for c in listed.split_whitespace() {
            assert!(
                r.cgroup.controllers.iter().any(|x| x == c),
                "{c} missing from {:?}",
                r.cgroup.controllers
            );
        }
    } else {
        let mut enabled: Vec<String> = read("/proc/cgroups")
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 4 && f[3] != "0").then(|| f[0].to_string())
            })
            .collect();
        enabled.sort();
        assert_eq!(r.cgroup.controllers, enabled);
        assert!(
            r.errors
                .iter()
                .any(|e| e.starts_with("cgroups v1 support is deprecated"))
        );
    }

    // PSI: available exactly when /proc/pressure/cpu reads, and then by probe.
    let pressure = read("/proc/pressure/cpu").is_some_and(|t| t.starts_with("some "));
    assert_eq!(r.psi.available, pressure, "{}", r.psi.reason);
    if pressure {
        assert_eq!(r.psi.decided_by, DecidedBy::Probe);
    }

    // Swap: /proc/swaps beyond its header, and SwapTotal.
    let swaps = read("/proc/swaps").unwrap();
    assert_eq!(
        r.swap.enabled,
        swaps.lines().skip(1).any(|l| !l.trim().is_empty())
    );
    let swap_total_kb: u64 = read("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("SwapTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert_eq!(r.swap.total_bytes, swap_total_kb * 1024);

    // Kernel config: /proc/config.gz first when it exists.
    if std::path::Path::new("/proc/config.gz").exists() {
        assert_eq!(r.kernel_config.source.as_deref(), Some("/proc/config.gz"));
        assert!(r.checks.iter().any(|c| c.key == "CONFIG_NAMESPACES"));
    }

    // Live probes ran; mount_setattr answers by probe on kernels that have it.
    assert_eq!(r.live_probes.note, "ran against the live kernel");
    let has_mount_setattr = version_at_least(&version, 5, 12);
    if has_mount_setattr {
        assert_eq!(
            r.live_probes.mount_setattr,
            Some(true),
            "{:?}",
            r.live_probes.mount_setattr_detail
        );
        let f = r.feature("recursive-read-only-mounts").unwrap();
        assert_eq!((f.available, f.decided_by), (Some(true), DecidedBy::Probe));
    }
    assert_eq!(r.passed, r.errors.is_empty());

    // The facts agree with themselves and with max_user_namespaces.
    let facts = probe(
        &root,
        ProbeOptions::default()
            .with_run_nft(false)
            .with_live_probes(false),
    );
    assert_eq!(facts.live_probes.note, "not run: disabled");
    let max_userns: Option<u64> =
        read("/proc/sys/user/max_user_namespaces").and_then(|s| s.trim().parse().ok());
    assert_eq!(facts.user_namespaces.max_user_namespaces, max_userns);
}

fn version_at_least(v: &str, major: u64, minor: u64) -> bool {
    let mut it = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

#[test]
fn live_tmpfs_noswap_and_mount_setattr_probes() {
    // The test mount needs root (the test suite runs as root in CI).
    let euid = read("/proc/self/status")
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        })
        .unwrap_or_default();
    if euid != "0" {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root; the tmpfs noswap test mount needs it"
        );
        eprintln!("skip: not root, tmpfs noswap test mount not attempted");
        return;
    }
    let release = read("/proc/sys/kernel/osrelease").unwrap();
    let v = node_kernel::KernelVersion::parse(&release).unwrap();
    let supported = node_kernel::live::probe_tmpfs_noswap().unwrap();
    // tmpfs noswap landed in 6.4; the mount must agree with the version on a mainline kernel.
    if v.at_least(&node_kernel::KernelVersion::from_parts(&[6, 4])) {
        assert!(supported, "kernel {v} should accept tmpfs -o noswap");
    }
    let (answer, detail) = node_kernel::live::probe_mount_setattr();
    if v.at_least(&node_kernel::KernelVersion::from_parts(&[5, 12])) {
        assert_eq!(answer, node_kernel::live::LiveAnswer::Supported, "{detail}");
    }
}
