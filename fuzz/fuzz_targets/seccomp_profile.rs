//! node-seccomp: OCI seccomp profiles (a Localhost profile file is outside bytes) through the
//! strict parser, validation, the BPF compiler and the interpreter; Localhost profile paths
//! from a pod spec; and syscall mixes (`strace -c` tables, JSON counts) for weighted compiles.
//!
//! Invariants: `to_json` of a parsed profile parses to the same profile; a compiled program
//! survives `to_bytes`/`from_bytes`; a Localhost path that is accepted lies strictly below the
//! profile root with no `..` component; a mix that parses compiles, weighted, to the same
//! decisions as the default tree.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use node_seccomp::{
    Arch, CompileOptions, Profile, Program, SeccompResolver, SyscallMix, compile, interp,
    seccomp_data, validate,
};

/// The profile weighted compiles of fuzzed syscall mixes are checked on.
const MIX_PROFILE: &str = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "syscalls": [{"names": ["read", "write", "futex", "epoll_pwait", "openat", "close", "mmap"],
    "action": "SCMP_ACT_ALLOW"}, {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
    "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}"#;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let resolver = SeccompResolver::new("/var/lib/kubelet", true);
    if let Ok(path) = resolver.localhost_path(&s) {
        let root = resolver.profile_root();
        assert!(
            path.starts_with(&root) && path != root,
            "{s:?} -> {}",
            path.display()
        );
        assert!(
            !path.components().any(|c| c == Component::ParentDir),
            "{s:?} -> {}",
            path.display()
        );
    }
    if let Ok(mix) = SyscallMix::parse(&s, Arch::X86_64, "fuzz") {
        // Any mix the parser accepts gives a weighted filter with the default's decisions.
        let profile = Profile::from_json(MIX_PROFILE).expect("the fixed profile parses");
        let arches = [Arch::X86_64, Arch::X32, Arch::X86];
        let plain = compile(&profile, &CompileOptions::arches(&arches)).expect("compiles");
        let weighted = compile(
            &profile,
            &CompileOptions::arches(&arches).with_weights(mix.clone()),
        )
        .expect("compiles with any accepted mix");
        for nr in mix
            .by_number()
            .keys()
            .copied()
            .chain([0, 500, 0x4000_0000, u32::MAX])
        {
            let input = seccomp_data(Arch::X86_64, nr, [0; 6]).expect("x86_64 data");
            assert_eq!(
                interp::run(&plain, &input).expect("runs").ret,
                interp::run(&weighted, &input).expect("runs").ret,
                "nr {nr}"
            );
        }
        let _ = node_seccomp::weighted_mean(&weighted, &mix);
    }
    let Ok(profile) = Profile::from_json(&s) else {
        return;
    };
    let json = profile.to_json();
    let back = Profile::from_json(&json)
        .unwrap_or_else(|e| panic!("to_json output does not parse: {e}\n{json}"));
    assert_eq!(
        back, profile,
        "to_json round trip changed the profile\n{json}"
    );
    let _ = validate(&profile);
    let Ok((options, _skipped)) = CompileOptions::for_profile(&profile) else {
        return;
    };
    let arches = options.arches.clone();
    for opts in [
        options,
        CompileOptions::arches(&[Arch::X86_64, Arch::X86, Arch::Aarch64]),
    ] {
        let Ok(program) = compile(&profile, &opts) else {
            continue;
        };
        let bytes = program.to_bytes();
        let reread = Program::from_bytes(&bytes).expect("a compiled program re-reads");
        assert_eq!(reread, program);
        for arch in arches.iter().copied().chain([Arch::X86_64, Arch::Aarch64]) {
            for nr in [0u32, 1, 59, 135, 435, 0x4000_0000, u32::MAX] {
                if let Ok(input) = seccomp_data(arch, nr, [0, 1, 8, u64::MAX, 1 << 32, 42]) {
                    interp::run(&program, &input).expect("a compiled program runs");
                }
            }
        }
    }
    let _ = Path::new(&json);
});
