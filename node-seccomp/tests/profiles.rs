//! Parser, Docker-format resolution and runtime-style validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use node_seccomp::{ActionName, Arch, DockerContext, DockerProfile, Error, Profile, validate};

fn parse_err(json: &str) -> String {
    Profile::from_json(json).unwrap_err().to_string()
}

fn invalid(json: &str) -> String {
    validate(&Profile::from_json(json).unwrap())
        .unwrap_err()
        .to_string()
}

#[test]
fn parses_every_field_and_round_trips() {
    let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "listenerPath": "/run/agent.sock", "listenerMetadata": "meta",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#;
    let p = Profile::from_json(json).unwrap();
    assert_eq!(p.default_errno_ret, Some(38));
    assert_eq!(p.architectures.len(), 3);
    assert_eq!(p.flags.as_ref().unwrap().len(), 2);
    assert_eq!(p.listener_metadata.as_deref(), Some("meta"));
    assert_eq!(p.syscalls[1].args[0].value_two, Some(0));
    assert_eq!(Profile::from_json(&p.to_json()).unwrap(), p);
}

#[test]
fn errors_name_the_json_path() {
    assert!(parse_err(r#"{"syscalls": []}"#).contains("missing required field `defaultAction`"));
    let e = parse_err(r#"{"defaultAction": "SCMP_ACT_FOO"}"#);
    assert!(
        e.contains("$.defaultAction: string SCMP_ACT_FOO is not a valid action for seccomp"),
        "{e}"
    );
    let e = parse_err(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO"},
           {"names": ["b"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]}"#,
    );
    assert!(
        e.contains(
            "$.syscalls[1].args[0].op: string SCMP_CMP_FOO is not a valid operator for seccomp"
        ),
        "{e}"
    );
    let e = parse_err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_FOO"]}"#);
    assert!(
        e.contains("$.architectures[0]: string SCMP_ARCH_FOO is not a valid arch for seccomp"),
        "{e}"
    );
    let e =
        parse_err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]}"#);
    assert!(
        e.contains("$.flags[0]: seccomp flag SECCOMP_FILTER_FLAG_FOO is not known"),
        "{e}"
    );
    let e = parse_err(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["b"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(
        e.contains("$.syscalls[0].args[0].value: expected an unsigned 64-bit integer, found -1"),
        "{e}"
    );
    let e = parse_err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultActoin": "x"}"#);
    assert!(
        e.contains("$.defaultActoin: unknown field `defaultActoin`"),
        "{e}"
    );
    assert!(matches!(Profile::from_json("{"), Err(Error::Json { .. })));
}

#[test]
fn docker_keys_are_rejected_with_a_pointer() {
    let e = Profile::from_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}"#,
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::DockerFormat { path, key, .. } if path == "$.syscalls[0].includes" && key == "includes")
    );
    assert!(e.to_string().contains("DockerProfile::resolve"));
    let e =
        Profile::from_json(r#"{"defaultAction": "SCMP_ACT_ERRNO", "archMap": []}"#).unwrap_err();
    assert!(matches!(e, Error::DockerFormat { .. }));
    if let Ok(text) = std::fs::read_to_string(support::CONTAINERS_COMMON) {
        assert!(matches!(
            Profile::from_json(&text),
            Err(Error::DockerFormat { .. })
        ));
    }
}

#[test]
fn docker_profiles_resolve_for_a_context() {
    let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "ENOSYS",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
        "syscalls": [
          {"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
          {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
          {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
          {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
          {"names": ["newsys"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.2"}}
        ]}"#;
    let d = DockerProfile::from_json(json).unwrap();
    let mut ctx = DockerContext::docker_defaults(Arch::X86_64);
    let e = d.resolve(&ctx).unwrap_err();
    assert!(
        e.to_string()
            .contains("$.syscalls[4].includes.minKernel: rule needs kernel >= 6.2"),
        "{e}"
    );
    ctx.kernel = Some((6, 1));
    let p = d.resolve(&ctx).unwrap();
    assert_eq!(p.default_errno_ret, Some(38));
    assert_eq!(p.architectures, vec![Arch::X86_64, Arch::X86, Arch::X32]);
    let names: Vec<&str> = p.syscalls.iter().map(|r| r.names[0].as_str()).collect();
    assert_eq!(names, vec!["read", "mount", "arch_prctl"]);
    assert_eq!(p.syscalls[1].action, ActionName::Errno);
    assert_eq!(p.syscalls[1].errno_ret, Some(1));
    ctx.capabilities.push("CAP_SYS_ADMIN".into());
    ctx.kernel = Some((6, 18));
    ctx.arch = Arch::Aarch64;
    let p = d.resolve(&ctx).unwrap();
    let names: Vec<&str> = p.syscalls.iter().map(|r| r.names[0].as_str()).collect();
    assert_eq!(names, vec!["read", "mount", "newsys"]);
    assert_eq!(p.syscalls[1].action, ActionName::Allow);
    assert_eq!(p.architectures, vec![Arch::Aarch64, Arch::Arm]);
}

#[test]
fn containers_common_resolution_keeps_conditions() {
    let Some(p) = support::containers_common(Arch::X86_64) else {
        return;
    };
    // Gated rules are resolved, not made unconditional: without CAP_SYS_ADMIN, bpf is denied.
    let bpf: Vec<_> = p
        .syscalls
        .iter()
        .filter(|r| r.names.iter().any(|n| n == "bpf"))
        .collect();
    assert_eq!(bpf.len(), 1);
    assert_eq!(bpf[0].action, ActionName::Errno);
    // Names of other architectures (alpha, ppc, s390) are unknown to x86/arm tables: listed, not fatal.
    let report = validate(&p).unwrap();
    let foreign = [
        "pciconfig_iobase",
        "pciconfig_read",
        "pciconfig_write",
        "swapcontext",
        "syscall",
        "timerfd",
    ];
    assert!(
        report
            .unknown_syscalls
            .iter()
            .all(|n| foreign.contains(&n.as_str())),
        "{:?}",
        report.unknown_syscalls
    );
}

#[test]
fn validation_matches_the_runtimes() {
    let base = |rest: &str| format!(r#"{{"defaultAction": "SCMP_ACT_ERRNO"{rest}}}"#);
    assert!(
        invalid(r#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}"#)
            .contains("$.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action")
    );
    assert!(invalid(&base(r#", "listenerPath": "/x", "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]"#))
        .contains("$.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the write syscall"));
    assert!(
        invalid(&base(
            r#", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]"#
        ))
        .contains("listenerPath is not set")
    );
    assert!(
        invalid(&base(
            r#", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4096}]"#
        ))
        .contains("$.syscalls[0].errnoRet: errno value 4096 out of range")
    );
    assert!(
        invalid(&base(
            r#", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]"#
        ))
        .contains("errno value specified for action `SCMP_ACT_ALLOW`")
    );
    assert!(
        invalid(r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}"#)
            .contains("$.defaultErrnoRet")
    );
    assert!(invalid(&base(r#", "listenerMetadata": "m""#)).contains("$.listenerMetadata"));
    assert!(
        invalid(&base(
            r#", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]"#
        ))
        .contains("at least one entry")
    );
    assert!(
        invalid(&base(
            r#", "syscalls": [{"names": [""], "action": "SCMP_ACT_ALLOW"}]"#
        ))
        .contains("empty syscall name")
    );
    let e = invalid(&base(
        r#", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]"#,
    ));
    assert!(
        e.contains("syscalls only have up to 6 arguments (7 given)"),
        "{e}"
    );
    let r = validate(
        &Profile::from_json(&base(r#", "syscalls": [{"names": ["read", "mseal_v2", "frobnicate", "socket"], "action": "SCMP_ACT_ALLOW"}]"#))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r.unknown_syscalls, vec!["mseal_v2", "frobnicate"]);
    assert!(r.warnings[0].contains("mseal_v2, frobnicate"));
}

#[test]
fn too_long_programs_are_refused() {
    // One argument-checked rule per syscall number on every arch: far beyond 4096 instructions.
    let mut p = Profile::new(ActionName::Errno);
    for (name, nr) in node_seccomp::syscalls::all(Arch::X86_64) {
        let args = (0..6)
            .map(|i| node_seccomp::ArgCondition {
                index: i,
                value: (1 << 40) + u64::from(*nr),
                value_two: None,
                op: node_seccomp::Operator::GreaterThan,
            })
            .collect();
        p.syscalls.push(node_seccomp::SyscallRule {
            names: vec![name.to_string()],
            action: ActionName::Allow,
            errno_ret: None,
            args,
        });
    }
    let e = node_seccomp::compile(
        &p,
        &node_seccomp::CompileOptions::arches(&[Arch::X86_64, Arch::X86, Arch::X32]),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::ProgramTooLarge { len, .. } if len > 4096),
        "{e}"
    );
}
