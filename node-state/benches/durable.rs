//! `FileStore::write` (the default, durable: temp file, fsync, rename, fsync of the directory)
//! against the same durable sequence done bare, measured in pairs so both see the same disk:
//! each round times one of each back to back, half the rounds store first and half bare
//! first (both orders of interleaving), and the per-round ratios give the medians reported.
//!
//! `cargo bench -p node-state --bench durable` (`ROUNDS`, default 400; `SIZE`, default 4096).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File};
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use node_state::store::FileStore;

/// The reference: write + fsync + rename + fsync of the directory, nothing else.
fn bare_durable(dir: &Path, data: &[u8]) {
    let tmp = dir.join(".tmp");
    let mut f = File::create(&tmp).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs::rename(&tmp, dir.join("state")).unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 4 } else { env_or("ROUNDS", 400) };
    let size = env_or("SIZE", 4096);
    let data: Vec<u8> = (0..size)
        .map(|i| u8::try_from(i % 251).unwrap_or(0))
        .collect();
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bare_dir = base.path().join("bare");
    let store_dir = base.path().join("store");
    fs::create_dir_all(&bare_dir).unwrap();
    let store = FileStore::open(&store_dir).unwrap();
    // Warm up both paths (directory entries, inode caches).
    for _ in 0..5 {
        bare_durable(&bare_dir, &data);
        store.write("state", &data).unwrap();
    }
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    let (mut ratios_store_first, mut ratios_bare_first) = (Vec::new(), Vec::new());
    let (mut store_times, mut bare_times) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut s = || store.write("state", black_box(&data)).unwrap();
        let mut b = || bare_durable(&bare_dir, black_box(&data));
        let (ts, tb): (Duration, Duration) = if round % 2 == 0 {
            let ts = time(&mut s);
            (ts, time(&mut b))
        } else {
            let tb = time(&mut b);
            (time(&mut s), tb)
        };
        let ratio = ts.as_secs_f64() / tb.as_secs_f64();
        if round % 2 == 0 {
            ratios_store_first.push(ratio);
        } else {
            ratios_bare_first.push(ratio);
        }
        store_times.push(ts.as_secs_f64() * 1e6);
        bare_times.push(tb.as_secs_f64() * 1e6);
    }
    let mut all: Vec<f64> = ratios_store_first
        .iter()
        .chain(&ratios_bare_first)
        .copied()
        .collect();
    eprintln!("durable 4 KiB writes, {rounds} paired rounds ({size} bytes each)");
    eprintln!(
        "median time: FileStore::write {:.1} µs, bare durable sequence {:.1} µs",
        median(&mut store_times),
        median(&mut bare_times)
    );
    eprintln!(
        "median ratio store / bare: store first {:.3}, bare first {:.3}, all rounds {:.3}",
        median(&mut ratios_store_first),
        median(&mut ratios_bare_first),
        median(&mut all)
    );
}
