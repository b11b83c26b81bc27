//! Paths built from pod data, kept under their base directory: every component is checked to
//! be one safe path component, directories are created and removed without following a
//! symlink a container may have planted, and removal never crosses into another filesystem.
//!
//! Everything below the base works on directory file descriptors (`openat`, `mkdirat`,
//! `unlinkat` with `O_NOFOLLOW`), never on full path strings, so a component swapped for a
//! symlink between two steps cannot redirect the next step: the worst a racing container can
//! achieve is an error.
//!
//! The base itself is trusted (the agent's root directory, a pod directory it built, a volume
//! directory): it is opened as given, so an administrator's `/var/lib/kubelet` that is itself
//! a symlink keeps working. Nothing below it is ever followed.
//!
//! Upstream counterparts: `SafeMakeDir` in `pkg/volume/util/subpath/subpath_linux.go` (create
//! with `mkdirat` + `openat(O_NOFOLLOW)` + `fchmod`) and the kubelet's one-filesystem removal of
//! orphaned pod directories (`pkg/kubelet/kubelet_volumes.go`, `removeall.RemoveDirsOneFilesystem`).

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::error::RuntimeError;
use crate::validation::check_path_component;

/// How many ancestor directories a removal keeps open; deeper trees are walked back up through
/// `..`, checked against the recorded device and inode (so a tree of any depth is removed with
/// a bounded number of descriptors).
const MAX_OPEN_ANCESTORS: usize = 32;

/// How many directory entries are read at a time during removal.
const READ_BATCH: usize = 1024;

/// How often a removal tolerates an entry changing type under it (a racing writer) before it
/// gives up with an error.
const MAX_CHANGES: u32 = 64;

/// `O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC`: open a directory, never through a symlink.
pub(crate) fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

pub(crate) fn io_error(action: &'static str, path: &Path, errno: Errno) -> RuntimeError {
    RuntimeError::Io {
        action,
        path: path.to_path_buf(),
        source: std::io::Error::from(errno),
    }
}

