//! The kubelet's atomic writer (`pkg/volume/util/atomic_writer.go`): projects a set of files
//! (a configMap, secret, downwardAPI or projected volume's payload) into a volume directory so
//! that a reader sees either the whole old set or the whole new set, never a mix.
//!
//! Layout in the volume directory, exactly as the kubelet's:
//!
//! ```text
//! ..2026_01_31_12_00_00.1234567890/   the data (0755), files at their projection modes
//! ..data -> ..2026_01_31_12_00_00.1234567890
//! <name> -> ..data/<name>             one per top-level path element (`a/b/c` gives only `a`)
//! ```
//!
//! An update writes a new timestamped directory, points `..data_tmp` at it and renames
//! `..data_tmp` onto `..data` (the atomic swap), creates missing user-visible symlinks, removes
//! stale top-level ones and finally the old timestamped directory.
//!
//! **Threat model.** The volume directory is visible to the pod's containers, which may replace
//! `..data`, a timestamped directory, anything inside it or a user-visible symlink with their
//! own symlinks pointing anywhere on the node (`/etc`). The agent runs as root, so every
//! operation here is relative to the volume directory's descriptor and never follows a symlink
//! below it (`O_NOFOLLOW`, `readlinkat`, `unlinkat`, `renameat`, `symlinkat`):
//!
//! * `..data` is read with `readlinkat` and trusted only when it names a direct child starting
//!   with `..` (not `..data`/`..data_tmp`); anything else (an absolute or `../` target, a
//!   directory, a file) counts as "no current data" and the payload is written anew;
//! * the old contents are compared by opening every component with `O_NOFOLLOW`: a symlink,
//!   a FIFO or a device where a file or directory belongs counts as "different", is never
//!   followed or read, and causes a rewrite;
//! * old timestamped directories, a stale `..data_tmp` and a `..data` that is not a symlink
//!   are removed with [`crate::safe_fs`]'s no-follow, one-filesystem removal;
//! * stale user-visible entries are unlinked (never recursively); names starting with `..`
//!   are never removed as user-visible entries.
//!
//! The worst a container can do is make its own volume wrong for itself until the next write.
//!
//! Differences from the kubelet, all on the safe side: upstream follows a planted `..data`
//! or timestamped-directory symlink (its `RemoveAll`, `ReadFile` and `Walk` are path based),
//! fails forever on a stale `..data_tmp` or a `..data` directory, leaves a half-written
//! timestamped directory behind when a file cannot be written, and creates nested directories
//! with `0777 &^ umask` (here exactly 0755). `filepath.Clean` runs before the checks are
//! repeated, so `./..data` is refused rather than written over the data link. Two payload
//! paths naming the same file after cleaning, or one path being the parent of another, are
//! refused up front (upstream: one silently wins, or the write fails half-way).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, readlinkat, renameat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, symlinkat, unlinkat};

use crate::error::RuntimeError;
use crate::safe_fs::{
    dir_flags, ensure_dir, io_error, open_base, open_child_dir, read_names, remove_child, stat_at,
    stat_fd, unsafe_path,
};

/// The symlink naming the current timestamped data directory.
pub const DATA_DIR_NAME: &str = "..data";
/// The symlink made next to `..data` and renamed onto it during the swap.
pub const NEW_DATA_DIR_NAME: &str = "..data_tmp";
/// The longest payload path (`maxPathLength`).
pub const MAX_PATH_LENGTH: usize = 4096;
/// The longest element of a payload path (`maxFileNameLength`).
pub const MAX_FILE_NAME_LENGTH: usize = 255;
/// Mode of a timestamped data directory (the kubelet's `os.Chmod(tsDir, 0755)`).
pub const DATA_DIR_MODE: u32 = 0o755;
/// Mode of the directories made inside a timestamped directory for nested paths.
pub const NESTED_DIR_MODE: u32 = 0o755;

/// How many entries of an old timestamped directory's top level are looked at (a container
/// that can write there could fill it with millions).
const MAX_LISTED: usize = 100_000;

/// How many random names are tried for a new timestamped directory before giving up.
const MAX_NAME_ATTEMPTS: u32 = 100;

/// One file of a payload: its content, its mode and, optionally, its owner.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct FileProjection {
    /// The content.
    pub data: Vec<u8>,
    /// The permission bits (only `0o777` are applied, as the kubelet's `os.Chmod` with a mode
    /// converted from the API's `int32`); set with `fchmod`, so the umask does not matter.
    pub mode: u32,
    /// Owner to set (`fchown`), the kubelet's `FsUser`.
    pub uid: Option<u32>,
    /// Group to set (`fchown`); the kubelet applies `fsGroup` afterwards to the whole volume,
    /// here it is per file.
    pub gid: Option<u32>,
}

impl FileProjection {
    /// A file with `data` and `mode`, owner unchanged.
    pub fn new(data: impl Into<Vec<u8>>, mode: u32) -> Self {
        Self {
            data: data.into(),
            mode,
            uid: None,
            gid: None,
        }
    }
}

impl fmt::Debug for FileProjection {
    /// Never prints the content (it may be a secret), only its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileProjection")
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("mode", &format_args!("{:#o}", self.mode))
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .finish()
    }
}

