//! `GET /metrics/probes`: the prober's `prober_probe_total` and
//! `prober_probe_duration_seconds` ([`node_runtime::prober::metrics`]) in the Prometheus text
//! format 0.0.4, as the kubelet serves its probe registry.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};

use crate::PodApi;

/// The content type of the text format the kubelet's registries answer with.
pub const TEXT_FORMAT: &str = node_runtime::stats::metrics::CONTENT_TYPE;

/// The `/metrics/probes` route over `api` (empty when no probe metrics were given).
pub fn router(api: PodApi) -> Router {
    Router::new()
        .route("/metrics/probes", get(probes))
        .with_state(api)
}

async fn probes(State(api): State<PodApi>) -> Response {
    let body = api
        .probe_metrics()
        .map(node_runtime::prober::metrics::ProbeMetrics::render)
        .unwrap_or_default();
    (StatusCode::OK, [(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
}
