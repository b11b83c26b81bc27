//! `GET /metrics`: one `prometheus_client` registry holding node-runtime's pod metrics,
//! node-kernel's process metrics and the agent's own (`kubelet_node_name`,
//! `kubelet_node_startup_duration_seconds`), served as OpenMetrics text.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use node_runtime::PodRegistry;
use node_runtime::metrics::PodMetrics;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The OpenMetrics text content type (`prometheus_client`'s encoding).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The agent's registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    startup_seconds: Gauge<f64, AtomicU64>,
}

impl Metrics {
    /// Everything the agent exposes for node `node_name`, with `pods` (updated by the sync
    /// loop) and the running counts read from `registry` at each scrape.
    pub fn new(node_name: &str, pods: &PodMetrics, registry: PodRegistry) -> Self {
        let mut out = Registry::default();
        let node = Family::<Vec<(&'static str, String)>, Gauge>::default();
        node.get_or_create(&vec![("node", node_name.to_owned())])
            .set(1);
        out.register(
            "kubelet_node_name",
            "The node's name. The count is always 1.",
            node,
        );
        let startup_seconds = Gauge::<f64, AtomicU64>::default();
        out.register(
            "kubelet_node_startup_duration_seconds",
            "Duration in seconds of node startup in total.",
            startup_seconds.clone(),
        );
        pods.register(&mut out, registry);
        out.register_collector(Box::new(node_kernel::ProcessCollector::new(
            node_kernel::HostRoot::live(),
        )));
        Self {
            registry: out,
            startup_seconds,
        }
    }

    /// Records how long startup took until READY.
    pub fn record_startup(&self, took: Duration) {
        self.startup_seconds.set(took.as_secs_f64());
    }

    /// The exposition text now.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(4096);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "encoding metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_agents_and_the_libraries_metrics() {
        let pods = PodMetrics::default();
        let m = Metrics::new("node\"1", &pods, PodRegistry::new());
        m.record_startup(Duration::from_millis(1500));
        let text = m.render();
        assert!(
            text.contains("kubelet_node_name{node=\"node\\\"1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("kubelet_node_startup_duration_seconds 1.5\n"),
            "{text}"
        );
        assert!(text.contains("kubelet_running_pods 0\n"), "{text}");
        assert!(
            text.contains("# TYPE process_resident_memory_bytes gauge\n"),
            "{text}"
        );
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit_once(' ').unwrap().1;
            value.parse::<f64>().unwrap();
        }
    }
}
