//! Differential tests: our compiler against libseccomp 2.5 (binary-tree mode), both run in our
//! interpreter, on the containers-common default profile, the seed example and generated
//! profiles. Every syscall number of every supported arch and many argument vectors must get
//! the same action and data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use node_seccomp::{
    Action, ActionName, Arch, ArgCondition, CompileOptions, Operator, Profile, Program, SyscallMix,
    SyscallRule, compile, interp, seccomp_data,
};
use proptest::prelude::*;
use support::{Rng, arg_vectors, common_names, interesting_values, libseccomp, reference, sweep};

/// Compares both programs on every (arch, nr, args); returns (ours, theirs) mean instruction
/// counts over the zero-argument sweep.
fn compare(
    profile: &Profile,
    ours: &Program,
    theirs: &Program,
    arches: &[Arch],
    args: &[[u64; 6]],
    nrs_filter: Option<&[u32]>,
) -> Vec<(Arch, f64, f64)> {
    let mut libseccomp_wrong = 0usize;
    let mut mismatches = Vec::new();
    let mut means = Vec::new();
    for &arch in arches {
        let (mut n, mut so, mut st) = (0usize, 0usize, 0usize);
        let nrs: Vec<u32> = match nrs_filter {
            Some(f) => f
                .iter()
                .map(|nr| {
                    if arch == Arch::X32 {
                        nr | 0x4000_0000
                    } else {
                        *nr
                    }
                })
                .collect(),
            None => sweep(arch),
        };
        for &nr in &nrs {
            for (i, a) in args.iter().enumerate() {
                let d = seccomp_data(arch, nr, *a).unwrap();
                let o = interp::run(ours, &d).unwrap();
                let t = interp::run(theirs, &d).unwrap();
                let r = reference::evaluate(profile, arches, Action::KillThread, d.arch, nr, *a);
                if (o.ret != t.ret || o.action != r) && mismatches.len() < 20 {
                    if o.action == r && t.action != r {
                        // libseccomp 2.5.4 reuses a stale accumulator on 32-bit ABIs when a
                        // rule chain falls through to the next rule (it skips reloading the
                        // argument word): its filter is wrong there, ours follows the rules.
                        libseccomp_wrong += 1;
                        if libseccomp_wrong <= 3 {
                            let name = node_seccomp::syscalls::name(arch, nr).unwrap_or("?");
                            let rules: Vec<String> = profile
                                .syscalls
                                .iter()
                                .filter(|r| r.names.iter().any(|n| n == name))
                                .map(|r| format!("{:?} {:?} {:?}", r.action, r.errno_ret, r.args))
                                .collect();
                            eprintln!(
                                "libseccomp miscompiles {arch} nr {nr} args {a:x?}: it returns {}, the rules say {r} \
                                 (default {}; rules {rules:?})",
                                t.action,
                                profile.default_action.with_errno(profile.default_errno_ret)
                            );
                        }
                        continue;
                    }
                    mismatches.push(format!(
                        "{arch} nr {nr} ({:?}) args {a:x?}: ours {} libseccomp {} reference {r}",
                        node_seccomp::syscalls::name(arch, nr),
                        o.action,
                        t.action
                    ));
                }
                if i == 0 && nr <= *node_seccomp::syscalls::sweep_range(arch).end() {
                    n += 1;
                    so += o.executed;
                    st += t.executed;
                }
            }
        }
        means.push((
            arch,
            so as f64 / n.max(1) as f64,
            st as f64 / n.max(1) as f64,
        ));
    }
    assert!(
        mismatches.is_empty(),
        "{} decisions differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    if libseccomp_wrong > 0 {
        eprintln!(
            "{libseccomp_wrong} decisions where libseccomp contradicts the profile (ours matches it)"
        );
    }
    means
}

fn check_profile(label: &str, profile: &Profile, arches: &[Arch], vectors: usize) {
    let (p, dropped) = common_names(profile, arches);
    if !dropped.is_empty() {
        eprintln!(
            "{label}: names only one side knows (left out): {}",
            dropped.join(" ")
        );
    }
    let ours = compile(&p, &CompileOptions::arches(arches)).unwrap();
    let theirs = libseccomp::build(&p, arches, 2, Action::KillThread);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let args = arg_vectors(&interesting_values(&p), vectors, &mut rng);
    let means = compare(&p, &ours, &theirs, arches, &args, None);
    for (arch, o, t) in means {
        eprintln!(
            "{label} {arch}: ours {o:.2} vs libseccomp {t:.2} instructions/syscall (lengths {} vs {})",
            ours.len(),
            theirs.len()
        );
    }
}

#[test]
fn containers_common_x86_family() {
    let Some(profile) = support::containers_common(Arch::X86_64) else {
        return;
    };
    assert_eq!(
        profile.architectures,
        vec![Arch::X86_64, Arch::X86, Arch::X32]
    );
    check_profile(
        "containers-common",
        &profile,
        &[Arch::X86_64, Arch::X86, Arch::X32],
        24,
    );
}

