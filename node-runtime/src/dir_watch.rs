//! Change notification for a directory (inotify), so loops that react to files — the static
//! pod directory — wake when something changes instead of polling it every second.

use std::path::Path;
use std::sync::Arc;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::sync::Notify;

/// Watches one directory for entries created, written, moved or deleted.
///
/// A small thread blocks in `read(2)` on the inotify descriptor and wakes the async side
/// through a [`Notify`] (bursts of events coalesce into one wake-up). The thread ends at the
/// first event after the watch is dropped, or when the directory goes away.
pub struct DirWatch {
    notify: Option<Arc<Notify>>,
}

impl DirWatch {
    /// Starts watching `dir`. When that is impossible (no such directory yet, inotify limits)
    /// the watch never fires and the caller's periodic check is the only trigger; the reason is
    /// logged.
    pub fn new(dir: &Path) -> Self {
        let flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF;
        let inotify = match Inotify::init(InitFlags::IN_CLOEXEC)
            .and_then(|inotify| inotify.add_watch(dir, flags).map(|_| inotify))
        {
            Ok(inotify) => inotify,
            Err(e) => {
                tracing::info!(dir = %dir.display(), error = %e, "not watching the directory for changes; checking it periodically");
                return Self { notify: None };
            }
        };
        let notify = Arc::new(Notify::new());
        let shared = Arc::downgrade(&notify);
        let name = dir.display().to_string();
        let spawned = std::thread::Builder::new()
            .name("dir-watch".to_owned())
            .spawn(move || {
                loop {
                    let events = match inotify.read_events() {
                        Ok(events) => events,
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(e) => {
                            tracing::warn!(dir = %name, error = %e, "directory watch failed; checking periodically");
                            return;
                        }
                    };
                    let Some(notify) = shared.upgrade() else {
                        return;
                    };
                    notify.notify_one();
                    let gone = events.iter().any(|e| {
                        e.mask
                            .intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF)
                    });
                    if gone {
                        tracing::info!(dir = %name, "watched directory removed; checking periodically");
                        return;
                    }
                }
            });
        match spawned {
            Ok(_) => Self {
                notify: Some(notify),
            },
            Err(e) => {
                tracing::info!(error = %e, "cannot start the directory watch thread; checking periodically");
                Self { notify: None }
            }
        }
    }

    /// Whether changes are being watched (false: the caller must check by itself).
    pub fn is_active(&self) -> bool {
        self.notify.as_ref().is_some_and(|n| Arc::weak_count(n) > 0)
    }

    /// Resolves at the next change (or at once if one happened since the last call). Never
    /// resolves when the directory is not watched.
    pub async fn changed(&mut self) {
        match &self.notify {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn fires_on_a_new_file_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = DirWatch::new(dir.path());
        let quiet = tokio::time::timeout(Duration::from_millis(200), watch.changed()).await;
        assert!(quiet.is_err(), "no change yet");
        std::fs::write(dir.path().join("pod.yaml"), b"x").unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("a change");
    }

    #[tokio::test]
    async fn a_missing_directory_never_fires() {
        let mut watch = DirWatch::new(Path::new("/nonexistent/manifests"));
        let r = tokio::time::timeout(Duration::from_millis(100), watch.changed()).await;
        assert!(r.is_err());
    }
}
