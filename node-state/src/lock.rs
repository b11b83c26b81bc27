//! The kubelet's `--lock-file` and `--exit-on-lock-contention`.
//!
//! * [`LockFile::acquire`] opens the file (`O_CREAT|O_RDWR|O_CLOEXEC`, 0600) and takes an
//!   exclusive `flock`, blocking while another process holds it — a second kubelet on the same
//!   path waits at startup. [`LockFile::try_acquire`] fails fast instead.
//! * [`watch_for_contention`] watches the file with inotify for `IN_OPEN | IN_DELETE_SELF`; the
//!   first event (another process opening the file to take the lock, or the file being
//!   deleted) resolves the returned [`ContentionWatch`], a `Future` that needs no particular
//!   async runtime (a helper thread does the waiting). The holder is then expected to exit so
//!   the newcomer's blocking `flock` succeeds.
//! * [`check_lock_flags`] rejects exit-on-contention without a lock file with the kubelet's
//!   message.

use std::fs::{File, OpenOptions, TryLockError};
use std::future::Future;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::error::{Error, Result};

/// Validates the flag combination as the kubelet's `run()` does.
pub fn check_lock_flags(lock_file: Option<&Path>, exit_on_contention: bool) -> Result<()> {
    if exit_on_contention && lock_file.is_none_or(|p| p.as_os_str().is_empty()) {
        return Err(Error::NoLockFile);
    }
    Ok(())
}

/// A held lock. The lock is released when this value (and so the descriptor) is dropped or the
/// process exits; the kubelet simply keeps it for its whole life.
#[derive(Debug)]
pub struct LockFile {
    file: File,
    path: PathBuf,
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| Error::Lock {
            path: path.to_path_buf(),
            source,
        })
}