#[test]
fn containers_common_native_only() {
    let Some(profile) = support::containers_common(Arch::X86_64) else {
        return;
    };
    check_profile("containers-common native", &profile, &[Arch::X86_64], 24);
}

#[test]
fn containers_common_aarch64() {
    let Some(profile) = support::containers_common(Arch::Aarch64) else {
        return;
    };
    check_profile("containers-common aarch64", &profile, &[Arch::Aarch64], 24);
}

#[test]
fn seed_example_every_arch() {
    let profile = support::seed_example();
    check_profile("seed", &profile, &[Arch::X86_64], 4);
    check_profile("seed", &profile, &[Arch::X86_64, Arch::X86, Arch::X32], 4);
    check_profile("seed", &profile, &[Arch::Aarch64], 4);
    check_profile("seed", &profile, &[Arch::X86], 4);
    check_profile("seed", &profile, &[Arch::X32], 4);
}

/// Names present on every supported arch (plus a few arch-specific and socket ones).
const POOL: &[&str] = &[
    "read",
    "write",
    "close",
    "fstat",
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "ioctl",
    "pread64",
    "readv",
    "writev",
    "sched_yield",
    "mremap",
    "msync",
    "madvise",
    "dup",
    "getpid",
    "sendfile",
    "socket",
    "connect",
    "accept4",
    "bind",
    "listen",
    "clone",
    "execve",
    "exit",
    "wait4",
    "kill",
    "uname",
    "fcntl",
    "flock",
    "fsync",
    "truncate",
    "getcwd",
    "chdir",
    "fchmod",
    "umask",
    "getuid",
    "personality",
    "prctl",
    "mount",
    "setns",
    "unshare",
    "getppid",
    "open",
    "openat",
    "futex",
    "clock_gettime",
    "exit_group",
    "shmget",
    "semop",
    "accept",
    "recvmmsg",
    "arch_prctl",
    "getrandom",
    "statx",
    "clone3",
    "pidfd_open",
    "reboot",
];

fn action_strategy() -> impl Strategy<Value = (ActionName, Option<u32>)> {
    prop_oneof![
        4 => Just((ActionName::Allow, None)),
        2 => (1u32..200).prop_map(|e| (ActionName::Errno, Some(e))),
        1 => Just((ActionName::Errno, None)),
        1 => (0u32..70000).prop_map(|m| (ActionName::Trace, Some(m % 65536))),
        1 => Just((ActionName::KillProcess, None)),
        1 => Just((ActionName::Kill, None)),
        1 => Just((ActionName::Trap, None)),
        1 => Just((ActionName::Log, None)),
    ]
}

fn value_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        0u64..16,
        Just(0xffff_ffffu64),
        Just(0x1_0000_0000u64),
        Just(u64::MAX),
        any::<u64>(),
        (0u64..4, 0u64..8).prop_map(|(h, l)| (h << 32) | l),
    ]
}

fn cond_strategy() -> impl Strategy<Value = ArgCondition> {
    (0u32..6, 0usize..7, value_strategy(), value_strategy()).prop_map(|(index, op, value, v2)| {
        let op = Operator::ALL[op];
        let value_two = if op == Operator::MaskedEqual {
            Some(v2 & value)
        } else {
            None
        };
        ArgCondition {
            index,
            value,
            value_two,
            op,
        }
    })
}

/// A profile in which each syscall's rules share one action (overlapping rules with different
/// actions have no spec-defined order; see the compiler docs), with any conditions.
fn profile_strategy() -> impl Strategy<Value = Profile> {
    let rule = (proptest::collection::vec(cond_strategy(), 0..4), 0usize..3);
    let per_name = (
        0usize..POOL.len(),
        action_strategy(),
        proptest::collection::vec(rule, 1..3),
    );
    (
        action_strategy(),
        proptest::collection::vec(per_name, 1..24),
    )
        .prop_map(|(default, names)| {
            let mut p = Profile::new(default.0);
            p.default_errno_ret = default.1;
            let mut seen = Vec::new();
            for (i, action, rules) in names {
                let name = POOL[i];
                if seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                for (args, _) in rules {
                    p.syscalls.push(SyscallRule {
                        names: vec![name.to_string()],
                        action: action.0,
                        errno_ret: action.1,
                        args,
                    });
                }
            }
            p
        })
}

/// The generated profiles' seed: `PROPTEST_RNG_SEED` when set, else a fixed one. libseccomp's
/// rule database grows exponentially for some random mixes of argument conditions (one
/// random case spent over 15 minutes inside `seccomp_rule_add_array`), so CI runs a fixed,
/// reproducible set of 48 cases; set the variable to explore others.
fn generated_seed() -> proptest::test_runner::RngSeed {
    match ProptestConfig::default().rng_seed {
        proptest::test_runner::RngSeed::Random => {
            proptest::test_runner::RngSeed::Fixed(GENERATED_SEED)
        }
        chosen => chosen,
    }
}

