//! Our compiler against libseccomp 2.5 (binary tree, SCMP_FLTATR_CTL_OPTIMIZE=2) in the same
//! run: executed BPF instructions per syscall (interpreter count over every syscall number) and
//! compile time, on the containers-common default profile (native arch, and x86_64+x86+x32)
//! and small profiles.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../tests/support/libseccomp.rs"]
mod libseccomp;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use node_seccomp::{Action, Arch, CompileOptions, Profile, compile, stats};

fn containers_common() -> Profile {
    libseccomp::containers_common_for_comparison()
}

fn small_profiles() -> Vec<(&'static str, Profile)> {
    let seed = Profile::from_json(include_str!("../tests/fixtures/seed-example.json")).unwrap();
    let args = Profile::from_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "write", "exit_group", "futex"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
    )
    .unwrap();
    let kill = Profile::from_json(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#).unwrap();
    vec![
        ("seed example (7 names)", seed),
        ("6 names, 2 argument rules", args),
        ("deny 1 syscall", kill),
    ]
}

fn report(label: &str, p: &Profile, arches: &[Arch]) {
    let ours = compile(p, &CompileOptions::arches(arches)).unwrap();
    let theirs = libseccomp::build(p, arches, 2, Action::KillThread);
    let so = stats(&ours, arches).unwrap();
    let st = stats(&theirs, arches).unwrap();
    for (o, t) in so.arches.iter().zip(&st.arches) {
        println!(
            "| {label} | {} | {} / {} | {:.2} / {} | {:.2} / {} | {:+.1}% |",
            o.arch,
            so.instructions,
            st.instructions,
            o.mean,
            o.max,
            t.mean,
            t.max,
            (o.mean / t.mean - 1.0) * 100.0
        );
    }
}

fn instruction_counts() {
    println!(
        "| profile | arch | program length ours / libseccomp | ours mean / max | libseccomp mean / max | mean ratio |"
    );
    println!("|---|---|---|---|---|---|");
    let cc = containers_common();
    report("containers-common, native only", &cc, &[Arch::X86_64]);
    report(
        "containers-common, 3 ABIs",
        &cc,
        &[Arch::X86_64, Arch::X86, Arch::X32],
    );
    for (label, p) in small_profiles() {
        report(&format!("{label}, native only"), &p, &[Arch::X86_64]);
        report(
            &format!("{label}, 3 ABIs"),
            &p,
            &[Arch::X86_64, Arch::X86, Arch::X32],
        );
    }
}

fn bench_compile(c: &mut Criterion) {
    let cc = containers_common();
    for (label, arches) in [
        ("native", &[Arch::X86_64][..]),
        ("x86_64+x86+x32", &[Arch::X86_64, Arch::X86, Arch::X32][..]),
    ] {
        let mut g = c.benchmark_group(format!("compile containers-common {label}"));
        g.sample_size(30)
            .measurement_time(Duration::from_secs(4))
            .warm_up_time(Duration::from_secs(1));
        g.bench_function("node-seccomp", |b| {
            b.iter(|| compile(black_box(&cc), &CompileOptions::arches(arches)).unwrap())
        });
        g.bench_function("libseccomp optimize=2", |b| {
            b.iter(|| libseccomp::build(black_box(&cc), arches, 2, Action::KillThread))
        });
        g.finish();
    }
}

criterion_group!(benches, bench_compile);

fn main() {
    instruction_counts();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
