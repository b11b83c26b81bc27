//! node-seccomp: Docker / containers-common profiles (`archMap`, `includes`/`excludes`,
//! `minKernel`) resolved for several contexts, then validated and compiled.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_seccomp::{
    Arch, CompileOptions, DockerContext, DockerProfile, compile, parse_kernel, validate,
};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = parse_kernel(&s);
    let Ok(docker) = DockerProfile::from_json(&s) else {
        return;
    };
    let mut aarch64 = DockerContext::docker_defaults(Arch::Aarch64);
    aarch64.kernel = Some((5, 10));
    aarch64.capabilities.push("CAP_SYS_ADMIN".to_string());
    let bare = DockerContext::new(Arch::X86).with_kernel((3, 0));
    for ctx in [DockerContext::docker_defaults(Arch::X86_64), aarch64, bare] {
        let Ok(profile) = docker.resolve(&ctx) else {
            continue;
        };
        let _ = validate(&profile);
        let json = profile.to_json();
        let back = node_seccomp::Profile::from_json(&json)
            .unwrap_or_else(|e| panic!("resolved profile does not re-parse: {e}\n{json}"));
        assert_eq!(back, profile);
        let _ = compile(&profile, &CompileOptions::arches(&[ctx.arch]));
    }
});
