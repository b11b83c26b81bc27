//! `nodectl node-status` run as a real process on a fixture root and on the live machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn nodectl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(args)
        .output()
        .unwrap()
}

fn fixture(dir: &Path) {
    let w = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("proc/cpuinfo", "processor\t: 0\n\nprocessor\t: 1\n\n");
    w(
        "proc/meminfo",
        "MemTotal:        4194304 kB\nMemAvailable:    2097152 kB\n",
    );
    w(
        "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "0\n",
    );
    w("etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    w(
        "proc/sys/kernel/random/boot_id",
        "b5b0f2a4-2e3c-4d2f-9a59-7d0f1f5c8c11\n",
    );
    w("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
    w("proc/sys/kernel/hostname", "Fixture-Node\n");
    w("proc/sys/kernel/pid_max", "32768\n");
    w("proc/loadavg", "0.00 0.01 0.05 1/120 4242\n");
    w(
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    );
}

#[test]
fn fixture_root_json() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let root = dir.path().to_str().unwrap();
    let out = nodectl(&[
        "node-status",
        "--root",
        root,
        "-o",
        "json",
        "--assume-runtime-ready",
        "--node-labels",
        "node.kubernetes.io/pool=edge",
        "--root-dir",
        root,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["metadata"]["name"], "fixture-node");
    assert_eq!(
        j["metadata"]["labels"]["kubernetes.io/hostname"],
        "fixture-node"
    );
    assert_eq!(j["metadata"]["labels"]["node.kubernetes.io/pool"], "edge");
    assert_eq!(
        j["metadata"]["annotations"]["volumes.kubernetes.io/controller-managed-attach-detach"],
        "true"
    );
    assert_eq!(j["status"]["capacity"]["cpu"], "2");
    assert_eq!(j["status"]["capacity"]["memory"], "4Gi");
    assert_eq!(j["status"]["allocatable"]["memory"], "3996Mi");
    assert_eq!(j["status"]["nodeInfo"]["kernelVersion"], "6.1.0-18-amd64");
    assert_eq!(j["status"]["nodeInfo"]["kubeletVersion"], "v1.35.0");
    assert_eq!(
        j["status"]["nodeInfo"]["bootID"],
        "b5b0f2a4-2e3c-4d2f-9a59-7d0f1f5c8c11"
    );
    assert_eq!(
        j["status"]["nodeInfo"]["containerRuntimeVersion"],
        "Unknown"
    );
    assert_eq!(j["status"]["addresses"][0]["type"], "Hostname");
    let conds = j["status"]["conditions"].as_array().unwrap();
    assert_eq!(conds.last().unwrap()["type"], "Ready");
    assert_eq!(conds.last().unwrap()["reason"], "KubeletReady");
}

#[test]
fn bad_labels_fail_with_kubelet_message() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let out = nodectl(&[
        "node-status",
        "--root",
        dir.path().to_str().unwrap(),
        "--node-labels",
        "node-role.kubernetes.io/worker=",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [node-role.kubernetes.io/worker]"), "{err}");
}

#[test]
fn live_machine_text() {
    let out = nodectl(&["node-status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kubernetes.io/os=linux"), "{text}");
    // nodectl does not query CRI: Ready is False with the kubelet's start-up message.
    assert!(
        text.contains("container runtime status check may not have completed yet"),
        "{text}"
    );
}
