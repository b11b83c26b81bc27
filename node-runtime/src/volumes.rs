//! Volume set-up on the node: emptyDir directories (mode 0777 like the kubelet's, so a
//! container running as any user can write them) and hostPath `type` checks with the kubelet's
//! errors.
//!
//! * emptyDir (default medium) follows `pkg/volume/emptydir/empty_dir.go` (`setupDir`) and the
//!   ready marker of `pkg/volume/util/util.go` (`SetReady`): the volume directory is
//!   `<podDir>/volumes/kubernetes.io~empty-dir/<volume>`, mode exactly 0777, and
//!   `<podDir>/plugins/kubernetes.io~empty-dir/<volume>/ready` records that it was set up. Every
//!   directory is made with [`crate::safe_fs`], so a symlink a container planted is never
//!   followed. fsGroup ownership and the memory medium (tmpfs) are not handled here.
//! * hostPath follows `pkg/volume/hostpath/host_path.go` (`SetUp`, `checkType`) as of 1.35,
//!   where a `File` is anything that exists and is not a directory. (Upstream code newer than
//!   1.35, which needs Go 1.26, words these errors differently; we keep the 1.35 texts.)

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fchmod};

use crate::error::RuntimeError;
use crate::safe_fs::{
    create_dirs, io_error, join_under, open_dir_under, remove_tree_under, stat_at,
};

/// The escaped name of the emptyDir plugin (`kubernetes.io/empty-dir`, `/` written as `~`).
pub const EMPTY_DIR_PLUGIN: &str = "kubernetes.io~empty-dir";

/// Mode of an emptyDir volume directory (the kubelet's).
pub const EMPTY_DIR_MODE: u32 = 0o777;

/// Mode of the directories the agent creates inside a pod directory (`volumes`, `plugins` and
/// the plugin directories below them); the kubelet uses 0750 for the pod's data directories.
pub const POD_DATA_DIR_MODE: u32 = 0o750;

/// Name of the ready marker file.
const READY_FILE: &str = "ready";

/// Mode of the ready marker (`os.Create`'s 0666 with the usual 022 umask).
const READY_FILE_MODE: u32 = 0o644;

fn empty_dir_components(volume_name: &str) -> [(&str, &str); 3] {
    [
        ("pod volumes directory", "volumes"),
        ("volume plugin directory", EMPTY_DIR_PLUGIN),
        ("volume name", volume_name),
    ]
}

fn ready_dir_components(volume_name: &str) -> [(&str, &str); 3] {
    [
        ("pod plugins directory", "plugins"),
        ("volume plugin directory", EMPTY_DIR_PLUGIN),
        ("volume name", volume_name),
    ]
}

/// `<pod_dir>/volumes/kubernetes.io~empty-dir/<volume_name>` (the name checked).
pub fn empty_dir_path(pod_dir: &Path, volume_name: &str) -> Result<PathBuf, RuntimeError> {
    join_under(pod_dir, &empty_dir_components(volume_name))
}

/// Sets up the emptyDir volume `volume_name` (default medium) in the existing `pod_dir` and
/// returns its directory, `<pod_dir>/volumes/kubernetes.io~empty-dir/<volume_name>`.
///
/// Missing parents are created 0750; the volume directory gets exactly 0777 (whatever the
/// umask) and the ready marker `<pod_dir>/plugins/kubernetes.io~empty-dir/<volume_name>/ready`
/// is written. Idempotent like the kubelet's: once the marker exists and the directory is
/// there, nothing is changed (a container may have changed the mode of its own volume). If a
/// component, the volume directory included, is a symlink or not a directory (something a
/// container planted), it is refused with [`RuntimeError::UnsafePath`] and nothing is created
/// through it.
pub fn setup_empty_dir(pod_dir: &Path, volume_name: &str) -> Result<PathBuf, RuntimeError> {
    let volume = create_dirs(
        pod_dir,
        &empty_dir_components(volume_name),
        POD_DATA_DIR_MODE,
        EMPTY_DIR_MODE,
    )?;
    if !volume.created && is_ready(pod_dir, volume_name)? {
        return Ok(volume.path);
    }
    // A directory left by an interrupted set-up may have the umask's mode: make it exact.
    fchmod(&volume.fd, Mode::from_bits_truncate(EMPTY_DIR_MODE))
        .map_err(|e| io_error("set the mode of", &volume.path, e))?;
    // Like the kubelet's SetReady, a failure to write the marker is logged, not returned:
    // the volume itself is ready.
    if let Err(e) = set_ready(pod_dir, volume_name) {
        tracing::warn!(error = %e, volume = volume_name, "writing the emptyDir ready marker");
    }
    Ok(volume.path)
}

