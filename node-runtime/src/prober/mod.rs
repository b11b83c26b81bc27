//! Container probes, the kubelet's probe workers (`pkg/kubelet/prober`, `pkg/probe`).
//!
//! * [`ProbeSpec`]: a `startupProbe`, `readinessProbe` or `livenessProbe` with the API
//!   defaults applied and hostile numbers made safe.
//! * [`WorkerState`]: the pure decisions of a worker at each tick (initial results for a new
//!   container, `initialDelaySeconds`, startup gating, thresholds, thrown-away errors, on hold
//!   after a liveness failure or a startup result, stopped containers, deleted and finished
//!   pods) with the time as a parameter; [`first_probe_delay`] is the start jitter.
//! * [`run_probe`]: one run of an exec (through the CRI's `ExecSync`), httpGet (HTTP or HTTPS
//!   without certificate checks, same-host redirects), tcpSocket or grpc
//!   (`grpc.health.v1.Health/Check`) probe within its timeout, retried while it errors.
//! * [`ProbeManager`]: one Tokio task per (pod, container, probe kind) sleeping between its
//!   periods, fed by [`ProbeManager::update`] after every sync pass, and the queries the sync
//!   loop and the status generator ask: [`ProbeManager::started`],
//!   [`ProbeManager::ready`], [`ProbeManager::kill_request`], with
//!   [`ProbeManager::changed`] to wake on and [`ProbeManager::take_events`] for the
//!   `Unhealthy` and `ProbeWarning` events.
//!
//! ```no_run
//! use std::sync::Arc;
//! use node_runtime::prober::{ProbeManager, ProbeTarget, ProbedContainer};
//! # async fn run(pod: k8s_openapi::api::core::v1::Pod) {
//! let probes = ProbeManager::without_runtime(); // or ProbeManager::new(cri_client)
//! probes.update(vec![ProbeTarget {
//!     uid: "uid-1".into(),
//!     namespace: "default".into(),
//!     name: "web".into(),
//!     pod: Arc::new(pod),
//!     pod_ip: Some("10.0.0.5".into()),
//!     deleting: false,
//!     terminal: false,
//!     containers: vec![ProbedContainer {
//!         name: "app".into(),
//!         container_id: Some("abc123".into()),
//!         running_since: Some(std::time::SystemTime::now()),
//!         running: true,
//!         may_restart: true,
//!     }],
//! }]);
//! let mut changed = probes.changed();
//! let _ = changed.changed().await;
//! if let Some(kill) = probes.kill_request("uid-1", "app", "abc123") {
//!     println!("{}", kill.message); // Container app failed liveness probe, will be restarted
//! }
//! let _ready = probes.ready("uid-1", "app", "abc123");
//! # }
//! ```

mod handlers;
pub(crate) mod http;
mod manager;
pub mod metrics;
mod spec;
mod worker;

#[cfg(test)]
mod tests;

pub use handlers::{
    HEALTH_CHECK_PATH, HealthCheckRequest, HealthCheckResponse, MAX_EXEC_OUTPUT, MAX_PROBE_RETRIES,
    ProbeContext, ProbeOutcome, ServingStatus, exec, exec_timeout_message, grpc, run_probe,
    serving_status_name, tcp,
};
pub use http::{MAX_BODY, MAX_HEAD};
pub use manager::{MAX_EVENTS, ProbeKill, ProbeManager, ProbeTarget, ProbedContainer};
pub use spec::{
    HttpGetProbe, MAX_PROBE_SECONDS, PROBE_USER_AGENT, PortRef, ProbeAction, ProbeKind, ProbeSpec,
    Scheme, expand_command, go_duration, join_host_port,
};
pub use worker::{
    Action, ProbeResult, Tick, TickInput, WorkerState, cheap_random, first_probe_delay,
};