pub(crate) fn unsafe_path(path: &Path, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::UnsafePath {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// `base` joined with `components`, each checked to be exactly one safe path component
/// ([`check_path_component`]: not empty, not `.`/`..`, no `/`, no NUL, at most 255 bytes), so
/// the result is lexically below `base`. `components` are `(field, value)` pairs; `field` names
/// the value in the error (for example `("metadata.uid", uid)`).
pub fn join_under(base: &Path, components: &[(&str, &str)]) -> Result<PathBuf, RuntimeError> {
    let mut path = base.to_path_buf();
    for (field, value) in components {
        check_path_component(field, value).map_err(|reason| unsafe_path(&path, reason))?;
        path.push(value);
    }
    Ok(path)
}

/// Creates the missing directories `base/components...` below an existing `base` without
/// following any symlink below `base`: each step is `mkdirat` + `openat(O_NOFOLLOW |
/// O_DIRECTORY)` relative to the parent's descriptor. A component that exists as a symlink or
/// as anything but a directory is an [`RuntimeError::UnsafePath`] naming it. Every directory
/// this call creates gets exactly `mode` (`fchmod` after creation, so the umask does not
/// matter; setuid/setgid/sticky bits are kept); directories that already exist are left as they
/// are. Idempotent. Returns the full path.
pub fn create_dir_under(
    base: &Path,
    components: &[(&str, &str)],
    mode: u32,
) -> Result<PathBuf, RuntimeError> {
    create_dirs(base, components, mode, mode).map(|created| created.path)
}

/// What [`create_dirs`] made or found.
pub(crate) struct CreatedDir {
    /// The final directory, opened `O_RDONLY | O_DIRECTORY` (never through a symlink).
    pub(crate) fd: OwnedFd,
    /// Its path.
    pub(crate) path: PathBuf,
    /// Whether the final directory was created by this call.
    pub(crate) created: bool,
}

/// [`create_dir_under`] with a separate mode for created parents and for the final directory,
/// returning the final directory's descriptor.
pub(crate) fn create_dirs(
    base: &Path,
    components: &[(&str, &str)],
    parents_mode: u32,
    final_mode: u32,
) -> Result<CreatedDir, RuntimeError> {
    let path = join_under(base, components)?;
    let mut fd = open_base(base)?.ok_or_else(|| io_error("open directory", base, Errno::ENOENT))?;
    let mut current = base.to_path_buf();
    let mut created = false;
    for (i, (_, name)) in components.iter().enumerate() {
        let mode = if i + 1 == components.len() {
            final_mode
        } else {
            parents_mode
        };
        current.push(name);
        let (child, made) = ensure_dir(fd.as_fd(), OsStr::new(name), &current, mode)?;
        fd = child;
        created = made;
    }
    Ok(CreatedDir { fd, path, created })
}

/// Opens the existing directory `base/components...` without following a symlink below `base`.
/// `Ok(None)` when a component does not exist; a symlink or non-directory is an `UnsafePath`.
pub(crate) fn open_dir_under(
    base: &Path,
    components: &[(&str, &str)],
) -> Result<Option<(OwnedFd, PathBuf)>, RuntimeError> {
    let path = join_under(base, components)?;
    let Some(mut fd) = open_base(base)? else {
        return Ok(None);
    };
    let mut current = base.to_path_buf();
    for (_, name) in components {
        current.push(name);
        match open_child_dir(fd.as_fd(), OsStr::new(name), &current)? {
            Some(child) => fd = child,
            None => return Ok(None),
        }
    }
    Ok(Some((fd, path)))
}

/// Opens the trusted base directory (following symlinks in its own path). `Ok(None)` when it
/// does not exist.
pub(crate) fn open_base(base: &Path) -> Result<Option<OwnedFd>, RuntimeError> {
    match nix::fcntl::open(
        base,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(io_error("open directory", base, e)),
    }
}

/// Opens directory `name` in `parent` without following a symlink. `Ok(None)` when it does not
/// exist; a symlink or a non-directory is an `UnsafePath` naming `path`.
pub(crate) fn open_child_dir(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
) -> Result<Option<OwnedFd>, RuntimeError> {
    match openat(parent, name, dir_flags(), Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => Err(refusal(parent, name, path, e)),
        Err(e) => Err(io_error("open directory", path, e)),
    }
}

/// The `UnsafePath` error for `name`, which `openat(O_NOFOLLOW | O_DIRECTORY)` refused.
fn refusal(parent: BorrowedFd<'_>, name: &OsStr, path: &Path, errno: Errno) -> RuntimeError {
    let symlink = match stat_at(parent, name) {
        Ok(meta) => meta.is_symlink(),
        Err(_) => errno == Errno::ELOOP,
    };
    if symlink {
        unsafe_path(
            path,
            "it is a symlink, which is never followed below the base directory (a container may \
             have planted it)",
        )
    } else {
        unsafe_path(path, "it exists but is not a directory")
    }
}

/// Makes directory `name` in `parent` if missing, then opens it without following symlinks. A
/// directory created here gets exactly `mode`. Returns the descriptor and whether it was created.
pub(crate) fn ensure_dir(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    mode: u32,
) -> Result<(OwnedFd, bool), RuntimeError> {
    let created = match mkdirat(parent, name, Mode::from_bits_truncate(mode & 0o777)) {
        Ok(()) => true,
        Err(Errno::EEXIST) => false,
        Err(e) => return Err(io_error("create directory", path, e)),
    };
    let fd = open_child_dir(parent, name, path)?
        // Removed between mkdirat and openat: someone is racing us; let the caller retry.
        .ok_or_else(|| io_error("open directory", path, Errno::ENOENT))?;
    if created {
        fchmod(&fd, Mode::from_bits_truncate(mode & 0o7777))
            .map_err(|e| io_error("set the mode of", path, e))?;
    }
    Ok((fd, created))
}

/// Removes the directory tree `base/components...` (or the file or symlink there) without ever
/// following a symlink, including when the last component itself is one (it is unlinked), and
/// without crossing into another mount: a mount point met on the way or inside the tree (a
/// subPath bind mount still mounted, a tmpfs) is an `UnsafePath` error naming it, and nothing
/// below it is touched. Everything is done relative to directory descriptors opened with
/// `O_NOFOLLOW`, so a symlink swapped in concurrently cannot redirect it. A missing path
/// (or base) is success. Trees of any depth are removed with a bounded number of descriptors.
/// `components` must not be empty (the base itself is never removed).
pub fn remove_tree_under(base: &Path, components: &[(&str, &str)]) -> Result<(), RuntimeError> {
    let path = join_under(base, components)?;
    let Some(((_, last), parents)) = components.split_last() else {
        return Err(unsafe_path(
            &path,
            "nothing named below the base directory: the base itself is never removed",
        ));
    };
    let Some(base_fd) = open_base(base)? else {
        return Ok(());
    };
    let base_meta = stat_fd(base_fd.as_fd()).map_err(|e| io_error("stat", base, e))?;
    let mut parent = base_fd;
    let mut parent_path = base.to_path_buf();
    for (_, name) in parents {
        parent_path.push(name);
        let Some(child) = open_child_dir(parent.as_fd(), OsStr::new(name), &parent_path)? else {
            return Ok(());
        };
        let meta = stat_fd(child.as_fd()).map_err(|e| io_error("stat", &parent_path, e))?;
        refuse_mount(&base_meta, &meta, &parent_path)?;
        parent = child;
    }
    let mut remover = Remover {
        mount: base_meta,
        changes_left: MAX_CHANGES,
    };
    remover.remove_entry(parent.as_fd(), &parent_path, OsStr::new(last))
}

/// Removes the entry `name` of the open directory `dir` (whose path, for messages, is
/// `dir_path`) the way [`remove_tree_under`] removes its last component: a symlink or a file is
/// unlinked (never followed), a directory is emptied and removed without following any symlink
/// inside it and without crossing into another mount (a mount point is an `UnsafePath` error
/// and nothing below it is touched). Missing is success. `name` must be one path component.
pub(crate) fn remove_child(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    name: &OsStr,
) -> Result<(), RuntimeError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(unsafe_path(
            &dir_path.join(name),
            "not exactly one path component below its directory",
        ));
    }
    let mount = stat_fd(dir).map_err(|e| io_error("stat", dir_path, e))?;
    let mut remover = Remover {
        mount,
        changes_left: MAX_CHANGES,
    };
    remover.remove_entry(dir, dir_path, name)
}

