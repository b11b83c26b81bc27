//! Inspector throughput on a 1 GiB synthetic checkpoint archive (generated in a temporary
//! directory at bench time), against fair references on the same file: an in-process listing
//! with the `tar` crate (headers read, member data seeked over, as the inspector does), and
//! `tar -tvf` with its process start measured apart (`tar -tvf` of a one-member archive) so
//! it can be subtracted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use node_checkpoint::test_support::{ArchiveSpec, Process, write_archive};
use node_checkpoint::{InspectOptions, inspect_file};

const GIB: u64 = 1 << 30;

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp
        .path()
        .join("checkpoint-big_default-app-2026-03-13T21:43:06Z.tar");
    let mut spec = ArchiveSpec::new("default", "big", "app", "0123456789abcdef");
    // Four processes, 1 GiB of pages in all.
    spec.processes = (0..4)
        .map(|i| Process {
            pid: 1 + i * 10,
            memory_bytes: GIB / 4,
        })
        .collect();
    let file = std::fs::File::create(&path).unwrap();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    write_archive(&mut w, &spec).unwrap();
    w.flush().unwrap();
    drop(w);
    let len = std::fs::metadata(&path).unwrap().len();
    // Warm the page cache for every contender alike.
    std::io::copy(
        &mut std::fs::File::open(&path).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();

    // A one-member archive: what `tar -tvf` costs before it reads anything of note (the
    // fork/exec, dynamic loading, locale setup and the first header).
    let tiny = tmp.path().join("tiny.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&tiny).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "x", &b"x"[..]).unwrap();
        b.finish().unwrap();
    }

    let mut g = c.benchmark_group("inspect_1gib");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Bytes(len));
    g.bench_function("tar_tvf", |b| {
        b.iter(|| {
            let s = Command::new("tar")
                .arg("-tvf")
                .arg(&path)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(s.success());
        });
    });
    g.bench_function("tar_tvf_process_start", |b| {
        b.iter(|| {
            let s = Command::new("tar")
                .arg("-tvf")
                .arg(&tiny)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(s.success());
        });
    });
    g.bench_function("tar_crate_list_seek", |b| {
        // What `tar -tv` prints, in process: each member's path, size, mode and mtime; the
        // data of each member is seeked over.
        b.iter(|| {
            let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
            let mut n = 0u64;
            for entry in archive.entries_with_seek().unwrap() {
                let entry = entry.unwrap();
                let h = entry.header();
                black_box((
                    entry.path().unwrap().into_owned(),
                    h.size().unwrap(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                ));
                n += 1;
            }
            assert!(n > 10);
            n
        });
    });
    g.bench_function("inspect_show_files_memory", |b| {
        let o = InspectOptions::default().with_files(true).with_memory(true);
        b.iter(|| black_box(inspect_file(&path, &o).unwrap()));
    });
    g.bench_function("inspect_search_all_pages", |b| {
        let o = InspectOptions::default()
            .with_files(true)
            .with_memory(true)
            .with_search(b"hunter2");
        b.iter(|| {
            let r = inspect_file(&path, &o).unwrap();
            assert_eq!(r.search.as_ref().unwrap().total_matches, 1);
            black_box(r)
        });
    });
    g.bench_function("cat_to_dev_null", |b| {
        b.iter(|| {
            std::io::copy(
                &mut std::fs::File::open(&path).unwrap(),
                &mut std::io::sink(),
            )
            .unwrap()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
