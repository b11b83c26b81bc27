//! The kubelet's checkpoint route for the agent's HTTPS server:
//! `POST /checkpoint/{namespace}/{pod}/{container}[?timeout=<seconds>]`.
//!
//! Answers as the kubelet does (`pkg/kubelet/server/server.go`, `checkpoint`): 200 with
//! `{"items":["<archive path>"]}`; 404 with `pod does not exist`,
//! `container <name> does not exist` or `cannot parse value of timeout parameter`; 500 with
//! `checkpointing of <ns>/<pod>/<container> failed (<runtime error>)`. With the
//! `ContainerCheckpoint` gate off the route is not registered at all.
//!
//! This is plain routing: authentication and authorization are the server's job. Mount the
//! router behind the kubelet's filter (`node_server::secured`), which authenticates every
//! request before any routing and authorizes `/checkpoint/*` as verb `create` on the
//! `nodes/checkpoint` subresource. The handler never reads the request body.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::StatusCode;

use crate::error::CheckpointError;
use crate::service::{CheckpointService, parse_timeout_query};

/// The route, in axum's syntax.
pub const ROUTE: &str = "/checkpoint/{namespace}/{pod}/{container}";

/// The checkpoint route (POST only; other methods on it are axum's 405). With the gate off
/// the router is empty, so every checkpoint path falls through to the embedding router's
/// fallback (the kubelet answers `404 page not found`). Merge it into the server's router; it
/// sets no fallback of its own and does no authentication.
pub fn router(service: Arc<CheckpointService>) -> Router {
    if !service.enabled() {
        return Router::new();
    }
    Router::new()
        .route(ROUTE, post(checkpoint))
        .with_state(service)
}

async fn checkpoint(
    State(service): State<Arc<CheckpointService>>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    // A segment that does not even decode to UTF-8 names no pod.
    let Ok(Path((namespace, pod, container))) = path else {
        return node_util::text(StatusCode::NOT_FOUND, "pod does not exist").into_response();
    };
    let result = async {
        let target = service.resolve(&namespace, &pod, &container)?;
        let timeout = parse_timeout_query(query.as_deref())?;
        service.checkpoint_target(&target, timeout).await
    }
    .await;
    match result {
        Ok(archive) => {
            let body = serde_json::json!({ "items": [archive.to_string_lossy()] });
            (
                StatusCode::OK,
                [(http::header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Err(err) => error_response(&namespace, &pod, &container, &err),
    }
}

/// The response the kubelet gives for `err` on `namespace/pod/container`.
pub fn error_response(
    namespace: &str,
    pod: &str,
    container: &str,
    err: &CheckpointError,
) -> Response {
    let status = err.http_status();
    if status == StatusCode::NOT_FOUND {
        return node_util::text(status, err.to_string()).into_response();
    }
    tracing::warn!(%namespace, %pod, %container, error = %node_util::error_chain(err), "checkpoint failed");
    node_util::text(
        status,
        format!(
            "checkpointing of {namespace}/{pod}/{container} failed ({})",
            node_util::error_chain(err)
        ),
    )
    .into_response()
}