const GENERATED_SEED: u64 = 0x5eed_0001;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        rng_seed: generated_seed(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_profiles_match_libseccomp(profile in profile_strategy(), seed in any::<u64>()) {
        let mut rng = Rng(seed | 1);
        for arches in [&[Arch::X86_64, Arch::X86, Arch::X32][..], &[Arch::Aarch64][..]] {
            let (p, _) = common_names(&profile, arches);
            let ours = compile(&p, &CompileOptions::arches(arches)).unwrap();
            let theirs = libseccomp::build(&p, arches, 2, Action::KillThread);
            let args = arg_vectors(&interesting_values(&p), 12, &mut rng);
            // Every number the profile names on any arch, the multiplexers, and a few others.
            let mut nrs: Vec<u32> = vec![0, 102, 117, 500, 1000];
            for r in &p.syscalls {
                for n in &r.names {
                    for a in arches {
                        if let Some(nr) = node_seccomp::syscalls::resolve(*a, n) {
                            nrs.push(nr & !0x4000_0000);
                        }
                    }
                }
            }
            nrs.sort_unstable();
            nrs.dedup();
            compare(&p, &ours, &theirs, arches, &args, Some(&nrs));
            // The same profile compiled for a random mix of its own names (hot syscalls near
            // the root): the same decisions.
            let counts: Vec<(&str, u64)> = p
                .syscalls
                .iter()
                .flat_map(|r| r.names.iter())
                .filter(|n| node_seccomp::syscalls::resolve(arches[0], n).is_some())
                .map(|n| (n.as_str(), rng.next() % 1000))
                .chain([("read", 1)])
                .collect();
            let mix = SyscallMix::from_counts(arches[0], counts, "generated").unwrap();
            let weighted =
                compile(&p, &CompileOptions::arches(arches).with_weights(mix)).unwrap();
            compare(&p, &weighted, &theirs, arches, &args, Some(&nrs));
        }
    }
}

/// Every committed syscall mix: the containers-common filter compiled for it decides every
/// syscall number of every ABI and the argument cases exactly as libseccomp does.
#[test]
fn weighted_compiles_match_libseccomp() {
    let Some(profile) = support::containers_common(Arch::X86_64) else {
        return;
    };
    let dir = support::fixture("mixes");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 4, "{paths:?}");
    for arches in [
        &[Arch::X86_64, Arch::X86, Arch::X32][..],
        &[Arch::X86_64][..],
    ] {
        let (p, _) = common_names(&profile, arches);
        let theirs = libseccomp::build(&p, arches, 2, Action::KillThread);
        let mut rng = Rng(0x5eed_0003);
        let args = arg_vectors(&interesting_values(&p), 6, &mut rng);
        for path in &paths {
            let mix = SyscallMix::from_file(path, Arch::X86_64).unwrap();
            let ours = compile(&p, &CompileOptions::arches(arches).with_weights(mix)).unwrap();
            compare(&p, &ours, &theirs, arches, &args, None);
        }
    }
}

/// runc's filter always holds the node's native architecture: `seccomp_init` starts with it and
/// the profile's `architectures` are only added to it. A profile that lists only
/// `SCMP_ARCH_X86` (or only x32) must therefore apply its rules and default action to native
/// x86_64 syscalls, not the bad-arch KILL. Checked against libseccomp built exactly as runc
/// builds it, on every syscall number of both sections.
#[cfg(target_arch = "x86_64")]
#[test]
fn native_arch_is_in_the_filter_even_when_not_listed() {
    let profiles = [
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "architectures": ["SCMP_ARCH_X86"],
            "syscalls": [
              {"names": ["read", "write", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97},
              {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}"#,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X32"],
            "syscalls": [{"names": ["getppid", "mount"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}"#,
    ];
    let getpid = node_seccomp::syscalls::resolve(Arch::X86_64, "getpid").unwrap();
    for json in profiles {
        let p = Profile::from_json(json).unwrap();
        let (options, skipped) = CompileOptions::for_profile(&p).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(options.arches[0], Arch::X86_64, "native first: {json}");
        let mut expected = vec![Arch::X86_64];
        expected.extend(p.architectures.iter().filter(|a| **a != Arch::X86_64));
        assert_eq!(options.arches, expected);
        let ours = compile(&p, &options).unwrap();
        let theirs = libseccomp::build_as_runc(&p, 2);
        let mut rng = Rng(0x5eed);
        let args = arg_vectors(&interesting_values(&p), 6, &mut rng);
        compare(&p, &ours, &theirs, &options.arches, &args, None);

        // What the bug looked like: the listed arches alone kill every native syscall.
        let d = seccomp_data(Arch::X86_64, getpid, [0; 6]).unwrap();
        let listed_only = compile(&p, &CompileOptions::arches(&p.architectures)).unwrap();
        if !p.architectures.contains(&Arch::X86_64) {
            assert_eq!(
                interp::run(&listed_only, &d).unwrap().action,
                Action::KillThread
            );
        }
        assert_ne!(
            interp::run(&ours, &d).unwrap().action,
            Action::KillThread,
            "{json}"
        );
    }
}