/// Removes the emptyDir volume `volume_name` and its ready marker directory with
/// [`remove_tree_under`] (no symlink followed, nothing on another mount touched: a subPath
/// bind mount of it that is still mounted makes this fail). Missing is success.
pub fn teardown_empty_dir(pod_dir: &Path, volume_name: &str) -> Result<(), RuntimeError> {
    remove_tree_under(pod_dir, &empty_dir_components(volume_name))?;
    remove_tree_under(pod_dir, &ready_dir_components(volume_name))
}

/// Whether the ready marker of `volume_name` exists as a regular file.
fn is_ready(pod_dir: &Path, volume_name: &str) -> Result<bool, RuntimeError> {
    let Some((dir, _)) = open_dir_under(pod_dir, &ready_dir_components(volume_name))? else {
        return Ok(false);
    };
    Ok(stat_at(dir.as_fd(), OsStr::new(READY_FILE)).is_ok_and(|meta| meta.is_regular()))
}

/// Writes the ready marker (directories 0750, the file 0644; never through a symlink).
fn set_ready(pod_dir: &Path, volume_name: &str) -> Result<(), RuntimeError> {
    let dir = create_dirs(
        pod_dir,
        &ready_dir_components(volume_name),
        POD_DATA_DIR_MODE,
        POD_DATA_DIR_MODE,
    )?;
    let path = dir.path.join(READY_FILE);
    let file = openat(
        dir.fd.as_fd(),
        READY_FILE,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(READY_FILE_MODE),
    )
    .map_err(|e| io_error("create ready marker", &path, e))?;
    fchmod(&file, Mode::from_bits_truncate(READY_FILE_MODE))
        .map_err(|e| io_error("set the mode of", &path, e))
}

/// The kubelet's hostPath checks for `SetUp` (`pkg/volume/hostpath/host_path.go`), with its
/// exact errors (the caller shows them as `MountVolume.SetUp failed for volume "<v>" : <error>`):
///
/// * any `/`-separated element `..` → ``invalid HostPath `<path>`: must not contain '..'``
///   (checked first, whatever the type);
/// * no type or `""` → no check;
/// * `DirectoryOrCreate`: missing → created with its parents, mode 0755 (the umask applies,
///   like Go's `MkdirAll`); errors as Go prints them (`mkdir <path>: not a directory`); else as
///   `Directory`: `hostPath type check failed: <path> is not a directory`;
/// * `FileOrCreate`: missing → created empty with mode 0644, parents not created
///   (`open <path>: no such file or directory`); else as `File`: anything that exists and is
///   not a directory (a socket, a device or a FIFO passes), else
///   `hostPath type check failed: <path> is not a file`;
/// * `Socket`, `CharDevice`, `BlockDevice`: `... is not a socket file`,
///   `... is not a character device`, `... is not a block device`;
/// * anything else → `<type> is an invalid volume type`.
///
/// Symlinks are followed (like Go's `os.Stat`): a hostPath is granted by whoever may create the
/// pod, not planted by a container. A relative path is taken relative to the agent's working
/// directory, as the kubelet does.
pub fn check_host_path(path: &str, host_path_type: Option<&str>) -> Result<(), String> {
    if path.split('/').any(|element| element == "..") {
        return Err(format!("invalid HostPath `{path}`: must not contain '..'"));
    }
    let Some(host_path_type) = host_path_type.filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let kind = host_kind(path);
    let mismatch = |what: &str| {
        Err(format!(
            "hostPath type check failed: {path} is not a {what}"
        ))
    };
    match host_path_type {
        "DirectoryOrCreate" if kind.is_none() => make_dir_all(path),
        "DirectoryOrCreate" | "Directory" => match kind {
            Some(HostKind::Directory) => Ok(()),
            _ => mismatch("directory"),
        },
        "FileOrCreate" if kind.is_none() => make_file(path),
        "FileOrCreate" | "File" => match kind {
            Some(HostKind::Directory) | None => mismatch("file"),
            Some(_) => Ok(()),
        },
        "Socket" => match kind {
            Some(HostKind::Socket) => Ok(()),
            _ => mismatch("socket file"),
        },
        "CharDevice" => match kind {
            Some(HostKind::CharDevice) => Ok(()),
            _ => mismatch("character device"),
        },
        "BlockDevice" => match kind {
            Some(HostKind::BlockDevice) => Ok(()),
            _ => mismatch("block device"),
        },
        other => Err(format!("{other} is an invalid volume type")),
    }
}

/// What a hostPath is, following symlinks; `None` when `stat` fails (missing, dangling symlink,
/// no permission: the kubelet's `Exists` is false for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostKind {
    Directory,
    File,
    Socket,
    CharDevice,
    BlockDevice,
    /// A FIFO (the kubelet's `GetFileType` does not recognise it).
    Other,
}

