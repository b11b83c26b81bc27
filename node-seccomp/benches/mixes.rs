//! Executed BPF instructions per call under real syscall mixes (deterministic, no timing):
//! our default compile, our compile weighted for the mix, and libseccomp 2.5
//! (SCMP_FLTATR_CTL_OPTIMIZE=2), all run in our interpreter on the containers-common profile
//! for x86_64, weighted by each mix's counts; then every weighted compile measured on every
//! other mix; then a decision check of every weighted program against the default one.
//!
//! Mixes: the committed `tests/fixtures/mixes/*.txt` plus every path given on the command
//! line (`cargo bench -p node-seccomp --bench mixes -- /tmp/fresh.txt`): `strace -c` tables or
//! JSON `{name: count}` maps, x86_64 names.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../tests/support/libseccomp.rs"]
mod libseccomp;

use std::path::{Path, PathBuf};

use node_seccomp::{
    Action, Arch, CompileOptions, Profile, Program, SyscallMix, compile, interp, seccomp_data,
    syscalls, weighted_mean,
};

/// The containers-common profile as the `filter` bench resolves it: amd64, Docker's default
/// capabilities, kernel 6.1, only names both libseccomp 2.5.4 and our tables agree on.
fn containers_common() -> Profile {
    libseccomp::containers_common_for_comparison()
}

fn mixes() -> Vec<(String, SyscallMix)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mixes");
    let mut paths: Vec<(PathBuf, bool)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt" || e == "json"))
        .map(|p| (p, true))
        .collect();
    paths.sort();
    paths.extend(
        std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .map(|a| (PathBuf::from(a), false)),
    );
    paths
        .into_iter()
        .map(|(p, committed)| {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            let label = if committed {
                stem
            } else {
                format!("{stem} (fresh, not committed)")
            };
            (label, SyscallMix::from_file(&p, Arch::X86_64).unwrap())
        })
        .collect()
}

fn mean(p: &Program, m: &SyscallMix) -> f64 {
    weighted_mean(p, m).unwrap().mean
}

/// Decisions of `a` and `b` that differ over every number of every ABI's sweep (plus numbers
/// past it) and a few argument vectors.
fn mismatches(x: &Program, y: &Program, arches: &[Arch]) -> usize {
    let args: [[u64; 6]; 5] = [
        [0; 6],
        [u64::MAX; 6],
        [0xffff_ffff, 8, 0x7e02_0000, 1, 2, 3],
        [0x1_0000_0000, 0, 0, 0, 0, 0],
        [0x10, 0x20, 0x4000_0000, 0, 0, 0],
    ];
    let mut n = 0;
    for &arch in arches {
        let r = syscalls::sweep_range(arch);
        let extra = [
            r.end() + 1,
            r.end() + 100,
            0x3fff_ffff,
            0x7fff_ffff,
            u32::MAX,
        ];
        for nr in r.clone().chain(extra) {
            for a in &args {
                let d = seccomp_data(arch, nr, *a).unwrap();
                if interp::run(x, &d).unwrap().ret != interp::run(y, &d).unwrap().ret {
                    n += 1;
                }
            }
        }
    }
    n
}

fn main() {
    let profile = containers_common();
    let mixes = mixes();
    println!(
        "containers-common, x86_64 syscalls weighted by each mix (arguments zero); instructions per call"
    );
    for (label, arches) in [
        (
            "3 ABIs (x86_64 + x86 + x32)",
            &[Arch::X86_64, Arch::X86, Arch::X32][..],
        ),
        ("native only", &[Arch::X86_64][..]),
    ] {
        let default = compile(&profile, &CompileOptions::arches(arches)).unwrap();
        let theirs = libseccomp::build(&profile, arches, 2, Action::KillThread);
        let weighted: Vec<Program> = mixes
            .iter()
            .map(|(_, m)| {
                compile(
                    &profile,
                    &CompileOptions::arches(arches).with_weights(m.clone()),
                )
                .unwrap()
            })
            .collect();
        println!(
            "\n### {label}: lengths default {} / libseccomp {}",
            default.len(),
            theirs.len()
        );
        println!(
            "| mix | calls | distinct | entropy (bits) | ours default | ours weighted | libseccomp | default / libseccomp | weighted / libseccomp | weighted length | mismatches |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for ((name, m), w) in mixes.iter().zip(&weighted) {
            let (d, wm, t) = (mean(&default, m), mean(w, m), mean(&theirs, m));
            let mism = mismatches(&default, w, arches);
            println!(
                "| {name} | {} | {} | {:.2} | {d:.2} | {wm:.2} | {t:.2} | **{:.3}x** | **{:.3}x** | {} | {mism} |",
                m.total(),
                m.counts().len(),
                m.entropy_bits(),
                d / t,
                wm / t,
                w.len(),
            );
        }
        println!(
            "\nCross-mix ({label}): rows = compile weighted for, columns = mix measured; mean instructions per call (ratio to libseccomp)"
        );
        let mut header = String::from("| weighted for \\ measured on |");
        let mut rule = String::from("|---|");
        for (name, _) in &mixes {
            header.push_str(&format!(" {name} |"));
            rule.push_str("---|");
        }
        println!("{header}\n{rule}");
        let rows = std::iter::once(("(default)".to_string(), &default))
            .chain(mixes.iter().map(|(n, _)| n.clone()).zip(weighted.iter()))
            .chain(std::iter::once(("libseccomp".to_string(), &theirs)));
        for (name, prog) in rows {
            let mut line = format!("| {name} |");
            for (_, m) in &mixes {
                let v = mean(prog, m);
                line.push_str(&format!(" {v:.2} ({:.2}x) |", v / mean(&theirs, m)));
            }
            println!("{line}");
        }
    }
}
