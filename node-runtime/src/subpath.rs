//! Safe `subPath` mounts, the kubelet's way (`pkg/volume/util/subpath/subpath_linux.go`): the
//! subpath is opened component by component below the volume root without following symlinks,
//! and the opened file is bind-mounted (through `/proc/self/fd/N`) onto a directory the agent
//! owns, `<podDir>/volume-subpaths/<volume>/<container>/<index>`, which is what the runtime
//! mounts. A symlink swapped in between the check and the mount cannot escape the volume.
//!
//! Flow for one `volumeMounts[i]` with a `subPath` (the kubelet's `makeMounts` in
//! `pkg/kubelet/kubelet_pods.go`):
//!
//! 1. [`validate_sub_path`]: not absolute, no `..` element (the kubelet's user-facing texts).
//! 2. [`ensure_subpath_dir`]: create the subpath as directories if it is missing, like
//!    `SafeMakeDir` with the mode of the volume root (the kubelet shows
//!    `failed to create subPath directory for volumeMount %q of container %q` on failure).
//! 3. [`prepare_subpath`]: open it without escaping the volume and bind-mount it onto the
//!    target (the kubelet shows `failed to prepare subPath for volumeMount %q of container %q`).
//!    It runs steps 1 and 2 itself, so a caller that does not need the two messages apart can
//!    call it alone.
//! 4. When the pod's volumes are torn down: [`clean_subpaths`] (or [`clean_volume_subpaths`],
//!    the kubelet's `CleanSubPaths`), before the pod directory is removed.
//!
//! **Symlinks inside the volume.** The kubelet resolves the subpath with `EvalSymlinks` and
//! then opens the *resolved* path refusing any symlink; so a symlink whose target stays inside
//! the volume is accepted, and one that leaves it is refused. This matters: a `configMap` or
//! `secret` volume is made of symlinks (`key -> ..data/key`, `..data -> ..2024_...`), and
//! `subPath: key` on such a volume is common. Resolving first and opening later leaves a window
//! the kubelet closes by refusing symlinks in the second walk. Here both happen in one walk on
//! descriptors: each component is opened with `O_PATH | O_NOFOLLOW` relative to the directory
//! opened before it; a symlink is read from the descriptor that was opened (`readlinkat(fd,
//! "")`, so it is the link we looked at) and its target is resolved by the same walk, `..`
//! by going back to the directory the walk came from, an absolute target only if it lies below
//! the volume root's real path (it is then walked from the volume root). Nothing is ever
//! resolved by the kernel across a symlink, so a swap at any moment either shows the walk a
//! directory (which it then holds open) or a symlink (which it checks). Accepted: exactly the
//! symlinks whose resolution stays inside the volume; refused: any step outside, even a
//! temporary one (`a -> ../vol/b` is refused where the kubelet, resolving lexically on the host,
//! would accept it), and more than 40 symlinks (Linux's limit; Go allows 255).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, fchmod};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::error::RuntimeError;
use crate::safe_fs::{
    Meta, create_dirs, ensure_dir, io_error, join_under, open_base, open_child_dir, read_names,
    remove_empty_dirs, stat_at, stat_fd, unsafe_path,
};
use crate::validation::check_path_component;

/// The directory below a pod's directory that holds the subpath bind mounts.
pub const SUBPATHS_DIR: &str = "volume-subpaths";

/// Mode of the directories under [`SUBPATHS_DIR`] and of a directory target (the kubelet's).
pub const SUBPATH_DIR_MODE: u32 = 0o750;

/// Mode of the empty file a non-directory subpath is mounted onto (the kubelet's).
pub const SUBPATH_FILE_MODE: u32 = 0o640;

/// Longest subPath accepted (`PATH_MAX - 1`); the kubelet fails on longer ones when it stats
/// the joined path.
const MAX_SUB_PATH: usize = 4095;

/// Symlinks followed while resolving one subPath (Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// How many mounts stacked on one target are unmounted before giving up.
const MAX_STACKED_MOUNTS: usize = 16;

/// How many directory entries a cleanup reads per directory (these are the agent's own
/// directories: one per volume, container or mount index).
const MAX_ENTRIES: usize = 1 << 16;

