//! The checkpoint file store: one file per key in a directory, written atomically.
//!
//! Semantics follow the kubelet's `pkg/kubelet/util/store` file store, with one addition: after
//! the rename the directory is fsynced too, so that a power cut cannot lose the rename itself.
//!
//! * keys match `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$` and are at most 250 characters;
//! * a write creates `.<random digits>` (mode 0600) in the same directory, writes, fsyncs,
//!   closes, renames over the key and fsyncs the directory; on error the temp file is removed;
//! * names starting with `.` are never listed, and temp files left by a crash (ours or the
//!   kubelet's, both `.` followed by digits) are removed when the store is opened.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Longest key the kubelet's file store accepts.
pub const MAX_KEY_LEN: usize = 250;

/// Mode of checkpoint files.
pub const FILE_MODE: u32 = 0o600;

/// Mode the kubelet creates a missing checkpoint directory with.
pub const DIR_MODE: u32 = 0o755;

/// The largest state file read: 16 MiB. The kubelet's files hold a few hundred bytes per pod
/// or device; a larger file is refused instead of being read into memory (`/dev/zero` or a
/// runaway file planted where a state file is expected).
pub const MAX_STATE_FILE_BYTES: u64 = 16 << 20;

/// Reads a state file of at most [`MAX_STATE_FILE_BYTES`].
///
/// # Errors
/// [`Error::NotFound`] when it does not exist, [`Error::TooLarge`] when it is longer than the
/// cap (the excess is never read), [`Error::Io`] otherwise.
pub fn read_state_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = File::open(path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            Error::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            Error::io(path, "reading", e)
        }
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_STATE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, "reading", e))?;
    if bytes.len() as u64 > MAX_STATE_FILE_BYTES {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_STATE_FILE_BYTES,
        });
    }
    Ok(bytes)
}

/// A state file format the store can load and save.
pub trait StateFile: Sized {
    /// Decodes and verifies file content exactly as the kubelet would accept it. `path` only
    /// names the file in errors.
    fn decode(bytes: &[u8], path: &Path) -> Result<Self>;
    /// Encodes the value with a freshly computed checksum.
    fn encode(&self) -> Result<Vec<u8>>;
}

/// Checks a key against the file store's rules.
pub fn validate_key(key: &str) -> Result<()> {
    let b = key.as_bytes();
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    let inner = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.';
    let ok = !b.is_empty()
        && b.len() <= MAX_KEY_LEN
        && alnum(b[0])
        && alnum(b[b.len() - 1])
        && b.iter().all(|&c| inner(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidKey {
            key: key.to_owned(),
        })
    }
}

/// True for the names of temp files a crashed writer can leave: `.` followed by digits.
pub fn is_temp_name(name: &str) -> bool {
    name.len() > 1 && name.starts_with('.') && name[1..].bytes().all(|b| b.is_ascii_digit())
}

fn random_suffix() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// Writes `data` to `dir/name` atomically: temp file (exactly `mode`, whatever the umask),
/// write, fsync, close, rename, fsync of the directory. Readers see the old or the new content,
/// never a mix. The workspace's one durable write: state files, serving certificates and
/// anything else that must survive a crash whole go through it.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<()> {
    write_atomic_with(dir, name, data, mode, true)
}

fn write_atomic_with(dir: &Path, name: &str, data: &[u8], mode: u32, dir_sync: bool) -> Result<()> {
    let (tmp_path, mut file) = create_temp(dir, mode)?;
    let result = (|| {
        // The umask may have narrowed the mode given at creation; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(&tmp_path, "setting permissions of temp file", e))?;
        file.write_all(data)
            .map_err(|e| Error::io(&tmp_path, "writing temp file", e))?;
        file.sync_all()
            .map_err(|e| Error::io(&tmp_path, "syncing temp file", e))?;
        drop(file);
        let target = dir.join(name);
        fs::rename(&tmp_path, &target)
            .map_err(|e| Error::io(&target, "renaming temp file into place", e))?;
        if dir_sync { sync_dir(dir) } else { Ok(()) }
    })();
    if result.is_err() {
        // The rename may not have happened; never leave the temp file behind.
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

fn create_temp(dir: &Path, mode: u32) -> Result<(PathBuf, File)> {
    let mut last_err = None;
    for _ in 0..16 {
        // Ten digits like Go's os.CreateTemp, so kubelet and agent temp names look the same.
        let path = dir.join(format!(".{}", random_suffix() % 10_000_000_000));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(Error::io(dir, "creating temp file", e)),
        }
    }
    Err(Error::io(
        dir,
        "creating temp file",
        last_err.unwrap_or_else(|| std::io::Error::other("no free temp name")),
    ))
}

fn sync_dir(dir: &Path) -> Result<()> {
    fsync_dir(dir).map_err(|e| Error::io(dir, "syncing directory", e))
}

/// fsyncs the directory `dir`, so a rename, link or create in it survives a crash.
pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

/// A directory of checkpoints, one file per key.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    dir_sync: bool,
}

