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
        // GET and POST, as the kubelet registers both.
        .route("/stats/summary", get(summary).post(summary))
        .route("/metrics/resource", get(resource_metrics))
        .with_state(api)
}

/// Whether the query asks for the reduced form: `only_cpu_and_memory` given exactly once, as
/// `true`.
#[must_use]
pub fn only_cpu_and_memory(query: Option<&str>) -> bool {
    let values: Vec<String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "only_cpu_and_memory")
        .map(|(_, v)| v.into_owned())
        .collect();
    // The kubelet's handler (`pkg/kubelet/server/stats/handler.go` `handleSummary`): exactly
    // one value, and it must be `true`.
    matches!(values.as_slice(), [one] if one == "true")
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
        assert!(only_cpu_and_memory(Some("x=1&only_cpu_and_memory=true")));
        for other in ["T", "1", "True", "yes", ""] {
            assert!(
                !only_cpu_and_memory(Some(&format!("only_cpu_and_memory={other}"))),
                "{other}"
            );
        }
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

    use axum::body::Body;
    use http_body_util::BodyExt as _;
    use node_runtime::test_support::FakeCri;
    use node_runtime::{ClientOptions, CriClient, LABEL_MANAGED_BY, NodePaths, PodRegistry, cri};
    use tower::ServiceExt as _;

    async fn get(app: &Router, uri: &str) -> (StatusCode, String, String) {
        let resp = app
            .clone()
            .oneshot(axum::http::Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    fn sandbox_config(name: &str, node: &str) -> cri::PodSandboxConfig {
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "ns".into(),
                attempt: 0,
            }),
            labels: [(LABEL_MANAGED_BY.to_owned(), node.to_owned())].into(),
            ..cri::PodSandboxConfig::default()
        }
    }

    async fn run_pod(cri: &CriClient, name: &str, node: &str) {
        let config = sandbox_config(name, node);
        let id = cri.run_pod_sandbox(config.clone()).await.unwrap();
        let c = cri
            .create_container(
                &id,
                cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: "app".into(),
                        attempt: 0,
                    }),
                    image: Some(node_runtime::image_spec("busybox:local")),
                    labels: [(LABEL_MANAGED_BY.to_owned(), node.to_owned())].into(),
                    ..cri::ContainerConfig::default()
                },
                config,
            )
            .await
            .unwrap();
        cri.start_container(&c).await.unwrap();
    }

    /// The routes over the in-memory runtime: this node's pods only, from ListPodSandboxStats
    /// when it answers, from ListContainerStats when it is unimplemented; a failing runtime
    /// is a 500 for the summary and `resource_scrape_error 1` for the metrics.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routes_over_a_fake_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeCri::start(dir.path()).unwrap();
        let client = CriClient::connect(&fake.endpoint(), &ClientOptions::default())
            .await
            .unwrap();
        run_pod(&client, "mine", "n1").await;
        run_pod(&client, "theirs", "n2").await;
        let paths = NodePaths {
            root_dir: dir.path().join("root"),
            pod_logs_dir: dir.path().join("logs"),
        };
        let app = router(PodApi::new(
            "n1",
            PodRegistry::new(),
            client.clone(),
            paths.clone(),
        ));

        let (status, ct, body) = get(&app, "/stats/summary").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["node"]["nodeName"], "n1");
        let pods = v["pods"].as_array().unwrap();
        assert_eq!(pods.len(), 1, "{body}");
        assert_eq!(pods[0]["podRef"]["name"], "mine");
        assert_eq!(pods[0]["podRef"]["uid"], "uid-mine");
        assert_eq!(pods[0]["containers"][0]["name"], "app");
        assert!(
            fake.calls()
                .iter()
                .any(|c| c.method == "ListPodSandboxStats"),
            "{:?}",
            fake.calls()
        );

        // ListPodSandboxStats fails (containerd 1.6 without sandbox cgroups): container
        // stats, and it is not asked again at once.
        fake.fail(
            "ListPodSandboxStats",
            Some((tonic::Code::Unknown, "cgroupPath is empty")),
        );
        fake.take_calls();
        for _ in 0..2 {
            let (status, _, body) = get(&app, "/stats/summary").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["pods"][0]["containers"][0]["name"], "app", "{body}");
        }
        let calls = fake.take_calls();
        let count = |m: &str| calls.iter().filter(|c| c.method == m).count();
        assert_eq!(count("ListPodSandboxStats"), 1, "{calls:?}");
        assert_eq!(count("ListContainerStats"), 2, "{calls:?}");

        // The runtime does not implement ListPodSandboxStats: container stats, summed, and
        // it is never asked again.
        let app = router(PodApi::new(
            "n1",
            PodRegistry::new(),
            client.clone(),
            paths.clone(),
        ));
        fake.fail(
            "ListPodSandboxStats",
            Some((tonic::Code::Unimplemented, "not implemented")),
        );
        fake.take_calls();
        let (status, _, body) = get(&app, "/stats/summary?only_cpu_and_memory=true").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["pods"][0]["containers"][0]["name"], "app", "{body}");
        assert!(v["pods"][0]["cpu"].is_object(), "{body}");
        assert!(v["node"].get("fs").is_none(), "{body}");
        let (status, ct, text) = get(&app, "/metrics/resource").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
        assert!(text.ends_with("resource_scrape_error 0\n"), "{text}");
        assert!(
            text.contains(
                "container_cpu_usage_seconds_total{container=\"app\",namespace=\"ns\",pod=\"mine\"} 0 "
            ),
            "{text}"
        );
        let calls = fake.take_calls();
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.method == "ListPodSandboxStats")
                .count(),
            1,
            "not asked again once unimplemented: {calls:?}"
        );

        // The runtime fails.
        fake.fail(
            "ListPodSandbox",
            Some((tonic::Code::Unavailable, "runtime down")),
        );
        let (status, _, body) = get(&app, "/stats/summary").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            body.starts_with("Internal Error: CRI ListPodSandbox failed"),
            "{body}"
        );
        assert!(body.contains("runtime down"), "{body}");
        let (status, _, text) = get(&app, "/metrics/resource").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            text,
            "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 1\n"
        );
    }
}
