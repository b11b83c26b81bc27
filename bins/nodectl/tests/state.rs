//! `nodectl state verify|show|checksum` on kubelet state files (vectors from real nodes and
//! upstream tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn nodectl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn write(dir: &Path, rel: &str, content: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, content).unwrap();
    p
}

const CPU: &str = r#"{"policyName":"static","defaultCpuSet":"0,2-12,14-23","entries":{"235148fe-393f-47a8-a17d-bd55bc1a836b":{"cgroup1-0":"1,13"}},"checksum":1552716370}"#;
const DEVICES: &str = r#"{"Data":{"PodDeviceEntries":null,"RegisteredDevices":{"nvidia.com/gpu":["GPU-0650a168-e770-3ea8-8ac3-8a1d419763e0"]}},"Checksum":3952659280}"#;

#[test]
fn verify_accepts_real_files_and_detects_kind_from_name() {
    let tmp = tempfile::tempdir().unwrap();
    let cpu = write(tmp.path(), "cpu_manager_state", CPU);
    let (ok, out, err) = nodectl(&["state", "verify", cpu.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("valid cpu-manager (V2), checksum 1552716370"),
        "{out}"
    );

    let dev = write(
        tmp.path(),
        "device-plugins/kubelet_internal_checkpoint",
        DEVICES,
    );
    let (ok, out, err) = nodectl(&["state", "verify", dev.to_str().unwrap(), "-o", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "device-manager");
    assert_eq!(v["valid"], true);
    assert_eq!(v["checksum"], 3_952_659_280u64);

    let pulled = write(
        tmp.path(),
        "image_manager/pulled/sha256-a2eace2182b24cdbbb730798e47b10709b9ef5e0f0c1624a3bc06c8ca987727a",
        r#"{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","lastUpdatedTime":"2024-10-21T12:26:40Z","imageRef":"testimage-anonpull","credentialMapping":{"docker.io/testing/test":{"nodePodsAccessible":true}}}"#,
    );
    let (ok, out, err) = nodectl(&["state", "verify", pulled.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("valid image-pulled-record"), "{out}");
}

#[test]
fn verify_reports_corruption_with_both_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = write(
        tmp.path(),
        "state.json",
        &CPU.replace("1552716370", "1552716371"),
    );
    let (ok, _, err) = nodectl(&[
        "state",
        "verify",
        bad.to_str().unwrap(),
        "--kind",
        "cpu-manager",
    ]);
    assert!(!ok);
    assert!(
        err.contains("checkpoint is corrupted: expected 1552716371, actual 1552716370"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // The checksum command prints the right value for the same data.
    let (ok, out, err) = nodectl(&[
        "state",
        "checksum",
        bad.to_str().unwrap(),
        "--kind",
        "cpu_manager_state",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "1552716370\n");
}

#[test]
fn verify_reports_parse_errors_and_unknown_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = write(tmp.path(), "dra_manager_state", "{");
    let (ok, _, err) = nodectl(&["state", "verify", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("dra_manager_state: invalid JSON"), "{err}");

    let other = write(tmp.path(), "random.json", "{}");
    let (ok, _, err) = nodectl(&["state", "verify", other.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("cannot tell the state file kind"), "{err}");

    let (ok, _, err) = nodectl(&["state", "verify", other.to_str().unwrap(), "--kind", "nope"]);
    assert!(!ok);
    assert!(err.contains("unknown state file kind"), "{err}");
}

#[test]
fn show_prints_decoded_content() {
    let tmp = tempfile::tempdir().unwrap();
    let alloc = write(
        tmp.path(),
        "allocated_pods_state",
        r#"{"data":"{\"entries\":{\"pod1\":{\"ContainerResources\":{\"container1\":{\"requests\":{\"cpu\":\"1Ki\",\"memory\":\"1Ki\"}}}}}}","checksum":1178570812}"#,
    );
    let (ok, out, err) = nodectl(&["state", "show", alloc.to_str().unwrap(), "-o", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "allocated-pods");
    assert_eq!(
        v["content"]["entries"]["pod1"]["ContainerResources"]["container1"]["requests"]["cpu"],
        "1Ki"
    );
    let cpu = write(tmp.path(), "cpu_manager_state", CPU);
    let (ok, out, err) = nodectl(&["state", "show", cpu.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("policyName: static"), "{out}");
}

#[test]
fn checksum_prints_bare_numbers_per_format() {
    let tmp = tempfile::tempdir().unwrap();
    let dra = write(
        tmp.path(),
        "dra_manager_state",
        r#"{"Data":"{\"kind\":\"DRACheckpoint\",\"apiVersion\":\"checkpoint.dra.kubelet.k8s.io/v1\",\"Entries\":null}","Checksum":1}"#,
    );
    let (ok, out, err) = nodectl(&["state", "checksum", dra.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(out, "4103351552\n");
    let shutdown = write(
        tmp.path(),
        "graceful_node_shutdown_state",
        r#"{"startTime":"0001-01-01T00:00:00Z","endTime":"0001-01-01T00:00:00Z"}"#,
    );
    let (ok, _, err) = nodectl(&["state", "checksum", shutdown.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("carry no checksum"), "{err}");
}
