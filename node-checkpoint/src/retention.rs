//! Optional retention for the checkpoints directory (the kubelet has none and lets archives
//! fill the disk): keep at most a number of archives and/or a total size, removing the oldest
//! first. Off by default.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::CheckpointError;

/// Limits for the checkpoints directory. Only regular files named `checkpoint-*.tar` count;
/// the archive just written is never removed, even when it alone exceeds a limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Keep at most this many archives.
    pub max_count: Option<usize>,
    /// Keep at most this many bytes of archives.
    pub max_total_bytes: Option<u64>,
}

impl Retention {
    /// Whether any limit is set.
    pub fn is_enabled(&self) -> bool {
        self.max_count.is_some() || self.max_total_bytes.is_some()
    }

    /// Removes the oldest archives (by modification time, then name) until the limits hold;
    /// returns the removed paths.
    pub fn enforce(&self, dir: &Path, keep: &Path) -> Result<Vec<PathBuf>, CheckpointError> {
        if !self.is_enabled() {
            return Ok(Vec::new());
        }
        let entries = std::fs::read_dir(dir)
            .map_err(|e| CheckpointError::io("reading checkpoint directory", dir, e))?;
        let mut archives: Vec<(i64, i64, PathBuf, u64)> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with("checkpoint-") || !name.ends_with(".tar") {
                continue;
            }
            // symlink_metadata: a symlink is not an archive and is never followed.
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if meta.is_file() {
                archives.push((meta.mtime(), meta.mtime_nsec(), entry.path(), meta.len()));
            }
        }
        archives.sort();
        let mut count = archives.len();
        let mut total: u64 = archives.iter().map(|a| a.3).sum();
        let mut removed = Vec::new();
        for (_, _, path, len) in archives {
            let over_count = self.max_count.is_some_and(|m| count > m);
            let over_size = self.max_total_bytes.is_some_and(|m| total > m);
            if !over_count && !over_size {
                break;
            }
            if path == keep {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(CheckpointError::io("removing old archive", &path, e)),
            }
            count -= 1;
            total = total.saturating_sub(len);
            removed.push(path);
        }
        Ok(removed)
    }

    /// Keeps at most `max_count` archives ([`max_count`](Self::max_count)).
    #[must_use]
    pub fn with_max_count(mut self, max_count: usize) -> Self {
        self.max_count = Some(max_count);
        self
    }

    /// Keeps at most `max_total_bytes` bytes of archives
    /// ([`max_total_bytes`](Self::max_total_bytes)).
    #[must_use]
    pub fn with_max_total_bytes(mut self, max_total_bytes: u64) -> Self {
        self.max_total_bytes = Some(max_total_bytes);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn archive(dir: &Path, name: &str, len: usize, age_secs: u64) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, vec![0u8; len]).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(age_secs))
            .unwrap();
        p
    }

    #[test]
    fn oldest_go_first_and_the_new_one_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let a = archive(d, "checkpoint-a_ns-c-1.tar", 100, 300);
        let b = archive(d, "checkpoint-b_ns-c-1.tar", 100, 200);
        let c = archive(d, "checkpoint-c_ns-c-1.tar", 100, 100);
        let new = archive(d, "checkpoint-d_ns-c-1.tar", 100, 0);
        let other = archive(d, "notes.txt", 1000, 999);
        assert!(Retention::default().enforce(d, &new).unwrap().is_empty());
        let r = Retention {
            max_count: Some(3),
            max_total_bytes: None,
        };
        assert_eq!(r.enforce(d, &new).unwrap(), [a]);
        let r = Retention {
            max_count: None,
            max_total_bytes: Some(150),
        };
        assert_eq!(r.enforce(d, &new).unwrap(), [b, c]);
        assert!(new.exists() && other.exists());
        // The newest alone over the limit: kept.
        let r = Retention {
            max_count: Some(0),
            max_total_bytes: Some(1),
        };
        assert!(r.enforce(d, &new).unwrap().is_empty());
        assert!(new.exists());
    }
}