/// The kubelet's checks on a non-empty `subPath` (or expanded `subPathExpr`), in its order and
/// with its user-facing texts (`makeMounts`, `pkg/kubelet/kubelet_pods.go`, and
/// `ValidatePathNoBacksteps`, `pkg/volume/validation/pv_validation.go`): an absolute path gives
/// ``error SubPath `<p>` must not be an absolute path``, any `/`-separated element equal to `..`
/// gives ``unable to provision SubPath `<p>`: must not contain '..'`` (`a..b` is fine).
pub fn validate_sub_path(sub_path: &str) -> Result<(), String> {
    if sub_path.starts_with('/') {
        return Err(format!(
            "error SubPath `{sub_path}` must not be an absolute path"
        ));
    }
    if sub_path.split('/').any(|element| element == "..") {
        return Err(format!(
            "unable to provision SubPath `{sub_path}`: must not contain '..'"
        ));
    }
    Ok(())
}

/// The components of a subPath: [`validate_sub_path`], then the node's own limits (not empty,
/// no NUL, each element at most 255 bytes, at most 4095 bytes in all). Empty and `.` elements
/// are dropped like Go's `filepath.Join` does; no component left means the volume root.
fn sub_path_components(sub_path: &str) -> Result<Vec<OsString>, String> {
    validate_sub_path(sub_path)?;
    if sub_path.is_empty() {
        return Err("subPath must not be empty".to_owned());
    }
    if sub_path.len() > MAX_SUB_PATH {
        return Err(format!(
            "subPath is {} bytes long, more than the {MAX_SUB_PATH} a path may have",
            sub_path.len()
        ));
    }
    let mut components = Vec::new();
    for element in sub_path.split('/') {
        if element.is_empty() || element == "." {
            continue;
        }
        check_path_component("subPath element", element)?;
        components.push(OsString::from(element));
    }
    Ok(components)
}

/// `volume_path` joined with `sub_path` for messages (never used to open anything).
fn display_path(volume_path: &Path, sub_path: &str) -> PathBuf {
    volume_path.join(sub_path.trim_start_matches('/'))
}

/// Creates the subpath below `volume_path` as directories if it (or part of it) is missing,
/// the kubelet's `SafeMakeDir(subPath, volumePath, mode of the volume root)`: every directory
/// created gets exactly the volume root's mode (permission, setgid and sticky bits), each one
/// is created with `mkdirat` relative to its parent's descriptor and opened again with
/// `O_NOFOLLOW`, and symlinks are resolved only inside the volume (see the module docs).
/// Nothing is created outside the volume. Does nothing when the subpath exists.
pub fn ensure_subpath_dir(volume_path: &Path, sub_path: &str) -> Result<(), RuntimeError> {
    let components = sub_path_components(sub_path)
        .map_err(|reason| unsafe_path(&display_path(volume_path, sub_path), reason))?;
    let volume = Volume::open(volume_path)?;
    volume.resolve(components, true).map(drop)
}

/// Where the subpath of `volume_name` for `container_name`'s mount `mount_index` is mounted:
/// `<pod_dir>/volume-subpaths/<volume>/<container>/<index>` (names checked).
pub fn subpath_target(
    pod_dir: &Path,
    volume_name: &str,
    container_name: &str,
    mount_index: usize,
) -> Result<PathBuf, RuntimeError> {
    join_under(
        pod_dir,
        &[
            ("subpaths directory", SUBPATHS_DIR),
            ("volume name", volume_name),
            ("container name", container_name),
            ("volume mount index", &mount_index.to_string()),
        ],
    )
}

