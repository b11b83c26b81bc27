//! The sync loop: a pod sync pass (manifests scanned, runtime relisted, pods started, restarted
//! or torn down) every second while the node has pods — the kubelet relists its runtime on the
//! same period — and, while it has none, only when the static pod directory changes (inotify)
//! or every `fileCheckFrequency`, as the kubelet's file source re-reads it. Each pass is stamped
//! for `/healthz` and the watchdog's `syncloop` check and counted in `/metrics`. Passes between
//! directory changes reuse the last manifest scan. When the loop
//! stops, admission has stopped: no pod starts after that.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use node_runtime::PodManager;
use tokio::sync::watch;

use crate::dir_watch::DirWatch;
use crate::metrics::Metrics;

/// Time between passes while the node has pods.
pub const SYNC_PERIOD: Duration = Duration::from_secs(1);

/// Runs passes until `stop` turns true and returns the manager for the shutdown.
///
/// `static_pod_path` is watched for changes (empty: none); `file_check` is the longest wait
/// between passes on a node without pods.
pub async fn run(
    mut manager: PodManager,
    static_pod_path: &Path,
    file_check: Duration,
    metrics: Arc<Metrics>,
    last_sync: Arc<AtomicI64>,
    mut stop: watch::Receiver<bool>,
) -> PodManager {
    let mut manifests = if static_pod_path.as_os_str().is_empty() {
        None
    } else {
        Some(DirWatch::new(static_pod_path))
    };
    // Manifests are re-read when the directory changed, every `file_check`, and on every pass
    // when the directory cannot be watched.
    let mut rescan = true;
    let mut last_rescan = Instant::now();
    loop {
        if *stop.borrow() {
            return manager;
        }
        let started = Instant::now();
        let watched = manifests.as_ref().is_some_and(DirWatch::is_active);
        if rescan || !watched || last_rescan.elapsed() >= file_check {
            rescan = true;
            last_rescan = started;
        }
        let report = manager.sync(rescan).await;
        rescan = false;
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
        // No pods, no manifests (valid or not): nothing in the runtime to follow until the
        // directory changes.
        let registry = manager.registry();
        let idle = registry.list().is_empty() && registry.manifest_errors().is_empty();
        let period = if idle {
            file_check.max(SYNC_PERIOD)
        } else {
            SYNC_PERIOD
        };
        let wait = period.saturating_sub(started.elapsed());
        let changed = async {
            match manifests.as_mut() {
                Some(w) => w.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => return manager,
            () = tokio::time::sleep(wait) => {}
            () = changed => {
                // Let a burst of writes (an editor's save, a copy) settle into one pass.
                tokio::time::sleep(Duration::from_millis(50)).await;
                rescan = true;
            }
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
