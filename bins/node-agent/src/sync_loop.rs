//! The sync loop: a pod sync pass every second (the kubelet relists its runtime on the same
//! period), each pass stamped for `/healthz` and the watchdog's `syncloop` check and counted
//! in `/metrics`. When it stops, admission has stopped: no pod starts after that.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use node_runtime::PodManager;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Time between passes.
pub const SYNC_PERIOD: Duration = Duration::from_secs(1);
/// Time between passes when there is no staticPodPath: only adopted pods to watch.
const IDLE_SYNC_PERIOD: Duration = Duration::from_secs(10);

/// Runs passes until `stop` turns true and returns the manager for the shutdown.
pub async fn run(
    mut manager: PodManager,
    no_pod_source: bool,
    metrics: Arc<Metrics>,
    last_sync: Arc<AtomicI64>,
    mut stop: watch::Receiver<bool>,
) -> PodManager {
    let period = if no_pod_source {
        IDLE_SYNC_PERIOD
    } else {
        SYNC_PERIOD
    };
    loop {
        if *stop.borrow() {
            return manager;
        }
        let started = Instant::now();
        let report = manager.sync_once().await;
        for e in &report.errors {
            tracing::warn!(error = %e, "pod sync");
        }
        for pod in &report.sandboxes_created {
            tracing::info!(pod = %pod, "pod sandbox started");
        }
        for c in &report.containers_started {
            tracing::info!(container = %c, "container started");
        }
        metrics.record_sync(&report, started.elapsed());
        last_sync.store(now_millis(), Ordering::Relaxed);
        let wait = period.saturating_sub(started.elapsed());
        tokio::select! {
            _ = stop.changed() => return manager,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
