//! The sync loop: pod sync passes (manifests scanned, runtime relisted, pods started,
//! restarted or torn down), run like the kubelet's evented PLEG when the runtime reports its
//! changes and like its generic PLEG otherwise:
//!
//! * on a runtime event (a task exited, a container was removed: [`RuntimeWatch`]), and at least
//!   every `syncFrequency` (or `fileCheckFrequency`, when shorter) while the node's pods are
//!   settled and the event stream is live;
//! * every second while the runtime reports no events (not containerd, or the stream is being
//!   re-established), for a few seconds after an event, and while some pod still has work (a
//!   container waiting for its crash-loop back-off, a failed call): the kubelet's relist period;
//! * when the static pod directory changes (inotify), or every `fileCheckFrequency`, as the
//!   kubelet's file source re-reads it; on a node without pods only then;
//! * when the API server's pods change ([`crate::ApiPods::changed`], with
//!   [`crate::PodManager::with_api_pods`]).
//!
//! Each pass is stamped in a [`SyncHealth`] (for `/healthz` and the watchdog's `syncloop`
//! check) and handed to the caller's pass observer (the agent counts it in `/metrics`). Passes
//! between directory changes reuse the last manifest scan. When the loop stops, admission has
//! stopped: no pod starts after that.
//!
//! ```no_run
//! # async fn run(manager: node_runtime::PodManager, events: node_runtime::RuntimeWatch) {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use node_runtime::sync_loop::{self, SyncHealth, Timing};
//!
//! // `fileCheckFrequency` 20 s and `syncFrequency` 1 min unless set.
//! let timing = Timing::new("/etc/kubernetes/manifests").with_resync(Duration::from_secs(30));
//! let health = Arc::new(SyncHealth::default());
//! let (stop_tx, stop) = tokio::sync::watch::channel(false);
//! let on_pass = |report: &node_runtime::SyncReport, took: Duration| {
//!     tracing::debug!(errors = report.errors.len(), ?took, "pass");
//! };
//! let task = tokio::spawn(sync_loop::run(manager, events, timing, on_pass, health.clone(), stop));
//! // ... later: health.check(Duration::from_secs(300)) for /healthz; then stop.
//! let _ = stop_tx.send(true);
//! let _manager = task.await; // for the shutdown
//! # }
//! ```

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::dir_watch::DirWatch;
use crate::sync::{PodManager, SyncReport};
use crate::watch::RuntimeWatch;

/// Time between passes while something needs following closely (the kubelet's relist period).
pub const SYNC_PERIOD: Duration = Duration::from_secs(1);

/// Let a burst of changes (an editor's save, a pod's containers starting) settle into one pass.
const SETTLE: Duration = Duration::from_millis(50);

/// How long passes stay a second apart after a runtime event. containerd publishes a task's
/// exit (and its `/tasks/delete`) before its CRI plugin records the exit in the container's
/// status, so the pass right after the event may still list the container running.
const EVENT_FOLLOW_UP: Duration = Duration::from_secs(3);

/// When passes run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Timing {
    /// The static pod directory to watch (empty: none).
    pub static_pod_path: PathBuf,
    /// `fileCheckFrequency`: the longest wait between manifest scans.
    pub file_check: Duration,
    /// `syncFrequency`: the longest wait between passes while runtime events are followed.
    pub resync: Duration,
}

impl Timing {
    /// Watches `static_pod_path` (empty: none) with the kubelet's default
    /// `fileCheckFrequency` (20 s) and `syncFrequency` (1 min).
    pub fn new(static_pod_path: impl Into<PathBuf>) -> Self {
        Self {
            static_pod_path: static_pod_path.into(),
            file_check: Duration::from_secs(20),
            resync: Duration::from_secs(60),
        }
    }

    /// Sets [`file_check`](Self::file_check).
    #[must_use]
    pub fn with_file_check(mut self, file_check: Duration) -> Self {
        self.file_check = file_check;
        self
    }

    /// Sets [`resync`](Self::resync).
    #[must_use]
    pub fn with_resync(mut self, resync: Duration) -> Self {
        self.resync = resync;
        self
    }
}

