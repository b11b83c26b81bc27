//! `GET /stats/summary` and `GET /metrics/resource`: the kubelet's Summary API and the
//! resource metrics metrics-server scrapes, made by [`node_runtime::stats::StatsSource`] from
//! the runtime's stats and the node's cgroups.
//!
//! * `/stats/summary` answers the Summary as JSON (indented by one space, as the kubelet's
//!   REST layer writes it); `?only_cpu_and_memory=true` (any spelling Go's `ParseBool` takes;
//!   anything else means false) gives the reduced form. A failure is 500 with
//!   `Internal Error: <error>`.
//! * `/metrics/resource` answers the Prometheus text format 0.0.4 from the reduced Summary;
//!   when it cannot be made the body is `resource_scrape_error 1`, still with status 200.
//!
//! Authorization (`nodes/stats`, `nodes/metrics`) is node-server's filter's, in front.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use node_runtime::stats::{Summary, metrics};
use serde::Serialize;

use crate::PodApi;

/// Where the summary comes from (the runtime crate's source: node name, kubelet directories,
/// the CPU sample cache).
pub use node_runtime::stats::StatsSource;

/// This module's routes over `api`.
pub fn router(api: PodApi) -> Router {
    Router::new()
        .route("/stats/summary", get(summary))
        .route("/metrics/resource", get(resource_metrics))
        .with_state(api)
}

/// Whether the query asks for the reduced form: `only_cpu_and_memory` given exactly once with
/// a value Go's `strconv.ParseBool` reads as true.
#[must_use]
pub fn only_cpu_and_memory(query: Option<&str>) -> bool {
    let values: Vec<String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "only_cpu_and_memory")
        .map(|(_, v)| v.into_owned())
        .collect();
    match values.as_slice() {
        [one] => go_parse_bool(one).unwrap_or(false),
        _ => false,
    }
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The Summary as the kubelet's REST layer writes it: JSON indented by one space.
#[must_use]
pub fn summary_json(summary: &Summary) -> Vec<u8> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    match summary.serialize(&mut ser) {
        Ok(()) => out,
        // Serializing plain structs of numbers and strings cannot fail; keep the route alive.
        Err(_) => b"{}".to_vec(),
    }
}

async fn summary(State(api): State<PodApi>, RawQuery(query): RawQuery) -> Response {
    let reduced = only_cpu_and_memory(query.as_deref());
    match api
        .stats()
        .summary(api.cri(), api.registry(), reduced)
        .await
    {
        Ok(s) => (
            [(header::CONTENT_TYPE, "application/json")],
            summary_json(&s),
        )
            .into_response(),
        Err(e) => {
            let text = e.with_cause();
            tracing::error!(error = %text, "HTTP InternalServerError serving /stats/summary");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("Internal Error: {text}"),
            )
                .into_response()
        }
    }
}

async fn resource_metrics(State(api): State<PodApi>) -> Response {
    let summary = match api.stats().summary(api.cri(), api.registry(), true).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(
                error = %e.with_cause(),
                "Error getting summary for resourceMetric prometheus endpoint"
            );
            None
        }
    };
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render_resource_metrics(summary.as_ref()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reduced_form_needs_one_true_value() {
        assert!(only_cpu_and_memory(Some("only_cpu_and_memory=true")));
        assert!(only_cpu_and_memory(Some("x=1&only_cpu_and_memory=T")));
        assert!(only_cpu_and_memory(Some("only_cpu_and_memory=1")));
        assert!(!only_cpu_and_memory(Some("only_cpu_and_memory=yes")));
        assert!(!only_cpu_and_memory(Some(
            "only_cpu_and_memory=true&only_cpu_and_memory=true"
        )));
        assert!(!only_cpu_and_memory(Some("only_cpu_and_memory")));
        assert!(!only_cpu_and_memory(None));
    }

    #[test]
    fn json_is_indented_by_one_space() {
        let s = Summary::default();
        let text = String::from_utf8(summary_json(&s)).unwrap();
        assert!(
            text.starts_with("{\n \"node\": {\n  \"nodeName\": \"\""),
            "{text}"
        );
        assert!(text.contains("\"pods\": []"), "{text}");
    }
}
