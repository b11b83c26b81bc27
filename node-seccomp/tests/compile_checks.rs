//! `compile()` refuses every profile `validate` refuses, with the same error, and refuses
//! options and inputs that would otherwise give a wrong filter or unbounded work.

use node_seccomp::{
    Action, ActionName, Arch, ArgCondition, CompileOptions, Error, MAX_INSNS, Operator, Profile,
    SyscallRule, compile, validate,
};

fn x86_family() -> CompileOptions {
    CompileOptions::arches(&[Arch::X86_64, Arch::X86, Arch::X32])
}

/// Profiles `validate` refuses, one per check, with the JSON path of the error.
fn refused() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "$.syscalls[0].args[0].index",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        ),
        (
            "$.syscalls[0].args[1].index",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                         {"index": 4294967295, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        ),
        (
            "$.defaultAction",
            r#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/l.sock"}"#,
        ),
        (
            "$.syscalls[0].names[1]",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/l.sock",
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        ),
        (
            "$.syscalls[0].action",
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        ),
        (
            "$.defaultErrnoRet",
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4096}"#,
        ),
        (
            "$.defaultErrnoRet",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}"#,
        ),
        (
            "$.syscalls[0].errnoRet",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}"#,
        ),
        (
            "$.syscalls[0].errnoRet",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRACE", "errnoRet": 65536}]}"#,
        ),
        (
            "$.syscalls[0].errnoRet",
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL", "errnoRet": 5}]}"#,
        ),
        (
            "$.syscalls[1].names",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                {"names": [], "action": "SCMP_ACT_ERRNO"}]}"#,
        ),
        (
            "$.syscalls[0].names[0]",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [""], "action": "SCMP_ACT_ERRNO"}]}"#,
        ),
        (
            "$.listenerMetadata",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}"#,
        ),
        (
            "$.listenerPath",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": ""}"#,
        ),
    ]
}

#[test]
fn compile_refuses_what_validate_refuses_with_the_same_error() {
    for (path, json) in refused() {
        let p = Profile::from_json(json).unwrap();
        let v = validate(&p).unwrap_err();
        match &v {
            Error::Invalid { path: got, .. } => assert_eq!(got, path, "{json}"),
            other => panic!("validate: {other:?}"),
        }
        for options in [x86_family(), CompileOptions::arches(&[Arch::Aarch64])] {
            let c = compile(&p, &options).unwrap_err();
            assert!(matches!(c, Error::Invalid { .. }), "{json}: {c:?}");
            assert_eq!(c.to_string(), v.to_string(), "{json}");
        }
    }
}

#[test]
fn argument_index_is_refused_in_memory_too() {
    // Built without the parser: any u32 index, including ones whose seccomp_data offset
    // (16 + 8 * index) would overflow.
    for index in [6, 7, 1 << 29, u32::MAX] {
        let mut p = Profile::new(ActionName::Allow);
        p.syscalls.push(SyscallRule {
            names: vec!["getppid".to_string()],
            action: ActionName::Errno,
            errno_ret: None,
            args: vec![ArgCondition {
                index,
                value: 0,
                value_two: None,
                op: Operator::Equal,
            }],
        });
        let e = compile(&p, &x86_family()).unwrap_err();
        assert!(
            e.to_string()
                .contains("syscalls only have up to 6 arguments"),
            "{index}: {e}"
        );
    }
}

#[test]
fn accepted_edges_still_compile() {
    // The largest values validation accepts, full 64-bit arguments, index 5.
    let p = Profile::from_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4095, "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_TRACE", "errnoRet": 65535,
             "args": [{"index": 5, "value": 18446744073709551615, "op": "SCMP_CMP_GE"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 18446744073709551615, "valueTwo": 18446744073709551615, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
    )
    .unwrap();
    let program = compile(&p, &x86_family()).unwrap();
    let d = node_seccomp::seccomp_data(Arch::X86_64, 110, [0, 0, 0, 0, 0, u64::MAX]).unwrap();
    assert_eq!(
        node_seccomp::interp::run(&program, &d).unwrap().action,
        Action::Trace(65535)
    );
    let d = node_seccomp::seccomp_data(Arch::X86_64, 110, [0, 0, 0, 0, 0, u64::MAX - 1]).unwrap();
    assert_eq!(
        node_seccomp::interp::run(&program, &d).unwrap().action,
        Action::Errno(4095)
    );
}

#[test]
fn options_that_cannot_give_a_usable_filter_are_refused() {
    let p = Profile::new(ActionName::Allow);
    let e = compile(&p, &CompileOptions::arches(&[])).unwrap_err();
    assert!(
        matches!(
            e,
            Error::CompileOptions {
                field: "arches",
                ..
            }
        ),
        "{e}"
    );
    let mut options = CompileOptions::arches(&[Arch::X86_64]);
    options.bad_arch_action = Action::Errno(4096);
    let e = compile(&p, &options).unwrap_err();
    assert_eq!(
        e.to_string(),
        "compile options: bad_arch_action: errno value 4096 out of range for SCMP_ACT_ERRNO (0-4095)"
    );
    options.bad_arch_action = Action::Errno(4095);
    assert!(compile(&p, &options).is_ok());
    let e = compile(&p, &CompileOptions::arches(&[Arch::Arm])).unwrap_err();
    assert!(matches!(e, Error::UnsupportedArch { .. }), "{e}");
}

#[test]
fn hostile_rule_counts_stop_early_with_an_error() {
    // 200,000 distinct conditions on one syscall: each becomes its own rule (runc splits
    // conditions on the same argument), far beyond what any filter can hold. Generation must
    // stop with an error instead of building the whole program.
    let mut p = Profile::new(ActionName::Errno);
    p.syscalls.push(SyscallRule {
        names: vec!["getppid".to_string()],
        action: ActionName::Allow,
        errno_ret: None,
        args: (0..200_000u64)
            .map(|v| ArgCondition {
                index: 0,
                value: v << 20,
                value_two: None,
                op: Operator::Equal,
            })
            .collect(),
    });
    let started = std::time::Instant::now();
    let e = compile(&p, &CompileOptions::arches(&[Arch::X86_64])).unwrap_err();
    match &e {
        Error::ProgramTooLarge {
            len,
            arches,
            stopped,
        } => {
            assert!(*stopped);
            assert!(*len > MAX_INSNS && *len < 20 * MAX_INSNS, "{len}");
            assert_eq!(arches, "SCMP_ARCH_X86_64");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string()
            .starts_with("the filter for SCMP_ARCH_X86_64 needs more than "),
        "{e}"
    );
    eprintln!("stopped after {:?}", started.elapsed());
}