/// The kubelet's `validatePath` with its messages: not empty, relative, at most
/// [`MAX_PATH_LENGTH`] bytes, no `..` element, every element at most
/// [`MAX_FILE_NAME_LENGTH`] bytes, and the first element not starting with `..` (reserved for
/// the writer's own entries). A NUL byte is refused too (no file can be named with one).
pub fn validate_path(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err(format!("invalid path: must not be empty: {target:?}"));
    }
    if target.starts_with('/') {
        return Err(format!("invalid path: must be relative path: {target}"));
    }
    if target.len() > MAX_PATH_LENGTH {
        return Err(format!(
            "invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters"
        ));
    }
    if target.contains('\0') {
        return Err(format!(
            "invalid path: must not contain a NUL byte: {target:?}"
        ));
    }
    let items: Vec<&str> = target.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(format!("invalid path: must not contain '..': {target}"));
        }
        if item.len() > MAX_FILE_NAME_LENGTH {
            return Err(format!(
                "invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters"
            ));
        }
    }
    if items
        .first()
        .is_some_and(|first| first.starts_with("..") && first.len() > 2)
    {
        return Err(format!("invalid path: must not start with '..': {target}"));
    }
    Ok(())
}

/// Go's `filepath.Clean` for a relative path without `..` elements (what [`validate_path`]
/// lets through): empty and `.` elements dropped, `.` when nothing is left.
pub fn clean_path(target: &str) -> String {
    let parts: Vec<&str> = target
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// The payload validated and cleaned: each key checked with [`validate_path`], cleaned with
/// [`clean_path`], checked again (so `./..data` cannot name the data link), and no two
/// files at the same cleaned path or one below another. Pure.
pub fn validate_payload(
    payload: &BTreeMap<String, FileProjection>,
) -> Result<BTreeMap<String, &FileProjection>, String> {
    let mut clean: BTreeMap<String, &FileProjection> = BTreeMap::new();
    let mut raw_of: BTreeMap<String, &str> = BTreeMap::new();
    for (raw, projection) in payload {
        validate_path(raw)?;
        let cleaned = clean_path(raw);
        if cleaned == "." {
            return Err(format!("invalid path: must name a file: {raw:?}"));
        }
        validate_path(&cleaned)?;
        if let Some(other) = raw_of.insert(cleaned.clone(), raw) {
            return Err(format!(
                "invalid payload: paths {other:?} and {raw:?} name the same file"
            ));
        }
        clean.insert(cleaned, projection);
    }
    for path in clean.keys() {
        for parent in parents(path) {
            if clean.contains_key(parent) {
                return Err(format!(
                    "invalid payload: {parent:?} is a file and the directory of {path:?}"
                ));
            }
        }
    }
    Ok(clean)
}

/// The proper parents of a cleaned relative path: `a/b/c` → `a/b`, `a`.
fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices()
        .filter(|(_, c)| *c == '/')
        .map(move |(i, _)| &path[..i])
}

