//! The kubelet API's pod routes, as plain axum routing to put behind node-server's auth
//! filter ([`node_server::secured`]):
//!
//! - `GET /containerLogs/{namespace}/{pod}/{container}` ([`logs`]): the CRI log files read as
//!   the kubelet's log reader does, with `follow`, `previous`, `tailLines`, `limitBytes`,
//!   `sinceSeconds`, `sinceTime`, `timestamps` and `stream`;
//! - `/exec`, `/attach`, `/portForward` and `/run` ([`streaming`]): the runtime's streaming
//!   URL (CRI `Exec`/`Attach`/`PortForward`), with the client's upgraded connection (SPDY or
//!   WebSocket) proxied to it, never redirected;
//! - `GET /stats/summary` and `GET /metrics/resource` ([`stats`]): the kubelet's Summary and
//!   the resource metrics metrics-server scrapes, from CRI stats and the node's cgroups.
//!
//! ```no_run
//! # async fn demo(cri: node_runtime::CriClient, registry: node_runtime::PodRegistry) {
//! let paths = node_runtime::NodePaths {
//!     root_dir: "/var/lib/kubelet".into(),
//!     pod_logs_dir: "/var/log/pods".into(),
//! };
//! let api = node_api::PodApi::new("node-1", registry, cri, paths);
//! let routes: axum::Router = node_api::router(api);
//! # let _ = routes;
//! # }
//! ```

#![deny(missing_docs)]

mod error;
pub mod logs;
pub mod node_logs;
pub mod probe_metrics;
pub mod stats;
pub mod streaming;

use std::sync::Arc;

use axum::Router;
use node_runtime::{CriClient, NodePaths, PodInfo, PodRegistry};

pub use error::ApiError;
/// The crate's error type (the same as [`ApiError`]).
pub type Error = ApiError;
/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the pod routes read: the node's pods and the runtime.
#[derive(Clone)]
pub struct PodApi {
    inner: Arc<Inner>,
    debugging_handlers: bool,
    system_logs: Option<Arc<std::path::PathBuf>>,
    probe_metrics: Option<node_runtime::prober::metrics::ProbeMetrics>,
    split_log_streams: bool,
}

struct Inner {
    node_name: String,
    registry: PodRegistry,
    cri: CriClient,
    stats: stats::StatsSource,
}

impl PodApi {
    /// The routes' state for the node `node_name` whose kubelet directories (root dir, pod
    /// logs dir) are `paths`.
    pub fn new(
        node_name: impl Into<String>,
        registry: PodRegistry,
        cri: CriClient,
        paths: NodePaths,
    ) -> Self {
        let node_name = node_name.into();
        let stats = stats::StatsSource::new(node_name.clone(), paths);
        Self {
            inner: Arc::new(Inner {
                node_name,
                registry,
                cri,
                stats,
            }),
            debugging_handlers: true,
            system_logs: None,
            probe_metrics: None,
            split_log_streams: false,
        }
    }

    /// The `PodLogsQuerySplitStreams` feature gate (off by default in 1.35): on,
    /// `/containerLogs?stream=Stdout|Stderr` selects one stream; off, those are refused.
    #[must_use]
    pub fn with_split_log_streams(mut self, enabled: bool) -> Self {
        self.split_log_streams = enabled;
        self
    }

    /// The prober's metrics, served on `/metrics/probes`.
    #[must_use]
    pub fn with_probe_metrics(
        mut self,
        metrics: node_runtime::prober::metrics::ProbeMetrics,
    ) -> Self {
        self.probe_metrics = Some(metrics);
        self
    }

    /// The prober's metrics, if given.
    pub fn probe_metrics(&self) -> Option<&node_runtime::prober::metrics::ProbeMetrics> {
        self.probe_metrics.as_ref()
    }

    /// `enableDebuggingHandlers` (default true): when false, `/run/`, `/exec/`, `/attach/`,
    /// `/portForward/`, `/containerLogs/`, `/runningpods/`, `/debug/pprof/` and `/logs/`
    /// answer `405 Debug endpoints are disabled.`, as the kubelet's
    /// `InstallDebuggingDisabledHandlers`.
    #[must_use]
    pub fn with_debugging_handlers(mut self, enabled: bool) -> Self {
        self.debugging_handlers = enabled;
        self
    }

    /// `enableSystemLogHandler`: `Some(dir)` serves `dir` (the kubelet's is
    /// [`node_logs::SYSTEM_LOG_DIR`]) under `/logs/`; `None` answers
    /// `405 logs endpoint is disabled.`.
    #[must_use]
    pub fn with_system_logs(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.system_logs = dir.map(Arc::new);
        self
    }

    /// The directory `/logs/` serves, if enabled.
    pub fn system_log_dir(&self) -> Option<&std::path::Path> {
        self.system_logs.as_deref().map(std::path::PathBuf::as_path)
    }

    /// The node name.
    pub fn node_name(&self) -> &str {
        &self.inner.node_name
    }

    /// The node's pods.
    pub fn registry(&self) -> &PodRegistry {
        &self.inner.registry
    }

    /// The runtime.
    pub fn cri(&self) -> &CriClient {
        &self.inner.cri
    }

    /// Where the summary and resource metrics come from.
    pub fn stats(&self) -> &stats::StatsSource {
        &self.inner.stats
    }

    /// The pod `namespace/name`, as the kubelet's `GetPodByName` finds it (static pods are
    /// found under their full name `<manifest name>-<node name>`).
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodInfo> {
        self.inner.registry.get(namespace, name)
    }
}

/// The kubelet's debugging-handler path prefixes (`pkg/kubelet/server/server.go`
/// `InstallDebuggingDisabledHandlers`).
pub const DEBUGGING_PREFIXES: [&str; 8] = [
    "/run/",
    "/exec/",
    "/attach/",
    "/portForward/",
    "/containerLogs/",
    "/runningpods/",
    "/debug/pprof/",
    "/logs/",
];

/// Every pod route ([`logs::router`], [`streaming::router`], [`stats::router`],
/// [`node_logs::router`]) over `api`, or their disabled answers.
pub fn router(api: PodApi) -> Router {
    let stats = stats::router(api.clone()).merge(probe_metrics::router(api.clone()));
    if !api.debugging_handlers {
        return DEBUGGING_PREFIXES.iter().fold(stats, |r, prefix| {
            r.route(prefix, axum::routing::any(debugging_disabled))
                .route(
                    &format!("{prefix}{{*rest}}"),
                    axum::routing::any(debugging_disabled),
                )
        });
    }
    let with_logs = if api.system_logs.is_some() {
        node_logs::router(api.clone())
    } else {
        Router::new()
            .route("/logs/", axum::routing::any(system_logs_disabled))
            .route("/logs/{*rest}", axum::routing::any(system_logs_disabled))
    };
    Router::new()
        .merge(logs::router_with(
            api.clone(),
            logs::LogsOptions {
                split_streams: api.split_log_streams,
            },
        ))
        .merge(streaming::router(api))
        .merge(with_logs)
        .merge(stats)
}

async fn debugging_disabled() -> axum::response::Response {
    node_server::text_response(
        http::StatusCode::METHOD_NOT_ALLOWED,
        "Debug endpoints are disabled.\n",
    )
}

async fn system_logs_disabled() -> axum::response::Response {
    node_server::text_response(
        http::StatusCode::METHOD_NOT_ALLOWED,
        "logs endpoint is disabled.\n",
    )
}
