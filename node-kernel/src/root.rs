//! The directory every probe reads from: `/` on a real node, a fixture tree in tests.

use std::fs;
use std::io;
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

impl HostRoot {
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

    /// Reads `<root>/<rel>` as UTF-8 (lossy: kernel files are ASCII, fixtures may not be).
    ///
    /// # Errors
    /// [`Error::Read`] with the full path.
    pub fn read(&self, rel: &str) -> Result<String> {
        let path = self.join(rel);
        match fs::read(&path) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(source) => Err(Error::Read { path, source }),
        }
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