/// The kubelet's `PrepareSafeSubpath` (`doBindSubPath`): checks `sub_path`
/// ([`validate_sub_path`]), creates it if missing ([`ensure_subpath_dir`]), opens it below
/// `volume_path` without leaving the volume (see the module docs), and bind-mounts the opened
/// file through `/proc/self/fd/<fd>` onto
/// `<pod_dir>/volume-subpaths/<volume_name>/<container_name>/<mount_index>`: a directory
/// (0750) for a directory, an empty file (0640) for anything else, parents 0750. Returns that
/// target, which is what the runtime mounts into the container.
///
/// Idempotent: a target already mounted from the same file (device and inode) is reused; one
/// mounted from something else is unmounted and mounted again. On failure after the target was
/// prepared it is unmounted and removed with the empty directories above it. The mount is
/// checked after it is made (the target must show the opened file).
///
/// `volume_path` is the agent's own path of the volume (trusted; it is opened as given);
/// `volume_name` and `container_name` are checked again as single path components.
pub fn prepare_subpath(
    volume_path: &Path,
    sub_path: &str,
    pod_dir: &Path,
    volume_name: &str,
    container_name: &str,
    mount_index: usize,
) -> Result<PathBuf, RuntimeError> {
    let index = mount_index.to_string();
    let dir_components = [
        ("subpaths directory", SUBPATHS_DIR),
        ("volume name", volume_name),
        ("container name", container_name),
    ];
    // Check every name before touching anything.
    let target = subpath_target(pod_dir, volume_name, container_name, mount_index)?;
    let components = sub_path_components(sub_path)
        .map_err(|reason| unsafe_path(&display_path(volume_path, sub_path), reason))?;

    let volume = Volume::open(volume_path)?;
    let source = volume.resolve(components, true)?;
    let source_path = display_path(volume_path, sub_path);
    let source_meta = stat_fd(source.as_fd()).map_err(|e| io_error("stat", &source_path, e))?;

    let dir = create_dirs(pod_dir, &dir_components, SUBPATH_DIR_MODE, SUBPATH_DIR_MODE)?;
    let dir_meta = stat_fd(dir.fd.as_fd()).map_err(|e| io_error("stat", &dir.path, e))?;
    let bound = Target {
        dir: dir.fd.as_fd(),
        dir_meta,
        name: OsStr::new(&index),
        path: &target,
    };
    match bound.prepare(&source_meta) {
        Ok(Prepared::AlreadyMounted) => return Ok(target),
        Ok(Prepared::Ready) => {}
        Err(e) => {
            bound.discard();
            remove_empty_dirs(pod_dir, &dir_components);
            return Err(e);
        }
    }
    if let Err(e) = bound.bind(source.as_fd(), &source_meta) {
        bound.discard();
        remove_empty_dirs(pod_dir, &dir_components);
        return Err(e);
    }
    Ok(target)
}

/// Unmounts every subpath mount of the pod (`<pod_dir>/volume-subpaths/*/*/*`, lazily when the
/// mount is busy) and removes the directories, `volume-subpaths` included when it ends up
/// empty. Symlinks are never followed (a stray one is unlinked). Carries on after an error and
/// returns the first one. A missing directory is success.
pub fn clean_subpaths(pod_dir: &Path) -> Result<(), RuntimeError> {
    clean(pod_dir, None, None)
}

/// The kubelet's `CleanSubPaths(podDir, volumeName)`: [`clean_subpaths`] for one volume.
pub fn clean_volume_subpaths(pod_dir: &Path, volume_name: &str) -> Result<(), RuntimeError> {
    check_path_component("volume name", volume_name)
        .map_err(|reason| unsafe_path(&pod_dir.join(SUBPATHS_DIR), reason))?;
    clean(pod_dir, Some(volume_name), None)
}

/// [`clean_subpaths`] for one container's mounts in every volume (for a container removed from
/// the pod; a restarted container reuses its mounts, so it does not need this).
pub fn clean_container_subpaths(pod_dir: &Path, container_name: &str) -> Result<(), RuntimeError> {
    check_path_component("container name", container_name)
        .map_err(|reason| unsafe_path(&pod_dir.join(SUBPATHS_DIR), reason))?;
    clean(pod_dir, None, Some(container_name))
}

/// Keeps the first error of a cleanup that carries on.
struct FirstError(Option<RuntimeError>);

impl FirstError {
    fn note(&mut self, result: Result<(), RuntimeError>) {
        if let Err(e) = result {
            if self.0.is_none() {
                self.0 = Some(e);
            } else {
                tracing::warn!(error = %e, "subpath cleanup");
            }
        }
    }
    fn finish(self) -> Result<(), RuntimeError> {
        self.0.map_or(Ok(()), Err)
    }
}

fn clean(
    pod_dir: &Path,
    only_volume: Option<&str>,
    only_container: Option<&str>,
) -> Result<(), RuntimeError> {
    let Some(pod) = open_base(pod_dir)? else {
        return Ok(());
    };
    let subpaths_path = pod_dir.join(SUBPATHS_DIR);
    let Some(subpaths) = open_child_dir(pod.as_fd(), OsStr::new(SUBPATHS_DIR), &subpaths_path)?
    else {
        return Ok(());
    };
    let subpaths_meta =
        stat_fd(subpaths.as_fd()).map_err(|e| io_error("stat", &subpaths_path, e))?;
    let mut errors = FirstError(None);
    let volumes = match only_volume {
        Some(volume) => vec![OsString::from(volume)],
        None => read_names(subpaths.as_fd(), &subpaths_path, MAX_ENTRIES)?,
    };
    for volume in volumes {
        let level = Level {
            fd: subpaths.as_fd(),
            meta: subpaths_meta,
            path: &subpaths_path,
        };
        errors.note(clean_volume(&level, &volume, only_container));
    }
    // Like the kubelet: `volume-subpaths` goes when empty; not empty is no error.
    match unlinkat(
        pod.as_fd(),
        OsStr::new(SUBPATHS_DIR),
        UnlinkatFlags::RemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT | Errno::ENOTEMPTY | Errno::EEXIST) => {}
        Err(e) => errors.note(Err(io_error("remove directory", &subpaths_path, e))),
    }
    errors.finish()
}