/// What `/healthz` and the watchdog's `syncloop` check read: the kubelet's
/// `SyncLoopHealthCheck` (the loop must have run within `max(2 x resync, 5 min)`), adapted to
/// passes that do the pod work inline. The kubelet's loop keeps iterating while pod workers
/// stop a pod for its whole grace period; here a long pass (a teardown with a long grace
/// period) counts as healthy while the runtime keeps answering its `Status` calls (the
/// kubelet's runtime health, `pkg/kubelet/kubelet.go` `runtimeState`), so a teardown that is
/// making progress never stops the watchdog pings.
#[derive(Debug, Default)]
pub struct SyncHealth {
    /// When the last pass ended (Unix ms; 0 before the first).
    pub last_pass: AtomicI64,
    /// When the pass running now started (Unix ms; 0 between passes).
    pub pass_started: AtomicI64,
    /// When the runtime last answered `Status` (Unix ms; 0 never).
    pub runtime_ok: AtomicI64,
}

impl SyncHealth {
    /// [`sync_loop_health`] now.
    pub fn check(&self, threshold: Duration) -> Result<(), String> {
        sync_loop_health(
            now_millis(),
            self.last_pass.load(Ordering::Relaxed),
            self.pass_started.load(Ordering::Relaxed),
            self.runtime_ok.load(Ordering::Relaxed),
            threshold,
        )
    }
}

/// Whether the sync loop is healthy at `now` (all Unix ms): before the first pass it is
/// starting (healthy); between passes the last one must have ended within `threshold`; during
/// a pass, the pass must have started within `threshold` or the runtime must have answered
/// within it (a long teardown making progress).
pub fn sync_loop_health(
    now: i64,
    last_pass: i64,
    pass_started: i64,
    runtime_ok: i64,
    threshold: Duration,
) -> Result<(), String> {
    let limit = i64::try_from(threshold.as_millis()).unwrap_or(i64::MAX);
    let age = |t: i64| now.saturating_sub(t);
    if pass_started != 0 {
        if age(pass_started) <= limit || (runtime_ok != 0 && age(runtime_ok) <= limit) {
            return Ok(());
        }
        return Err(format!(
            "sync Loop took longer than expected (a pass has run for {}s and the runtime last answered {}, threshold {}s)",
            age(pass_started) / 1000,
            if runtime_ok == 0 {
                "never".to_owned()
            } else {
                format!("{}s ago", age(runtime_ok) / 1000)
            },
            threshold.as_secs()
        ));
    }
    if last_pass == 0 || age(last_pass) <= limit {
        return Ok(());
    }
    Err(format!(
        "sync Loop took longer than expected (last pass {}s ago, threshold {}s)",
        age(last_pass) / 1000,
        threshold.as_secs()
    ))
}

