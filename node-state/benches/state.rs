//! Benchmarks: atomic state-file writes against a bare write+fsync+rename of the same bytes,
//! and checksum rendering throughput against hashing an already-rendered string.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File};
use std::hint::black_box;
use std::io::Write;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use node_state::checksum::{fnv32a, go_checksum};
use node_state::cpu_manager::CpuManagerState;
use node_state::cpuset::CpuSet;
use node_state::spew::render_value;
use node_state::store::{FileStore, StateFile};

/// A CPU manager state whose encoding is at least `size` bytes.
fn cpu_state(size: usize) -> CpuManagerState {
    let mut s = CpuManagerState::new("static", &CpuSet::parse("0-1").unwrap());
    let mut i = 0i64;
    while s.encode().unwrap().len() < size {
        s.set_container_cpus(
            &format!("5b1e6c7e-0d4f-4c2a-9a57-{i:012}"),
            "app",
            &CpuSet::from_ids([2 + i % 60, 3 + i % 60]),
        )
        .unwrap();
        i += 1;
    }
    s
}

/// The reference: what a careful program does without this crate.
fn bare_write(dir: &Path, data: &[u8]) {
    let tmp = dir.join(".tmp");
    let mut f = File::create(&tmp).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs::rename(&tmp, dir.join("state")).unwrap();
}

fn write_latency(c: &mut Criterion) {
    let state = cpu_state(4096);
    let bytes = state.encode().unwrap();
    let bytes = &bytes[..4096.min(bytes.len())];
    let reference_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = FileStore::open(store_dir.path()).unwrap();
    let kubelet_like = FileStore::open(store_dir.path())
        .unwrap()
        .without_dir_sync();

    let mut g = c.benchmark_group("write_4k");
    g.sample_size(60);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    // Interleaved in one group so the reference sees the same disk conditions.
    g.bench_function("bare_write_fsync_rename", |b| {
        b.iter(|| bare_write(reference_dir.path(), black_box(bytes)))
    });
    g.bench_function("store_write_no_dir_fsync", |b| {
        b.iter(|| {
            kubelet_like
                .write("cpu_manager_state", black_box(bytes))
                .unwrap()
        })
    });
    g.bench_function("store_write", |b| {
        b.iter(|| store.write("cpu_manager_state", black_box(bytes)).unwrap())
    });
    g.bench_function("store_save_cpu_state", |b| {
        b.iter(|| store.save("cpu_manager_state", black_box(&state)).unwrap())
    });
    g.finish();
}

fn checksum_throughput(c: &mut Criterion) {
    let state = cpu_state(64 * 1024);
    let rendered = render_value(&state);
    let mut g = c.benchmark_group("checksum");
    g.throughput(Throughput::Bytes(rendered.len() as u64));
    g.bench_function("render_and_fnv_cpu_state_64k", |b| {
        b.iter(|| go_checksum(black_box(&state)))
    });
    g.bench_function("fnv_only_prerendered", |b| {
        b.iter(|| fnv32a(black_box(rendered.as_bytes())))
    });
    g.finish();
}

criterion_group!(benches, write_latency, checksum_throughput);
criterion_main!(benches);
