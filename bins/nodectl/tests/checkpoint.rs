//! `nodectl checkpoint inspect` on archives written like a runtime writes them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use node_checkpoint::test_support::{ArchiveSpec, write_archive};

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

#[test]
fn inspect_shows_the_archive_its_memory_and_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp
        .path()
        .join("checkpoint-web_default-app-2026-03-13T21:43:06Z.tar");
    write_archive(
        std::fs::File::create(&p).unwrap(),
        &ArchiveSpec::new("default", "web", "app", "0123456789abcdef0123"),
    )
    .unwrap();
    let path = p.to_str().unwrap();

    let (ok, out, err) = nodectl(&["checkpoint", "inspect", path]);
    assert!(ok, "{err}");
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    for col in [
        "CONTAINER",
        "IMAGE",
        "ID",
        "RUNTIME",
        "CREATED",
        "ENGINE",
        "CHKPT SIZE",
        "ROOT FS DIFF SIZE",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let row = lines.next().unwrap();
    assert!(row.starts_with("app "), "{row}");
    assert!(
        row.contains(" 0123456789ab ") && !row.contains("0123456789abc"),
        "12-char ID: {row}"
    );
    assert!(
        row.contains("io.containerd.runc.v2") && row.contains("containerd"),
        "{row}"
    );

    let (ok, out, err) = nodectl(&[
        "checkpoint",
        "inspect",
        path,
        "--files",
        "--memory",
        "--search",
        "hunter2",
        "-o",
        "json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["container"], "app");
    assert_eq!(v["engine"], "containerd");
    assert_eq!(v["memoryPagesSize"], 80 * 1024);
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "spec.dump")
    );
    assert_eq!(v["processes"][0]["pid"], 1);
    assert_eq!(v["processes"][0]["memoryBytes"], 64 * 1024);
    assert_eq!(v["search"]["totalMatches"], 1);
    assert_eq!(v["search"]["matches"][0]["pid"], 1);

    let (ok, out, _) = nodectl(&[
        "checkpoint",
        "inspect",
        path,
        "--memory",
        "--search",
        "hunter2",
    ]);
    assert!(ok);
    assert!(out.contains("Process memory:"), "{out}");
    assert!(
        out.contains("1 match(es)") && out.contains("PASSWORD=hunter2"),
        "{out}"
    );
}

#[test]
fn inspect_rejects_truncated_and_foreign_archives_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    write_archive(&mut bytes, &ArchiveSpec::new("default", "web", "app", "id")).unwrap();
    let cut = tmp.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, out, err) = nodectl(&["checkpoint", "inspect", cut.to_str().unwrap()]);
    assert!(!ok && out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is truncated or not a tar archive"), "{err}");

    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "just text\n").unwrap();
    let (ok, _, err) = nodectl(&["checkpoint", "inspect", text.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains(text.to_str().unwrap()), "{err}");
}
