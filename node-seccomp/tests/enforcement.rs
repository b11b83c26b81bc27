//! Enforcement: compiled filters installed in forked children behave as the profile says.
//! The filter is never installed in the test harness itself (filters are irreversible).
#![cfg(target_os = "linux")]
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use node_seccomp::{CompileOptions, Filter, Profile, compile, loader};

/// What the child reported and how it ended.
struct ChildResult {
    /// (return value, errno) for each syscall the child made.
    results: Vec<(i64, i32)>,
    /// Raw wait status.
    status: libc::c_int,
}

impl ChildResult {
    fn killed_by(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.status).then(|| libc::WTERMSIG(self.status))
    }
}

fn supported() -> bool {
    if loader::supported() {
        return true;
    }
    assert!(
        !support::in_ci(),
        "seccomp filters are not supported by this kernel"
    );
    eprintln!("SKIP: kernel without seccomp filters");
    false
}

/// Forks; the child installs `profile`'s filter (the one a runtime loads:
/// `CompileOptions::for_profile`) and makes each raw syscall; see `run_program_child`.
fn run_child(profile: &Profile, calls: &[(libc::c_long, [u64; 6])]) -> ChildResult {
    let (options, _) = CompileOptions::for_profile(profile).unwrap();
    let program = compile(profile, &options).unwrap();
    run_program_child(&program, calls)
}

fn profile(json: &str) -> Profile {
    Profile::from_json(json).unwrap()
}

#[test]
fn seed_example_denies_with_enosys() {
    if !supported() {
        return;
    }
    // The seed's profile plus exit_group, so the child can exit.
    let mut p = support::seed_example();
    p.syscalls[0].names.push("exit_group".to_string());
    let r = run_child(
        &p,
        &[(libc::SYS_getppid, [0; 6]), (libc::SYS_getpid, [0; 6])],
    );
    assert!(
        libc::WIFEXITED(r.status) && libc::WEXITSTATUS(r.status) == 0,
        "status {:#x}",
        r.status
    );
    assert_eq!(r.results, vec![(-1, libc::ENOSYS), (-1, libc::ENOSYS)]);
}

#[test]
fn kill_process_default_kills_with_sigsys() {
    if !supported() {
        return;
    }
    let p = profile(
        r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS",
            "syscalls": [{"names": ["write", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"}]}"#,
    );
    let r = run_child(
        &p,
        &[(libc::SYS_getpid, [0; 6]), (libc::SYS_getppid, [0; 6])],
    );
    assert_eq!(r.killed_by(), Some(libc::SIGSYS));
    assert_eq!(r.results.len(), 1, "getpid ran, getppid killed the child");
    assert!(r.results[0].0 > 0);
}

#[test]
fn trap_sends_sigsys() {
    if !supported() {
        return;
    }
    let p = profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRAP"}]}"#,
    );
    let r = run_child(&p, &[(libc::SYS_getppid, [0; 6])]);
    assert_eq!(r.killed_by(), Some(libc::SIGSYS));
}

#[test]
fn argument_rules_allow_and_deny_as_written() {
    if !supported() {
        return;
    }
    // getppid ignores its arguments, but seccomp sees the registers: a safe syscall to test
    // every kind of comparison on.
    let p = profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
              {"names": ["write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["getppid"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 65280, "valueTwo": 4608, "op": "SCMP_CMP_MASKED_EQ"}]},
              {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
               "args": [{"index": 1, "value": 4294967296, "op": "SCMP_CMP_GT"}]},
              {"names": ["getppid"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 2, "value": 10, "op": "SCMP_CMP_LT"}, {"index": 3, "value": 7, "op": "SCMP_CMP_NE"}]},
              {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]}
            ]}"#,
    );
    let big = 0x2_0000_0000u64;
    let calls = [
        (libc::SYS_getppid, [0x1234, 0, 99, 0, 0, 0]), // masked (0x1234 & 0xff00) == 0x1200: allowed
        (libc::SYS_getppid, [0x1334, 0, 99, 0, 0, 0]), // mask mismatch, arg2 >= 10: EPERM
        (libc::SYS_getppid, [0x1334, big, 99, 0, 0, 0]), // arg1 > 2^32 (64-bit compare): EACCES
        (libc::SYS_getppid, [0x1334, 0xffff_ffff, 99, 0, 0, 0]), // arg1 = 2^32-1, not greater: EPERM
        (libc::SYS_getppid, [0, 0, 3, 8, 0, 0]),                 // arg2 < 10 and arg3 != 7: allowed
        (libc::SYS_getppid, [0, 0, 3, 7, 0, 0]),                 // arg3 == 7: EPERM
        (libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),   // query: allowed
        (libc::SYS_personality, [0x1234, 0, 0, 0, 0, 0]),        // EPERM
    ];
    let r = run_child(&p, &calls);
    assert!(libc::WIFEXITED(r.status), "status {:#x}", r.status);
    let errnos: Vec<i32> = r
        .results
        .iter()
        .map(|(ret, e)| if *ret >= 0 { 0 } else { *e })
        .collect();
    assert_eq!(
        errnos,
        vec![
            0,
            libc::EPERM,
            libc::EACCES,
            libc::EPERM,
            0,
            libc::EPERM,
            0,
            libc::EPERM
        ]
    );
}

