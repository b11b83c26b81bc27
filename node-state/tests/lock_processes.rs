//! The lock file between two real processes: the second blocks (or fails fast in try mode)
//! while the first holds the lock, and the contention watcher fires when the second opens it.
//!
//! The second process is this test binary re-executed with `NODE_STATE_LOCK_CHILD` set to
//! `blocking` or `try`, running only the `lock_child` test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use node_state::{ContentionEvent, Error, LockFile, watch_for_contention};

const MODE_ENV: &str = "NODE_STATE_LOCK_CHILD";
const PATH_ENV: &str = "NODE_STATE_LOCK_PATH";

#[test]
fn lock_child() {
    let Ok(mode) = std::env::var(MODE_ENV) else {
        return;
    };
    let path = std::env::var(PATH_ENV).unwrap();
    let say = |s: &str| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{s}").unwrap();
        out.flush().unwrap();
    };
    say("started");
    let result = match mode.as_str() {
        "blocking" => LockFile::acquire(&path),
        _ => LockFile::try_acquire(&path),
    };
    match result {
        Ok(_lock) => say("acquired"),
        Err(e @ Error::LockContended { .. }) => {
            say(&format!("contended: {e}"));
            std::process::exit(2);
        }
        Err(e) => {
            say(&format!("error: {e}"));
            std::process::exit(3);
        }
    }
}

fn spawn_child(mode: &str, path: &Path) -> (Child, Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_child", "--nocapture", "--test-threads=1"])
        .env(MODE_ENV, mode)
        .env(PATH_ENV, path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest prints "test lock_child ... " without a newline before our first line.
            let line = line
                .trim()
                .trim_start_matches("test lock_child ... ")
                .to_owned();
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn expect_line(rx: &Receiver<String>, prefix: &str, within: Duration) -> String {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => continue,
            Err(e) => panic!("no {prefix:?} line within {within:?}: {e}"),
        }
    }
}

fn no_line(rx: &Receiver<String>, prefix: &str, during: Duration) {
    let deadline = std::time::Instant::now() + during;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        if let Ok(line) = rx.recv_timeout(left) {
            assert!(!line.starts_with(prefix), "unexpected {line:?}");
        }
    }
}

#[test]
fn second_process_blocks_until_first_releases() {
    if std::env::var(MODE_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubelet.lock");
    let held = LockFile::acquire(&path).unwrap();
    let (mut child, rx) = spawn_child("blocking", &path);
    expect_line(&rx, "started", Duration::from_secs(10));
    no_line(&rx, "acquired", Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "child should still be blocked in flock"
    );
    drop(held);
    expect_line(&rx, "acquired", Duration::from_secs(10));
    assert!(child.wait().unwrap().success());
}

#[test]
fn try_mode_fails_fast_with_clear_error() {
    if std::env::var(MODE_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubelet.lock");
    let _held = LockFile::acquire(&path).unwrap();
    let (mut child, rx) = spawn_child("try", &path);
    let line = expect_line(&rx, "contended", Duration::from_secs(10));
    assert!(
        line.contains("unable to acquire file lock on") && line.contains("held by another process"),
        "{line}"
    );
    assert_eq!(child.wait().unwrap().code(), Some(2));
}

struct ThreadWaker(std::thread::Thread);
impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls a future to completion on this thread (the watch needs no runtime).
fn block_on<F: std::future::Future>(fut: F, timeout: Duration) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "future did not resolve within {timeout:?}");
        std::thread::park_timeout(left);
    }
}

#[test]
fn contention_watch_fires_when_another_process_opens_the_lock() {
    if std::env::var(MODE_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubelet.lock");
    // The kubelet's sequence: take the lock, then watch it.
    let held = LockFile::acquire(&path).unwrap();
    let watch = watch_for_contention(&path).unwrap();
    assert!(!watch.is_triggered());
    let (mut child, rx) = spawn_child("blocking", &path);
    expect_line(&rx, "started", Duration::from_secs(10));
    assert_eq!(
        block_on(watch, Duration::from_secs(10)).unwrap(),
        ContentionEvent::Opened
    );
    // The old holder exits; the newcomer's blocking flock then succeeds.
    drop(held);
    expect_line(&rx, "acquired", Duration::from_secs(10));
    assert!(child.wait().unwrap().success());
}