fn host_kind(path: &str) -> Option<HostKind> {
    let file_type = std::fs::metadata(path).ok()?.file_type();
    Some(if file_type.is_dir() {
        HostKind::Directory
    } else if file_type.is_file() {
        HostKind::File
    } else if file_type.is_socket() {
        HostKind::Socket
    } else if file_type.is_char_device() {
        HostKind::CharDevice
    } else if file_type.is_block_device() {
        HostKind::BlockDevice
    } else {
        HostKind::Other
    })
}

/// Go's rendering of an errno (`syscall.Errno.Error()`): the C text with a lower-case first
/// letter, e.g. `no such file or directory`.
fn go_errno(errno: Errno) -> String {
    let text = errno.desc();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("errno {}", errno as i32),
    }
}

/// Go's `os.MkdirAll(path, 0755)`, its errors as Go prints them (`mkdir <path>: <errno>`).
fn make_dir_all(path: &str) -> Result<(), String> {
    // Walk up to the first ancestor that exists, remembering what to create.
    let mut missing: Vec<&str> = Vec::new();
    let mut current = path;
    loop {
        match std::fs::metadata(current) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => return Err(format!("mkdir {current}: {}", go_errno(Errno::ENOTDIR))),
            Err(_) => missing.push(current),
        }
        // The parent as Go computes it: strip trailing separators, then the last element.
        let trimmed = current.trim_end_matches('/');
        let parent = match trimmed.rfind('/') {
            Some(i) => &trimmed[..i],
            None => "",
        };
        if parent.is_empty() {
            break;
        }
        current = parent;
    }
    for dir in missing.into_iter().rev() {
        if let Err(errno) = nix::unistd::mkdir(dir, Mode::from_bits_truncate(0o755)) {
            // Like Go: an existing directory (e.g. `foo/.`, or a racing creator) is fine.
            if std::fs::symlink_metadata(dir).is_ok_and(|meta| meta.is_dir()) {
                continue;
            }
            // The kubelet's makeDir ignores "exists" errors (a dangling symlink, a file that
            // appeared meanwhile): the set-up goes on without a type check.
            if errno == Errno::EEXIST {
                return Ok(());
            }
            return Err(format!("mkdir {dir}: {}", go_errno(errno)));
        }
    }
    Ok(())
}

/// Go's `os.OpenFile(path, O_CREATE, 0644)` (no parents; an existing file is fine).
fn make_file(path: &str) -> Result<(), String> {
    match nix::fcntl::open(
        OsStr::from_bytes(path.as_bytes()),
        OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    ) {
        Ok(_file) => Ok(()),
        Err(Errno::EEXIST) => Ok(()),
        Err(errno) => Err(format!("open {path}: {}", go_errno(errno))),
    }
}

#[cfg(test)]
mod tests {

    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn empty_dir_is_0777_with_a_ready_marker_and_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let pod = tmp.path().join("pod");
        std::fs::create_dir(&pod).unwrap();
        let dir = setup_empty_dir(&pod, "cache").unwrap();
        assert_eq!(dir, pod.join("volumes/kubernetes.io~empty-dir/cache"));
        assert_eq!(mode_of(&dir), 0o777);
        assert_eq!(mode_of(&pod.join("volumes")), 0o750);
        assert_eq!(mode_of(&pod.join("volumes/kubernetes.io~empty-dir")), 0o750);
        let ready = pod.join("plugins/kubernetes.io~empty-dir/cache/ready");
        assert!(ready.is_file());
        assert_eq!(mode_of(&ready), 0o644);

        // Set up: the container's own chmod and files are left alone.
        std::fs::write(dir.join("data"), b"x").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(setup_empty_dir(&pod, "cache").unwrap(), dir);
        assert_eq!(mode_of(&dir), 0o700);
        assert_eq!(std::fs::read(dir.join("data")).unwrap(), b"x");

        // Without the marker (an interrupted set-up) the mode is made exact again.
        std::fs::remove_file(&ready).unwrap();
        setup_empty_dir(&pod, "cache").unwrap();
        assert_eq!(mode_of(&dir), 0o777);
        assert!(ready.is_file());

