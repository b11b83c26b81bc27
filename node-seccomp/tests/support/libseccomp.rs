//! libseccomp 2.5 as an oracle (tests and benches only): builds a filter from a profile with
//! runc's semantics and exports its BPF, which is then run in our interpreter.
#![allow(unsafe_code, dead_code)]

use std::ffi::{CString, c_char, c_int, c_uint, c_void};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use node_seccomp::{Action, Arch, Profile, Program};

#[repr(C)]
#[derive(Clone, Copy)]
struct ScmpArgCmp {
    arg: c_uint,
    op: c_uint,
    datum_a: u64,
    datum_b: u64,
}

#[link(name = "seccomp")]
unsafe extern "C" {
    fn seccomp_init(def_action: u32) -> *mut c_void;
    fn seccomp_release(ctx: *mut c_void);
    fn seccomp_arch_add(ctx: *mut c_void, arch_token: u32) -> c_int;
    fn seccomp_arch_remove(ctx: *mut c_void, arch_token: u32) -> c_int;
    fn seccomp_attr_set(ctx: *mut c_void, attr: c_int, value: u32) -> c_int;
    fn seccomp_syscall_resolve_name(name: *const c_char) -> c_int;
    fn seccomp_syscall_resolve_name_arch(arch_token: u32, name: *const c_char) -> c_int;
    fn seccomp_rule_add_array(
        ctx: *mut c_void,
        action: u32,
        syscall: c_int,
        arg_cnt: c_uint,
        arg_array: *const ScmpArgCmp,
    ) -> c_int;
    fn seccomp_export_bpf(ctx: *const c_void, fd: c_int) -> c_int;
}

const SCMP_FLTATR_ACT_BADARCH: c_int = 2;
const SCMP_FLTATR_CTL_OPTIMIZE: c_int = 8;
const NR_SCMP_ERROR: c_int = -1;

/// libseccomp's architecture token.
pub fn token(arch: Arch) -> u32 {
    match arch {
        Arch::X86_64 => 0xc000_003e,
        Arch::X86 => 0x4000_0003,
        Arch::X32 => 0x4000_003e,
        Arch::Aarch64 => 0xc000_00b7,
        other => panic!("no token for {other}"),
    }
}

/// Whether libseccomp has a real (non-pseudo) number for `name` on `arch`, or, on i386, reaches
/// it through `socketcall`/`ipc` (libseccomp resolves those to negative pseudo numbers).
pub fn knows(arch: Arch, name: &str) -> bool {
    let c = CString::new(name).unwrap();
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    let nr = unsafe { seccomp_syscall_resolve_name_arch(token(arch), c.as_ptr()) };
    nr >= 0 || (arch == Arch::X86 && node_seccomp::syscalls::x86_multiplexed(name).is_some())
}

/// Whether our tables know `name` on `arch` (same notion as [`knows`]).
pub fn we_know(arch: Arch, name: &str) -> bool {
    node_seccomp::syscalls::resolve(arch, name).is_some()
        || (arch == Arch::X86 && node_seccomp::syscalls::x86_multiplexed(name).is_some())
}

/// A libseccomp filter context, released on drop.
struct Ctx(*mut c_void);

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: the context was returned by seccomp_init and is released once.
        unsafe { seccomp_release(self.0) }
    }
}

/// Builds `profile` with libseccomp for exactly `arches` (the native architecture that
/// `seccomp_init` adds is removed first) with runc's rule semantics, and returns the exported
/// program. `optimize` is SCMP_FLTATR_CTL_OPTIMIZE (1 linear, 2 binary tree).
pub fn build(profile: &Profile, arches: &[Arch], optimize: u32, bad_arch: Action) -> Program {
    let default = profile.default_action.with_errno(profile.default_errno_ret);
    // SAFETY: every call below gets the live context created here and valid pointers.
    unsafe {
        let ctx = Ctx(seccomp_init(default.ret()));
        assert!(!ctx.0.is_null(), "seccomp_init");
        assert_eq!(seccomp_arch_remove(ctx.0, 0), 0, "remove native arch");
        for a in arches {
            assert_eq!(seccomp_arch_add(ctx.0, token(*a)), 0, "add arch {a}");
        }
        finish(ctx, profile, default, optimize, bad_arch)
    }
}

