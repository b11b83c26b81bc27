//! The agent's HTTP servers: the kubelet API over TLS on `port` (default 10250) behind the
//! kubelet's authentication and authorization, and plain-HTTP healthz on
//! `healthzBindAddress:healthzPort` (default 127.0.0.1:10248).
//!
//! Routes on the API port: `/healthz`, `/pods`, `/configz`, `/metrics`,
//! `POST /checkpoint/{namespace}/{pod}/{container}` (ContainerCheckpoint gate), and the pod
//! routes of [`node_api`] (`/containerLogs/...`, `/exec/...`, `/attach/...`,
//! `/portForward/...`, `/run/...`, `/stats/summary`, `/metrics/resource`); anything else
//! is Go's `404 page not found`. All of them are plain routing behind node-server's one filter
//! ([`node_server::secured`]), which authenticates every request before any route matching:
//! an unauthenticated client gets 401 on every method and path. Both ports answer a panicking
//! handler with 500 and keep serving.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use node_checkpoint::{CheckpointConfig, CheckpointService};
use node_config::{FeatureGates, KubeletConfiguration};
use node_runtime::PodRegistry;
use node_server::{KubeletAuth, RequestAuth};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::AgentError;
use crate::metrics::Metrics;
use node_state::layout::Layout;
use node_util::stopped;

/// What the handlers read.
#[derive(Clone)]
pub struct ApiState {
    /// The node name.
    pub node_name: String,
    /// The pods.
    pub registry: PodRegistry,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The configuration in force (for `/configz`).
    pub config: Arc<KubeletConfiguration>,
    /// The node's first InternalIP (host-network pods' IP).
    pub host_ip: Option<String>,
    /// The sync loop's health (passes and runtime answers).
    pub sync_health: Arc<node_runtime::sync_loop::SyncHealth>,
    /// Older than this, the sync loop counts as stuck.
    pub sync_threshold: Duration,
    /// The pod routes: containerLogs, exec/attach/portForward/run, stats, resource metrics.
    pub pod_api: node_api::PodApi,
}

