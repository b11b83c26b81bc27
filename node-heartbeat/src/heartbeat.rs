//! The heartbeat as one unit an agent starts and waits for: the node status reporter and,
//! when the backend has leases, the lease controller, both configured from the
//! `KubeletConfiguration` as the kubelet wires them.

use std::sync::Arc;

use node_config::KubeletConfiguration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{
    Backend, LeaseConfig, LeaseController, NodeStatusReporter, SharedInputs, StatusConfig,
};

impl StatusConfig {
    /// `nodeStatusUpdateFrequency`, `nodeStatusReportFrequency` and `registerNode` (default
    /// true) of `cfg`, for `node_name`.
    #[must_use]
    pub fn from_kubelet_config(node_name: impl Into<String>, cfg: &KubeletConfiguration) -> Self {
        StatusConfig::new(node_name)
            .with_update_frequency(cfg.node_status_update_frequency.to_std())
            .with_report_frequency(cfg.node_status_report_frequency.to_std())
            .with_register_node(cfg.register_node.unwrap_or(true))
    }
}

impl LeaseConfig {
    /// `nodeLeaseDurationSeconds` of `cfg` (renewed every quarter of it), for `node_name`.
    #[must_use]
    pub fn from_kubelet_config(node_name: impl Into<String>, cfg: &KubeletConfiguration) -> Self {
        LeaseConfig::new(node_name, cfg.node_lease_duration_seconds)
    }
}

/// The running heartbeat tasks ([`Heartbeat::start`]).
#[derive(Debug)]
pub struct Heartbeat {
    status: JoinHandle<()>,
    lease: Option<JoinHandle<()>>,
    pod_cidr: watch::Receiver<String>,
    sync_now: std::sync::Arc<tokio::sync::Notify>,
}

impl Heartbeat {
    /// Spawns the status reporter (registering the Node unless `status.register_node` is
    /// false) and, when `backend` supports leases, the lease controller. Both run until `stop`
    /// turns true: an agent stops them last, so the API server sees the node go NotReady
    /// ("node is shutting down") while its pods stop, with the lease still renewed.
    #[must_use]
    pub fn start<B: Backend>(
        backend: Arc<B>,
        inputs: SharedInputs,
        status: StatusConfig,
        lease: LeaseConfig,
        stop: &watch::Receiver<bool>,
    ) -> Self {
        let lease = backend.supports_lease().then(|| {
            let controller = LeaseController::new(backend.clone(), lease);
            tokio::spawn(controller.run(node_util::stopped(stop.clone())))
        });
        let reporter = NodeStatusReporter::new(backend, inputs, status);
        let pod_cidr = reporter.pod_cidr();
        let sync_now = reporter.sync_trigger();
        Heartbeat {
            status: tokio::spawn(reporter.run(node_util::stopped(stop.clone()))),
            lease,
            pod_cidr,
            sync_now,
        }
    }

    /// Updates the node status now (e.g. NotReady when the node starts shutting down) instead
    /// of at the next `nodeStatusUpdateFrequency` tick.
    pub fn sync_now(&self) {
        self.sync_now.notify_one();
    }

    /// The Node's pod CIDRs (`spec.podCIDRs` joined with `,`), changed each time the status
    /// reporter sees new ones: an agent hands them to its runtime (CRI `UpdateRuntimeConfig`)
    /// as the kubelet does.
    pub fn pod_cidr(&self) -> watch::Receiver<String> {
        self.pod_cidr.clone()
    }

    /// Waits for both tasks to end (after `stop` turned true).
    pub async fn wait(self) {
        for task in std::iter::once(self.status).chain(self.lease) {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "heartbeat task failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn configs_take_the_kubelet_fields() {
        let mut cfg = KubeletConfiguration::default();
        node_config::set_defaults(&mut cfg, &node_config::FeatureGates::default());
        cfg.node_status_update_frequency = node_config::Duration::from_secs(7);
        cfg.register_node = Some(false);
        cfg.node_lease_duration_seconds = 20;
        let status = StatusConfig::from_kubelet_config("n1", &cfg);
        assert_eq!(status.node_name, "n1");
        assert_eq!(status.update_frequency, Duration::from_secs(7));
        assert_eq!(status.report_frequency, Duration::from_secs(300));
        assert!(!status.register_node);
        let lease = LeaseConfig::from_kubelet_config("n1", &cfg);
        assert_eq!(lease.duration_seconds, 20);
        assert_eq!(lease.renew_interval, Duration::from_secs(5));
    }
}
