//! Every fatal startup error, checked for its message and exit status with the real binary:
//! missing config file, bad drop-in, swap on with failSwapOn, unreachable runtime, unwritable
//! root dir, port in use. (Test binaries run one after another, so the swap test's real swap
//! area never overlaps another binary's agents; within this file every other agent sets
//! failSwapOn: false.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::{AGENT, base_config, free_port, run_to_exit};

const EXIT_WITHIN: Duration = Duration::from_secs(30);

fn agent(dir: &std::path::Path, config: &str, endpoint: &str, extra: &[&str]) -> Command {
    std::fs::create_dir_all(dir.join("manifests")).unwrap();
    let path = dir.join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(AGENT);
    cmd.arg("--config")
        .arg(&path)
        .arg("--root-dir")
        .arg(dir.join("root"))
        .arg("--hostname-override")
        .arg("startup-errors")
        .arg("--container-runtime-endpoint")
        .arg(endpoint)
        .args(extra)
        .env("RUST_LOG", "warn");
    cmd
}

fn expect_failure(cmd: Command, needles: &[&str]) -> String {
    let (status, stderr) = run_to_exit(cmd, EXIT_WITHIN);
    assert_eq!(status.code(), Some(1), "exit status; stderr:\n{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    stderr
}

fn config(dir: &std::path::Path) -> String {
    format!(
        "{}failSwapOn: false\n",
        base_config(dir, free_port(), free_port())
    )
}

#[test]
fn missing_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(AGENT);
    let missing = dir.path().join("no-such-config.yaml");
    cmd.arg("--config").arg(&missing);
    expect_failure(
        cmd,
        &[
            "node-agent: failed to load kubelet configuration",
            missing.to_str().unwrap(),
            "No such file or directory",
        ],
    );
}

#[test]
fn bad_drop_in() {
    let dir = tempfile::tempdir().unwrap();
    let drop_ins = dir.path().join("kubelet.conf.d");
    std::fs::create_dir_all(&drop_ins).unwrap();
    std::fs::write(drop_ins.join("10-bad.conf"), "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: [not, a, number]\n").unwrap();
    let mut cmd = agent(
        dir.path(),
        &config(dir.path()),
        "unix:///nonexistent.sock",
        &[],
    );
    cmd.arg("--config-dir").arg(&drop_ins);
    expect_failure(
        cmd,
        &[
            "node-agent: failed to load kubelet configuration",
            "10-bad.conf",
            "maxPods",
        ],
    );
}

#[test]
fn unreachable_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("unix://{}/nothing-here.sock", dir.path().display());
    let cmd = agent(dir.path(), &config(dir.path()), &endpoint, &[]);
    expect_failure(
        cmd,
        &[
            "node-agent: validate service connection: validate CRI v1 runtime API for endpoint",
            "nothing-here.sock",
        ],
    );
}

#[test]
fn root_dir_below_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    let mut cmd = agent(
        dir.path(),
        &config(dir.path()),
        "unix:///nonexistent.sock",
        &[],
    );
    cmd.arg("--root-dir").arg(dir.path().join("file/root"));
    expect_failure(
        cmd,
        &[
            "node-agent: error creating root directory",
            "file/root",
            "Not a directory",
        ],
    );
}

/// A read-only file system under the root dir (root ignores mode bits, so a real read-only
/// mount is the honest way to make a directory unwritable for root).
#[test]
fn unwritable_root_dir() {
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir_all(ro.join("root")).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
        .arg(&ro)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mounting a read-only tmpfs (the tests run as root)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(ro.clone());
    let mut cmd = agent(
        dir.path(),
        &config(dir.path()),
        "unix:///nonexistent.sock",
        &[],
    );
    cmd.arg("--root-dir").arg(&ro);
    expect_failure(
        cmd,
        &[
            "node-agent: root directory is not writable",
            "Read-only file system",
        ],
    );
}

