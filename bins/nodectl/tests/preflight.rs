//! `nodectl preflight` run as a real process against node-kernel's fixture trees and the live
//! machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../node-kernel/tests/fixtures")
        .join(name)
}

fn nodectl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(args)
        .env_remove("KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK")
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn json_report_has_the_documented_shape() {
    let root = fixture("cgroup-v2-host");
    let out = nodectl(&["preflight", "--root", root.to_str().unwrap(), "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&out);
    assert_eq!(j["kernel"]["release"], "6.1.0-18-amd64");
    assert_eq!(j["kernel"]["version"], "6.1.0");
    assert_eq!(j["cgroup"]["version"], 2);
    let controllers: Vec<&str> = j["cgroup"]["controllers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        controllers.contains(&"memory") && controllers.contains(&"freezer"),
        "{controllers:?}"
    );
    assert_eq!(j["psi"]["available"], true);
    assert!(
        j["psi"]["reason"]
            .as_str()
            .unwrap()
            .contains("/proc/pressure")
    );
    assert_eq!(j["swap"]["enabled"], false);
    assert_eq!(j["swap"]["totalBytes"], 0);
    let features = j["features"].as_array().unwrap();
    assert!(features.len() >= 10);
    for f in features {
        assert!(f["name"].is_string());
        assert!(
            f["available"].is_boolean() || f["available"].is_null(),
            "{f}"
        );
        assert!(
            ["probe", "version", "config"].contains(&f["decidedBy"].as_str().unwrap()),
            "{f}"
        );
        assert!(f["reason"].is_string());
    }
    let psi = features.iter().find(|f| f["name"] == "psi").unwrap();
    assert_eq!(
        (psi["available"].as_bool(), psi["decidedBy"].as_str()),
        (Some(true), Some("probe"))
    );
    assert_eq!(j["passed"], true);
}

#[test]
fn required_failures_exit_non_zero_with_one_line() {
    let root = fixture("swap-on");
    let root = root.to_str().unwrap();
    let out = nodectl(&["preflight", "--root", root]);
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("KERNEL_VERSION: 6.6.32-linuxkit\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("SWAP: on (1073737728 bytes) - failSwapOn is true\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Preflight failed: 1 error(s)"), "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("running with swap on is not supported, please disable swap or set --fail-swap-on flag to false"), "{stderr}");

    // The same node with failSwapOn=false passes.
    let out = nodectl(&[
        "preflight",
        "--root",
        root,
        "--fail-swap-on=false",
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&out);
    assert_eq!(j["swap"]["enabled"], true);
    assert_eq!(j["swap"]["totalBytes"], 1_048_572u64 * 1024);

    // cgroup v1 fails unless failCgroupV1 is false.
    let v1 = fixture("cgroup-v1-host");
    assert!(
        !nodectl(&["preflight", "--root", v1.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        nodectl(&[
            "preflight",
            "--root",
            v1.to_str().unwrap(),
            "--fail-cgroup-v1=false"
        ])
        .status
        .success()
    );
}

#[test]
fn bad_root_is_a_one_line_error() {
    let out = nodectl(&["preflight", "--root", "/nonexistent/node-root"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim(),
        "nodectl: --root /nonexistent/node-root: not a directory"
    );
}

#[test]
fn live_machine_report() {
    let out = nodectl(&["preflight", "-o", "json"]);
    let j = json(&out);
    let uname = Command::new("uname").arg("-r").output().unwrap();
    assert_eq!(
        j["kernel"]["release"],
        String::from_utf8(uname.stdout).unwrap().trim()
    );
    assert_eq!(j["live"], true);
    assert_eq!(j["liveProbes"]["note"], "ran against the live kernel");
    // Exit status follows the verdict.
    assert_eq!(
        out.status.success(),
        j["passed"].as_bool().unwrap(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        j["passed"].as_bool().unwrap(),
        j["errors"].as_array().unwrap().is_empty()
    );
}