/// Removes the directories `base/components[..i]` for i from the full length down to 1, while
/// they are empty; stops quietly at the first one that is not (or cannot be opened).
pub(crate) fn remove_empty_dirs(base: &Path, components: &[(&str, &str)]) {
    for end in (1..=components.len()).rev() {
        let Some((name, parents)) = components[..end].split_last() else {
            return;
        };
        let Ok(Some((parent, _))) = open_dir_under(base, parents) else {
            return;
        };
        if unlinkat(parent.as_fd(), OsStr::new(name.1), UnlinkatFlags::RemoveDir).is_err() {
            return;
        }
    }
}

fn refuse_mount(reference: &Meta, meta: &Meta, path: &Path) -> Result<(), RuntimeError> {
    if meta.other_mount_than(reference) {
        Err(mount_point(path))
    } else {
        Ok(())
    }
}

fn mount_point(path: &Path) -> RuntimeError {
    unsafe_path(
        path,
        "it is a mount point (another filesystem or a bind mount): nothing below it is removed; \
         unmount it first",
    )
}

/// One directory being emptied.
struct Frame {
    fd: OwnedFd,
    meta: Meta,
    /// Name in the parent frame (empty for the top).
    name: OsString,
    /// Entries read but not yet handled.
    batch: Vec<OsString>,
}

/// An ancestor of the current frame; its descriptor is closed once it is more than
/// [`MAX_OPEN_ANCESTORS`] levels up, and reopened through `..` (checked) on the way back.
struct Ancestor {
    fd: Option<OwnedFd>,
    meta: Meta,
    name: OsString,
    batch: Vec<OsString>,
}

struct Remover {
    /// The mount everything removed must be on.
    mount: Meta,
    changes_left: u32,
}

impl Remover {
    fn changed(&mut self, path: &Path) -> Result<(), RuntimeError> {
        if self.changes_left == 0 {
            return Err(unsafe_path(
                path,
                "it keeps changing while being removed (something is writing to the tree)",
            ));
        }
        self.changes_left -= 1;
        Ok(())
    }