impl FileStore {
    /// Opens (creating it with mode 0755 when missing, as the kubelet does) the directory and
    /// removes temp files left by an interrupted writer.
    ///
    /// Only one writer should use a directory at a time (the kubelet's lock file guarantees it);
    /// a concurrent writer's in-flight temp file would be removed and its write would fail.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        if fs::metadata(&dir).is_err() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(&dir)
                .map_err(|e| Error::io(&dir, "creating checkpoint directory", e))?;
        }
        let store = FileStore {
            dir,
            dir_sync: true,
        };
        store.cleanup_stale_temps()?;
        Ok(store)
    }

    /// Opens an existing directory for reading only: nothing is created or removed.
    pub fn open_read_only(dir: impl Into<PathBuf>) -> Self {
        FileStore {
            dir: dir.into(),
            dir_sync: true,
        }
    }

    /// Skips the directory fsync after the rename, exactly like the kubelet's file store. The
    /// content is still never torn, but a power cut right after a write may bring back the
    /// previous version.
    pub fn without_dir_sync(mut self) -> Self {
        self.dir_sync = false;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a key (validated).
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.dir.join(key))
    }

    /// Removes `.<digits>` temp files; returns how many were removed.
    pub fn cleanup_stale_temps(&self) -> Result<usize> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, "listing directory", e))?;
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, "listing directory", e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_temp_name(name) {
                continue;
            }
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if !is_file {
                continue;
            }
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(entry.path(), "removing stale temp file", e)),
            }
        }
        Ok(removed)
    }

    /// Reads a key's bytes (at most [`MAX_STATE_FILE_BYTES`]); [`Error::NotFound`] when the
    /// file does not exist.
    pub fn read(&self, key: &str) -> Result<Vec<u8>> {
        read_state_file(&self.path_of(key)?)
    }

    /// Writes a key atomically (mode 0600).
    pub fn write(&self, key: &str, data: &[u8]) -> Result<()> {
        validate_key(key)?;
        write_atomic_with(&self.dir, key, data, FILE_MODE, self.dir_sync)
    }

    /// Writes only when the content differs from what is stored; returns whether it wrote.
    pub fn write_if_changed(&self, key: &str, data: &[u8]) -> Result<bool> {
        match self.read(key) {
            Ok(existing) if existing == data => Ok(false),
            Ok(_) | Err(Error::NotFound { .. }) => self.write(key, data).map(|()| true),
            Err(e) => Err(e),
        }
    }

    /// Removes a key; a missing file is not an error.
    pub fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, "removing", e)),
        }
    }

    /// Lists keys (regular files not starting with `.`), sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, "listing directory", e))?;
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, "listing directory", e))?;
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if let (true, Some(name)) = (is_file, entry.file_name().to_str())
                && !name.starts_with('.')
            {
                keys.push(name.to_owned());
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Reads and verifies a checkpoint. Never writes.
    pub fn load<T: StateFile>(&self, key: &str) -> Result<T> {
        let bytes = self.read(key)?;
        T::decode(&bytes, &self.dir.join(key))
    }

    /// Encodes a checkpoint (fresh checksum) and writes it atomically.
    pub fn save<T: StateFile>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = value.encode()?;
        self.write(key, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn key_validation() {
        for ok in [
            "a",
            "cpu_manager_state",
            "kubelet_internal_checkpoint",
            "a-b.c_d",
            "A1",
        ] {
            validate_key(ok).unwrap();
        }
        for bad in ["", ".hidden", "a/b", "../x", "a.", "-a", "a b", "é"] {
            assert!(
                matches!(validate_key(bad), Err(Error::InvalidKey { .. })),
                "{bad}"
            );
        }
        validate_key(&"a".repeat(250)).unwrap();
        assert!(validate_key(&"a".repeat(251)).is_err());
        assert_eq!(
            validate_key("a/b").unwrap_err().to_string(),
            "invalid key: \"a/b\""
        );
    }

    #[test]
    fn write_read_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("sub")).unwrap();
        store.write("k1", b"one").unwrap();
        store.write("k1", b"two").unwrap();
        assert_eq!(store.read("k1").unwrap(), b"two");
        let mode = fs::metadata(store.dir().join("k1"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::write(store.dir().join(".dotfile"), b"x").unwrap();
        store.write("k0", b"x").unwrap();
        assert_eq!(store.list().unwrap(), vec!["k0", "k1"]);
        store.delete("k1").unwrap();
        store.delete("k1").unwrap();
        assert!(store.read("k1").unwrap_err().is_not_found());
        assert!(!store.write_if_changed("k0", b"x").unwrap());
        assert!(store.write_if_changed("k0", b"y").unwrap());
    }

    /// Regression (fuzzing audit): state files were read without a limit, so `/dev/zero` (or
    /// a runaway file) planted as a checkpoint filled memory.
    #[test]
    fn state_file_reads_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("cpu_manager_state")).unwrap();
        let err = store.read("cpu_manager_state").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: larger than the 16777216 bytes a state file may have",
                dir.path().join("cpu_manager_state").display()
            )
        );
        let big = dir.path().join("big");
        File::create(&big)
            .unwrap()
            .set_len(MAX_STATE_FILE_BYTES + 1)
            .unwrap();
        assert!(matches!(read_state_file(&big), Err(Error::TooLarge { .. })));
        File::create(&big)
            .unwrap()
            .set_len(MAX_STATE_FILE_BYTES)
            .unwrap();
        assert_eq!(
            read_state_file(&big).unwrap().len() as u64,
            MAX_STATE_FILE_BYTES
        );
        assert!(
            read_state_file(&dir.path().join("missing"))
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn stale_temps_removed_on_open_other_dotfiles_kept() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".1234567890"), b"partial").unwrap();
        fs::write(dir.path().join(".keepme"), b"x").unwrap();
        fs::write(dir.path().join("state"), b"x").unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        assert!(!dir.path().join(".1234567890").exists());
        assert!(dir.path().join(".keepme").exists());
        assert_eq!(store.list().unwrap(), vec!["state"]);
    }

    #[test]
    fn no_temp_left_after_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        // Renaming a file over a non-empty directory fails.
        fs::create_dir(dir.path().join("k")).unwrap();
        fs::write(dir.path().join("k").join("x"), b"x").unwrap();
        assert!(store.write("k", b"data").is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["k"]);
    }
}
