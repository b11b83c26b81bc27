//! `GET /metrics/probes`: the prober's `prober_probe_total` and
//! `prober_probe_duration_seconds` ([`node_runtime::prober::metrics`]) and
//! `process_start_time_seconds` in the Prometheus text format 0.0.4, as the kubelet serves its
//! probe registry (`pkg/kubelet/server/server.go`: the prober's metrics and
//! `RegisterProcessStartTime` on one registry).

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
    let mut body = api
        .probe_metrics()
        .map(node_runtime::prober::metrics::ProbeMetrics::render)
        .unwrap_or_default();
    if let Some(start) = process_start_time() {
        body.push_str(&process_start_time_text(start));
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
}

/// The agent's start time, Unix seconds, read once.
fn process_start_time() -> Option<f64> {
    static START: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        node_kernel::ProcessCollector::new(node_kernel::HostRoot::new("/")).start_time()
    })
}

/// `process_start_time_seconds` as the kubelet's registries print it (families are sorted by
/// name: it comes after the `prober_` ones).
fn process_start_time_text(start: f64) -> String {
    format!(
        "# HELP process_start_time_seconds [ALPHA] Start time of the process since unix epoch in seconds.\n\
         # TYPE process_start_time_seconds gauge\n\
         process_start_time_seconds {}\n",
        node_runtime::stats::metrics::go_float(start)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_a_gauge_in_gos_float_format() {
        assert_eq!(
            process_start_time_text(1_764_756_000.25),
            "# HELP process_start_time_seconds [ALPHA] Start time of the process since unix epoch in seconds.\n\
             # TYPE process_start_time_seconds gauge\n\
             process_start_time_seconds 1.76475600025e+09\n"
        );
        assert!(process_start_time().is_some_and(|t| t > 1.6e9));
    }
}
