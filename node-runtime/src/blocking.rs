//! Blocking work off the async executor.
//!
//! The agent drives every loop and server from one executor thread. Filesystem work of a sync
//! pass (pod and volume directories, subPath mounts, removing a pod directory that may hold a
//! large emptyDir, reading manifests, a hook that fsyncs a checkpoint) would stop the health
//! endpoints, the heartbeat and the watchdog for as long as it takes, so it runs on tokio's
//! blocking pool and the pass awaits it. The kubelet gets the same from goroutines.

use crate::error::RuntimeError;

/// Runs `work` on tokio's blocking pool and waits for it. A panic in `work` (a bug) or a
/// runtime shutting down becomes [`RuntimeError::Blocking`] naming `action`, never a panic of
/// the caller.
pub(crate) async fn run<T: Send + 'static>(
    action: &'static str,
    work: impl FnOnce() -> Result<T, RuntimeError> + Send + 'static,
) -> Result<T, RuntimeError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(err) => {
            let reason = if err.is_panic() {
                "panicked"
            } else {
                "was cancelled"
            };
            tracing::error!(%action, reason, "blocking pod work did not finish");
            Err(RuntimeError::Blocking { action, reason })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// On a single-threaded runtime, the work waits for a message that only another task on
    /// that same thread sends: run inline, it would hold the thread and never get it.
    #[tokio::test(flavor = "current_thread")]
    async fn work_runs_while_the_executor_thread_keeps_running_tasks() {
        let (tx, rx) = mpsc::channel::<()>();
        let work = run("waiting for the executor", move || {
            rx.recv_timeout(Duration::from_secs(120))
                .map_err(|e| RuntimeError::Blocking {
                    action: "test",
                    reason: if matches!(e, mpsc::RecvTimeoutError::Timeout) {
                        "held the executor thread"
                    } else {
                        "lost its sender"
                    },
                })
        });
        let other_task = async move {
            tokio::task::yield_now().await;
            tx.send(()).expect("the work is waiting");
        };
        let (result, ()) = tokio::join!(work, other_task);
        result.expect("the work ran off the executor thread");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_in_the_work_is_an_error_naming_the_action() {
        let err = run::<()>("removing pod directory", || panic!("bug"))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            RuntimeError::Blocking {
                action: "removing pod directory",
                reason: "panicked"
            }
        ));
        assert_eq!(
            err.to_string(),
            "removing pod directory: blocking work panicked"
        );
    }
}