/// A directory of the cleanup walk.
struct Level<'a> {
    fd: BorrowedFd<'a>,
    meta: Meta,
    path: &'a Path,
}

/// Cleans `<volume-subpaths>/<volume>`: every container directory, then the volume directory.
fn clean_volume(
    subpaths: &Level<'_>,
    volume: &OsStr,
    only_container: Option<&str>,
) -> Result<(), RuntimeError> {
    let volume_path = subpaths.path.join(volume);
    let Some(meta) = entry_meta(subpaths, volume, &volume_path)? else {
        return Ok(());
    };
    if !meta.is_dir() || meta.other_mount_than(&subpaths.meta) {
        // Not something the agent made here: unmount / unlink it like a mount target.
        return cleanup_mount_point(subpaths, volume);
    }
    let Some(fd) = open_child_dir(subpaths.fd, volume, &volume_path)? else {
        return Ok(());
    };
    let level = Level {
        fd: fd.as_fd(),
        meta,
        path: &volume_path,
    };
    let mut errors = FirstError(None);
    let containers = match only_container {
        Some(container) => vec![OsString::from(container)],
        None => read_names(fd.as_fd(), &volume_path, MAX_ENTRIES)?,
    };
    for container in containers {
        errors.note(clean_container(&level, &container));
    }
    match unlinkat(subpaths.fd, volume, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        // Another container's mounts stay when only one container is cleaned.
        Err(Errno::ENOTEMPTY | Errno::EEXIST) if only_container.is_some() => {}
        Err(e) => errors.note(Err(io_error("remove directory", &volume_path, e))),
    }
    errors.finish()
}

/// Cleans `<volume>/<container>`: unmounts and removes every index entry, then the directory.
fn clean_container(volume: &Level<'_>, container: &OsStr) -> Result<(), RuntimeError> {
    let container_path = volume.path.join(container);
    let Some(meta) = entry_meta(volume, container, &container_path)? else {
        return Ok(());
    };
    if !meta.is_dir() || meta.other_mount_than(&volume.meta) {
        return cleanup_mount_point(volume, container);
    }
    let Some(fd) = open_child_dir(volume.fd, container, &container_path)? else {
        return Ok(());
    };
    let level = Level {
        fd: fd.as_fd(),
        meta,
        path: &container_path,
    };
    let mut errors = FirstError(None);
    for index in read_names(fd.as_fd(), &container_path, MAX_ENTRIES)? {
        errors.note(cleanup_mount_point(&level, &index));
    }
    match unlinkat(volume.fd, container, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => errors.note(Err(io_error("remove directory", &container_path, e))),
    }
    errors.finish()
}

