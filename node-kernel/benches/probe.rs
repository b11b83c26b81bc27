//! How long probing the real machine takes (without running `nft`), against a bare read of the
//! same files measured in the same run.
//!
//! Run: `CARGO_TARGET_DIR=target-node-kernel cargo bench -p node-kernel --bench probe`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use node_kernel::{HostRoot, PreflightOptions, ProbeOptions, Report, probe};

/// The files `probe` reads on this kind of host, read raw with no parsing.
fn bare_read(files: &[String]) -> usize {
    files
        .iter()
        .map(|f| std::fs::read(f).map(|b| b.len()).unwrap_or(0))
        .sum()
}

fn files_probed() -> Vec<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    let mut files: Vec<String> = [
        "/proc/sys/kernel/osrelease",
        "/proc/sys/kernel/ostype",
        "/proc/cmdline",
        "/proc/mounts",
        "/proc/cgroups",
        "/proc/pressure/cpu",
        "/proc/pressure/memory",
        "/proc/pressure/io",
        "/proc/swaps",
        "/proc/meminfo",
        "/proc/sys/user/max_user_namespaces",
        "/proc/self/uid_map",
        "/sys/fs/cgroup/cgroup.controllers",
        "/sys/fs/cgroup/unified/cgroup.controllers",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    // The kernel config the probe uses: the first that exists.
    if let Some(c) = node_kernel::config_search_paths(release)
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    {
        files.push(c);
    }
    files
}

fn bench(c: &mut Criterion) {
    let root = HostRoot::live();
    let opts = ProbeOptions::default()
        .with_run_nft(false)
        .with_live_probes(true);
    let files = files_probed();
    let mut g = c.benchmark_group("probe_live");
    g.bench_function("bare_read_same_files", |b| {
        b.iter(|| black_box(bare_read(&files)))
    });
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim().to_string();
    g.bench_function("kernel_config_only", |b| {
        b.iter(|| black_box(node_kernel::find_kernel_config(&root, &release)));
    });
    g.bench_function("probe_no_nft", |b| b.iter(|| black_box(probe(&root, opts))));
    g.bench_function("probe_and_report_no_nft", |b| {
        b.iter(|| {
            let facts = probe(&root, opts);
            black_box(Report::from_facts(
                &facts,
                PreflightOptions::default().with_probe(opts),
            ))
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
