//! The pod side's Prometheus metrics, with the kubelet's names where a kubelet metric means the
//! same thing (`kubelet_running_pods`, `kubelet_running_containers`,
//! `kubelet_started_pods_total`, `kubelet_started_containers_total`,
//! `kubelet_graceful_shutdown_{start,end}_time_seconds`) and `node_agent_*` where the kubelet
//! has none. Register them in the embedder's `prometheus_client` registry; the running counts
//! are read from the [`PodRegistry`] at each scrape.
//!
//! ```
//! use prometheus_client::registry::Registry;
//! let pods = node_runtime::PodRegistry::new();
//! let metrics = node_runtime::metrics::PodMetrics::default();
//! let mut registry = Registry::default();
//! metrics.register(&mut registry, pods);
//! metrics.record_pass(&node_runtime::SyncReport::default(), std::time::Duration::from_millis(3));
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry)?;
//! assert!(text.contains("kubelet_running_pods 0\n"));
//! assert!(text.contains("node_agent_pod_sync_passes_total 1\n"));
//! # Ok::<(), std::fmt::Error>(())
//! ```

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::registry::{ContainerState, PodInfo, PodPhase, PodRegistry};
use crate::sync::SyncReport;

/// Counters the sync loop and the graceful shutdown update. Cheap to clone; clones share the
/// values.
#[derive(Debug, Clone, Default)]
pub struct PodMetrics {
    started_pods: Counter,
    started_containers: Counter,
    sync_passes: Counter,
    sync_errors: Counter,
    sync_seconds: Counter<f64, AtomicU64>,
    listing_errors: Counter,
    shutdown_start: Gauge,
    shutdown_end: Gauge,
}

impl PodMetrics {
    /// Registers every metric in `registry`, with the running pods and containers read from
    /// `pods` at each scrape.
    pub fn register(&self, registry: &mut Registry, pods: PodRegistry) {
        registry.register_collector(Box::new(RunningCollector { pods }));
        registry.register(
            "kubelet_started_pods",
            "Cumulative number of pods started",
            self.started_pods.clone(),
        );
        registry.register(
            "kubelet_started_containers",
            "Cumulative number of containers started",
            self.started_containers.clone(),
        );
        registry.register(
            "kubelet_graceful_shutdown_start_time_seconds",
            "Last graceful shutdown start time since unix epoch in seconds",
            self.shutdown_start.clone(),
        );
        registry.register(
            "kubelet_graceful_shutdown_end_time_seconds",
            "Last graceful shutdown end time since unix epoch in seconds",
            self.shutdown_end.clone(),
        );
        registry.register(
            "node_agent_static_pod_listing_errors",
            "Manifest scans that could not list staticPodPath (an error other than a missing path); the pods of the last good listing were kept",
            self.listing_errors.clone(),
        );
        registry.register(
            "node_agent_pod_sync_passes",
            "Pod sync passes run (the kubelet's sync loop iterations)",
            self.sync_passes.clone(),
        );
        registry.register(
            "node_agent_pod_sync_errors",
            "Errors reported by pod sync passes",
            self.sync_errors.clone(),
        );
        registry.register(
            "node_agent_pod_sync_duration_seconds",
            "Time spent in pod sync passes",
            self.sync_seconds.clone(),
        );
    }

    /// Records one pod sync pass (the `on_pass` observer of [`crate::sync_loop::run`]).
    pub fn record_pass(&self, report: &SyncReport, took: Duration) {
        self.started_pods
            .inc_by(count(report.sandboxes_created.len()));
        self.started_containers
            .inc_by(count(report.containers_started.len()));
        self.sync_errors.inc_by(count(report.errors.len()));
        if report.listing_error.is_some() {
            self.listing_errors.inc();
        }
        self.sync_passes.inc();
        self.sync_seconds.inc_by(took.as_secs_f64());
    }

    /// Records the last graceful node shutdown (Unix seconds; as read back at startup from
    /// `graceful_node_shutdown_state`).
    pub fn record_shutdown(&self, start_unix_secs: i64, end_unix_secs: i64) {
        self.shutdown_start.set(start_unix_secs);
        self.shutdown_end.set(end_unix_secs);
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// `kubelet_running_pods` and `kubelet_running_containers` from the registry at scrape time.
#[derive(Debug)]
struct RunningCollector {
    pods: PodRegistry,
}

impl Collector for RunningCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let pods = self.pods.list();
        let (running_pods, by_state) = running(&pods);
        let gauge = ConstGauge::new(running_pods);
        let metric = encoder.encode_descriptor(
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)?;
        let mut family = encoder.encode_descriptor(
            "kubelet_running_containers",
            "Number of containers currently running",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (state, n) in by_state {
            let labels = [("container_state", state)];
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Pods with a sandbox that have not succeeded, and containers by the kubelet's
/// `container_state` (a container waiting to be created has no runtime state and is not
/// counted).
fn running(pods: &[PodInfo]) -> (i64, [(&'static str, i64); 4]) {
    let running_pods = pods
        .iter()
        .filter(|p| p.sandbox_id.is_some() && p.phase != PodPhase::Succeeded)
        .count();
    let mut by_state = [
        ("created", 0),
        ("running", 0),
        ("exited", 0),
        ("unknown", 0),
    ];
    for c in pods.iter().flat_map(|p| &p.containers) {
        let slot = match &c.state {
            ContainerState::Running { .. } => 1,
            ContainerState::Terminated { .. } => 2,
            ContainerState::Waiting { .. } if c.container_id.is_some() => 0,
            ContainerState::Waiting { .. } => continue,
        };
        by_state[slot].1 += 1;
    }
    (i64::try_from(running_pods).unwrap_or(i64::MAX), by_state)
}

#[cfg(test)]
mod tests {

    use std::path::PathBuf;

    use super::*;
    use crate::registry::{ContainerInfo, ContainerKind};

    #[test]
    fn exposition_has_the_kubelets_names() {
        let pods = PodRegistry::new();
        pods.replace(
            [(
                "u".to_owned(),
                PodInfo {
                    namespace: "default".into(),
                    name: "a-node".into(),
                    uid: "u".into(),
                    source: crate::PodSource::File(PathBuf::from("/x.yaml")),
                    pod: None,
                    sandbox_id: Some("s".into()),
                    pod_ips: Vec::new(),
                    phase: PodPhase::Running,
                    reason: None,
                    message: None,
                    conditions: vec![],
                    containers: vec![ContainerInfo {
                        name: "c".into(),
                        kind: ContainerKind::Regular,
                        container_id: Some("id".into()),
                        image: "busybox".into(),
                        state: ContainerState::Running { started_at: 1 },
                        restart_count: 0,
                        ready: true,
                        log_path: None,
                        image_id: None,
                        last_state: None,
                        started: None,
                    }],
                },
            )]
            .into(),
            Vec::new(),
            true,
        );
        let metrics = PodMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry, pods);
        metrics.record_pass(
            &SyncReport {
                sandboxes_created: vec!["default/a".into()],
                containers_started: vec!["default/a/c".into()],
                ..Default::default()
            },
            Duration::from_millis(5),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("kubelet_running_pods 1\n"), "{text}");
        assert!(
            text.contains("kubelet_running_containers{container_state=\"running\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("kubelet_started_pods_total 1\n"), "{text}");
        assert!(
            text.contains("# TYPE kubelet_started_pods counter\n"),
            "{text}"
        );
        assert!(
            text.contains("node_agent_pod_sync_duration_seconds_total 0.005"),
            "{text}"
        );
    }
}
