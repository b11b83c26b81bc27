//! Installing a filter in the kernel: `no_new_privs` then `seccomp(SECCOMP_SET_MODE_FILTER)`.
//!
//! A filter cannot be removed and is inherited by children: call this only in a process meant
//! to run under it (the tests do so in forked children, never in the test harness itself).
#![allow(unsafe_code)]

use crate::bpf::Program;
use crate::error::{Error, Result};
use crate::profile::Flag;

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const libc::sock_filter,
}

/// A program converted to the kernel's `struct sock_filter` array, ready to install.
///
/// Building it allocates; [`Filter::install`] does not, so it can run in a child right after
/// `fork()` in a multi-threaded process.
#[derive(Debug, Clone)]
pub struct Filter {
    insns: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

impl Filter {
    /// Prepares `program` with the given `seccomp(2)` flags.
    pub fn new(program: &Program, flags: &[Flag]) -> Result<Filter> {
        if program.len() > usize::from(u16::MAX) || program.is_empty() {
            return Err(Error::Bpf {
                message: format!("{} instructions cannot be loaded", program.len()),
            });
        }
        let insns = program
            .insns
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let flags = flags
            .iter()
            .map(|f| libc::c_ulong::from(f.bits()))
            .fold(0, |a, b| a | b);
        Ok(Filter { insns, flags })
    }

    /// Sets `no_new_privs` and installs the filter on the calling thread. Irreversible.
    pub fn install(&self) -> Result<()> {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "`new` rejects programs longer than u16::MAX; no fallible conversion here, \
                      where nothing may allocate"
        )]
        let prog = SockFprog {
            len: self.insns.len() as libc::c_ushort,
            filter: self.insns.as_ptr(),
        };
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes integer arguments only and touches no memory.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        if rc != 0 {
            return Err(Error::Load {
                operation: "prctl(PR_SET_NO_NEW_PRIVS)",
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: `prog` points at `self.insns`, which outlives the call; the kernel copies
        // exactly `len` instructions before returning.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const SockFprog,
            )
        };
        if rc != 0 {
            return Err(Error::Load {
                operation: "seccomp(SECCOMP_SET_MODE_FILTER)",
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

/// Sets `no_new_privs` and installs `program` on the calling thread with `flags`.
pub fn load(program: &Program, flags: &[Flag]) -> Result<()> {
    Filter::new(program, flags)?.install()
}

/// Whether this kernel supports seccomp filters (`prctl(PR_GET_SECCOMP)` succeeds).
pub fn supported() -> bool {
    // SAFETY: PR_GET_SECCOMP only reads the calling thread's mode.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}
