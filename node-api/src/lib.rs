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
        }
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

/// Every pod route ([`logs::router`], [`streaming::router`], [`stats::router`]) over `api`.
pub fn router(api: PodApi) -> Router {
    Router::new()
        .merge(logs::router(api.clone()))
        .merge(streaming::router(api.clone()))
        .merge(stats::router(api))
}
