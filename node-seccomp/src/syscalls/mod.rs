//! Syscall name <-> number tables per architecture.
//!
//! The tables in `generated.rs` are produced from the kernel's UAPI headers by
//! `tools/gen_syscall_tables.rs`; `tests/syscall_tables.rs` checks them against the installed
//! headers. Names unknown to every table are what runc skips and what validation warns about.

use crate::arch::{Arch, X32_SYSCALL_BIT};

#[rustfmt::skip]
mod generated;

/// The table of `arch` sorted by name, or `None` for an architecture the compiler lacks.
fn table(arch: Arch) -> Option<&'static [(&'static str, u32)]> {
    match arch {
        Arch::X86_64 => Some(generated::X86_64),
        Arch::X86 => Some(generated::X86),
        Arch::X32 => Some(generated::X32),
        Arch::Aarch64 => Some(generated::AARCH64),
        _ => None,
    }
}

/// The syscall number of `name` on `arch` (x32 numbers include [`X32_SYSCALL_BIT`]).
pub fn resolve(arch: Arch, name: &str) -> Option<u32> {
    let t = table(arch)?;
    t.binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| t[i].1)
}

/// The name of syscall `nr` on `arch`.
pub fn name(arch: Arch, nr: u32) -> Option<&'static str> {
    table(arch)?
        .iter()
        .find(|(_, n)| *n == nr)
        .map(|(name, _)| *name)
}

/// Every `(name, number)` of `arch`, sorted by name (empty for unsupported arches).
pub fn all(arch: Arch) -> &'static [(&'static str, u32)] {
    table(arch).unwrap_or(&[])
}

/// The range of syscall numbers the statistics sweep on `arch`: 0 to the highest number in the
/// table (offset by [`X32_SYSCALL_BIT`] for x32).
pub fn sweep_range(arch: Arch) -> std::ops::RangeInclusive<u32> {
    let max = all(arch).iter().map(|(_, nr)| *nr).max().unwrap_or(0);
    let base = if arch == Arch::X32 {
        X32_SYSCALL_BIT
    } else {
        0
    };
    base..=max
}

/// Whether `name` is a syscall on any architecture the compiler supports.
pub fn is_known(name: &str) -> bool {
    [Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64]
        .into_iter()
        .any(|a| resolve(a, name).is_some() || (a == Arch::X86 && x86_multiplexed(name).is_some()))
}

/// The multiplexer through which i386 also reaches a socket or SysV IPC call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Multiplexed {
    /// `socketcall` (102) or `ipc` (117).
    pub syscall: u32,
    /// The call number passed as argument 0.
    pub call: u32,
}

/// i386 reaches socket and SysV IPC calls through `socketcall(2)`/`ipc(2)` as well as (since
/// Linux 4.3 and 5.1) through direct syscalls. libseccomp adds a rule for each way in: the direct
/// number and the multiplexer with argument 0 equal to the call number. Calls without a direct
/// number (`accept`, `send`, `recv`, `semop`, `semtimedop`) are reachable only multiplexed.
/// `recvmmsg`/`sendmmsg` keep their direct numbers only, as in libseccomp 2.5.
pub fn x86_multiplexed(name: &str) -> Option<Multiplexed> {
    const SOCKETCALL: u32 = 102;
    const IPC: u32 = 117;
    let (syscall, call) = match name {
        "socket" => (SOCKETCALL, 1),
        "bind" => (SOCKETCALL, 2),
        "connect" => (SOCKETCALL, 3),
        "listen" => (SOCKETCALL, 4),
        "accept" => (SOCKETCALL, 5),
        "getsockname" => (SOCKETCALL, 6),
        "getpeername" => (SOCKETCALL, 7),
        "socketpair" => (SOCKETCALL, 8),
        "send" => (SOCKETCALL, 9),
        "recv" => (SOCKETCALL, 10),
        "sendto" => (SOCKETCALL, 11),
        "recvfrom" => (SOCKETCALL, 12),
        "shutdown" => (SOCKETCALL, 13),
        "setsockopt" => (SOCKETCALL, 14),
        "getsockopt" => (SOCKETCALL, 15),
        "sendmsg" => (SOCKETCALL, 16),
        "recvmsg" => (SOCKETCALL, 17),
        "accept4" => (SOCKETCALL, 18),
        "semop" => (IPC, 1),
        "semget" => (IPC, 2),
        "semctl" => (IPC, 3),
        "semtimedop" => (IPC, 4),
        "msgsnd" => (IPC, 11),
        "msgrcv" => (IPC, 12),
        "msgget" => (IPC, 13),
        "msgctl" => (IPC, 14),
        "shmat" => (IPC, 21),
        "shmdt" => (IPC, 22),
        "shmget" => (IPC, 23),
        "shmctl" => (IPC, 24),
        _ => return None,
    };
    Some(Multiplexed { syscall, call })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers() {
        assert_eq!(resolve(Arch::X86_64, "read"), Some(0));
        assert_eq!(resolve(Arch::X86_64, "getppid"), Some(110));
        assert_eq!(resolve(Arch::X86, "socketcall"), Some(102));
        assert_eq!(resolve(Arch::X32, "read"), Some(X32_SYSCALL_BIT));
        assert_eq!(resolve(Arch::Aarch64, "openat"), Some(56));
        assert_eq!(resolve(Arch::Aarch64, "open"), None);
        assert_eq!(name(Arch::X86_64, 39), Some("getpid"));
        assert!(is_known("accept") && is_known("send") && !is_known("not_a_syscall"));
        for arch in [Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64] {
            let t = all(arch);
            assert!(
                t.windows(2).all(|w| w[0].0 < w[1].0),
                "{arch} table sorted and unique"
            );
        }
    }
}
