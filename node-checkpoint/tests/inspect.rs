//! The inspector on archives written like a runtime writes them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;

use node_checkpoint::test_support::{ArchiveSpec, Process, write_archive};
use node_checkpoint::{CheckpointError, InspectOptions, inspect_file};

fn write(dir: &std::path::Path, name: &str, spec: &ArchiveSpec) -> std::path::PathBuf {
    let p = dir.join(name);
    write_archive(std::fs::File::create(&p).unwrap(), spec).unwrap();
    p
}

#[test]
fn shows_what_checkpointctl_shows_plus_files_memory_and_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = ArchiveSpec::new("default", "web", "app", "0123456789abcdef0123");
    let p = write(tmp.path(), "a.tar", &spec);
    let all = InspectOptions::default()
        .with_files(true)
        .with_memory(true)
        .with_search(b"hunter2");
    let r = inspect_file(&p, &all).unwrap();
    assert_eq!(r.container.as_deref(), Some("app"));
    assert_eq!(r.pod.as_deref(), Some("web"));
    assert_eq!(r.namespace.as_deref(), Some("default"));
    assert_eq!(r.id.as_deref(), Some("0123456789abcdef0123"));
    assert_eq!(r.image.as_deref(), Some("docker.io/library/busybox:local"));
    assert_eq!(r.runtime.as_deref(), Some("io.containerd.runc.v2"));
    assert_eq!(r.engine, "containerd");
    assert_eq!(r.created.as_deref(), Some("2026-03-13T21:40:01.123456789Z"));
    assert_eq!(r.archive_size, std::fs::metadata(&p).unwrap().len());
    assert_eq!(r.memory_pages_size, 64 * 1024 + 16 * 1024);
    assert!(r.checkpoint_size > r.memory_pages_size);
    assert!(r.rootfs_diff_size.unwrap() >= 1024);

    let files = r.files.unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for m in [
        "config.dump",
        "spec.dump",
        "checkpoint/inventory.img",
        "checkpoint/pages-1.img",
        "rootfs-diff.tar",
        "stats-dump",
    ] {
        assert!(names.contains(&m), "{m} in {names:?}");
    }
    let procs = r.processes.unwrap();
    assert_eq!(procs.len(), 2);
    assert_eq!(
        (
            procs[0].pid,
            procs[0].pages_file.as_deref(),
            procs[0].memory_bytes,
            procs[0].mapped_pages
        ),
        (1, Some("checkpoint/pages-1.img"), 64 * 1024, 16)
    );
    assert_eq!((procs[1].pid, procs[1].memory_bytes), (7, 16 * 1024));

    let s = r.search.unwrap();
    assert_eq!(s.total_matches, 1);
    assert_eq!(s.matches[0].file, "checkpoint/pages-1.img");
    assert_eq!(s.matches[0].offset, 4096 + 1000 + "PASSWORD=".len() as u64);
    assert_eq!(s.matches[0].pid, Some(1));
    assert!(
        s.matches[0].context.contains("PASSWORD=hunter2"),
        "{:?}",
        s.matches[0]
    );
    assert_eq!(s.bytes_scanned, 80 * 1024);
}

#[test]
fn search_finds_strings_across_chunk_boundaries() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("b.tar");
    // A hand-made archive whose pages straddle the inspector's 1 MiB read chunks.
    let mut b = tar::Builder::new(std::fs::File::create(&p).unwrap());
    let add = |b: &mut tar::Builder<std::fs::File>, path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        b.append_data(&mut h, path, data).unwrap();
    };
    add(&mut b, "config.dump", br#"{"id":"x","name":"c"}"#);
    add(&mut b, "spec.dump", br#"{"annotations":{"io.container.manager":"cri-o","io.kubernetes.cri-o.Metadata":"{\"name\":\"crio-ctr\"}","io.kubernetes.pod.name":"p","io.kubernetes.pod.namespace":"n"}}"#);
    add(&mut b, "checkpoint/inventory.img", b"inv");
    let mut pages = vec![b'.'; 3 << 20];
    let needle = b"TOKEN-abcdef";
    for at in [(1 << 20) - 5, (2 << 20) - 1, 17] {
        pages[at..at + needle.len()].copy_from_slice(needle);
    }
    add(&mut b, "checkpoint/pages-3.img", &pages);
    b.into_inner().unwrap().flush().unwrap();
    let r = inspect_file(
        &p,
        &InspectOptions::default()
            .with_search(needle)
            .with_memory(true),
    )
    .unwrap();
    assert_eq!(r.engine, "CRI-O");
    assert_eq!(r.container.as_deref(), Some("crio-ctr"));
    assert_eq!(
        (r.pod.as_deref(), r.namespace.as_deref()),
        (Some("p"), Some("n"))
    );
    let s = r.search.unwrap();
    let mut offsets: Vec<u64> = s.matches.iter().map(|m| m.offset).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, [17, (1 << 20) - 5, (2 << 20) - 1]);
    assert_eq!(s.total_matches, 3);
    assert_eq!(r.rootfs_diff_size, None);
}

#[test]
fn truncated_and_foreign_archives_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = ArchiveSpec::new("default", "web", "app", "id");
    spec.processes = vec![Process {
        pid: 1,
        memory_bytes: 1 << 20,
    }];
    let good = write(tmp.path(), "good.tar", &spec);
    let bytes = std::fs::read(&good).unwrap();
    let len = bytes.len();
    let opts = InspectOptions::default();
    let search = InspectOptions::default().with_search(b"x");
    // Cut in a header, in the pages, right after the last member, inside the first end block.
    // (A missing second zero block is tolerated: every member is complete.)
    for cut in [100, 5000, len / 2, len - 1024, len - 1023, len - 600] {
        let p = tmp.path().join(format!("cut-{cut}.tar"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        for o in [&opts, &search] {
            match inspect_file(&p, o) {
                Err(e @ CheckpointError::BadTar { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains("is truncated or not a tar archive"), "{msg}");
                    assert!(msg.contains(&p.display().to_string()), "{msg}");
                }
                other => panic!("cut at {cut} of {len}: {other:?}"),
            }
        }
    }
    // Not a tar at all.
    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    assert!(matches!(
        inspect_file(&junk, &opts),
        Err(CheckpointError::BadTar { .. })
    ));
    // A valid tar that is not a checkpoint.
    let other = tmp.path().join("other.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&other).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "hello.txt", &b"hello"[..]).unwrap();
    b.into_inner().unwrap().flush().unwrap();
    let err = inspect_file(&other, &opts).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{} is not a container checkpoint archive: missing spec.dump, config.dump, checkpoint/inventory.img",
            other.display()
        )
    );
    // Missing file.
    let err = inspect_file(&tmp.path().join("nope.tar"), &opts).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
}
