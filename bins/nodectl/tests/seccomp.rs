//! `nodectl seccomp` end to end: the built binary on real profile files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn nodectl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(args)
        .output()
        .unwrap()
}

fn seed() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../node-seccomp/tests/fixtures/seed-example.json");
    p.display().to_string()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn validate_reports_unknown_syscalls() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.json");
    std::fs::write(&p, r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "frobnicate"], "action": "SCMP_ACT_ALLOW"}]}"#).unwrap();
    let v = json(&nodectl(&[
        "seccomp",
        "validate",
        p.to_str().unwrap(),
        "-o",
        "json",
    ]));
    assert_eq!(v["valid"], true);
    assert_eq!(v["unknown_syscalls"], serde_json::json!(["frobnicate"]));
}

#[test]
fn invalid_profiles_fail_with_one_line_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.json");
    std::fs::write(
        &p,
        r#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}"#,
    )
    .unwrap();
    let out = nodectl(&["seccomp", "validate", p.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.json")
            && err.contains("$.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action"),
        "{err}"
    );
    std::fs::write(&p, r#"{"defaultAction": "SCMP_ACT_ERRNO", "archMap": []}"#).unwrap();
    let out = nodectl(&["seccomp", "validate", p.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--docker"));
}

#[test]
fn compile_raw_is_eight_bytes_per_instruction_and_matches_disasm() {
    let raw = nodectl(&[
        "seccomp",
        "compile",
        &seed(),
        "--arch",
        "x86_64",
        "--format",
        "raw",
    ]);
    assert!(raw.status.success());
    let insns = json(&nodectl(&[
        "seccomp",
        "compile",
        &seed(),
        "--arch",
        "x86_64",
        "-o",
        "json",
    ]));
    let insns = insns.as_array().unwrap();
    assert_eq!(raw.stdout.len(), insns.len() * 8);
    // First instruction: ld [4] (the arch), code 0x20, k = 4, little-endian.
    assert_eq!(&raw.stdout[..8], &[0x20, 0, 0, 0, 4, 0, 0, 0]);
    assert_eq!(insns[0]["code"], 0x20);
}

#[test]
fn explain_shows_action_and_trace() {
    let v = json(&nodectl(&[
        "seccomp",
        "explain",
        &seed(),
        "--arch",
        "x86_64",
        "--syscall",
        "getppid",
        "-o",
        "json",
    ]));
    assert_eq!(v["action"]["action"], "Errno");
    assert_eq!(v["action"]["data"], 38);
    assert_eq!(v["nr"], 110);
    let v = json(&nodectl(&[
        "seccomp",
        "explain",
        &seed(),
        "--arch",
        "aarch64",
        "--syscall",
        "64",
        "--arg",
        "0=0x1",
        "-o",
        "json",
    ]));
    assert_eq!(v["name"], "write");
    assert_eq!(v["action"]["action"], "Allow");
    assert!(!v["trace"].as_array().unwrap().is_empty());
    let text = nodectl(&[
        "seccomp",
        "explain",
        &seed(),
        "--arch",
        "x86_64",
        "--syscall",
        "write",
    ]);
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .starts_with("SCMP_ARCH_X86_64 write (1) -> ALLOW after")
    );
}

#[test]
fn stats_over_every_syscall_number() {
    let v = json(&nodectl(&[
        "seccomp",
        "stats",
        &seed(),
        "--arch",
        "x86_64",
        "--arch",
        "x86",
        "--arch",
        "x32",
        "-o",
        "json",
    ]));
    let arches = v["arches"].as_array().unwrap();
    assert_eq!(arches.len(), 3);
    assert!(v["instructions"].as_u64().unwrap() > 10);
    for a in arches {
        assert!(
            a["mean"].as_f64().unwrap() > 3.0 && a["max"].as_u64().unwrap() < 20,
            "{a}"
        );
    }
    let cc = "/usr/share/containers/seccomp.json";
    if std::path::Path::new(cc).exists() {
        let v = json(&nodectl(&[
            "seccomp", "stats", cc, "--docker", "--kernel", "6.1", "-o", "json",
        ]));
        assert_eq!(
            v["arches"].as_array().unwrap().len(),
            3,
            "archMap gives x86_64, x86, x32"
        );
    }
}

fn mix_fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../node-seccomp/tests/fixtures/mixes")
        .join(name);
    p.display().to_string()
}

#[test]
fn weights_shape_the_tree_not_the_decisions() {
    let cc = "/usr/share/containers/seccomp.json";
    if !std::path::Path::new(cc).exists() {
        eprintln!("SKIP: {cc} not installed");
        return;
    }
    let mix = mix_fixture("containerd.txt");
    let base = ["seccomp", "explain", cc, "--docker", "--kernel", "6.1"];
    for syscall in ["futex", "epoll_pwait", "nanosleep", "acct", "clone3"] {
        let mut plain_args = base.to_vec();
        plain_args.extend(["--syscall", syscall, "-o", "json"]);
        let mut weighted_args = plain_args.clone();
        weighted_args.extend(["--weights", &mix]);
        let (plain, weighted) = (json(&nodectl(&plain_args)), json(&nodectl(&weighted_args)));
        assert_eq!(plain["action"], weighted["action"], "{syscall}");
        assert_eq!(plain["ret"], weighted["ret"], "{syscall}");
        let len = |v: &serde_json::Value| v["trace"].as_array().unwrap().len();
        if syscall != "acct" && syscall != "clone3" {
            // The mix's hot syscalls are no deeper than in the default tree.
            assert!(len(&weighted) <= len(&plain), "{weighted}\n{plain}");
        }
    }
    let v = json(&nodectl(&[
        "seccomp",
        "stats",
        cc,
        "--docker",
        "--kernel",
        "6.1",
        "--weights",
        &mix,
        "-o",
        "json",
    ]));
    assert_eq!(v["weighted"]["calls"], 7149);
    assert_eq!(v["weighted"]["arch"], "SCMP_ARCH_X86_64");
    let mean = v["weighted"]["mean"].as_f64().unwrap();
    assert!(mean > 4.0 && mean < 7.0, "{v}");
    let text = nodectl(&[
        "seccomp",
        "stats",
        cc,
        "--docker",
        "--kernel",
        "6.1",
        "--weights",
        &mix,
    ]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("under the mix: 7149 calls"));
}

#[test]
fn weights_file_json_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mix = dir.path().join("mix.json");
    std::fs::write(&mix, r#"{"read": 900, "write": 100}"#).unwrap();
    let raw = nodectl(&[
        "seccomp",
        "compile",
        &seed(),
        "--arch",
        "x86_64",
        "--format",
        "raw",
        "--weights",
        mix.to_str().unwrap(),
    ]);
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(raw.stdout.len() % 8, 0);
    std::fs::write(&mix, r#"{"read": 900, "frobnicate": 1}"#).unwrap();
    let out = nodectl(&[
        "seccomp",
        "compile",
        &seed(),
        "--weights",
        mix.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("mix.json") && err.contains("\"frobnicate\" is not a syscall"),
        "{err}"
    );
    let out = nodectl(&[
        "seccomp",
        "stats",
        &seed(),
        "--weights",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