    /// Removes `name` in `parent`: unlinks anything but a directory, empties and removes a
    /// directory.
    fn remove_entry(
        &mut self,
        parent: BorrowedFd<'_>,
        parent_path: &Path,
        name: &OsStr,
    ) -> Result<(), RuntimeError> {
        let path = parent_path.join(name);
        loop {
            let meta = match stat_at(parent, name) {
                Ok(meta) => meta,
                Err(Errno::ENOENT) => return Ok(()),
                Err(e) => return Err(io_error("stat", &path, e)),
            };
            refuse_mount(&self.mount, &meta, &path)?;
            if !meta.is_dir() {
                match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => return Ok(()),
                    Err(Errno::EISDIR) => {
                        self.changed(&path)?;
                        continue;
                    }
                    Err(Errno::EBUSY) => return Err(mount_point(&path)),
                    Err(e) => return Err(io_error("remove", &path, e)),
                }
            }
            let dir = match openat(parent, name, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => return Ok(()),
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    self.changed(&path)?;
                    continue;
                }
                Err(e) => return Err(io_error("open directory", &path, e)),
            };
            let dir_meta = stat_fd(dir.as_fd()).map_err(|e| io_error("stat", &path, e))?;
            refuse_mount(&self.mount, &dir_meta, &path)?;
            self.empty_dir(dir, dir_meta, &path)?;
            match unlinkat(parent, name, UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => return Ok(()),
                Err(Errno::ENOTEMPTY | Errno::EEXIST) => {
                    self.changed(&path)?;
                    continue;
                }
                Err(Errno::EBUSY) => return Err(mount_point(&path)),
                Err(e) => return Err(io_error("remove directory", &path, e)),
            }
        }
    }

    /// Removes everything inside the directory `top` (opened, on the right mount) without
    /// recursion: a stack of frames, at most [`MAX_OPEN_ANCESTORS`] descriptors open.
    fn empty_dir(&mut self, top: OwnedFd, meta: Meta, top_path: &Path) -> Result<(), RuntimeError> {
        let mut ancestors: Vec<Ancestor> = Vec::new();
        let mut cur = Frame {
            fd: top,
            meta,
            name: OsString::new(),
            batch: Vec::new(),
        };
        loop {
            if cur.batch.is_empty() {
                let here = frame_path(top_path, &ancestors, &cur);
                cur.batch = read_batch(cur.fd.as_fd(), &here)?;
                if cur.batch.is_empty() {
                    // `cur` is empty: go back to its parent and remove it there.
                    let Some(parent) = ancestors.pop() else {
                        return Ok(());
                    };
                    let parent_fd = match parent.fd {
                        Some(fd) => fd,
                        None => reopen_parent(cur.fd.as_fd(), &parent.meta, &here)?,
                    };
                    let child = std::mem::replace(
                        &mut cur,
                        Frame {
                            fd: parent_fd,
                            meta: parent.meta,
                            name: parent.name,
                            batch: parent.batch,
                        },
                    );
                    match unlinkat(
                        cur.fd.as_fd(),
                        child.name.as_os_str(),
                        UnlinkatFlags::RemoveDir,
                    ) {
                        Ok(()) | Err(Errno::ENOENT) => {}
                        Err(Errno::ENOTEMPTY | Errno::EEXIST) => {
                            // Something was added after we listed it: go through it again.
                            self.changed(&here)?;
                            cur.batch.push(child.name);
                        }
                        Err(Errno::EBUSY) => return Err(mount_point(&here)),
                        Err(e) => return Err(io_error("remove directory", &here, e)),
                    }
                    continue;
                }
            }
            let Some(name) = cur.batch.pop() else {
                continue;
            };
            let entry_path = || frame_path(top_path, &ancestors, &cur).join(&name);
            let meta = match stat_at(cur.fd.as_fd(), &name) {
                Ok(meta) => meta,
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(io_error("stat", &entry_path(), e)),
            };
            refuse_mount(&self.mount, &meta, &entry_path())?;
            if !meta.is_dir() {
                match unlinkat(cur.fd.as_fd(), name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(Errno::EISDIR) => {
                        let path = entry_path();
                        self.changed(&path)?;
                        cur.batch.push(name);
                    }
                    Err(Errno::EBUSY) => return Err(mount_point(&entry_path())),
                    Err(e) => return Err(io_error("remove", &entry_path(), e)),
                }
                continue;
            }
            let child = match openat(cur.fd.as_fd(), name.as_os_str(), dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => continue,
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    let path = entry_path();
                    self.changed(&path)?;
                    cur.batch.push(name);
                    continue;
                }
                Err(e) => return Err(io_error("open directory", &entry_path(), e)),
            };
            let child_meta =
                stat_fd(child.as_fd()).map_err(|e| io_error("stat", &entry_path(), e))?;
            refuse_mount(&self.mount, &child_meta, &entry_path())?;
            let parent = std::mem::replace(
                &mut cur,
                Frame {
                    fd: child,
                    meta: child_meta,
                    name,
                    batch: Vec::new(),
                },
            );
            ancestors.push(Ancestor {
                fd: Some(parent.fd),
                meta: parent.meta,
                name: parent.name,
                batch: parent.batch,
            });
            if ancestors.len() > MAX_OPEN_ANCESTORS {
                let far = ancestors.len() - MAX_OPEN_ANCESTORS - 1;
                if let Some(ancestor) = ancestors.get_mut(far) {
                    ancestor.fd = None;
                }
            }
        }
    }
}

