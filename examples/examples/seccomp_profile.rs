//! node-seccomp end to end: where a container's profile comes from (the kubelet's rules), what
//! the runtimes would say about it, and what the compiled BPF filter does.
//!
//! ```text
//! cargo run -p examples --example seccomp_profile
//! ```
#![allow(clippy::print_stdout)] // an example prints its findings

use node_seccomp::{
    Arch, CompileOptions, ContainerKind, ContainerSeccomp, Profile, SeccompProfile,
    SeccompResolver, compile, explain, stats, validate,
};

fn main() -> anyhow::Result<()> {
    // 1. The kubelet's resolution for a pod with a Localhost pod-level profile.
    let root = tempfile::tempdir()?;
    let resolver = SeccompResolver::new(root.path(), true);
    let containers = [
        ContainerSeccomp {
            name: "init".into(),
            kind: ContainerKind::Init,
            profile: None,
        },
        ContainerSeccomp {
            name: "app".into(),
            kind: ContainerKind::Regular,
            profile: Some(SeccompProfile::unconfined()),
        },
    ];
    let pod = SeccompProfile::localhost("profiles/seed.json");
    println!("sandbox: {:?}", resolver.sandbox_profile().profile_type);
    for (name, kind, profile) in resolver.pod_profiles(Some(&pod), &containers) {
        let p = profile?;
        println!(
            "{kind:?} container {name}: {:?} {}",
            p.profile_type, p.localhost_ref
        );
    }
    match resolver.localhost_path("../../etc/x.json") {
        Ok(p) => println!("escape attempt unexpectedly accepted: {}", p.display()),
        Err(e) => println!("escape attempt: {e}"),
    }

    // 2. Put the seed's example profile where the init container's ref points, load it back
    //    the way the runtime would, and validate it as runc/crun would.
    std::fs::create_dir_all(resolver.profile_root().join("profiles"))?;
    let seed = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        {"names": ["adjtimex", "alarm", "bind", "waitid", "waitpid", "write", "writev"], "action": "SCMP_ACT_ALLOW"}]}"#;
    let path = resolver.localhost_path("profiles/seed.json")?;
    std::fs::write(&path, seed)?;
    let profile: Profile = resolver.load_localhost(&path)?;
    let report = validate(&profile)?;
    println!("valid; unknown syscalls: {:?}", report.unknown_syscalls);

    // 3. Compile for x86_64 with the x86 and x32 ABIs, explain one syscall, measure the filter.
    let arches = [Arch::X86_64, Arch::X86, Arch::X32];
    let program = compile(&profile, &CompileOptions::arches(&arches))?;
    let getppid = node_seccomp::syscalls::resolve(Arch::X86_64, "getppid").unwrap_or(110);
    let e = explain(&program, Arch::X86_64, getppid, [0; 6])?;
    println!(
        "getppid on x86_64 -> {} after {} instructions:",
        e.action,
        e.trace.len()
    );
    for line in &e.trace {
        println!("  {line}");
    }
    let s = stats(&program, &arches)?;
    for a in &s.arches {
        println!(
            "{}: {} instructions, mean {:.2} / max {} executed",
            a.arch, s.instructions, a.mean, a.max
        );
    }
    Ok(())
}
