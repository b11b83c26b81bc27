//! Shared plumbing for the `node-*` crates, in one place instead of a copy per crate.
//!
//! - [`error_chain`]: an error and its causes on one line, outermost first (`a: b: c`), the way
//!   the kubelet's Go errors read when wrapped with `%w`. Every crate's error type keeps its
//!   cause in [`std::error::Error::source`] and does not print it in its own message, so this
//!   plain walk prints each cause once.
//! - [`text`] (feature `http`): a `200`/`4xx`/`5xx` `text/plain; charset=utf-8` response, the
//!   body type Go's `http.Error` writes.
//! - [`run_blocking`] (feature `tokio`): filesystem work on tokio's blocking pool, awaited; a
//!   panic in the work (a bug) or a runtime shutting down becomes the caller's error
//!   ([`BlockingFailed`]), never a panic of the awaiting task.
//! - [`stopped`] (feature `tokio`): the stop signal every long-lived loop shares, a
//!   `watch::Receiver<bool>` turned into a future that resolves when it turns true.
//!
//! The other shared helpers live with the crate whose subject they are: durable atomic writes
//! in `node_state::write_atomic` (temp file, fsync, rename, fsync of the directory), reads of
//! the host's `/proc`, `/sys` and `/etc` through `node_kernel::HostRoot`.
//!
//! ```
//! #[derive(Debug)]
//! struct Outer(std::io::Error);
//! impl std::fmt::Display for Outer {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("reading /var/lib/kubelet/cpu_manager_state")
//!     }
//! }
//! impl std::error::Error for Outer {
//!     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
//!         Some(&self.0)
//!     }
//! }
//!
//! let e = Outer(std::io::Error::other("permission denied"));
//! assert_eq!(
//!     node_util::error_chain(&e),
//!     "reading /var/lib/kubelet/cpu_manager_state: permission denied"
//! );
//! ```

#![deny(missing_docs)]

/// `err` and each of its [`source`](std::error::Error::source)s, `": "`-separated, outermost
/// first: the one-line form for logs, gRPC status messages and HTTP bodies.
///
/// The error types of the `node-*` crates never print their cause in their own message. Some
/// third-party errors do (`tonic::Status` appends its source, several `kube` errors format it
/// in), and their text cannot be changed here: a cause whose text the line already holds is
/// not repeated.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A plain-text response with `status` and `body` (`Content-Type: text/plain; charset=utf-8`).
#[cfg(feature = "http")]
pub fn text(status: http::StatusCode, body: impl Into<String>) -> http::Response<String> {
    let mut response = http::Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Blocking work that did not finish: it panicked, or the runtime was shutting down.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockingFailed {
    /// What was being done, e.g. `removing pod directory`.
    pub action: &'static str,
    /// `panicked` or `was cancelled`.
    pub reason: &'static str,
}

/// Runs `work` on tokio's blocking pool and waits for it, so the executor thread keeps serving
/// health endpoints, heartbeats and the watchdog while a directory is removed or a file
/// fsynced (the kubelet gets the same from goroutines). A panic in `work` or a runtime
/// shutting down is logged and returned as `E::from(BlockingFailed { action, .. })`.
///
/// # Errors
/// `work`'s own error, or the [`BlockingFailed`] conversion.
#[cfg(feature = "tokio")]
pub async fn run_blocking<T, E>(
    action: &'static str,
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<BlockingFailed> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(err) => {
            let reason = if err.is_panic() {
                "panicked"
            } else {
                "was cancelled"
            };
            tracing::error!(%action, reason, "blocking work did not finish");
            Err(E::from(BlockingFailed { action, reason }))
        }
    }
}

/// Resolves once `rx` holds `true`, or once its sender is gone (nothing can stop the loop any
/// more, so it stops now rather than never). The shape every loop's shutdown argument takes:
/// `loop.run(node_util::stopped(stop_rx.clone()))`.
#[cfg(feature = "tokio")]
pub async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Resolves when the process gets SIGTERM or SIGINT. When the handlers cannot be installed it
/// logs that and never resolves (the process then stops only with SIGKILL).
#[cfg(feature = "tokio")]
pub async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrap(&'static str, Option<Box<Wrap>>);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|w| w as _)
        }
    }

    #[test]
    fn chain_prints_every_cause_once_outermost_first() {
        let e = Wrap(
            "a",
            Some(Box::new(Wrap("b", Some(Box::new(Wrap("c", None)))))),
        );
        assert_eq!(error_chain(&e), "a: b: c");
        assert_eq!(error_chain(&Wrap("alone", None)), "alone");
    }

    #[test]
    fn a_cause_the_message_already_prints_is_not_repeated() {
        // A third-party error that formats its source into its own message.
        let e = Wrap("connect: refused", Some(Box::new(Wrap("refused", None))));
        assert_eq!(error_chain(&e), "connect: refused");
    }

    #[cfg(feature = "tokio")]
    #[derive(Debug, PartialEq)]
    enum TestError {
        Failed(BlockingFailed),
        Work(&'static str),
    }
    #[cfg(feature = "tokio")]
    impl From<BlockingFailed> for TestError {
        fn from(e: BlockingFailed) -> Self {
            Self::Failed(e)
        }
    }

    /// On a single-threaded runtime, the work waits for a message that only another task on
    /// that same thread sends: run inline, it would hold the thread and never get it.
    #[cfg(feature = "tokio")]
    #[tokio::test(flavor = "current_thread")]
    async fn work_runs_while_the_executor_thread_keeps_running_tasks() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let work = run_blocking("waiting for the executor", move || {
            rx.recv_timeout(std::time::Duration::from_secs(120))
                .map_err(|_| TestError::Work("held the executor thread"))
        });
        let other_task = async move {
            tokio::task::yield_now().await;
            tx.send(()).expect("the work is waiting");
        };
        let (result, ()) = tokio::join!(work, other_task);
        assert_eq!(result, Ok(()));
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_in_the_work_is_an_error_naming_the_action() {
        let err = run_blocking::<(), TestError>("removing pod directory", || panic!("bug"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            TestError::Failed(BlockingFailed {
                action: "removing pod directory",
                reason: "panicked"
            })
        );
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(flavor = "current_thread")]
    async fn stopped_resolves_on_true_or_a_dropped_sender_only() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let waiting = tokio::spawn(stopped(rx.clone()));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "still false: not stopped");
        tx.send(true).unwrap();
        waiting.await.unwrap();
        // Already true: resolves at once.
        stopped(rx).await;
        // A sender gone while false: resolves too.
        let (tx, rx) = tokio::sync::watch::channel(false);
        drop(tx);
        stopped(rx).await;
    }

    #[cfg(feature = "http")]
    #[test]
    fn text_sets_status_type_and_body() {
        let r = text(http::StatusCode::NOT_FOUND, "pod does not exist");
        assert_eq!(r.status(), http::StatusCode::NOT_FOUND);
        assert_eq!(
            r.headers()[http::header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(r.body(), "pod does not exist");
    }
}