impl LockFile {
    /// Opens the lock file and blocks until the exclusive `flock` is granted.
    pub fn acquire(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = open_lock_file(path)?;
        file.lock().map_err(|source| Error::Lock {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(LockFile {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Opens the lock file and takes the lock only if it is free; otherwise
    /// [`Error::LockContended`] at once.
    pub fn try_acquire(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(LockFile {
                file,
                path: path.to_path_buf(),
            }),
            Err(TryLockError::WouldBlock) => Err(Error::LockContended {
                path: path.to_path_buf(),
            }),
            Err(TryLockError::Error(source)) => Err(Error::Lock {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open descriptor (kept open for as long as the lock is held).
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// What ended a contention watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentionEvent {
    /// Someone opened the lock file.
    Opened,
    /// The lock file was deleted.
    Deleted,
}

#[derive(Default)]
struct WatchState {
    outcome: Option<Result<ContentionEvent>>,
    event: Option<ContentionEvent>,
    waker: Option<Waker>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<WatchState>,
    cv: Condvar,
}

/// A pending contention watch; see [`watch_for_contention`].
///
/// Await it, or call [`ContentionWatch::wait`] / [`ContentionWatch::wait_timeout`] from
/// blocking code. Dropping it stops the helper thread.
pub struct ContentionWatch {
    shared: Arc<Shared>,
    cancel: Option<std::io::PipeWriter>,
    path: PathBuf,
}

impl std::fmt::Debug for ContentionWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentionWatch")
            .field("path", &self.path)
            .finish()
    }
}

/// Starts watching `path` for `IN_OPEN | IN_DELETE_SELF`. The watch is in place when this
/// returns, so any later `open()` of the file — by any process, this one included — fires it.
pub fn watch_for_contention(path: impl AsRef<Path>) -> Result<ContentionWatch> {
    let path = path.as_ref().to_path_buf();
    let inotify_err = |e: nix::Error| Error::Lock {
        path: path.clone(),
        source: std::io::Error::from(e),
    };
    let inotify =
        Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(inotify_err)?;
    inotify
        .add_watch(
            &path,
            AddWatchFlags::IN_OPEN | AddWatchFlags::IN_DELETE_SELF,
        )
        .map_err(inotify_err)?;
    let (cancel_rx, cancel_tx) = std::io::pipe().map_err(|source| Error::Lock {
        path: path.clone(),
        source,
    })?;
    let shared = Arc::new(Shared::default());
    let thread_shared = Arc::clone(&shared);
    let thread_path = path.clone();
    std::thread::Builder::new()
        .name("lock-contention".into())
        .spawn(move || {
            let outcome = wait_for_event(&inotify, &cancel_rx, &thread_path);
            let Some(outcome) = outcome else { return };
            let mut st = thread_shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Ok(ev) = &outcome {
                st.event = Some(*ev);
            }
            st.outcome = Some(outcome);
            if let Some(w) = st.waker.take() {
                w.wake();
            }
            thread_shared.cv.notify_all();
        })
        .map_err(|source| Error::Lock {
            path: path.clone(),
            source,
        })?;
    Ok(ContentionWatch {
        shared,
        cancel: Some(cancel_tx),
        path,
    })
}

/// Blocks until an inotify event (Some(Ok)), an error (Some(Err)) or cancellation (None).
fn wait_for_event(
    inotify: &Inotify,
    cancel: &std::io::PipeReader,
    path: &Path,
) -> Option<Result<ContentionEvent>> {
    loop {
        let mut fds = [
            PollFd::new(inotify.as_fd(), PollFlags::POLLIN),
            PollFd::new(cancel.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => {
                return Some(Err(Error::Lock {
                    path: path.to_path_buf(),
                    source: e.into(),
                }));
            }
        }
        if fds[1].any().unwrap_or(false)
            || fds[1]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP))
        {
            return None;
        }
        match inotify.read_events() {
            Ok(events) => {
                let deleted = events
                    .iter()
                    .any(|e| e.mask.contains(AddWatchFlags::IN_DELETE_SELF));
                let opened = events
                    .iter()
                    .any(|e| e.mask.contains(AddWatchFlags::IN_OPEN));
                if deleted {
                    return Some(Ok(ContentionEvent::Deleted));
                }
                if opened {
                    return Some(Ok(ContentionEvent::Opened));
                }
            }
            Err(nix::Error::EAGAIN | nix::Error::EINTR) => {}
            Err(e) => {
                return Some(Err(Error::Lock {
                    path: path.to_path_buf(),
                    source: e.into(),
                }));
            }
        }
    }
}

impl ContentionWatch {
    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True once contention has been seen.
    pub fn is_triggered(&self) -> bool {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .event
            .is_some()
    }

    /// Blocks until contention.
    pub fn wait(self) -> Result<ContentionEvent> {
        let mut st = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(outcome) = st.outcome.take() {
                return outcome;
            }
            if let Some(ev) = st.event {
                return Ok(ev);
            }
            st = self
                .shared
                .cv
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks until contention or `timeout`; `None` on timeout.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<ContentionEvent>> {
        let deadline = Instant::now() + timeout;
        let mut st = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(outcome) = st.outcome.take() {
                return Some(outcome);
            }
            if let Some(ev) = st.event {
                return Some(Ok(ev));
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = self
                .shared
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Future for ContentionWatch {
    type Output = Result<ContentionEvent>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(outcome) = st.outcome.take() {
            return Poll::Ready(outcome);
        }
        if let Some(ev) = st.event {
            return Poll::Ready(Ok(ev));
        }
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ContentionWatch {
    fn drop(&mut self) {
        // Closing the pipe's only write end makes the helper's poll report POLLHUP; it exits.
        // (Writing instead could raise SIGPIPE once the helper is gone.)
        drop(self.cancel.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_check_wording() {
        assert_eq!(
            check_lock_flags(None, true).unwrap_err().to_string(),
            "cannot exit on lock file contention: no lock file specified"
        );
        check_lock_flags(None, false).unwrap();
        check_lock_flags(Some(Path::new("/run/kubelet.lock")), true).unwrap();
    }

    #[test]
    fn try_lock_in_process_and_watch_fires_on_open_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet.lock");
        let held = LockFile::acquire(&path).unwrap();
        // flock locks belong to the open file description: a second open contends even in-process.
        let err = LockFile::try_acquire(&path).unwrap_err();
        assert!(matches!(err, Error::LockContended { .. }), "{err}");
        let watch = watch_for_contention(&path).unwrap();
        assert!(watch.wait_timeout(Duration::from_millis(50)).is_none());
        let other = File::open(&path).unwrap();
        assert_eq!(
            watch.wait_timeout(Duration::from_secs(5)).unwrap().unwrap(),
            ContentionEvent::Opened
        );
        drop(other);
        drop(held);

        // The inode goes away (IN_DELETE_SELF) once it is unlinked and no descriptor is open.
        let watch = watch_for_contention(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            watch.wait_timeout(Duration::from_secs(5)).unwrap().unwrap(),
            ContentionEvent::Deleted
        );
    }
}
