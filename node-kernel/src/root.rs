//! The directory every probe reads from: `/` on a real node, a fixture tree in tests.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A host root: probes read `<root>/proc/...`, `<root>/sys/...`, `<root>/boot/...`.
///
/// Only the real root (`/`) is "live": probes that need the running kernel (a syscall, a test
/// mount, a temporary cgroup) run only there, because a fixture tree cannot answer them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    root: PathBuf,
    live: bool,
}

impl Default for HostRoot {
    fn default() -> Self {
        Self::live()
    }
}

/// Reads at most `limit` bytes of `path`; a longer file is [`Error::TooLarge`] (the excess is
/// never read, so `/dev/zero` or a runaway file cannot exhaust memory).
pub(crate) fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            what: "file",
            limit,
        });
    }
    Ok(bytes)
}

impl HostRoot {
    /// The most [`HostRoot::read`] reads of one file: 32 MiB. The largest files probed are
    /// `/proc/mounts` (about 150 bytes a mount, so some 200,000 mounts) and `/proc/cpuinfo`.
    pub const MAX_FILE_BYTES: u64 = 32 << 20;

    /// The running system (`/`).
    #[must_use]
    pub fn live() -> Self {
        Self {
            root: PathBuf::from("/"),
            live: true,
        }
    }

    /// A tree laid out like `/` (a fixture, a chroot, a mounted image). It is live only if it
    /// resolves to `/` itself.
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let live = fs::canonicalize(&root).is_ok_and(|p| p == Path::new("/"));
        Self { root, live }
    }

    /// The root directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Whether this is the running system, so live-kernel probes may run.
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// `<root>/<rel>`; `rel` is given without a leading slash (a leading slash is stripped).
    #[must_use]
    pub fn join(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Reads `<root>/<rel>` as UTF-8 (lossy: kernel files are ASCII, fixtures may not be), at
    /// most [`HostRoot::MAX_FILE_BYTES`].
    ///
    /// # Errors
    /// [`Error::Read`] with the full path; [`Error::TooLarge`] for a longer file.
    pub fn read(&self, rel: &str) -> Result<String> {
        self.read_at_most(rel, Self::MAX_FILE_BYTES)
    }

    /// Like [`HostRoot::read`] with a smaller (or larger) cap than
    /// [`HostRoot::MAX_FILE_BYTES`]: the one bounded reader of host files the workspace shares
    /// (node-heartbeat's machine facts use it too).
    ///
    /// # Errors
    /// [`Error::Read`] with the full path; [`Error::TooLarge`] for a file longer than `limit`.
    pub fn read_at_most(&self, rel: &str, limit: u64) -> Result<String> {
        let bytes = read_capped(&self.join(rel), limit)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Like [`HostRoot::read`] but a missing file is `Ok(None)`.
    ///
    /// # Errors
    /// [`Error::Read`] for anything but "not found".
    pub fn read_optional(&self, rel: &str) -> Result<Option<String>> {
        match self.read(rel) {
            Ok(s) => Ok(Some(s)),
            Err(Error::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether `<root>/<rel>` exists (follows symlinks).
    #[must_use]
    pub fn exists(&self, rel: &str) -> bool {
        self.join(rel).exists()
    }

    /// Whether `<root>/<rel>` is a directory.
    #[must_use]
    pub fn is_dir(&self, rel: &str) -> bool {
        self.join(rel).is_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (fuzzing audit): probe reads were unbounded; a fixture root whose
    /// `/proc/mounts` is `/dev/zero` (or any runaway file) is now refused at the cap.
    #[test]
    fn reads_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("proc/mounts")).unwrap();
        let root = HostRoot::new(dir.path());
        match root.read("/proc/mounts") {
            Err(Error::TooLarge { path, what, limit }) => {
                assert_eq!(path, dir.path().join("proc/mounts"));
                assert_eq!((what, limit), ("file", HostRoot::MAX_FILE_BYTES));
            }
            other => panic!("{other:?}"),
        }
        let small = dir.path().join("small");
        std::fs::write(&small, b"12345").unwrap();
        assert_eq!(read_capped(&small, 5).unwrap(), b"12345");
        let err = read_capped(&small, 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: file is larger than the 4 bytes read at most",
                small.display()
            )
        );
    }
}