fn entry_meta(dir: &Level<'_>, name: &OsStr, path: &Path) -> Result<Option<Meta>, RuntimeError> {
    match stat_at(dir.fd, name) {
        Ok(meta) => Ok(Some(meta)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(io_error("stat", path, e)),
    }
}

/// The kubelet's `CleanupMountPoint` for one entry: unmount while it is a mount point (lazily
/// when busy), then remove it (an empty directory, a file or a symlink; never followed).
fn cleanup_mount_point(dir: &Level<'_>, name: &OsStr) -> Result<(), RuntimeError> {
    let path = dir.path.join(name);
    for _ in 0..MAX_STACKED_MOUNTS {
        let Some(meta) = entry_meta(dir, name, &path)? else {
            return Ok(());
        };
        if meta.other_mount_than(&dir.meta) {
            unmount_entry(dir.fd, name, &path)?;
            continue;
        }
        let flags = if meta.is_dir() {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        return match unlinkat(dir.fd, name, flags) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(io_error("remove", &path, e)),
        };
    }
    Err(unsafe_path(
        &path,
        format!("still a mount point after {MAX_STACKED_MOUNTS} unmounts"),
    ))
}

/// Unmounts the mount on `name` in `dir` (the path goes through the directory's descriptor and
/// the last component is not followed), lazily (`MNT_DETACH`) when it is busy. Not mounted
/// (`EINVAL`) is success: the caller checks again.
fn unmount_entry(dir: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<(), RuntimeError> {
    let mut through_fd = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    through_fd.extend_from_slice(name.as_bytes());
    let through_fd = PathBuf::from(OsString::from_vec(through_fd));
    match nix::mount::umount2(&through_fd, MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) | Err(Errno::EINVAL) => Ok(()),
        Err(Errno::EBUSY) => {
            match nix::mount::umount2(
                &through_fd,
                MntFlags::UMOUNT_NOFOLLOW | MntFlags::MNT_DETACH,
            ) {
                Ok(()) | Err(Errno::EINVAL) => Ok(()),
                Err(e) => Err(io_error("lazily unmount", path, e)),
            }
        }
        Err(e) => Err(io_error("unmount", path, e)),
    }
}

/// The volume root, opened, with what the walk needs to know about it.
struct Volume<'a> {
    path: &'a Path,
    root: OwnedFd,
    /// Its real path (from `/proc/self/fd`), against which absolute symlink targets are
    /// checked.
    real: PathBuf,
    /// Its mode (permission, setgid and sticky bits), given to directories created in it.
    mode: u32,
}

impl<'a> Volume<'a> {
    fn open(path: &'a Path) -> Result<Self, RuntimeError> {
        let root = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error("open volume directory", path, e))?;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", root.as_raw_fd())).map_err(
            |source| RuntimeError::Io {
                action: "resolve (through /proc/self/fd) volume directory",
                path: path.to_path_buf(),
                source,
            },
        )?;
        let meta = stat_fd(root.as_fd()).map_err(|e| io_error("stat", path, e))?;
        Ok(Self {
            path,
            root,
            real,
            mode: meta.mode & 0o7777,
        })
    }

    /// Opens `components` below the root without leaving it (see the module docs), creating
    /// missing directories when `create` is set. Returns the final descriptor (`O_PATH`, or
    /// `O_RDONLY` for a directory created here).
    fn resolve(&self, components: Vec<OsString>, create: bool) -> Result<OwnedFd, RuntimeError> {
        let mut pending: VecDeque<OsString> = components.into();
        // The real components from the root to `current`, none of them a symlink.
        let mut resolved: Vec<OsString> = Vec::new();
        let mut current: Option<OwnedFd> = None;
        let mut symlinks = 0;
        while let Some(component) = pending.pop_front() {
            if component.is_empty() || component == "." {
                continue;
            }
            if component == ".." {
                if resolved.pop().is_none() {
                    return Err(unsafe_path(
                        self.path,
                        "a symlink in the subPath leads out of the volume through '..'",
                    ));
                }
                current = self.reopen(&resolved)?;
                continue;
            }
            let here = self.display(&resolved, &component);
            let parent = current.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
            let fd = match openat(
                parent,
                component.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => ensure_dir(parent, &component, &here, self.mode)?.0,
                Err(e) => return Err(io_error("open", &here, e)),
            };
            let meta = stat_fd(fd.as_fd()).map_err(|e| io_error("stat", &here, e))?;
            if meta.is_symlink() {
                symlinks += 1;
                if symlinks > MAX_SYMLINKS {
                    return Err(unsafe_path(
                        &here,
                        format!("more than {MAX_SYMLINKS} symlinks while resolving the subPath"),
                    ));
                }
                // The link we opened, not whatever is at that name now.
                let target = readlinkat(&fd, "").map_err(|e| io_error("read symlink", &here, e))?;
                let target = PathBuf::from(target);
                let rest: &Path = if target.is_absolute() {
                    let Ok(rest) = target.strip_prefix(&self.real) else {
                        return Err(unsafe_path(
                            &here,
                            format!(
                                "it is a symlink to {}, outside the volume",
                                target.display()
                            ),
                        ));
                    };
                    resolved.clear();
                    current = None;
                    rest
                } else {
                    &target
                };
                for element in rest.as_os_str().as_bytes().rsplit(|b| *b == b'/') {
                    pending.push_front(OsString::from_vec(element.to_vec()));
                }
                continue;
            }
            resolved.push(component);
            current = Some(fd);
        }
        match current {
            Some(fd) => Ok(fd),
            None => self.root.try_clone().map_err(|source| RuntimeError::Io {
                action: "duplicate the descriptor of",
                path: self.path.to_path_buf(),
                source,
            }),
        }
    }

    /// Opens `resolved` again from the root (after `..`), refusing any symlink: these were
    /// directories a moment ago, a symlink now means the volume is being changed under us.
    fn reopen(&self, resolved: &[OsString]) -> Result<Option<OwnedFd>, RuntimeError> {
        let mut current: Option<OwnedFd> = None;
        let mut path = self.path.to_path_buf();
        for component in resolved {
            path.push(component);
            let parent = current.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
            let fd = match openat(
                parent,
                component.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(e @ (Errno::ELOOP | Errno::ENOTDIR | Errno::ENOENT)) => {
                    return Err(unsafe_path(
                        &path,
                        format!("it changed while the subPath was being resolved ({e})"),
                    ));
                }
                Err(e) => return Err(io_error("open", &path, e)),
            };
            current = Some(fd);
        }
        Ok(current)
    }

    fn display(&self, resolved: &[OsString], component: &OsStr) -> PathBuf {
        let mut path = self.path.to_path_buf();
        path.extend(resolved);
        path.push(component);
        path
    }
}