/// The path of the current frame, for messages.
fn frame_path(top: &Path, ancestors: &[Ancestor], cur: &Frame) -> PathBuf {
    let mut path = top.to_path_buf();
    for ancestor in ancestors.iter().skip(1) {
        path.push(&ancestor.name);
    }
    if !ancestors.is_empty() {
        path.push(&cur.name);
    }
    path
}

/// Reopens the parent of `child` through `..` and checks it is the directory recorded on the
/// way down (same device, inode and mount): if the container moved directories around, the
/// removal stops instead of working somewhere else.
fn reopen_parent(
    child: BorrowedFd<'_>,
    expected: &Meta,
    child_path: &Path,
) -> Result<OwnedFd, RuntimeError> {
    let fd = openat(child, "..", dir_flags(), Mode::empty())
        .map_err(|e| io_error("open the parent of", child_path, e))?;
    let meta = stat_fd(fd.as_fd()).map_err(|e| io_error("stat the parent of", child_path, e))?;
    if !meta.same_file(expected) || meta.other_mount_than(expected) {
        return Err(unsafe_path(
            child_path,
            "its parent directory changed during removal (a directory was moved)",
        ));
    }
    Ok(fd)
}

/// Up to [`READ_BATCH`] entry names of the directory `dir` (without `.` and `..`), read from
/// the start through a fresh descriptor.
fn read_batch(dir: BorrowedFd<'_>, path: &Path) -> Result<Vec<OsString>, RuntimeError> {
    read_names(dir, path, READ_BATCH)
}

/// The entry names of the directory `dir` (without `.` and `..`), at most `limit`.
pub(crate) fn read_names(
    dir: BorrowedFd<'_>,
    path: &Path,
    limit: usize,
) -> Result<Vec<OsString>, RuntimeError> {
    let mut listing = Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_error("open directory", path, e))?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let entry = entry.map_err(|e| io_error("read directory", path, e))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(OsString::from_vec(name.to_vec()));
        if names.len() >= limit {
            break;
        }
    }
    Ok(names)
}

/// What `statx` says about one file: type and mode, identity, and the mount it is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// `st_mode`: file type and permission bits.
    pub(crate) mode: u32,
    /// Device (`major << 32 | minor`).
    pub(crate) dev: u64,
    /// Inode number.
    pub(crate) ino: u64,
    /// Mount ID (`STATX_MNT_ID`, Linux 5.8+); `None` when the kernel does not report it, and
    /// then only a device change tells another mount (a same-filesystem bind mount is then not
    /// detected).
    pub(crate) mnt_id: Option<u64>,
}

impl Meta {
    fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    pub(crate) fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
    pub(crate) fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
    pub(crate) fn is_regular(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
    /// Same device and inode (Go's `os.SameFile`).
    pub(crate) fn same_file(&self, other: &Meta) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
    /// Whether this file lies on another mount than `reference` (another device, or another
    /// mount ID: a bind mount of the same filesystem).
    pub(crate) fn other_mount_than(&self, reference: &Meta) -> bool {
        self.dev != reference.dev
            || matches!((self.mnt_id, reference.mnt_id), (Some(a), Some(b)) if a != b)
    }
}

/// `statx(dir, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT)`: the entry itself, never what a
/// symlink points to. A mount point reports the root of what is mounted on it.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Meta, Errno> {
    let name = std::ffi::CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
    sys::statx(
        dir,
        &name,
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
    )
}

