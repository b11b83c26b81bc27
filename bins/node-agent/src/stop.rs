//! How the agent stops: SIGTERM/SIGINT (a graceful node shutdown) or lock-file contention
//! (`--exit-on-lock-contention`: exit and leave the pods). The loops share one stop signal,
//! a `watch` channel awaited with [`node_util::stopped`].

/// Why the agent stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGTERM or SIGINT: a graceful node shutdown.
    Signal,
    /// Another process opened the lock file (`--exit-on-lock-contention`): exit, leave pods.
    LockContention,
}

impl StopReason {
    /// For the log.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Signal => "signal",
            StopReason::LockContention => "lock file contention",
        }
    }
}

/// Waits for a signal or, when `contention` is given, for the lock file watch to end.
pub async fn wait_for_stop(contention: Option<tokio::task::JoinHandle<()>>) -> StopReason {
    let signals = node_util::terminated();
    match contention {
        Some(handle) => tokio::select! {
            () = signals => StopReason::Signal,
            _ = handle => StopReason::LockContention,
        },
        None => {
            signals.await;
            StopReason::Signal
        }
    }
}