/// What [`Target::prepare`] found.
enum Prepared {
    /// Already a mount of the same file: nothing to do.
    AlreadyMounted,
    /// A directory or an empty file ready to be mounted on.
    Ready,
}

/// The bind-mount target `<dir>/<name>`.
struct Target<'a> {
    dir: BorrowedFd<'a>,
    dir_meta: Meta,
    name: &'a OsStr,
    path: &'a Path,
}

impl Target<'_> {
    /// The kubelet's `prepareSubpathTarget`: reuse a mount of the same file, unmount a mount of
    /// another one, then make a directory (for a directory source) or an empty file.
    fn prepare(&self, source: &Meta) -> Result<Prepared, RuntimeError> {
        let mut stacked = 0;
        loop {
            let meta = match stat_at(self.dir, self.name) {
                Ok(meta) => meta,
                Err(Errno::ENOENT) => break,
                Err(e) => return Err(io_error("stat", self.path, e)),
            };
            if meta.other_mount_than(&self.dir_meta) {
                if meta.same_file(source) {
                    return Ok(Prepared::AlreadyMounted);
                }
                stacked += 1;
                if stacked > MAX_STACKED_MOUNTS {
                    return Err(unsafe_path(
                        self.path,
                        format!("still a mount point after {MAX_STACKED_MOUNTS} unmounts"),
                    ));
                }
                unmount_entry(self.dir, self.name, self.path)?;
                continue;
            }
            let fits = if source.is_dir() {
                meta.is_dir()
            } else {
                meta.is_regular()
            };
            if fits {
                return Ok(Prepared::Ready);
            }
            // The source changed type since the last mount (or something else is there).
            let flags = if meta.is_dir() {
                UnlinkatFlags::RemoveDir
            } else {
                UnlinkatFlags::NoRemoveDir
            };
            match unlinkat(self.dir, self.name, flags) {
                Ok(()) | Err(Errno::ENOENT) => break,
                Err(e) => return Err(io_error("remove stale subpath target", self.path, e)),
            }
        }
        if source.is_dir() {
            ensure_dir(self.dir, self.name, self.path, SUBPATH_DIR_MODE)?;
        } else {
            let file = openat(
                self.dir,
                self.name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(SUBPATH_FILE_MODE),
            )
            .map_err(|e| io_error("create subpath target file", self.path, e))?;
            fchmod(&file, Mode::from_bits_truncate(SUBPATH_FILE_MODE))
                .map_err(|e| io_error("set the mode of", self.path, e))?;
        }
        Ok(Prepared::Ready)
    }

    /// Bind-mounts `source` onto the target, both through `/proc/self/fd` (so neither path is
    /// looked up again), then checks the target shows the source.
    fn bind(&self, source: BorrowedFd<'_>, source_meta: &Meta) -> Result<(), RuntimeError> {
        let target = openat(
            self.dir,
            self.name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error("open subpath target", self.path, e))?;
        let target_meta = stat_fd(target.as_fd()).map_err(|e| io_error("stat", self.path, e))?;
        if target_meta.is_symlink() || target_meta.is_dir() != source_meta.is_dir() {
            return Err(unsafe_path(
                self.path,
                "the subpath target changed type before the mount",
            ));
        }
        let from = format!("/proc/self/fd/{}", source.as_raw_fd());
        let onto = format!("/proc/self/fd/{}", target.as_raw_fd());
        nix::mount::mount(
            Some(from.as_str()),
            onto.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| io_error("bind-mount the subpath onto", self.path, e))?;
        let mounted = stat_at(self.dir, self.name).map_err(|e| io_error("stat", self.path, e))?;
        if !mounted.other_mount_than(&self.dir_meta) || !mounted.same_file(source_meta) {
            return Err(unsafe_path(
                self.path,
                "after the bind mount the target does not show the subpath",
            ));
        }
        Ok(())
    }

    /// `cleanSubPath` for this target after a failure: unmount it and remove it.
    fn discard(&self) {
        let level = Level {
            fd: self.dir,
            meta: self.dir_meta,
            path: self.path.parent().unwrap_or(self.path),
        };
        if let Err(e) = cleanup_mount_point(&level, self.name) {
            tracing::warn!(error = %e, "removing a failed subpath target");
        }
    }
}