/// The first element of a cleaned relative path.
fn top_level(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// Whether `target` (what `..data` points to) names a timestamped directory the writer may
/// have made: one path component starting with `..`, other than `..`, `..data` and
/// `..data_tmp`. Anything else was planted and is never used as a path.
pub fn is_data_dir_name(target: &OsStr) -> bool {
    let bytes = target.as_bytes();
    bytes.len() > 2
        && bytes.starts_with(b"..")
        && !bytes.contains(&b'/')
        && !bytes.contains(&0)
        && bytes != DATA_DIR_NAME.as_bytes()
        && bytes != NEW_DATA_DIR_NAME.as_bytes()
}

/// The kubelet's atomic writer for one volume directory. Not synchronized: the caller runs at
/// most one [`AtomicWriter::write`] per directory at a time (as upstream requires).
#[derive(Debug)]
pub struct AtomicWriter {
    dir: OwnedFd,
    path: PathBuf,
    log_context: String,
}

impl AtomicWriter {
    /// Opens the volume directory `target_dir` (created by the agent, e.g. with
    /// [`crate::safe_fs::create_dir_under`]; its own path is trusted and may contain
    /// symlinks) for writing. `log_context` prefixes log lines, the kubelet's
    /// `pod <ns>/<name> volume <volume>`. A missing directory is an error, like upstream's
    /// `NewAtomicWriter`.
    pub fn new(target_dir: &Path, log_context: impl Into<String>) -> Result<Self, RuntimeError> {
        let dir = open_base(target_dir)?
            .ok_or_else(|| io_error("open volume directory", target_dir, Errno::ENOENT))?;
        Ok(Self::from_fd(dir, target_dir.to_path_buf(), log_context))
    }

    /// A writer for the already open volume directory `dir` (opened `O_DIRECTORY`, e.g. by
    /// a no-follow walk); `path` is used in messages only.
    pub fn from_fd(dir: OwnedFd, path: PathBuf, log_context: impl Into<String>) -> Self {
        Self {
            dir,
            path,
            log_context: log_context.into(),
        }
    }

    /// The volume directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Projects `payload` (relative path → file) into the volume directory, the kubelet's
    /// `Write` step by step (see the module documentation). Returns whether a new
    /// timestamped directory was written: `false` when every file already has the same
    /// content (modes are not compared, as upstream) and nothing is to be removed; the
    /// user-visible symlinks are still checked then.
    ///
    /// Errors: an invalid path ([`RuntimeError::UnsafePath`] naming the volume directory and
    /// the kubelet's message), or a filesystem error ([`RuntimeError::Io`]). A failed write
    /// leaves the previous data in place.
    pub fn write(&self, payload: &BTreeMap<String, FileProjection>) -> Result<bool, RuntimeError> {
        let ctx = self.log_context.as_str();
        // (1)
        let payload = validate_payload(payload).map_err(|reason| {
            tracing::error!(context = ctx, error = %reason, "invalid payload");
            unsafe_path(&self.path, reason)
        })?;
        // (2)
        let old = self.read_data_dir_link()?;
        let mut should_write = true;
        let mut stale = Vec::new();
        let mut remove_old = old.clone();
        if let Some(old_name) = &old {
            let old_path = self.path.join(old_name);
            match open_child_dir(self.dir.as_fd(), old_name, &old_path) {
                Ok(Some(old_dir)) => {
                    // (3)
                    stale = stale_top_level(old_dir.as_fd(), &old_path, &payload)?;
                    let extra = !stale.is_empty() || has_extra_paths(old_dir.as_fd(), &payload);
                    // (4)
                    let differs = payload_differs(old_dir.as_fd(), &payload);
                    if !differs && !extra {
                        tracing::debug!(context = ctx, dir = ?old_name, "write not required");
                        should_write = false;
                        remove_old = None;
                    }
                }
                Ok(None) => {}
                Err(RuntimeError::UnsafePath { reason, .. }) => {
                    tracing::warn!(
                        context = ctx,
                        dir = ?old_name,
                        reason,
                        "the current data directory is not a directory; writing anew"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        if should_write {
            // (5)-(9)
            let new_name = self.write_timestamped_dir(&payload)?;
            self.swap_data_link(&new_name)?;
            if remove_old.as_deref() == Some(new_name.as_os_str()) {
                remove_old = None;
            }
        }
        // (10)
        self.create_user_visible(&payload)?;
        // (11)
        self.remove_user_visible(&stale)?;
        // (12)
        if let Some(old_name) = remove_old {
            remove_child(self.dir.as_fd(), &self.path, &old_name).inspect_err(|e| {
                tracing::error!(context = ctx, dir = ?old_name, error = %e, "removing the old data directory");
            })?;
        }
        Ok(should_write)
    }

    /// What `..data` points to, when it is a timestamped directory name; a planted or
    /// missing link is `None`.
    fn read_data_dir_link(&self) -> Result<Option<OsString>, RuntimeError> {
        match readlinkat(self.dir.as_fd(), DATA_DIR_NAME) {
            Ok(target) if is_data_dir_name(&target) => Ok(Some(target)),
            Ok(target) => {
                tracing::warn!(
                    context = self.log_context.as_str(),
                    target = ?target,
                    "..data does not name a data directory of this volume; writing anew"
                );
                Ok(None)
            }
            Err(Errno::ENOENT) => Ok(None),
            Err(Errno::EINVAL) => {
                tracing::warn!(
                    context = self.log_context.as_str(),
                    "..data is not a symlink; writing anew"
                );
                Ok(None)
            }
            Err(e) => Err(io_error(
                "read the data link",
                &self.path.join(DATA_DIR_NAME),
                e,
            )),
        }
    }

    /// Makes a new timestamped directory (0755) and writes the payload into it; returns its
    /// name. On failure the half-written directory is removed.
    fn write_timestamped_dir(
        &self,
        payload: &BTreeMap<String, &FileProjection>,
    ) -> Result<OsString, RuntimeError> {
        let (name, dir) = self.new_timestamped_dir()?;
        let dir_path = self.path.join(&name);
        let written = payload
            .iter()
            .try_for_each(|(path, file)| write_file(dir.as_fd(), &dir_path, path, file));
        if let Err(e) = written {
            tracing::error!(
                context = self.log_context.as_str(),
                dir = ?name,
                error = %e,
                "writing the payload"
            );
            self.discard(&name);
            return Err(e);
        }
        Ok(name)
    }

    /// `MkdirTemp(dir, "..2006_01_02_15_04_05.")` + `Chmod(0755)`, fd-relative.
    fn new_timestamped_dir(&self) -> Result<(OsString, OwnedFd), RuntimeError> {
        let prefix = jiff::Timestamp::now()
            .strftime("..%Y_%m_%d_%H_%M_%S.")
            .to_string();
        let mut attempt = 0;
        let name = loop {
            let name = OsString::from(format!("{prefix}{}", random_u32()));
            match mkdirat(self.dir.as_fd(), name.as_os_str(), Mode::S_IRWXU) {
                Ok(()) => break name,
                Err(Errno::EEXIST) if attempt < MAX_NAME_ATTEMPTS => attempt += 1,
                Err(e) => {
                    return Err(io_error("create data directory", &self.path.join(&name), e));
                }
            }
        };
        let path = self.path.join(&name);
        let dir = open_child_dir(self.dir.as_fd(), &name, &path)?
            .ok_or_else(|| io_error("open data directory", &path, Errno::ENOENT))?;
        fchmod(&dir, Mode::from_bits_truncate(DATA_DIR_MODE))
            .map_err(|e| io_error("set the mode of", &path, e))?;
        Ok((name, dir))
    }

    /// Points `..data_tmp` at `new_name` and renames it onto `..data`. A stale `..data_tmp`
    /// and a `..data` that is a directory are removed first (no-follow). On failure the new
    /// directory is removed and the old data stays.
    fn swap_data_link(&self, new_name: &OsStr) -> Result<(), RuntimeError> {
        let tmp_path = self.path.join(NEW_DATA_DIR_NAME);
        let data_path = self.path.join(DATA_DIR_NAME);
        let result = (|| {
            remove_child(self.dir.as_fd(), &self.path, OsStr::new(NEW_DATA_DIR_NAME))?;
            symlinkat(new_name, self.dir.as_fd(), NEW_DATA_DIR_NAME)
                .map_err(|e| io_error("create the data link", &tmp_path, e))?;
            let rename = || {
                renameat(
                    self.dir.as_fd(),
                    NEW_DATA_DIR_NAME,
                    self.dir.as_fd(),
                    DATA_DIR_NAME,
                )
            };
            match rename() {
                Ok(()) => Ok(()),
                Err(Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST | Errno::ENOTDIR) => {
                    // `..data` is a directory (planted): remove it without following
                    // anything and try once more.
                    remove_child(self.dir.as_fd(), &self.path, OsStr::new(DATA_DIR_NAME))?;
                    rename().map_err(|e| io_error("rename the data link onto", &data_path, e))
                }
                Err(e) => Err(io_error("rename the data link onto", &data_path, e)),
            }
        })();
        if let Err(e) = &result {
            tracing::error!(
                context = self.log_context.as_str(),
                error = %e,
                "swapping the data link"
            );
            let _ = unlinkat(
                self.dir.as_fd(),
                NEW_DATA_DIR_NAME,
                UnlinkatFlags::NoRemoveDir,
            );
            self.discard(new_name);
        }
        result
    }

    /// Best-effort removal of a timestamped directory this write made.
    fn discard(&self, name: &OsStr) {
        if let Err(e) = remove_child(self.dir.as_fd(), &self.path, name) {
            tracing::error!(
                context = self.log_context.as_str(),
                dir = ?name,
                error = %e,
                "removing the new data directory"
            );
        }
    }

    /// `<name> -> ..data/<name>` for every top-level element that has no entry yet. An
    /// existing entry of any kind is left alone (upstream's `Readlink` check).
    fn create_user_visible(
        &self,
        payload: &BTreeMap<String, &FileProjection>,
    ) -> Result<(), RuntimeError> {
        let names: BTreeSet<&str> = payload.keys().map(|p| top_level(p)).collect();
        for name in names {
            match readlinkat(self.dir.as_fd(), name) {
                Ok(_) | Err(Errno::EINVAL) => {}
                Err(Errno::ENOENT) => {
                    let target = format!("{DATA_DIR_NAME}/{name}");
                    match symlinkat(target.as_str(), self.dir.as_fd(), name) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => {
                            return Err(io_error(
                                "create the user-visible symlink",
                                &self.path.join(name),
                                e,
                            ));
                        }
                    }
                }
                Err(e) => {
                    return Err(io_error(
                        "read the user-visible symlink",
                        &self.path.join(name),
                        e,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Unlinks the stale top-level user-visible entries (`os.Remove`: a file, a symlink or
    /// an empty directory; never recursive). Names starting with `..` are the writer's own
    /// and are skipped. Like upstream, every entry is tried and the last error returned.
    fn remove_user_visible(&self, stale: &[OsString]) -> Result<(), RuntimeError> {
        let mut last = None;
        for name in stale {
            if name.as_bytes().starts_with(b"..") {
                continue;
            }
            let result = match unlinkat(
                self.dir.as_fd(),
                name.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            ) {
                Err(Errno::EISDIR) => {
                    unlinkat(self.dir.as_fd(), name.as_os_str(), UnlinkatFlags::RemoveDir)
                }
                other => other,
            };
            match result {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => {
                    let err =
                        io_error("remove the old user-visible path", &self.path.join(name), e);
                    tracing::error!(context = self.log_context.as_str(), error = %err, "pruning");
                    last = Some(err);
                }
            }
        }
        last.map_or(Ok(()), Err)
    }
}

/// A random `u32` (the suffix of Go's `MkdirTemp`), from the standard library's randomly
/// keyed hasher and the clock.
fn random_u32() -> u32 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    let hash = hasher.finish();
    // Fold the 64-bit hash: both halves contribute.
    #[expect(clippy::cast_possible_truncation, reason = "folding a hash to 32 bits")]
    let folded = (hash ^ (hash >> 32)) as u32;
    folded
}

/// Writes one file at `rel` (cleaned, validated) below the new data directory `root`: parents
/// made 0755 without following symlinks, the file created exclusively (`O_EXCL |
/// O_NOFOLLOW`), then `fchmod` to the projection mode and `fchown` when an owner is set.
fn write_file(
    root: BorrowedFd<'_>,
    root_path: &Path,
    rel: &str,
    file: &FileProjection,
) -> Result<(), RuntimeError> {
    let path = root_path.join(rel);
    let mut components: Vec<&str> = rel.split('/').collect();
    let Some(name) = components.pop() else {
        return Err(unsafe_path(&path, "empty path"));
    };
    let mut parent: Option<OwnedFd> = None;
    let mut current = root_path.to_path_buf();
    for component in components {
        current.push(component);
        let fd = parent.as_ref().map_or(root, |fd| fd.as_fd());
        let (child, _) = ensure_dir(fd, OsStr::new(component), &current, NESTED_DIR_MODE)?;
        parent = Some(child);
    }
    let dir = parent.as_ref().map_or(root, |fd| fd.as_fd());
    let fd = openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .map_err(|e| io_error("create", &path, e))?;
    let mut out = std::fs::File::from(fd);
    out.write_all(&file.data)
        .map_err(|source| RuntimeError::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
    fchmod(&out, Mode::from_bits_truncate(file.mode & 0o777))
        .map_err(|e| io_error("set the mode of", &path, e))?;
    if file.uid.is_some() || file.gid.is_some() {
        fchown(
            &out,
            file.uid.map(Uid::from_raw),
            file.gid.map(Gid::from_raw),
        )
        .map_err(|e| io_error("set the owner of", &path, e))?;
    }
    Ok(())
}

/// The top-level entries of the old data directory that no new path starts with (upstream's
/// `pathsToRemove` without the nested ones, which it never removes). At most [`MAX_LISTED`]
/// entries are looked at.
fn stale_top_level(
    old: BorrowedFd<'_>,
    old_path: &Path,
    payload: &BTreeMap<String, &FileProjection>,
) -> Result<Vec<OsString>, RuntimeError> {
    let wanted: BTreeSet<&[u8]> = payload.keys().map(|p| top_level(p).as_bytes()).collect();
    Ok(read_names(old, old_path, MAX_LISTED)?
        .into_iter()
        .filter(|name| !wanted.contains(name.as_bytes()))
        .collect())
}

/// Whether a directory of the old data that holds new paths also holds something else (the
/// nested part of upstream's `pathsToRemove` being non-empty). Only directories that are
/// parents of new paths are opened, each without following symlinks, and each is listed only
/// as far as needed, so a container cannot make this walk long.
fn has_extra_paths(old: BorrowedFd<'_>, payload: &BTreeMap<String, &FileProjection>) -> bool {
    let mut children: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for path in payload.keys() {
        for (i, _) in path.match_indices('/') {
            let child = path[i + 1..].split('/').next().unwrap_or_default();
            children.entry(&path[..i]).or_default().insert(child);
        }
    }
    children.iter().any(|(dir, expected)| {
        let Some(fd) = open_nested_dir(old, dir) else {
            // Missing, a symlink or not a directory: nothing is listed below it (upstream's
            // walk does not descend into symlinks either); the content check rewrites.
            return false;
        };
        match read_names(fd.as_fd(), Path::new(dir), expected.len() + 1) {
            Ok(names) => names
                .iter()
                .any(|name| name.to_str().is_none_or(|name| !expected.contains(name))),
            Err(_) => true,
        }
    })
}

/// Opens `rel` (a cleaned relative path) below `root`, every component with `O_NOFOLLOW |
/// O_DIRECTORY`. `None` when any component is missing, a symlink or not a directory.
fn open_nested_dir(root: BorrowedFd<'_>, rel: &str) -> Option<OwnedFd> {
    let mut fd: Option<OwnedFd> = None;
    for component in rel.split('/') {
        let parent = fd.as_ref().map_or(root, |f| f.as_fd());
        fd = Some(openat(parent, component, dir_flags(), Mode::empty()).ok()?);
    }
    fd
}

/// Whether any new file differs from the old data (upstream's `shouldWritePayload`):
/// missing, not a regular file (a symlink is never followed, a FIFO never opened for a
/// blocking read), unreadable, or other bytes.
fn payload_differs(old: BorrowedFd<'_>, payload: &BTreeMap<String, &FileProjection>) -> bool {
    payload.iter().any(|(path, file)| {
        read_regular(old, path, file.data.len()).as_deref() != Some(file.data.as_slice())
    })
}

/// The content of the regular file `rel` below `root`, read without following any symlink,
/// at most `expected + 1` bytes (enough to see a difference). `None` for anything else.
fn read_regular(root: BorrowedFd<'_>, rel: &str, expected: usize) -> Option<Vec<u8>> {
    let (dir_rel, name) = match rel.rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, rel),
    };
    let dir_fd = match dir_rel {
        Some(dir) => Some(open_nested_dir(root, dir)?),
        None => None,
    };
    let dir = dir_fd.as_ref().map_or(root, |fd| fd.as_fd());
    if !stat_at(dir, OsStr::new(name)).ok()?.is_regular() {
        return None;
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    if !stat_fd(fd.as_fd()).ok()?.is_regular() {
        return None;
    }
    let limit = u64::try_from(expected).ok()?.saturating_add(1);
    let mut content = Vec::with_capacity(expected);
    std::fs::File::from(fd)
        .take(limit)
        .read_to_end(&mut content)
        .ok()?;
    Some(content)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use super::*;

    fn payload(files: &[(&str, &str, u32)]) -> BTreeMap<String, FileProjection> {
        files
            .iter()
            .map(|(path, data, mode)| ((*path).to_owned(), FileProjection::new(*data, *mode)))
            .collect()
    }

    fn data_target(dir: &Path) -> String {
        std::fs::read_link(dir.join(DATA_DIR_NAME))
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    /// The names in `dir` (sorted).
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn timestamped_dirs(dir: &Path) -> Vec<String> {
        entries(dir)
            .into_iter()
            .filter(|n| n.starts_with("..") && n != DATA_DIR_NAME)
            .collect()
    }

    /// A directory outside the volume with a file that must never change.
    fn outside() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("precious");
        std::fs::write(&precious, b"keep").unwrap();
        std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o600)).unwrap();
        (dir, precious)
    }

    fn assert_untouched(dir: &Path, precious: &Path) {
        assert_eq!(std::fs::read(precious).unwrap(), b"keep");
        assert_eq!(mode_of(precious), 0o600);
        assert_eq!(
            std::fs::metadata(precious).unwrap().uid(),
            nix::unistd::getuid().as_raw()
        );
        assert_eq!(entries(dir), vec!["precious".to_owned()]);
    }

    #[test]
    fn validate_path_follows_upstream() {
        for ok in [
            "a",
            "a/b/c",
            "..",
            "a/.b",
            "a..b",
            ".a",
            "a/..b",
            &"x".repeat(255),
        ] {
            // `..` alone passes validatePath's prefix rule but not the element rule.
            if ok == ".." {
                assert!(validate_path(ok).is_err());
                continue;
            }
            validate_path(ok).unwrap();
        }
        let cases = [
            ("", "must not be empty"),
            ("/abs", "must be relative path"),
            ("../x", "must not contain '..'"),
            ("a/../b", "must not contain '..'"),
            ("..data", "must not start with '..'"),
            ("..x/y", "must not start with '..'"),
            ("a\0b", "NUL"),
        ];
        for (path, want) in cases {
            let err = validate_path(path).unwrap_err();
            assert!(err.contains(want), "{path:?}: {err}");
        }
        assert!(validate_path(&"x".repeat(256)).unwrap_err().contains("255"));
        let long = vec!["a"; 2049].join("/");
        assert!(validate_path(&long).unwrap_err().contains("4096"));
    }

    #[test]
    fn validate_payload_cleans_and_rechecks() {
        let p = payload(&[("a//b/./c/", "1", 0o644), ("./d", "2", 0o644)]);
        let clean = validate_payload(&p).unwrap();
        assert_eq!(clean.keys().collect::<Vec<_>>(), ["a/b/c", "d"]);
        for bad in [
            &[("./..data", "x", 0o644)][..],
            &[(".", "x", 0o644)][..],
            &[("a", "1", 0o644), ("./a", "2", 0o644)][..],
            &[("a", "1", 0o644), ("a/b", "2", 0o644)][..],
        ] {
            assert!(validate_payload(&payload(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn first_write_makes_the_kubelet_layout_with_exact_modes() {
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "pod ns/p volume v").unwrap();
        let p = payload(&[
            ("key", "value", 0o644),
            ("secret", "s3cret", 0o400),
            ("all", "x", 0o777),
        ]);
        assert!(w.write(&p).unwrap());

        let ts = data_target(vol.path());
        // ..2006_01_02_15_04_05.<digits>
        let (stamp, random) = ts[2..].split_once('.').unwrap();
        assert_eq!(stamp.len(), 19, "{ts}");
        assert!(
            stamp.bytes().all(|b| b.is_ascii_digit() || b == b'_'),
            "{ts}"
        );
        assert!(
            !random.is_empty() && random.bytes().all(|b| b.is_ascii_digit()),
            "{ts}"
        );
        assert_eq!(mode_of(&vol.path().join(&ts)), 0o755);
        assert_eq!(
            entries(vol.path()),
            vec![
                ts.clone(),
                DATA_DIR_NAME.into(),
                "all".into(),
                "key".into(),
                "secret".into()
            ]
        );
        for (name, data, mode) in [
            ("key", "value", 0o644),
            ("secret", "s3cret", 0o400),
            ("all", "x", 0o777),
        ] {
            let link = std::fs::read_link(vol.path().join(name)).unwrap();
            assert_eq!(link, Path::new(DATA_DIR_NAME).join(name));
            assert_eq!(
                std::fs::read(vol.path().join(name)).unwrap(),
                data.as_bytes()
            );
            // Exact despite the umask (0o777 would be 0o755 under the usual 022).
            assert_eq!(mode_of(&vol.path().join(&ts).join(name)), mode, "{name}");
        }
    }

    #[test]
    fn nested_paths_get_one_top_level_symlink() {
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        assert!(
            w.write(&payload(&[
                ("a/b/c", "deep", 0o640),
                ("a/d", "d", 0o644),
                ("x", "x", 0o644)
            ]))
            .unwrap()
        );
        let ts = data_target(vol.path());
        assert_eq!(
            entries(vol.path()),
            vec![ts.clone(), DATA_DIR_NAME.into(), "a".into(), "x".into()]
        );
        assert_eq!(
            std::fs::read_link(vol.path().join("a")).unwrap(),
            Path::new("..data/a")
        );
        assert_eq!(std::fs::read(vol.path().join("a/b/c")).unwrap(), b"deep");
        assert_eq!(mode_of(&vol.path().join(&ts).join("a")), 0o755);
        assert_eq!(mode_of(&vol.path().join(&ts).join("a/b")), 0o755);
        assert_eq!(mode_of(&vol.path().join(&ts).join("a/b/c")), 0o640);
    }

    #[test]
    fn an_unchanged_payload_is_not_rewritten_and_modes_are_not_compared() {
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        let p = payload(&[("a/b", "1", 0o644), ("c", "2", 0o644)]);
        assert!(w.write(&p).unwrap());
        let ts = data_target(vol.path());
        assert!(!w.write(&p).unwrap());
        assert!(
            !w.write(&payload(&[("a/b", "1", 0o600), ("c", "2", 0o600)]))
                .unwrap()
        );
        assert_eq!(data_target(vol.path()), ts);
        assert_eq!(timestamped_dirs(vol.path()), vec![ts]);
        // A user-visible symlink removed by someone is recreated without a write.
        std::fs::remove_file(vol.path().join("c")).unwrap();
        assert!(!w.write(&p).unwrap());
        assert_eq!(std::fs::read(vol.path().join("c")).unwrap(), b"2");
    }

    #[test]
    fn an_update_swaps_data_and_removes_the_old_dir() {
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        assert!(
            w.write(&payload(&[("a", "1", 0o644), ("b", "2", 0o644)]))
                .unwrap()
        );
        let old = data_target(vol.path());
        assert!(
            w.write(&payload(&[("a", "1", 0o644), ("b", "3", 0o644)]))
                .unwrap()
        );
        let new = data_target(vol.path());
        assert_ne!(old, new);
        assert_eq!(timestamped_dirs(vol.path()), vec![new]);
        assert_eq!(std::fs::read(vol.path().join("b")).unwrap(), b"3");
        assert!(!vol.path().join(NEW_DATA_DIR_NAME).exists());
    }

    #[test]
    fn an_update_that_removes_keys_removes_their_symlinks() {
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        assert!(
            w.write(&payload(&[
                ("a", "1", 0o644),
                ("gone", "2", 0o644),
                ("n/x", "3", 0o644),
                ("n/y", "4", 0o644)
            ]))
            .unwrap()
        );
        // Same contents for what stays: the removal alone forces a write.
        assert!(
            w.write(&payload(&[("a", "1", 0o644), ("n/x", "3", 0o644)]))
                .unwrap()
        );
        let ts = data_target(vol.path());
        assert_eq!(
            entries(vol.path()),
            vec![ts.clone(), DATA_DIR_NAME.into(), "a".into(), "n".into()]
        );
        assert!(!vol.path().join(&ts).join("n/y").exists());
        assert_eq!(timestamped_dirs(vol.path()), vec![ts]);
        // And removing everything leaves only the data link and directory.
        assert!(w.write(&BTreeMap::new()).unwrap());
        let ts = data_target(vol.path());
        assert_eq!(entries(vol.path()), vec![ts, DATA_DIR_NAME.into()]);
    }

    #[test]
    fn invalid_payloads_write_nothing() {
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        for bad in ["../x", "/etc/passwd", "..data", "./..data", "a/../../x", ""] {
            let err = w
                .write(&payload(&[("ok", "1", 0o644), (bad, "x", 0o644)]))
                .unwrap_err();
            assert!(
                matches!(err, RuntimeError::UnsafePath { .. }),
                "{bad:?}: {err}"
            );
        }
        assert!(entries(vol.path()).is_empty());
        let err = AtomicWriter::new(&vol.path().join("missing"), "t").unwrap_err();
        assert!(matches!(err, RuntimeError::Io { .. }), "{err}");
    }

    #[test]
    fn owners_are_set_when_asked() {
        if !crate::safe_fs::tests::have_root("owners_are_set_when_asked") {
            return;
        }
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        let mut p = payload(&[("token", "t", 0o600), ("plain", "p", 0o644)]);
        if let Some(f) = p.get_mut("token") {
            f.uid = Some(1234);
            f.gid = Some(5678);
        }
        assert!(w.write(&p).unwrap());
        let meta = std::fs::metadata(vol.path().join("token")).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (1234, 5678, 0o600)
        );
        let meta = std::fs::metadata(vol.path().join("plain")).unwrap();
        assert_eq!(meta.uid(), 0);
    }

    #[test]
    fn hostile_data_link_to_an_outside_directory_is_not_followed() {
        let (out, precious) = outside();
        for target in [
            out.path().to_path_buf(),
            PathBuf::from("../").join(out.path().file_name().unwrap()),
            PathBuf::from(".."),
            PathBuf::from("..data"),
        ] {
            let vol = tempfile::tempdir().unwrap();
            let w = AtomicWriter::new(vol.path(), "t").unwrap();
            assert!(w.write(&payload(&[("precious", "mine", 0o644)])).unwrap());
            let first = data_target(vol.path());
            std::fs::remove_file(vol.path().join(DATA_DIR_NAME)).unwrap();
            symlink(&target, vol.path().join(DATA_DIR_NAME)).unwrap();
            // Same payload: a trusted link would mean "no write"; a planted one is ignored.
            assert!(
                w.write(&payload(&[("precious", "mine", 0o600)])).unwrap(),
                "{target:?}"
            );
            let ts = data_target(vol.path());
            assert!(ts.starts_with("..2"), "{ts}");
            assert_eq!(std::fs::read(vol.path().join("precious")).unwrap(), b"mine");
            assert_untouched(out.path(), &precious);
            // The orphaned first directory stays (as upstream after a lost link).
            assert!(vol.path().join(first).is_dir());
        }
    }

    #[test]
    fn hostile_timestamped_dir_symlink_is_unlinked_not_followed() {
        let (out, precious) = outside();
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        assert!(w.write(&payload(&[("precious", "keep", 0o644)])).unwrap());
        // The container swaps the timestamped directory for a symlink to the outside dir:
        // same names, same content as the payload.
        let ts = data_target(vol.path());
        std::fs::remove_dir_all(vol.path().join(&ts)).unwrap();
        symlink(out.path(), vol.path().join(&ts)).unwrap();
        // Or points ..data at a planted `..evil` symlink.
        assert!(w.write(&payload(&[("precious", "keep", 0o644)])).unwrap());
        assert_untouched(out.path(), &precious);
        assert!(std::fs::symlink_metadata(vol.path().join(&ts)).is_err());

        std::fs::remove_file(vol.path().join(DATA_DIR_NAME)).unwrap();
        symlink(out.path(), vol.path().join("..evil")).unwrap();
        symlink("..evil", vol.path().join(DATA_DIR_NAME)).unwrap();
        assert!(w.write(&payload(&[("other", "x", 0o644)])).unwrap());
        assert_untouched(out.path(), &precious);
        assert!(std::fs::symlink_metadata(vol.path().join("..evil")).is_err());
        assert_eq!(std::fs::read(vol.path().join("other")).unwrap(), b"x");
    }

    #[test]
    fn hostile_symlinks_inside_the_data_are_never_followed() {
        let (out, precious) = outside();
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        assert!(
            w.write(&payload(&[("f", "keep", 0o644), ("d/g", "keep", 0o644)]))
                .unwrap()
        );
        let ts = vol.path().join(data_target(vol.path()));
        // A file replaced by a symlink to an outside file with the same content, a nested
        // directory replaced by a symlink to the outside directory.
        std::fs::remove_file(ts.join("f")).unwrap();
        symlink(&precious, ts.join("f")).unwrap();
        std::fs::remove_dir_all(ts.join("d")).unwrap();
        symlink(out.path(), ts.join("d")).unwrap();
        std::fs::write(ts.join("extra"), b"").unwrap();
        assert!(
            w.write(&payload(&[("f", "keep", 0o644), ("d/g", "keep", 0o644)]))
                .unwrap()
        );
        assert_untouched(out.path(), &precious);
        assert!(!ts.exists());
        assert_eq!(std::fs::read(vol.path().join("f")).unwrap(), b"keep");
        assert_eq!(std::fs::read(vol.path().join("d/g")).unwrap(), b"keep");
    }

    #[test]
    fn hostile_user_visible_symlink_is_removed_without_following() {
        let (out, precious) = outside();
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        assert!(
            w.write(&payload(&[("a", "1", 0o644), ("precious", "2", 0o644)]))
                .unwrap()
        );
        std::fs::remove_file(vol.path().join("precious")).unwrap();
        symlink(&precious, vol.path().join("precious")).unwrap();
        // Kept keys: the planted entry is left as it is (upstream); nothing is written through it.
        assert!(
            w.write(&payload(&[("a", "3", 0o644), ("precious", "4", 0o644)]))
                .unwrap()
        );
        assert_untouched(out.path(), &precious);
        // Removed key: its planted symlink is unlinked, its target untouched.
        assert!(w.write(&payload(&[("a", "3", 0o644)])).unwrap());
        assert!(std::fs::symlink_metadata(vol.path().join("precious")).is_err());
        assert_untouched(out.path(), &precious);
        // A planted directory symlink as a stale name too.
        std::fs::create_dir(vol.path().join(data_target(vol.path())).join("dir")).unwrap();
        symlink(out.path(), vol.path().join("dir")).unwrap();
        assert!(w.write(&payload(&[("a", "3", 0o644)])).unwrap());
        assert!(std::fs::symlink_metadata(vol.path().join("dir")).is_err());
        assert_untouched(out.path(), &precious);
    }

    #[test]
    fn hostile_data_dir_directory_and_stale_tmp_are_replaced() {
        let (out, precious) = outside();
        let vol = tempfile::tempdir().unwrap();
        // A real directory at ..data with a symlink out inside, and a stale ..data_tmp that is
        // a directory holding a symlink out too.
        std::fs::create_dir(vol.path().join(DATA_DIR_NAME)).unwrap();
        symlink(out.path(), vol.path().join("..data/out")).unwrap();
        std::fs::create_dir(vol.path().join(NEW_DATA_DIR_NAME)).unwrap();
        symlink(&precious, vol.path().join("..data_tmp/p")).unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        assert!(w.write(&payload(&[("k", "v", 0o644)])).unwrap());
        assert!(
            std::fs::symlink_metadata(vol.path().join(DATA_DIR_NAME))
                .unwrap()
                .is_symlink()
        );
        assert_eq!(std::fs::read(vol.path().join("k")).unwrap(), b"v");
        assert!(!vol.path().join(NEW_DATA_DIR_NAME).exists());
        assert_untouched(out.path(), &precious);
    }

    #[test]
    fn a_fifo_in_the_old_data_does_not_block() {
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        assert!(w.write(&payload(&[("f", "x", 0o644)])).unwrap());
        let ts = vol.path().join(data_target(vol.path()));
        std::fs::remove_file(ts.join("f")).unwrap();
        nix::unistd::mkfifo(&ts.join("f"), Mode::S_IRWXU).unwrap();
        assert!(w.write(&payload(&[("f", "x", 0o644)])).unwrap());
        assert_eq!(std::fs::read(vol.path().join("f")).unwrap(), b"x");
    }

    #[test]
    fn stale_names_starting_with_dots_are_not_removed() {
        let vol = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(vol.path(), "t").unwrap();
        assert!(w.write(&payload(&[("a", "1", 0o644)])).unwrap());
        // The container plants `..data` inside the data: it must not make the writer remove
        // the real data link after the swap.
        let ts = vol.path().join(data_target(vol.path()));
        std::fs::write(ts.join(DATA_DIR_NAME), b"").unwrap();
        assert!(w.write(&payload(&[("a", "1", 0o644)])).unwrap());
        assert_eq!(std::fs::read(vol.path().join("a")).unwrap(), b"1");
    }

    #[test]
    fn debug_does_not_print_the_content() {
        let shown = format!("{:?}", FileProjection::new("hunter2", 0o600));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("7 bytes") && shown.contains("0o600"),
            "{shown}"
        );
    }
}