/// Builds `profile` exactly as runc's `InitSeccomp` does: `seccomp_init` (which starts with
/// the native architecture), then `seccomp_arch_add` for each listed architecture, ignoring
/// `-EEXIST` as libseccomp-golang's `AddArch` does, then the rules. The bad-arch action is
/// libseccomp's default (KILL_THREAD).
pub fn build_as_runc(profile: &Profile, optimize: u32) -> Program {
    let default = profile.default_action.with_errno(profile.default_errno_ret);
    // SAFETY: every call below gets the live context created here and valid pointers.
    unsafe {
        let ctx = Ctx(seccomp_init(default.ret()));
        assert!(!ctx.0.is_null(), "seccomp_init");
        for a in &profile.architectures {
            let rc = seccomp_arch_add(ctx.0, token(*a));
            assert!(rc == 0 || rc == -libc::EEXIST, "add arch {a}: {rc}");
        }
        finish(ctx, profile, default, optimize, Action::KillThread)
    }
}

/// Sets the attributes, adds the rules as runc does and exports the program.
fn finish(
    ctx: Ctx,
    profile: &Profile,
    default: Action,
    optimize: u32,
    bad_arch: Action,
) -> Program {
    // SAFETY: a `Ctx` only ever holds a live context from a non-null `seccomp_init`; every
    // pointer below is valid for its call.
    unsafe {
        assert_eq!(
            seccomp_attr_set(ctx.0, SCMP_FLTATR_CTL_OPTIMIZE, optimize),
            0
        );
        assert_eq!(
            seccomp_attr_set(ctx.0, SCMP_FLTATR_ACT_BADARCH, bad_arch.ret()),
            0
        );
        for rule in &profile.syscalls {
            let action = rule.action.with_errno(rule.errno_ret);
            if action == default {
                continue;
            }
            let conds: Vec<ScmpArgCmp> = rule
                .args
                .iter()
                .map(|a| ScmpArgCmp {
                    arg: a.index,
                    op: a.op as c_uint,
                    datum_a: a.value,
                    datum_b: a.value_two.unwrap_or(0),
                })
                .collect();
            let mut idx: Vec<u32> = rule.args.iter().map(|a| a.index).collect();
            idx.sort_unstable();
            let split = idx.windows(2).any(|w| w[0] == w[1]);
            let sets: Vec<Vec<ScmpArgCmp>> = if split {
                conds.iter().map(|c| vec![*c]).collect()
            } else {
                vec![conds]
            };
            for name in &rule.names {
                let c = CString::new(name.as_str()).unwrap();
                let nr = seccomp_syscall_resolve_name(c.as_ptr());
                if nr == NR_SCMP_ERROR {
                    continue; // runc skips names libseccomp cannot resolve
                }
                for set in &sets {
                    let rc = seccomp_rule_add_array(
                        ctx.0,
                        action.ret(),
                        nr,
                        c_uint::try_from(set.len()).unwrap(),
                        set.as_ptr(),
                    );
                    assert_eq!(rc, 0, "seccomp_rule_add {name} {action}");
                }
            }
        }
        let fd = libc::memfd_create(c"oracle".as_ptr(), 0);
        assert!(fd >= 0, "memfd_create");
        let mut file = std::fs::File::from(OwnedFd::from_raw_fd(fd));
        assert_eq!(
            seccomp_export_bpf(ctx.0, file.as_raw_fd()),
            0,
            "seccomp_export_bpf"
        );
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        Program::from_bytes(&bytes).unwrap()
    }
}

/// The containers-common default profile as the benches compare it (`filter`, `mixes`): amd64,
/// Docker's default capabilities, kernel 6.1, keeping only the names libseccomp 2.5.4 and our
/// tables agree on for x86_64, x86 and x32, so both filters implement exactly the same rules.
/// Panics without `golang-github-containers-common`.
#[allow(clippy::expect_used, clippy::unwrap_used)]
pub fn containers_common_for_comparison() -> Profile {
    let d = node_seccomp::DockerProfile::from_file(std::path::Path::new(
        "/usr/share/containers/seccomp.json",
    ))
    .expect("install golang-github-containers-common");
    let mut ctx = node_seccomp::DockerContext::docker_defaults(Arch::X86_64);
    ctx.kernel = Some((6, 1));
    let mut p = d.resolve(&ctx).unwrap();
    for r in &mut p.syscalls {
        r.names.retain(|n| {
            [Arch::X86_64, Arch::X86, Arch::X32]
                .iter()
                .all(|a| knows(*a, n) == we_know(*a, n))
        });
    }
    p.syscalls.retain(|r| !r.names.is_empty());
    p
}