#[cfg(test)]
mod tests {

    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;
    use crate::safe_fs::tests::have_root;

    #[test]
    fn validate_sub_path_uses_the_kubelet_texts() {
        assert_eq!(
            validate_sub_path("/etc").unwrap_err(),
            "error SubPath `/etc` must not be an absolute path"
        );
        assert_eq!(
            validate_sub_path("a/../b").unwrap_err(),
            "unable to provision SubPath `a/../b`: must not contain '..'"
        );
        assert_eq!(
            validate_sub_path("..").unwrap_err(),
            "unable to provision SubPath `..`: must not contain '..'"
        );
        // Absolute is checked first.
        assert_eq!(
            validate_sub_path("/../x").unwrap_err(),
            "error SubPath `/../x` must not be an absolute path"
        );
        for ok in ["a..b", "a/b", "./a", "a/./b", "a//b", "..a", "b.."] {
            validate_sub_path(ok).unwrap();
        }
    }

    #[test]
    fn sub_path_components_drop_empty_and_dot_elements() {
        assert_eq!(sub_path_components("a//b/./c/").unwrap(), ["a", "b", "c"]);
        assert!(sub_path_components(".").unwrap().is_empty());
        assert!(sub_path_components("").is_err());
        assert!(sub_path_components("a\0b").is_err());
        assert!(sub_path_components(&"x".repeat(256)).is_err());
        assert!(sub_path_components(&"a/".repeat(2100)).is_err());
    }