/// The running servers.
pub struct Servers {
    /// Where the HTTPS API listens (`None`: `enableServer: false`).
    pub https_addr: Option<SocketAddr>,
    /// Where healthz listens (`None`: healthzPort 0).
    pub healthz_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Waits for the servers to finish (they stop when the agent's stop signal fires).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Binds both ports (a port in use is a fatal startup error), sets TLS and auth up and starts
/// serving.
pub async fn start_servers(
    cfg: &KubeletConfiguration,
    layout: &Layout,
    gates: &FeatureGates,
    state: &ApiState,
    client: Option<kube::Client>,
    addresses: &[IpAddr],
    stop: watch::Receiver<bool>,
) -> Result<Servers, AgentError> {
    let address = if cfg.address.is_empty() {
        "0.0.0.0"
    } else {
        &cfg.address
    };
    let https = if cfg.enable_server.unwrap_or(true) {
        Some(bind("the kubelet API (port)", address, cfg.port).await?)
    } else {
        tracing::info!("enableServer is false: the kubelet API is not served");
        None
    };
    if cfg.read_only_port != 0 {
        tracing::warn!(
            port = cfg.read_only_port,
            "readOnlyPort is not served: the unauthenticated read-only API is deprecated; use the authenticated port"
        );
    }
    let healthz = match cfg.healthz_port.unwrap_or(10248) {
        0 => None,
        port => Some(
            bind(
                "healthz (healthzBindAddress:healthzPort)",
                &cfg.healthz_bind_address,
                port,
            )
            .await?,
        ),
    };

    let mut tasks = Vec::new();
    let https_addr = match https {
        Some(listener) => {
            let addr = listener.local_addr().ok();
            let (app, tls) = secured_api(cfg, layout, gates, state, client, addresses).await?;
            tasks.push(tokio::spawn(log_exit(
                "kubelet API",
                node_server::serve_https(listener, tls, app, stopped(stop.clone())),
            )));
            addr
        }
        None => None,
    };
    let healthz_addr = match healthz {
        Some(listener) => {
            let addr = listener.local_addr().ok();
            tasks.push(tokio::spawn(log_exit(
                "healthz",
                node_server::serve_http(listener, healthz_router(state.clone()), stopped(stop)),
            )));
            addr
        }
        None => None,
    };
    Ok(Servers {
        https_addr,
        healthz_addr,
        tasks,
    })
}

/// TLS, authentication, authorization and the routes of the API port.
async fn secured_api(
    cfg: &KubeletConfiguration,
    layout: &Layout,
    gates: &FeatureGates,
    state: &ApiState,
    client: Option<kube::Client>,
    addresses: &[IpAddr],
) -> Result<(Router, Arc<rustls::ServerConfig>), AgentError> {
    let server_err = |what: &'static str| {
        move |e: node_server::ServerError| AgentError::Server {
            what,
            message: node_util::error_chain(&e),
        }
    };
    let cert = node_server::serving_cert(cfg, &layout.cert_dir, &state.node_name, addresses)
        .map_err(server_err("serving certificate"))?;
    let client_ca = Some(cfg.authentication.x509.client_ca_file.as_str())
        .filter(|f| !f.is_empty())
        .map(Path::new);
    let tls = node_server::tls_config(
        &cert,
        client_ca,
        &cfg.tls_min_version,
        &cfg.tls_cipher_suites,
    )
    .map_err(server_err("TLS configuration"))?;
    let auth: Arc<dyn RequestAuth> = Arc::new(
        KubeletAuth::from_config(cfg, client)
            .map_err(server_err("authentication/authorization"))?,
    );

    let checkpoint_config = CheckpointConfig::new(layout.root.clone(), state.node_name.clone())
        .with_enabled(gates.enabled("ContainerCheckpoint"))
        .with_runtime_request_timeout(cfg.runtime_request_timeout.to_std());
    let checkpoint = if checkpoint_config.enabled {
        CheckpointService::connect(
            checkpoint_config,
            &cfg.container_runtime_endpoint,
            state.registry.clone(),
        )
        .await
        .map_err(|e| AgentError::Server {
            what: "checkpoint service",
            message: node_util::error_chain(&e),
        })?
    } else {
        CheckpointService::disabled(checkpoint_config, state.registry.clone())
    };

    let options = node_server::FilterOptions::from_gates(gates);
    Ok((
        api_router(state.clone(), auth, Arc::new(checkpoint), options),
        tls,
    ))
}

async fn log_exit(
    what: &'static str,
    server: impl std::future::Future<Output = Result<(), node_server::ServerError>>,
) {
    if let Err(e) = server.await {
        tracing::error!(server = what, error = %node_util::error_chain(&e), "server failed");
    }
}

/// The API port: the routes (checkpoint included) behind the kubelet's auth filter, which
/// runs first for every request; `options` carries the `KubeletFineGrainedAuthz` gate
/// (`/pods`, `/healthz` and `/configz` authorized as `nodes/pods`, `nodes/healthz`,
/// `nodes/configz` first, `nodes/proxy` second).
pub fn api_router(
    state: ApiState,
    auth: Arc<dyn RequestAuth>,
    checkpoint: Arc<CheckpointService>,
    options: node_server::FilterOptions,
) -> Router {
    let node_name = state.node_name.clone();
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/pods", get(pods))
        .route("/pods/", get(pods))
        .route("/configz", get(configz))
        .route("/metrics", get(metrics))
        .with_state(state.clone())
        .merge(node_api::router(state.pod_api))
        .merge(node_checkpoint::router(checkpoint))
        .fallback(node_server::page_not_found);
    node_server::secured_with(routes, auth, node_name, options)
}

fn healthz_router(state: ApiState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .fallback(node_server::page_not_found)
        .with_state(state);
    node_server::guarded(routes)
}

/// `ok`, or 500 listing the failed check, like the kubelet's healthz handler.
async fn healthz(State(state): State<ApiState>) -> Response {
    match state.sync_health.check(state.sync_threshold) {
        Ok(()) => node_util::text(StatusCode::OK, "ok").into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "healthz check failed");
            node_util::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "[+]ping ok\n[+]log ok\n[-]syncloop failed: reason withheld\nhealthz check failed\n"
                    .to_owned(),
            ).into_response()
        }
    }
}

async fn pods(State(state): State<ApiState>) -> Response {
    let mut list = state.registry.list();
    list.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let body =
        node_runtime::pod_status::pod_list(&list, &state.node_name, state.host_ip.as_deref());
    json(body)
}

async fn configz(State(state): State<ApiState>) -> Response {
    let mut config = serde_json::to_value(&*state.config).unwrap_or_default();
    if let Some(obj) = config.as_object_mut() {
        obj.insert("kind".into(), "KubeletConfiguration".into());
        obj.insert("apiVersion".into(), "kubelet.config.k8s.io/v1beta1".into());
    }
    json(serde_json::json!({ "kubeletconfig": config }))
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let body = state.metrics.render();
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        body,
    )
        .into_response()
}

fn json(value: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A socket address for `host:port`, naming it in the error.
pub async fn bind(
    what: &'static str,
    host: &str,
    port: i32,
) -> Result<tokio::net::TcpListener, AgentError> {
    let address = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let parsed: SocketAddr = address.parse().map_err(|e| AgentError::Listen {
        what,
        address: address.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")),
    })?;
    tokio::net::TcpListener::bind(parsed)
        .await
        .map_err(|source| AgentError::Listen {
            what,
            address,
            source,
        })
}
