//! Blocking work off the async executor.
//!
//! The agent drives every loop and server from one executor thread. Filesystem work of a sync
//! pass (pod and volume directories, subPath mounts, removing a pod directory that may hold a
//! large emptyDir, reading manifests, a hook that fsyncs a checkpoint) would stop the health
//! endpoints, the heartbeat and the watchdog for as long as it takes, so it runs on tokio's
//! blocking pool and the pass awaits it. The kubelet gets the same from goroutines.

use crate::error::RuntimeError;

/// Runs `work` on tokio's blocking pool and waits for it ([`node_util::run_blocking`]). A
/// panic in `work` (a bug) or a runtime shutting down becomes [`RuntimeError::Blocking`]
/// naming `action`, never a panic of the caller.
pub(crate) async fn run<T: Send + 'static>(
    action: &'static str,
    work: impl FnOnce() -> Result<T, RuntimeError> + Send + 'static,
) -> Result<T, RuntimeError> {
    node_util::run_blocking(action, work).await
}

impl From<node_util::BlockingFailed> for RuntimeError {
    fn from(e: node_util::BlockingFailed) -> Self {
        RuntimeError::Blocking {
            action: e.action,
            reason: e.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
