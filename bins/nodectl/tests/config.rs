//! `nodectl config` as an operator runs it: the built binary, real files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn nodectl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(args)
        .output()
        .expect("run nodectl")
}

fn sample(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/configs")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn prints_effective_yaml_with_flags_on_top() {
    let out = nodectl(&[
        "config",
        "--config",
        &sample("kubelet.yaml"),
        "--config-dir",
        &sample("kubelet.conf.d"),
        "--max-pods=80",
        "--feature-gates=ContainerCheckpoint=false",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(
        yaml.starts_with("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("\nmaxPods: 80\n"),
        "flag wins over the drop-in's 60"
    );
    assert!(yaml.contains("ContainerCheckpoint: false"));
    assert!(
        yaml.contains("KubeletPodResourcesGet: true"),
        "drop-in gate kept"
    );
    assert!(
        yaml.contains("nodeLeaseDurationSeconds: 40"),
        "defaults are printed"
    );
}

#[test]
fn json_output() {
    let out = nodectl(&["config", "--config", &sample("kubelet.yaml"), "-o", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "KubeletConfiguration");
    assert_eq!(v["cgroupDriver"], "systemd");
    assert_eq!(v["port"], 10250);
}

#[test]
fn errors_are_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nport: [1]\n",
    )
    .unwrap();
    let out = nodectl(&["config", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{}:3:", bad.display())) && err.contains("field port"),
        "{err}"
    );

    let out = nodectl(&["config", "--config", bad.to_str().unwrap(), "--port=abc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port"));
}

#[test]
fn unknown_fields_warn_on_stderr_or_fail_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("k.yaml");
    std::fs::write(
        &f,
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nnewField: 1\n",
    )
    .unwrap();
    let out = nodectl(&["config", "--config", f.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning:")
            && String::from_utf8_lossy(&out.stderr).contains("newField")
    );
    let out = nodectl(&["config", "--config", f.to_str().unwrap(), "--strict"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field(s) \"newField\""));
}

/// `--version` names the project version and the Kubernetes version the toolkit implements.
#[test]
fn version_names_the_kubernetes_version() {
    let out = nodectl(&["--version"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "nodectl {} (Kubernetes v1.35.0)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// `--explain` lists every field node-agent accepts without acting on, marks the ones this
/// configuration sets, and says what happens instead.
#[test]
fn explain_lists_fields_not_acted_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nimageGCHighThresholdPercent: 90\n",
    )
    .unwrap();
    let out = nodectl(&[
        "config",
        "--config",
        path.to_str().unwrap(),
        "--explain",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), node_config::support::NOT_ACTED_ON.len());
    let row = |name: &str| rows.iter().find(|r| r["field"] == name).unwrap().clone();
    assert_eq!(row("imageGCHighThresholdPercent")["set"], true);
    assert_eq!(
        row("imageGCHighThresholdPercent")["note"],
        "no image garbage collection"
    );
    assert_eq!(row("nodeStatusMaxImages")["set"], false);
    assert!(rows.iter().all(|r| r["field"] != "maxPods"));
    assert!(rows.iter().all(|r| r["field"] != "clusterDNS"));
    let text = nodectl(&[
        "config",
        "--config",
        path.to_str().unwrap(),
        "--explain",
        "-o",
        "text",
    ]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("imageGCHighThresholdPercent") && l.contains(" set ")),
        "{text}"
    );
}