#[test]
fn port_in_use() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("port_in_use") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = format!(
        "{}failSwapOn: false\n",
        base_config(dir.path(), port, free_port())
    );
    let cmd = agent(dir.path(), &cfg, &endpoint, &[]);
    expect_failure(
        cmd,
        &[&format!(
            "node-agent: failed to listen on the kubelet API (port): listen tcp 127.0.0.1:{port}: bind: Address already in use"
        )],
    );
}

#[test]
fn swap_on_with_fail_swap_on() {
    let dir = tempfile::tempdir().unwrap();
    // /tmp may be tmpfs on other machines (no swap files there): use the tempdir's file system
    // and report clearly if it cannot hold swap.
    let swap = dir.path().join("swap.img");
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("fallocate").args(["-l", "16M"]).arg(&swap));
    std::fs::set_permissions(&swap, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    run(Command::new("mkswap").arg(&swap));
    run(Command::new("swapon").arg(&swap));
    struct SwapOff(std::path::PathBuf);
    impl Drop for SwapOff {
        fn drop(&mut self) {
            let _ = Command::new("swapoff").arg(&self.0).status();
        }
    }
    let _off = SwapOff(swap.clone());
    let cfg = base_config(dir.path(), free_port(), free_port());
    let cmd = agent(dir.path(), &cfg, "unix:///nonexistent.sock", &[]);
    expect_failure(
        cmd,
        &[
            "node-agent: failed to run Kubelet: running with swap on is not supported, please disable swap or set --fail-swap-on flag to false",
            "/proc/swaps contained",
            swap.to_str().unwrap(),
        ],
    );
    // The flag turns the check off: the agent gets past preflight (and stops at the runtime).
    let cmd = agent(
        dir.path(),
        &cfg,
        "unix:///nonexistent.sock",
        &["--fail-swap-on=false"],
    );
    let stderr = expect_failure(cmd, &["validate service connection"]);
    assert!(!stderr.contains("swap on is not supported"), "{stderr}");
}

#[test]
fn exit_on_lock_contention_needs_a_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = agent(
        dir.path(),
        &config(dir.path()),
        "unix:///nonexistent.sock",
        &["--exit-on-lock-contention"],
    );
    expect_failure(cmd, &["node-agent: ", "lock"]);
}

#[test]
fn missing_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("kubelet.conf");
    let cmd = agent(
        dir.path(),
        &config(dir.path()),
        "unix:///nonexistent.sock",
        &["--kubeconfig", missing.to_str().unwrap()],
    );
    expect_failure(
        cmd,
        &[
            "node-agent: failed to set up the API server client from",
            missing.to_str().unwrap(),
            "No such file or directory",
        ],
    );
}

#[test]
fn invalid_allowed_unsafe_sysctls() {
    // Refused before the runtime is contacted, like the kubelet's allowlist at startup: a
    // pattern that is not namespaced, and one that is not a valid pattern.
    for (entry, needle) in [
        (
            "kernel.*",
            "the sysctls \"kernel.\" are not known to be namespaced",
        ),
        (
            "vm.swappiness",
            "the sysctls \"vm.swappiness\" are not known to be namespaced",
        ),
        ("net..x", "must have at most 253 characters and match regex"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!("{}allowedUnsafeSysctls: [{entry:?}]\n", config(dir.path()));
        let stderr = expect_failure(
            agent(dir.path(), &cfg, "unix:///nonexistent/cri.sock", &[]),
            &["invalid allowedUnsafeSysctls", needle],
        );
        assert!(!stderr.contains("container runtime"), "{stderr}");
    }
}

/// `--version` names the project version and the Kubernetes version the agent implements
/// (the one it reports as the Node's `kubeletVersion`), and exits 0 without starting anything.
#[test]
fn version_names_the_kubernetes_version() {
    let out = Command::new(AGENT).arg("--version").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "node-agent {} (Kubernetes v1.35.0)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}