#[test]
fn containers_common_filter_loads_and_enforces() {
    if !supported() {
        return;
    }
    let Some(p) = support::containers_common(node_seccomp::Arch::X86_64) else {
        return;
    };
    // acct needs CAP_SYS_PACCT, absent from Docker's default set: ERRNO(EPERM); unknown
    // syscall numbers get the profile's ENOSYS default; getppid is allowed.
    let r = run_child(
        &p,
        &[
            (libc::SYS_getppid, [0; 6]),
            (libc::SYS_acct, [0; 6]),
            (1000, [0; 6]),
        ],
    );
    assert!(
        libc::WIFEXITED(r.status) && libc::WEXITSTATUS(r.status) == 0,
        "status {:#x}",
        r.status
    );
    assert!(r.results[0].0 > 0);
    assert_eq!(&r.results[1..], &[(-1, libc::EPERM), (-1, libc::ENOSYS)]);
}

/// Forks; the child installs `program` and makes each raw syscall `(nr, args)`, writing
/// `(ret, errno)` to a pipe after each one. Only async-signal-safe calls run in the child:
/// everything is allocated before `fork`.
fn run_program_child(
    program: &node_seccomp::Program,
    calls: &[(libc::c_long, [u64; 6])],
) -> ChildResult {
    let filter = Filter::new(program, &[]).unwrap();
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fork(2); the child only uses async-signal-safe calls and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: each call in this block is a raw syscall on valid descriptors and stack buffers.
        unsafe {
            libc::close(fds[0]);
            if filter.install().is_err() {
                libc::_exit(100);
            }
            for (nr, a) in calls {
                let ret = libc::syscall(*nr, a[0], a[1], a[2], a[3], a[4], a[5]);
                let errno = if ret == -1 {
                    *libc::__errno_location()
                } else {
                    0
                };
                let mut buf = [0u8; 12];
                buf[..8].copy_from_slice(&(ret as i64).to_le_bytes());
                buf[8..].copy_from_slice(&errno.to_le_bytes());
                libc::write(fds[1], buf.as_ptr().cast(), buf.len());
            }
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end; reading into a stack buffer; waiting for our child.
    unsafe {
        libc::close(fds[1]);
        let mut bytes = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let n = libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..usize::try_from(n).unwrap()]);
        }
        libc::close(fds[0]);
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        assert!(
            !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 100),
            "filter install failed in child"
        );
        let results = bytes
            .chunks_exact(12)
            .map(|c| {
                (
                    i64::from_le_bytes(c[..8].try_into().unwrap()),
                    i32::from_le_bytes(c[8..].try_into().unwrap()),
                )
            })
            .collect();
        ChildResult { results, status }
    }
}

/// A profile listing only SCMP_ARCH_X86 still runs native x86_64 processes under its default
/// action and rules, exactly as the filter libseccomp builds for runc does (both loaded in the
/// kernel here). Before the native architecture was always added, the child was killed by
/// its first syscall.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_profile_listing_only_x86_still_governs_native_syscalls() {
    if !supported() {
        return;
    }
    let p = profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                         {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                          "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}]}]}"#,
    );
    let calls = [
        (libc::SYS_getpid, [0; 6]),
        (libc::SYS_getppid, [0; 6]),
        (libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]), // query, != 8: EINVAL
        (libc::SYS_personality, [8, 0, 0, 0, 0, 0]),           // not matched: allowed
        (libc::SYS_getuid, [0; 6]),
    ];
    let ours = run_child(&p, &calls);
    let theirs = run_program_child(&support::libseccomp::build_as_runc(&p, 2), &calls);
    for r in [&ours, &theirs] {
        assert!(
            libc::WIFEXITED(r.status) && libc::WEXITSTATUS(r.status) == 0,
            "status {:#x}",
            r.status
        );
    }
    let errnos = |r: &ChildResult| -> Vec<i32> {
        r.results
            .iter()
            .map(|(ret, e)| if *ret >= 0 { 0 } else { *e })
            .collect()
    };
    assert_eq!(errnos(&ours), vec![0, libc::EACCES, libc::EINVAL, 0, 0]);
    assert_eq!(errnos(&ours), errnos(&theirs));
    assert!(ours.results[0].0 > 0, "getpid returned a pid");
}