    #[test]
    fn ensure_subpath_dir_creates_with_the_volume_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let volume = tmp.path().join("vol");
        std::fs::create_dir(&volume).unwrap();
        std::fs::set_permissions(&volume, std::fs::Permissions::from_mode(0o2775)).unwrap();
        ensure_subpath_dir(&volume, "a/b/c").unwrap();
        for p in ["a", "a/b", "a/b/c"] {
            let mode = std::fs::metadata(volume.join(p))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o2775, "{p}");
        }
        // Existing: nothing changes.
        std::fs::set_permissions(volume.join("a/b"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        ensure_subpath_dir(&volume, "a/b").unwrap();
        let mode = std::fs::metadata(volume.join("a/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o700);
    }

    #[test]
    fn ensure_subpath_dir_follows_inside_links_and_refuses_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        let volume = tmp.path().join("vol");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(volume.join("real")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        symlink("real", volume.join("rel")).unwrap();
        symlink(volume.join("real"), volume.join("abs")).unwrap();
        symlink("../outside", volume.join("up")).unwrap();
        symlink(&outside, volume.join("out")).unwrap();
        symlink("/", volume.join("root")).unwrap();

        ensure_subpath_dir(&volume, "rel/x").unwrap();
        ensure_subpath_dir(&volume, "abs/y").unwrap();
        assert!(volume.join("real/x").is_dir());
        assert!(volume.join("real/y").is_dir());
        for bad in ["up/x", "out/x", "root/tmp/x", "out"] {
            let err = ensure_subpath_dir(&volume, bad).unwrap_err();
            assert!(
                matches!(err, RuntimeError::UnsafePath { .. }),
                "{bad}: {err}"
            );
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

        // A loop of symlinks ends with an error, not a hang.
        symlink("loop2", volume.join("loop1")).unwrap();
        symlink("loop1", volume.join("loop2")).unwrap();
        let err = ensure_subpath_dir(&volume, "loop1/x").unwrap_err();
        assert!(err.to_string().contains("symlinks"), "{err}");
    }

    #[test]
    fn prepare_subpath_rejects_bad_names_before_touching_anything() {
        let tmp = tempfile::tempdir().unwrap();
        let volume = tmp.path().join("vol");
        std::fs::create_dir(&volume).unwrap();
        let pod = tmp.path().join("pod");
        std::fs::create_dir(&pod).unwrap();
        for (sub, vol, ctr) in [
            ("/etc", "v", "c"),
            ("../x", "v", "c"),
            ("a", "..", "c"),
            ("a", "v", "c/d"),
            ("a", "v", ""),
        ] {
            let err = prepare_subpath(&volume, sub, &pod, vol, ctr, 0).unwrap_err();
            assert!(matches!(err, RuntimeError::UnsafePath { .. }), "{err}");
        }
        assert_eq!(std::fs::read_dir(&volume).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(&pod).unwrap().count(), 0);
    }

    #[test]
    fn prepare_subpath_mounts_dirs_and_files_and_is_idempotent() {
        if !have_root("prepare_subpath_mounts_dirs_and_files_and_is_idempotent") {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let volume = tmp.path().join("vol");
        let pod = tmp.path().join("pod");
        std::fs::create_dir_all(volume.join("dir")).unwrap();
        std::fs::create_dir(&pod).unwrap();
        std::fs::write(volume.join("dir/marker"), b"dir").unwrap();
        std::fs::write(volume.join("file"), b"file").unwrap();

        let dir_target = prepare_subpath(&volume, "dir", &pod, "data", "app", 0).unwrap();
        assert_eq!(dir_target, pod.join("volume-subpaths/data/app/0"));
        let file_target = prepare_subpath(&volume, "file", &pod, "data", "app", 1).unwrap();
        assert_eq!(std::fs::read(dir_target.join("marker")).unwrap(), b"dir");
        assert_eq!(std::fs::read(&file_target).unwrap(), b"file");
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&pod.join("volume-subpaths")), 0o750);
        assert_eq!(mode(&pod.join("volume-subpaths/data/app")), 0o750);

        // Again: reused, not stacked.
        let again = prepare_subpath(&volume, "dir", &pod, "data", "app", 0).unwrap();
        assert_eq!(again, dir_target);
        // Another source for the same index: remounted.
        std::fs::create_dir(volume.join("dir2")).unwrap();
        std::fs::write(volume.join("dir2/marker"), b"dir2").unwrap();
        prepare_subpath(&volume, "dir2", &pod, "data", "app", 0).unwrap();
        assert_eq!(std::fs::read(dir_target.join("marker")).unwrap(), b"dir2");
        // A created subpath.
        let created = prepare_subpath(&volume, "new/sub", &pod, "data", "app", 2).unwrap();
        std::fs::write(created.join("through"), b"x").unwrap();
        assert_eq!(std::fs::read(volume.join("new/sub/through")).unwrap(), b"x");

        clean_subpaths(&pod).unwrap();
        assert!(!pod.join("volume-subpaths").exists());
        assert_eq!(std::fs::read(volume.join("dir/marker")).unwrap(), b"dir");
        assert_eq!(std::fs::read(volume.join("file")).unwrap(), b"file");
    }

    #[test]
    fn clean_per_volume_and_per_container() {
        if !have_root("clean_per_volume_and_per_container") {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let volume = tmp.path().join("vol");
        let pod = tmp.path().join("pod");
        std::fs::create_dir_all(volume.join("d")).unwrap();
        std::fs::create_dir(&pod).unwrap();
        prepare_subpath(&volume, "d", &pod, "v1", "a", 0).unwrap();
        prepare_subpath(&volume, "d", &pod, "v1", "b", 0).unwrap();
        prepare_subpath(&volume, "d", &pod, "v2", "a", 3).unwrap();

        clean_container_subpaths(&pod, "a").unwrap();
        assert!(!pod.join("volume-subpaths/v1/a").exists());
        assert!(!pod.join("volume-subpaths/v2").exists());
        assert!(pod.join("volume-subpaths/v1/b/0").is_dir());

        clean_volume_subpaths(&pod, "v1").unwrap();
        assert!(!pod.join("volume-subpaths").exists());
        // Nothing left: all fine.
        clean_subpaths(&pod).unwrap();
        clean_volume_subpaths(&pod, "v1").unwrap();
        assert!(clean_volume_subpaths(&pod, "../x").is_err());
    }
}
