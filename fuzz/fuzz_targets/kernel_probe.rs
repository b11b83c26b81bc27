//! node-kernel: a whole fixture host root built from the input (kernel release, `/proc/mounts`,
//! `/proc/cgroups`, `/proc/cmdline`, `/proc/swaps`, `/proc/meminfo`, `/proc/pressure/*`,
//! `/proc/config.gz`, user-namespace limits, `cgroup.controllers`) through `preflight`: every
//! probe, the requirement table, the validators and the report text.
//!
//! Input: parts separated by `%%%%` lines, in the order of `FILES`; the `config.gz` part is
//! gzip'd by the target when it does not start with the gzip magic, so both the text parser
//! and the decompressor are reached.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use node_fuzz::{fresh_dir, parts, write};
use node_kernel::{HostRoot, PreflightOptions, ProbeOptions, preflight};

const FILES: [&str; 12] = [
    "proc/sys/kernel/osrelease",
    "proc/mounts",
    "proc/cgroups",
    "proc/cmdline",
    "proc/swaps",
    "proc/meminfo",
    "proc/pressure/cpu",
    "proc/config.gz",
    "proc/sys/user/max_user_namespaces",
    "sys/fs/cgroup/cgroup.controllers",
    "sys/fs/cgroup/unified/cgroup.controllers",
    "proc/sys/kernel/ostype",
];

fuzz_target!(|data: &[u8]| {
    let dir = fresh_dir("kernel");
    let p = parts(data, FILES.len());
    for (rel, bytes) in FILES.iter().zip(&p) {
        if *rel == "proc/config.gz" && !bytes.starts_with(&[0x1f, 0x8b]) {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(bytes).expect("gzip to memory");
            write(&dir, rel, &gz.finish().expect("gzip to memory"));
        } else {
            write(&dir, rel, bytes);
        }
    }
    // The other pressure files mirror cpu, so a valid one makes PSI readable.
    if let Some(cpu) = p.get(6) {
        write(&dir, "proc/pressure/memory", cpu);
        write(&dir, "proc/pressure/io", cpu);
    }
    std::fs::create_dir_all(dir.join("sys/fs/cgroup/memory")).ok();
    std::fs::create_dir_all(dir.join("sys/fs/cgroup/kubepods")).ok();
    let root = HostRoot::new(&dir);
    assert!(!root.is_live());
    for fail in [true, false] {
        let report = preflight(
            &root,
            PreflightOptions::default()
                .with_fail_swap_on(fail)
                .with_fail_cgroup_v1(fail)
                .with_probe(
                    ProbeOptions::default()
                        .with_run_nft(false)
                        .with_live_probes(false),
                ),
        );
        let _ = report.to_text();
        let _ = report.bad_checks();
        serde_json::to_string(&report).expect("a report serializes");
    }
});