/// `statx(fd, "", AT_EMPTY_PATH)`: the file the descriptor refers to.
pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> Result<Meta, Errno> {
    sys::statx(
        fd,
        c"",
        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
    )
}

/// The one system call nix does not wrap here: `statx(2)`, for the mount ID.
#[allow(unsafe_code)]
mod sys {
    use std::ffi::CStr;
    use std::os::fd::{AsRawFd, BorrowedFd};

    use nix::errno::Errno;

    use super::Meta;

    pub(super) fn statx(
        dir: BorrowedFd<'_>,
        name: &CStr,
        flags: libc::c_int,
    ) -> Result<Meta, Errno> {
        let mask = libc::STATX_TYPE | libc::STATX_MODE | libc::STATX_INO | libc::STATX_MNT_ID;
        // SAFETY: `struct statx` holds only integers (and integer padding), so all-zero bytes
        // are a valid value.
        let mut buf: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: `dir` is an open descriptor borrowed for the whole call, `name` is a
        // NUL-terminated string that outlives the call, and `buf` is a live, writable
        // `struct statx` of the size the kernel writes for this ABI; the kernel writes nothing
        // else.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_statx,
                dir.as_raw_fd(),
                name.as_ptr(),
                flags,
                mask,
                &mut buf as *mut libc::statx,
            )
        };
        Errno::result(rc)?;
        let mnt_id = (buf.stx_mask & libc::STATX_MNT_ID != 0).then_some(buf.stx_mnt_id);
        Ok(Meta {
            mode: u32::from(buf.stx_mode),
            dev: (u64::from(buf.stx_dev_major) << 32) | u64::from(buf.stx_dev_minor),
            ino: buf.stx_ino,
            mnt_id,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {

    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use super::*;

    /// Whether the test may do what needs root; without root it prints a skip line, and with
    /// `CI` set it fails instead.
    pub(crate) fn have_root(test: &str) -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        if std::env::var_os("CI").is_some() {
            panic!("{test}: needs root (mounts, chown) and CI is set: run the tests as root");
        }
        eprintln!("skipping {test}: needs root");
        false
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn join_under_checks_every_component() {
        let base = Path::new("/var/lib/kubelet/pods");
        assert_eq!(
            join_under(base, &[("metadata.uid", "abc"), ("dir", "volumes")]).unwrap(),
            Path::new("/var/lib/kubelet/pods/abc/volumes")
        );
        for bad in ["", ".", "..", "a/b", "/abs", "a\0b", &"x".repeat(256)] {
            let err =
                join_under(base, &[("metadata.uid", "ok"), ("volume name", bad)]).unwrap_err();
            match err {
                RuntimeError::UnsafePath { path, reason } => {
                    assert_eq!(path, Path::new("/var/lib/kubelet/pods/ok"), "{bad:?}");
                    assert!(reason.starts_with("volume name "), "{reason}");
                }
                other => panic!("{bad:?}: {other}"),
            }
        }
        assert_eq!(join_under(base, &[]).unwrap(), base);
    }

    #[test]
    fn create_dir_under_sets_exact_modes_despite_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let path =
            create_dir_under(tmp.path(), &[("a", "a"), ("b", "b"), ("c", "c")], 0o777).unwrap();
        assert_eq!(path, tmp.path().join("a/b/c"));
        for p in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode_of(&tmp.path().join(p)), 0o777, "{p}");
        }
        // setgid and sticky bits survive too.
        create_dir_under(tmp.path(), &[("d", "d")], 0o3770).unwrap();
        assert_eq!(mode_of(&tmp.path().join("d")), 0o3770);
    }

    #[test]
    fn create_dir_under_is_idempotent_and_leaves_existing_dirs_alone() {
        let tmp = tempfile::tempdir().unwrap();
        create_dir_under(tmp.path(), &[("a", "a"), ("b", "b")], 0o750).unwrap();
        std::fs::set_permissions(
            tmp.path().join("a/b"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::fs::write(tmp.path().join("a/b/keep"), b"x").unwrap();
        let again = create_dir_under(tmp.path(), &[("a", "a"), ("b", "b")], 0o750).unwrap();
        assert_eq!(again, tmp.path().join("a/b"));
        assert_eq!(mode_of(&tmp.path().join("a/b")), 0o700);
        assert!(tmp.path().join("a/b/keep").exists());
        let created = create_dirs(tmp.path(), &[("a", "a"), ("b", "b")], 0o750, 0o750).unwrap();
        assert!(!created.created);
    }

    #[test]
    fn create_dir_under_refuses_symlinks_and_files_below_the_base() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("a")).unwrap();
        symlink(outside.path(), tmp.path().join("a/link")).unwrap();
        std::fs::write(tmp.path().join("a/file"), b"").unwrap();

        let err = create_dir_under(tmp.path(), &[("a", "a"), ("l", "link"), ("x", "x")], 0o755)
            .unwrap_err();
        match err {
            RuntimeError::UnsafePath { path, reason } => {
                assert_eq!(path, tmp.path().join("a/link"));
                assert!(reason.contains("symlink"), "{reason}");
            }
            other => panic!("{other}"),
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);

        // The symlink as the final component is refused too.
        let err = create_dir_under(tmp.path(), &[("a", "a"), ("l", "link")], 0o755).unwrap_err();
        assert!(matches!(err, RuntimeError::UnsafePath { .. }), "{err}");

        let err = create_dir_under(tmp.path(), &[("a", "a"), ("f", "file")], 0o755).unwrap_err();
        match err {
            RuntimeError::UnsafePath { path, reason } => {
                assert_eq!(path, tmp.path().join("a/file"));
                assert!(reason.contains("not a directory"), "{reason}");
            }
            other => panic!("{other}"),
        }
        // Bad components are refused before anything is created.
        let err = create_dir_under(tmp.path(), &[("a", "new"), ("volume name", "..")], 0o755)
            .unwrap_err();
        assert!(matches!(err, RuntimeError::UnsafePath { .. }), "{err}");
        assert!(!tmp.path().join("new").exists());
    }

    #[test]
    fn create_dir_under_needs_an_existing_base() {
        let tmp = tempfile::tempdir().unwrap();
        let err = create_dir_under(&tmp.path().join("missing"), &[("a", "a")], 0o755).unwrap_err();
        match err {
            RuntimeError::Io { source, path, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
                assert_eq!(path, tmp.path().join("missing"));
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn create_dir_under_follows_a_symlinked_base() {
        // The base is trusted configuration (e.g. /var/lib/kubelet -> /data/kubelet).
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("base")).unwrap();
        create_dir_under(&tmp.path().join("base"), &[("a", "a")], 0o700).unwrap();
        assert!(tmp.path().join("real/a").is_dir());
    }

    #[test]
    fn remove_tree_under_removes_files_dirs_and_symlinks_without_following() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"keep").unwrap();
        let tree = tmp.path().join("pod/volumes");
        std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
        std::fs::write(tree.join("a/b/c/f"), b"1").unwrap();
        std::fs::write(tree.join("a/g"), b"2").unwrap();
        symlink(outside.path(), tree.join("a/b/out")).unwrap();
        symlink(outside.path().join("precious"), tree.join("a/file-link")).unwrap();
        // A directory without any permission is still removed (we are root or its owner).
        std::fs::create_dir(tree.join("a/locked")).unwrap();
        std::fs::write(tree.join("a/locked/x"), b"").unwrap();
        std::fs::set_permissions(
            tree.join("a/locked"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();

        remove_tree_under(tmp.path(), &[("uid", "pod"), ("d", "volumes")]).unwrap();
        assert!(!tree.exists());
        assert!(tmp.path().join("pod").is_dir());
        assert_eq!(
            std::fs::read(outside.path().join("precious")).unwrap(),
            b"keep"
        );
        // Missing is success, also for a missing parent.
        remove_tree_under(tmp.path(), &[("uid", "pod"), ("d", "volumes")]).unwrap();
        remove_tree_under(tmp.path(), &[("uid", "nope"), ("d", "volumes")]).unwrap();
        remove_tree_under(&tmp.path().join("nobase"), &[("uid", "pod")]).unwrap();
    }

    #[test]
    fn remove_tree_under_unlinks_a_final_symlink_and_refuses_an_intermediate_one() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(outside.path().join("volumes")).unwrap();
        std::fs::write(outside.path().join("volumes/precious"), b"keep").unwrap();
        symlink(outside.path(), tmp.path().join("pod")).unwrap();

        let err = remove_tree_under(tmp.path(), &[("uid", "pod"), ("d", "volumes")]).unwrap_err();
        match err {
            RuntimeError::UnsafePath { path, .. } => assert_eq!(path, tmp.path().join("pod")),
            other => panic!("{other}"),
        }
        remove_tree_under(tmp.path(), &[("uid", "pod")]).unwrap();
        assert!(std::fs::symlink_metadata(tmp.path().join("pod")).is_err());
        assert_eq!(
            std::fs::read(outside.path().join("volumes/precious")).unwrap(),
            b"keep"
        );
    }

    #[test]
    fn remove_tree_under_handles_deep_and_wide_trees() {
        let tmp = tempfile::tempdir().unwrap();
        // Deeper than the descriptor window, so the walk goes back up through checked `..`.
        let depth = MAX_OPEN_ANCESTORS * 3 + 5;
        let mut deep = tmp.path().join("t");
        for i in 0..depth {
            deep.push(format!("d{i}"));
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("leaf"), b"").unwrap();
        // More entries than one read batch.
        let wide = tmp.path().join("t/wide");
        std::fs::create_dir(&wide).unwrap();
        for i in 0..(READ_BATCH * 2 + 7) {
            std::fs::write(wide.join(format!("f{i}")), b"").unwrap();
        }
        remove_tree_under(tmp.path(), &[("t", "t")]).unwrap();
        assert!(!tmp.path().join("t").exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn remove_tree_under_never_removes_the_base() {
        let tmp = tempfile::tempdir().unwrap();
        let err = remove_tree_under(tmp.path(), &[]).unwrap_err();
        assert!(matches!(err, RuntimeError::UnsafePath { .. }), "{err}");
        assert!(tmp.path().is_dir());
        let err = remove_tree_under(tmp.path(), &[("uid", "..")]).unwrap_err();
        assert!(matches!(err, RuntimeError::UnsafePath { .. }), "{err}");
        assert!(tmp.path().is_dir());
    }

    #[test]
    fn remove_tree_under_refuses_a_mount_point_inside() {
        if !have_root("remove_tree_under_refuses_a_mount_point_inside") {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let source = tempfile::tempdir().unwrap();
        std::fs::write(source.path().join("precious"), b"keep").unwrap();
        let mnt = tmp.path().join("pod/a/mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        std::fs::write(tmp.path().join("pod/a/other"), b"").unwrap();
        nix::mount::mount(
            Some(source.path()),
            &mnt,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        let result = remove_tree_under(tmp.path(), &[("uid", "pod")]);
        let still_mounted = std::fs::read(mnt.join("precious"));
        nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH).unwrap();
        match result.unwrap_err() {
            RuntimeError::UnsafePath { path, reason } => {
                assert_eq!(path, mnt);
                assert!(reason.contains("mount point"), "{reason}");
            }
            other => panic!("{other}"),
        }
        assert_eq!(still_mounted.unwrap(), b"keep");
        assert_eq!(
            std::fs::read(source.path().join("precious")).unwrap(),
            b"keep"
        );
        // Unmounted, the same call succeeds.
        remove_tree_under(tmp.path(), &[("uid", "pod")]).unwrap();
        assert!(!tmp.path().join("pod").exists());
    }

    #[test]
    fn stat_reports_mount_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let fd = open_base(tmp.path()).unwrap().unwrap();
        let meta = stat_fd(fd.as_fd()).unwrap();
        assert!(meta.is_dir());
        assert!(meta.mnt_id.is_some(), "kernel without STATX_MNT_ID");
        let meta_path = std::fs::metadata(tmp.path()).unwrap();
        assert_eq!(meta.ino, meta_path.ino());
        std::fs::write(tmp.path().join("f"), b"").unwrap();
        let f = stat_at(fd.as_fd(), OsStr::new("f")).unwrap();
        assert!(f.is_regular());
        assert!(!f.other_mount_than(&meta));
    }
}
