//! The kubelet's checkpoint route for the agent's HTTPS server:
//! `POST /checkpoint/{namespace}/{pod}/{container}[?timeout=<seconds>]`.
//!
//! Answers as the kubelet does: 200 with `{"items":["<archive path>"]}`, 401/403 from the
//! authentication and authorization the agent plugs in through [`RequestAuth`], 404 with
//! `pod does not exist`, `container <name> does not exist` or
//! `cannot parse value of timeout parameter`, 500 with
//! `checkpointing of <ns>/<pod>/<container> failed (<runtime error>)`. With the
//! `ContainerCheckpoint` gate off the route is not registered at all.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::StatusCode;
use http::request::Parts;

use crate::error::CheckpointError;
use crate::service::{CheckpointService, parse_timeout_query};

/// The route, in axum's syntax.
pub const ROUTE: &str = "/checkpoint/{namespace}/{pod}/{container}";
/// The body of a 404 for a route that does not exist (Go's `http.NotFound`).
pub const PAGE_NOT_FOUND: &str = "404 page not found";

/// A boxed future, so [`RequestAuth`] stays object-safe.
pub type AuthFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who made the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// User name (`system:anonymous` for anonymous requests).
    pub name: String,
    /// Groups (`system:unauthenticated` for anonymous requests).
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The kubelet's anonymous user.
    pub fn anonymous() -> Self {
        Self {
            name: "system:anonymous".to_owned(),
            groups: vec!["system:unauthenticated".to_owned()],
        }
    }
}

/// The attributes of an authorization request (a SubjectAccessReview's
/// `resourceAttributes`): for this route verb `create`, resource `nodes`, subresource
/// `checkpoint`, name = the node name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// Who.
    pub user: UserInfo,
    /// `create` (POST).
    pub verb: &'static str,
    /// `v1`.
    pub api_version: &'static str,
    /// `nodes`.
    pub resource: &'static str,
    /// `checkpoint`.
    pub subresource: &'static str,
    /// The node name.
    pub name: String,
    /// The request path.
    pub path: String,
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refused (HTTP 403), with the authorizer's reason (logged, not sent).
    Deny(String),
}

/// Authentication and authorization, supplied by the agent (x509 / bearer token webhook /
/// anonymous; Webhook or AlwaysAllow authorization).
pub trait RequestAuth: Send + Sync + 'static {
    /// Who sent `request`: `Ok(None)` for an unauthenticated request (HTTP 401), `Err` for an
    /// authentication error (HTTP 401 too).
    fn authenticate<'a>(
        &'a self,
        request: &'a Parts,
    ) -> AuthFuture<'a, Result<Option<UserInfo>, String>>;

    /// Whether the user may do what `attributes` describe; `Err` is an authorizer failure
    /// (HTTP 500).
    fn authorize<'a>(
        &'a self,
        attributes: &'a Attributes,
    ) -> AuthFuture<'a, Result<Decision, String>>;
}

/// The kubelet's command-line defaults: anonymous requests allowed, authorization mode
/// `AlwaysAllow`. Only for a node whose port is not reachable by untrusted clients.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysAllow;

impl RequestAuth for AlwaysAllow {
    fn authenticate<'a>(
        &'a self,
        _request: &'a Parts,
    ) -> AuthFuture<'a, Result<Option<UserInfo>, String>> {
        Box::pin(async { Ok(Some(UserInfo::anonymous())) })
    }

    fn authorize<'a>(
        &'a self,
        _attributes: &'a Attributes,
    ) -> AuthFuture<'a, Result<Decision, String>> {
        Box::pin(async { Ok(Decision::Allow) })
    }
}

#[derive(Clone)]
struct Api {
    service: Arc<CheckpointService>,
    auth: Arc<dyn RequestAuth>,
}

/// The checkpoint routes. With the gate off the router is empty, so every checkpoint path
/// falls through to the agent's 404 (see [`page_not_found`]). Merge it into the agent's
/// router; it sets no fallback of its own.
pub fn router(service: Arc<CheckpointService>, auth: Arc<dyn RequestAuth>) -> Router {
    if !service.enabled() {
        return Router::new();
    }
    Router::new()
        .route(ROUTE, post(checkpoint))
        .with_state(Api { service, auth })
}

/// A fallback answering like Go's `http.NotFound` (`404 page not found`), for the agent's
/// router.
pub async fn page_not_found() -> Response {
    text(StatusCode::NOT_FOUND, PAGE_NOT_FOUND.to_owned())
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn checkpoint(
    State(api): State<Api>,
    parts: Parts,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = match api.auth.authenticate(&parts).await {
        Ok(Some(user)) => user,
        Ok(None) => return text(StatusCode::UNAUTHORIZED, "Unauthorized".to_owned()),
        Err(err) => {
            tracing::info!(error = %err, "checkpoint: authentication failed");
            return text(StatusCode::UNAUTHORIZED, "Unauthorized".to_owned());
        }
    };
    let attrs = Attributes {
        user,
        verb: "create",
        api_version: "v1",
        resource: "nodes",
        subresource: "checkpoint",
        name: api.service.config().node_name.clone(),
        path: parts.uri.path().to_owned(),
    };
    let describe = |a: &Attributes| {
        format!(
            "user={}, verb={}, resource={}, subresource={}",
            a.user.name, a.verb, a.resource, a.subresource
        )
    };
    match api.auth.authorize(&attrs).await {
        Ok(Decision::Allow) => {}
        Ok(Decision::Deny(reason)) => {
            tracing::info!(%reason, "checkpoint: forbidden ({})", describe(&attrs));
            return text(
                StatusCode::FORBIDDEN,
                format!("Forbidden ({})", describe(&attrs)),
            );
        }
        Err(err) => {
            tracing::warn!(error = %err, "checkpoint: authorization error");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Authorization error ({})", describe(&attrs)),
            );
        }
    }
    // A segment that does not even decode to UTF-8 names no pod.
    let Ok(Path((namespace, pod, container))) = path else {
        return text(StatusCode::NOT_FOUND, "pod does not exist".to_owned());
    };
    let result = async {
        let target = api.service.resolve(&namespace, &pod, &container)?;
        let timeout = parse_timeout_query(query.as_deref())?;
        api.service.checkpoint_target(&target, timeout).await
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
        return text(status, err.to_string());
    }
    tracing::warn!(%namespace, %pod, %container, error = %err.chain(), "checkpoint failed");
    text(
        status,
        format!(
            "checkpointing of {namespace}/{pod}/{container} failed ({})",
            err.chain()
        ),
    )
}
