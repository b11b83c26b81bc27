//! Node status, labels, leases and the systemd watchdog, with the kubelet's timings.
//!
//! What a control plane sees of a node, computed and delivered the way the kubelet does it:
//!
//! * **Status setters** as pure functions over a root directory (`/` or a fixture tree), in
//!   `defaultNodeStatusFuncs()` order: [`node_addresses`] (`--node-ip`, `--hostname-override`,
//!   DNS, default-route interface), [`capacity`] and [`allocatable`] (cpu, memory, pods,
//!   ephemeral-storage, hugepages, extended resources; minus system/kube reserved, hard
//!   eviction and hugepages), `nodeInfo` from [`MachineFacts::read`] (machine-id, product_uuid,
//!   boot_id, kernel, os-release, `<runtime>://<version>`), then the pressure conditions and
//!   Ready last, with the kubelet's reasons and messages ([`NodeStatusInputs::compute`]).
//! * **Labels** ([`default_labels`]) and `--node-labels` validation with the kubelet's prefix
//!   rules and messages ([`validate_node_labels`]).
//! * **Pressure** from `evictionHard` against the node ([`SignalSources::observe`],
//!   [`PressureTracker`] with the transition period).
//! * **Loops**: [`LeaseController`] (10 s renewals with 4% jitter, optimistic PUT, conflict
//!   re-read, back-off 200 ms doubling to 7 s, owner reference to the Node) and
//!   [`NodeStatusReporter`] (registration with back-off, status every 10 s, PATCH on change or
//!   after 5 min, 100 ms fast updates until Ready). Neither panics; errors are logged and retried.
//! * **Backends** behind [`Backend`]: [`KubeBackend`] (a real API server through `kube`) and
//!   [`StandaloneBackend`] (no control plane, no lease). The non-default `test-server`
//!   feature adds [`testserver::TestApiServer`], a test double speaking real HTTP and the real
//!   JSON types (leases, nodes, pods with watches and graceful deletion, events, token and
//!   access reviews), with injected 409/500 answers and a down mode.
//! * **Hollow nodes** ([`hollow::Fleet`]): N simulated nodes in one process running these same
//!   loops over one shared, bounded API client, for control-plane scale tests
//!   (`nodectl hollow-nodes`).
//! * **Taints** from conditions ([`controller_taints`]) and registration ([`registration_taints`]).
//! * **systemd watchdog** ([`watchdog::Watchdog`]): READY=1, WATCHDOG=1 every WatchdogSec/2
//!   while health checks pass, timeouts of 1 s or less refused, STOPPING=1.
//!
//! ```
//! use std::time::Instant;
//! use node_heartbeat::{
//!     find_condition, validate_node_labels, MachineFacts, NodeStatusInputs, RuntimeHealth,
//! };
//! use node_heartbeat::k8s_openapi::api::core::v1::NodeStatus;
//!
//! // `--node-labels` in kubernetes.io must use an allowed prefix.
//! let bad = [("node-role.kubernetes.io/worker".to_owned(), String::new())].into();
//! assert!(validate_node_labels(&bad).is_err());
//!
//! // A node with 4 CPUs and 8 GiB whose runtime just answered is Ready.
//! let machine = MachineFacts { num_cores: 4, memory_bytes: 8 << 30, ..Default::default() };
//! let mut inputs = NodeStatusInputs::new("node-1", machine);
//! inputs.capacity.ephemeral_storage_bytes = Some(100 << 30);
//! inputs.runtime_health = RuntimeHealth::healthy(Instant::now());
//! let status = inputs.compute(&NodeStatus::default(), Default::default(), Instant::now())?;
//! let ready = find_condition(&status, "Ready").unwrap();
//! assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("True", Some("KubeletReady")));
//! assert_eq!(status.capacity.unwrap()["memory"].0, "8Gi");
//! # Ok::<(), node_heartbeat::Error>(())
//! ```
#![deny(missing_docs)]

mod addresses;
mod backend;
pub mod conditions;
mod error;
mod heartbeat;
pub mod hollow;
mod labels;
mod lease;
mod machine;
mod merge;
mod pressure;
mod resources;
mod status;
mod status_loop;
pub mod taints;
#[cfg(feature = "test-server")]
pub mod testserver;
pub mod watchdog;

pub use addresses::{
    AddressInputs, address_ips, default_route_interface_v4, default_route_interface_v6, dns_lookup,
    hostname, node_addresses, normalize_hostname, parse_node_ips, probe_network, validate_node_ip,
};
pub use backend::{
    Backend, KubeBackend, LEASE_NAMESPACE, MAX_KUBECONFIG_BYTES, StandaloneBackend,
    load_kubeconfig, read_kubeconfig,
};
pub use conditions::{RuntimeHealth, aggregate, set_condition};
pub use error::{ApiErrorKind, Error, Result};
pub use heartbeat::Heartbeat;
pub use labels::{
    KUBELET_LABEL_NAMESPACES, KUBELET_LABELS, default_labels, ensure_os_arch_labels, go_arch,
    go_os, is_kubelet_label, is_kubernetes_label, validate_node_labels,
};
pub use lease::{Backoff, LeaseConfig, LeaseController, MAX_BACKOFF, MAX_UPDATE_RETRIES, jitter};
pub use machine::{FsStats, MAX_FACT_FILE_BYTES, MachineFacts, PidStats, meminfo_field, os_image};
pub use merge::{apply_node_status_patch, json_merge};
pub use pressure::{
    EvictionThresholds, Observation, Observations, Pressure, PressureTracker, SignalSources,
    ThresholdValue, observe_root, thresholds_met,
};
pub use resources::{
    CapacityConfig, QuantityList, Reservations, ResourceList, admission_allocatable, allocatable,
    capacity, format_binary_si, format_cpu_millis, is_extended_resource_name, node_resources,
    reservation, to_quantities,
};
pub use status::{
    ATTACH_DETACH_ANNOTATION, KUBELET_PORT, NodeStatusInputs, RuntimeVersion, find_condition,
    inputs_for_root, normalize_declared_features, status_changed, status_patch,
};
pub use status_loop::{
    DEFAULT_LABELS, EVICTION_MONITORING_PERIOD, FAST_STATUS_UPDATE_PERIOD, NODE_READY_GRACE_PERIOD,
    NodeStatusReporter, SharedInputs, StatusConfig, StatusSource, node_pod_cidr,
    reconcile_existing, run_pressure_monitor,
};
pub use taints::{controller_taints, registration_taints};

pub use watchdog::{HealthCheck, Notifier, Watchdog};

pub use k8s_openapi;