/// Runs passes until `stop` turns true and returns the manager for the shutdown. `on_pass`
/// sees each pass's report and duration (after new errors, sandboxes and containers are
/// logged).
pub async fn run(
    mut manager: PodManager,
    events: RuntimeWatch,
    timing: Timing,
    mut on_pass: impl FnMut(&SyncReport, Duration) + Send,
    health: Arc<SyncHealth>,
    mut stop: watch::Receiver<bool>,
) -> PodManager {
    let mut manifests = if timing.static_pod_path.as_os_str().is_empty() {
        None
    } else {
        Some(DirWatch::new(&timing.static_pod_path))
    };
    // Manifests are re-read when the directory changed, every `file_check`, and on every pass
    // when the directory cannot be watched.
    let mut rescan = true;
    let mut last_rescan = Instant::now();
    let mut last_event: Option<Instant> = None;
    let mut last_errors: HashSet<String> = HashSet::new();
    let api = manager.api_pods();
    let mut probes = manager.prober().changed();
    loop {
        if *stop.borrow() {
            return manager;
        }
        let started = Instant::now();
        let watched = manifests.as_ref().is_some_and(DirWatch::is_active);
        if rescan || !watched || last_rescan.elapsed() >= timing.file_check {
            rescan = true;
            last_rescan = started;
        }
        health.pass_started.store(now_millis(), Ordering::Relaxed);
        let report = manager.sync(rescan).await;
        health.last_pass.store(now_millis(), Ordering::Relaxed);
        health.pass_started.store(0, Ordering::Relaxed);
        rescan = false;
        // An error is logged when it appears, not again on every pass while it lasts (a pod
        // that cannot start is retried every second, and other pods' events bring passes too).
        // Rejected manifests are logged by the pod manager when they change.
        let manifest_errors = manager.registry().manifest_errors();
        let errors: HashSet<String> = report
            .errors
            .iter()
            .filter(|e| !manifest_errors.contains(e))
            .cloned()
            .collect();
        for e in report
            .errors
            .iter()
            .filter(|e| errors.contains(*e) && !last_errors.contains(*e))
        {
            tracing::warn!(error = %e, "pod sync");
        }
        last_errors = errors;
        for pod in &report.sandboxes_created {
            tracing::info!(pod = %pod, "pod sandbox started");
        }
        for c in &report.containers_started {
            tracing::info!(container = %c, "container started");
        }
        on_pass(&report, started.elapsed());
        let registry = manager.registry();
        let no_pods = registry.list().is_empty() && registry.manifest_errors().is_empty();
        let period = if no_pods {
            // Nothing in the runtime to follow until the directory changes.
            timing.file_check.max(SYNC_PERIOD)
        } else if report.settled
            && events.is_live()
            && last_event.is_none_or(|t| t.elapsed() >= EVENT_FOLLOW_UP)
        {
            // Until the runtime reports a change; manifests are still re-read on schedule.
            timing.resync.min(timing.file_check).max(SYNC_PERIOD)
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
        let api_changed = async {
            match &api {
                Some(a) => a.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => return manager,
            () = tokio::time::sleep(wait) => {}
            // A probe result changed: readiness to report, a container to restart.
            _ = probes.changed() => {}
            // A pod added, changed or deleted on the API server (or a re-list).
            () = api_changed => tokio::time::sleep(SETTLE).await,
            () = changed => {
                tokio::time::sleep(SETTLE).await;
                rescan = true;
            }
            () = events.changed(), if !no_pods => {
                last_event = Some(Instant::now());
                tokio::time::sleep(SETTLE).await;
            }
        }
    }
}

/// The kubelet's `syncloop` health threshold: `max(2 x syncFrequency, 5 min)`; a loop whose
/// last pass is older counts as stuck (see [`sync_loop_health`]).
pub fn health_threshold(sync_frequency: Duration) -> Duration {
    sync_frequency
        .saturating_mul(2)
        .max(Duration::from_secs(300))
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(300);
    const MIN: i64 = 60_000;

    #[test]
    fn starting_and_recent_passes_are_healthy() {
        let now = 1_000 * MIN;
        assert!(
            sync_loop_health(now, 0, 0, 0, T).is_ok(),
            "before the first pass"
        );
        assert!(sync_loop_health(now, now - 4 * MIN, 0, 0, T).is_ok());
        let err = sync_loop_health(now, now - 6 * MIN, 0, now, T).unwrap_err();
        assert!(
            err.starts_with("sync Loop took longer than expected (last pass 360s ago"),
            "{err}"
        );
    }

    /// A pass stopping a pod with a 30-minute grace period keeps the loop healthy while the
    /// runtime answers; a pass stuck with a silent runtime does not.
    #[test]
    fn a_long_pass_is_healthy_while_the_runtime_answers() {
        let now = 1_000 * MIN;
        let started = now - 20 * MIN;
        assert!(sync_loop_health(now, started, started, now - 5_000, T).is_ok());
        // The first pass ever, still running.
        assert!(sync_loop_health(now, 0, started, now - 5_000, T).is_ok());
        // A pass younger than the threshold needs no runtime answer.
        assert!(sync_loop_health(now, 0, now - MIN, 0, T).is_ok());
        let err = sync_loop_health(now, started, started, now - 6 * MIN, T).unwrap_err();
        assert!(
            err.contains("a pass has run for 1200s and the runtime last answered 360s ago"),
            "{err}"
        );
        let err = sync_loop_health(now, started, started, 0, T).unwrap_err();
        assert!(err.contains("the runtime last answered never"), "{err}");
    }

    #[test]
    fn threshold_is_twice_the_sync_frequency_and_at_least_five_minutes() {
        assert_eq!(health_threshold(Duration::from_secs(60)), T);
        assert_eq!(
            health_threshold(Duration::from_secs(600)),
            Duration::from_secs(1200)
        );
        assert_eq!(health_threshold(Duration::MAX), Duration::MAX);
    }

    #[test]
    fn clock_steps_and_huge_thresholds_do_not_overflow() {
        assert!(sync_loop_health(i64::MIN, i64::MAX, 0, 0, T).is_ok());
        assert!(sync_loop_health(i64::MAX, 1, 0, 0, Duration::MAX).is_ok());
        assert!(sync_loop_health(i64::MAX, 1, 1, 1, T).is_err());
    }
}
