//! Probes that ask the running kernel directly: a syscall, a test mount, a temporary cgroup.
//!
//! These cannot be answered by a fixture tree, so callers run them only when the probed root is
//! the real `/` ([`crate::HostRoot::is_live`]) and report them as "needs the live kernel"
//! otherwise. The syscall wrapper is the one place in the crate that needs `unsafe`.
#![allow(unsafe_code)]

use std::io;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};

use crate::error::{Error, Result};

/// What `statfs` says is mounted at a cgroup path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupFsMagic {
    /// `CGROUP2_SUPER_MAGIC`: the unified hierarchy.
    Cgroup2,
    /// Anything else (a tmpfs holding v1 hierarchies, or cgroup v1 itself).
    Other,
    /// The path does not exist (rootless setups); runc treats this as v1.
    Missing,
}

/// `statfs(path)` and compares `f_type` with `CGROUP2_SUPER_MAGIC` (0x63677270), as runc's
/// `IsCgroup2UnifiedMode` does.
///
/// # Errors
/// [`Error::Live`] for errors other than ENOENT.
pub fn cgroup_fs_magic(path: &str) -> Result<CgroupFsMagic> {
    match statfs(path) {
        Ok(s) if s.filesystem_type() == CGROUP2_SUPER_MAGIC => Ok(CgroupFsMagic::Cgroup2),
        Ok(_) => Ok(CgroupFsMagic::Other),
        Err(Errno::ENOENT) => Ok(CgroupFsMagic::Missing),
        Err(e) => Err(Error::Live {
            probe: "statfs /sys/fs/cgroup",
            source: io::Error::from(e),
        }),
    }
}

/// Creates a temporary child cgroup under a v2 mount and checks for `cgroup.freeze`, like
/// system-validators. The child is removed again.
///
/// # Errors
/// [`Error::Live`] when the child cannot be created (not root, read-only cgroupfs).
pub fn probe_v2_freezer(mount: &Path) -> Result<bool> {
    let child = mount.join(format!("node-kernel-freezer-probe-{}", std::process::id()));
    std::fs::create_dir(&child).map_err(|source| Error::Live {
        probe: "create a temporary child cgroup",
        source,
    })?;
    let found = child.join("cgroup.freeze").exists();
    // An empty cgroup is removed with rmdir; its interface files go with it.
    std::fs::remove_dir(&child).map_err(|source| Error::Live {
        probe: "remove the temporary child cgroup",
        source,
    })?;
    Ok(found)
}

/// The outcome of a live capability probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveAnswer {
    /// The kernel has it.
    Supported,
    /// The kernel does not have it.
    Unsupported,
    /// The probe could not tell (e.g. a seccomp filter answered EPERM).
    Inconclusive,
}

/// Asks the kernel whether `mount_setattr(2)` exists (Linux 5.12, needed for recursive
/// read-only mounts), with arguments it must reject: a zero-sized `attr` gives EINVAL on a
/// kernel that has the syscall and ENOSYS on one that does not. Nothing is changed.
#[must_use]
pub fn probe_mount_setattr() -> (LiveAnswer, String) {
    // SAFETY: mount_setattr is called with a null path and a null attr pointer and size 0; the
    // kernel validates the size before touching either pointer, so no memory is read or written.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1 as libc::c_int,
            std::ptr::null::<libc::c_char>(),
            0 as libc::c_uint,
            std::ptr::null::<libc::c_void>(),
            0usize,
        )
    };
    let errno = if rc == -1 {
        Errno::last()
    } else {
        Errno::UnknownErrno
    };
    match errno {
        Errno::ENOSYS => (
            LiveAnswer::Unsupported,
            "mount_setattr(2) returned ENOSYS".to_string(),
        ),
        Errno::EINVAL | Errno::EBADF | Errno::EFAULT | Errno::E2BIG => (
            LiveAnswer::Supported,
            format!("mount_setattr(2) exists (test call returned {errno})"),
        ),
        other => (
            LiveAnswer::Inconclusive,
            format!("mount_setattr(2) test call returned {other}"),
        ),
    }
}

/// Whether this process runs inside a user namespace (`/proc/self/uid_map` is not the identity
/// map `0 0 4294967295`). The kubelet never uses tmpfs `noswap` there (kubernetes#125137).
#[must_use]
pub fn in_user_namespace() -> bool {
    match crate::root::read_capped(Path::new("/proc/self/uid_map"), 1 << 20) {
        Ok(map) => {
            let map = String::from_utf8_lossy(&map);
            let f: Vec<&str> = map.split_whitespace().collect();
            f != ["0", "0", "4294967295"]
        }
        // No uid_map: a kernel without user namespaces, so not inside one.
        Err(_) => false,
    }
}

/// The kubelet's test for kernels older than 6.4: mount a tmpfs with `-o noswap` on a temporary
/// directory; success means supported. The tmpfs is unmounted and the directory removed.
///
/// # Errors
/// [`Error::Live`] when the test could not be made (not root, no temporary directory); an
/// EINVAL from the mount is an answer ("unsupported"), not an error.
pub fn probe_tmpfs_noswap() -> Result<bool> {
    let dir = tempfile::Builder::new()
        .prefix("node-kernel-noswap-")
        .tempdir()
        .map_err(|source| Error::Live {
            probe: "create a directory for the tmpfs noswap test",
            source,
        })?;
    let result = nix::mount::mount(
        Some("tmpfs"),
        dir.path(),
        Some("tmpfs"),
        MsFlags::empty(),
        Some("noswap"),
    );
    match result {
        Ok(()) => {
            nix::mount::umount2(dir.path(), MntFlags::MNT_DETACH).map_err(|e| Error::Live {
                probe: "unmount the tmpfs noswap test",
                source: io::Error::from(e),
            })?;
            Ok(true)
        }
        Err(Errno::EINVAL) => Ok(false),
        Err(e) => Err(Error::Live {
            probe: "mount tmpfs -o noswap",
            source: io::Error::from(e),
        }),
    }
}