        teardown_empty_dir(&pod, "cache").unwrap();
        assert!(!dir.exists());
        assert!(!pod.join("plugins/kubernetes.io~empty-dir/cache").exists());
        teardown_empty_dir(&pod, "cache").unwrap();
    }

    #[test]
    fn empty_dir_refuses_planted_symlinks_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let pod = tmp.path().join("pod");
        std::fs::create_dir_all(pod.join("volumes/kubernetes.io~empty-dir")).unwrap();
        symlink(
            outside.path(),
            pod.join("volumes/kubernetes.io~empty-dir/cache"),
        )
        .unwrap();
        std::fs::write(pod.join("volumes/kubernetes.io~empty-dir/file"), b"").unwrap();
        let outside_mode = mode_of(outside.path());

        for name in ["cache", "file"] {
            match setup_empty_dir(&pod, name).unwrap_err() {
                RuntimeError::UnsafePath { path, .. } => {
                    assert_eq!(path, pod.join("volumes/kubernetes.io~empty-dir").join(name));
                }
                other => panic!("{other}"),
            }
        }
        assert_eq!(mode_of(outside.path()), outside_mode);
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(!pod.join("plugins").exists());
        for bad in ["", "..", "a/b"] {
            let err = setup_empty_dir(&pod, bad).unwrap_err();
            assert!(matches!(err, RuntimeError::UnsafePath { .. }), "{err}");
        }
        // Teardown unlinks the planted symlink without touching its target.
        std::fs::write(outside.path().join("keep"), b"k").unwrap();
        teardown_empty_dir(&pod, "cache").unwrap();
        assert!(
            std::fs::symlink_metadata(pod.join("volumes/kubernetes.io~empty-dir/cache")).is_err()
        );
        assert_eq!(std::fs::read(outside.path().join("keep")).unwrap(), b"k");
    }

    #[test]
    fn host_path_backsteps_and_unknown_types() {
        assert_eq!(
            check_host_path("/var/../etc", None).unwrap_err(),
            "invalid HostPath `/var/../etc`: must not contain '..'"
        );
        // Checked before the type, even an invalid one.
        assert_eq!(
            check_host_path("..", Some("Bogus")).unwrap_err(),
            "invalid HostPath `..`: must not contain '..'"
        );
        check_host_path("/a..b", None).unwrap();
        check_host_path("/does/not/exist", None).unwrap();
        check_host_path("/does/not/exist", Some("")).unwrap();
        assert_eq!(
            check_host_path("/tmp", Some("Bogus")).unwrap_err(),
            "Bogus is an invalid volume type"
        );
    }

    #[test]
    fn host_path_directory_and_directory_or_create() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_str().unwrap();
        check_host_path(base, Some("Directory")).unwrap();
        let missing = format!("{base}/a/b/c");
        assert_eq!(
            check_host_path(&missing, Some("Directory")).unwrap_err(),
            format!("hostPath type check failed: {missing} is not a directory")
        );
        check_host_path(&missing, Some("DirectoryOrCreate")).unwrap();
        assert!(Path::new(&missing).is_dir());
        for p in ["a", "a/b", "a/b/c"] {
            let mode = mode_of(&tmp.path().join(p));
            assert_eq!(mode & !0o755, 0, "{p}: {mode:o}");
        }
        check_host_path(&missing, Some("DirectoryOrCreate")).unwrap();

        std::fs::write(tmp.path().join("file"), b"").unwrap();
        let file = format!("{base}/file");
        assert_eq!(
            check_host_path(&file, Some("DirectoryOrCreate")).unwrap_err(),
            format!("hostPath type check failed: {file} is not a directory")
        );
        let under_file = format!("{base}/file/x/y");
        assert_eq!(
            check_host_path(&under_file, Some("DirectoryOrCreate")).unwrap_err(),
            format!("mkdir {file}: not a directory")
        );
        // A symlink to a directory is followed.
        symlink(tmp.path().join("a"), tmp.path().join("link")).unwrap();
        check_host_path(&format!("{base}/link"), Some("Directory")).unwrap();
    }

    #[test]
    fn host_path_file_and_file_or_create() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_str().unwrap();
        let file = format!("{base}/f");
        assert_eq!(
            check_host_path(&file, Some("File")).unwrap_err(),
            format!("hostPath type check failed: {file} is not a file")
        );
        check_host_path(&file, Some("FileOrCreate")).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.len(), 0);
        assert_eq!(meta.permissions().mode() & 0o7777 & !0o644, 0);
        check_host_path(&file, Some("File")).unwrap();
        check_host_path(&file, Some("FileOrCreate")).unwrap();
        // No parents.
        let nested = format!("{base}/missing/f");
        assert_eq!(
            check_host_path(&nested, Some("FileOrCreate")).unwrap_err(),
            format!("open {nested}: no such file or directory")
        );
        assert!(!tmp.path().join("missing").exists());
        // A directory is not a file.
        assert_eq!(
            check_host_path(base, Some("FileOrCreate")).unwrap_err(),
            format!("hostPath type check failed: {base} is not a file")
        );
    }
}
