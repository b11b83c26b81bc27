//! The kubelet's auth filter: [`KubeletAuth`] (authenticator + authorizer behind
//! [`RequestAuth`]), the request-attribute mapping and the tower middleware.
//!
//! Upstream: `pkg/kubelet/server/server.go` (`InstallAuthFilter`) and
//! `pkg/kubelet/server/auth.go` (`GetRequestAttributes`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use http::{Method, Request, StatusCode};
use node_config::KubeletConfiguration;

use crate::authn::Authenticator;
use crate::authz::Authorizer;
use crate::contract::{Attributes, AuthFuture, Decision, RequestAuth, UserInfo};
use crate::error::ServerError;
use crate::guard::{loggable_path, text_response as text};

/// The configured authenticator and authorizer, as one [`RequestAuth`] for [`auth_layer`]
/// and [`crate::secured`].
#[derive(Debug)]
pub struct KubeletAuth {
    /// Who is asking.
    pub authenticator: Authenticator,
    /// May they.
    pub authorizer: Authorizer,
}

impl KubeletAuth {
    /// Both halves from the config's `authentication` and `authorization` sections; `client`
    /// is the API server client (TokenReview and SubjectAccessReview), `None` on a standalone
    /// node.
    pub fn from_config(
        cfg: &KubeletConfiguration,
        client: Option<kube::Client>,
    ) -> Result<Self, ServerError> {
        Ok(Self {
            authenticator: Authenticator::new(&cfg.authentication, client.clone())?,
            authorizer: Authorizer::new(&cfg.authorization, client)?,
        })
    }
}

impl RequestAuth for KubeletAuth {
    fn authenticate<'a>(
        &'a self,
        request: &'a Parts,
    ) -> AuthFuture<'a, Result<Option<UserInfo>, String>> {
        Box::pin(self.authenticator.authenticate(request))
    }

    fn authorize<'a>(
        &'a self,
        attributes: &'a Attributes,
    ) -> AuthFuture<'a, Result<Decision, String>> {
        Box::pin(self.authorizer.authorize(attributes))
    }
}

/// The verb the kubelet authorizes for an HTTP method: POST `create`, GET `get`, PUT `update`,
/// PATCH `patch`, DELETE `delete`, anything else (HEAD and OPTIONS included) `""`, as the
/// kubelet's code does (its documentation table also maps HEAD to `get`; the code does not).
pub fn verb_for(method: &Method) -> &'static str {
    match *method {
        Method::POST => "create",
        Method::GET => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
}

/// Whether `path` is `prefix` or below it (`/stats` and `/stats/summary`, not `/statsx`).
fn is_subpath(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The node subresource the kubelet authorizes for a request path: `/stats` → `stats`,
/// `/metrics` → `metrics`, `/logs` → `log`, `/checkpoint` → `checkpoint` (each with everything
/// below it), everything else `proxy`.
pub fn subresource_for(path: &str) -> &'static str {
    if is_subpath(path, "/stats") {
        "stats"
    } else if is_subpath(path, "/metrics") {
        "metrics"
    } else if is_subpath(path, "/logs") {
        "log"
    } else if is_subpath(path, "/checkpoint") {
        "checkpoint"
    } else {
        "proxy"
    }
}

/// The authorization attributes of a request, as the kubelet builds them: verb from the
/// method, resource `nodes` (apiVersion `v1`), subresource from the path, name = `node_name`.
pub fn request_attributes(parts: &Parts, user: UserInfo, node_name: &str) -> Attributes {
    let path = parts.uri.path();
    Attributes {
        user,
        verb: verb_for(&parts.method),
        api_version: "v1",
        resource: "nodes",
        subresource: subresource_for(path),
        name: node_name.to_owned(),
        path: path.to_owned(),
    }
}

fn describe(a: &Attributes) -> String {
    format!(
        "user={}, verb={}, resource={}, subresource={}",
        a.user.name, a.verb, a.resource, a.subresource
    )
}

/// Runs the kubelet's filter on `parts`: `Ok(user)` to go ahead, `Err(response)` with the
/// kubelet's 401/403/500 answer.
pub async fn check(
    auth: &dyn RequestAuth,
    parts: &Parts,
    node_name: &str,
) -> Result<UserInfo, Response> {
    let unauthorized = || text(StatusCode::UNAUTHORIZED, "Unauthorized".to_owned());
    let user = match auth.authenticate(parts).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(unauthorized()),
        Err(err) => {
            tracing::info!(error = %err, path = loggable_path(parts.uri.path()), "unable to authenticate the request");
            return Err(unauthorized());
        }
    };
    let attrs = request_attributes(parts, user, node_name);
    match auth.authorize(&attrs).await {
        Ok(Decision::Allow) => Ok(attrs.user),
        Ok(Decision::Deny(reason)) => {
            tracing::info!(%reason, path = loggable_path(&attrs.path), "forbidden ({})", describe(&attrs));
            Err(text(
                StatusCode::FORBIDDEN,
                format!("Forbidden ({})", describe(&attrs)),
            ))
        }
        Err(err) => {
            tracing::warn!(error = %err, path = loggable_path(&attrs.path), "authorization error ({})", describe(&attrs));
            Err(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Authorization error ({})", describe(&attrs)),
            ))
        }
    }
}

/// The kubelet's auth filter as a tower layer: 401 `Unauthorized`, 403
/// `Forbidden (user=…, verb=…, resource=…, subresource=…)`, 500 `Authorization error (…)`, all
/// `text/plain; charset=utf-8`. Allowed requests reach the inner service with the
/// [`UserInfo`] in their extensions.
///
/// Put it in front of the whole router ([`crate::secured`] does), not on a router with
/// `Router::layer`: a route merged in later, or axum's own 404/405 answers, would otherwise be
/// reachable without authentication.
pub fn auth_layer(auth: Arc<dyn RequestAuth>, node_name: String) -> AuthLayer {
    AuthLayer {
        auth,
        node_name: node_name.into(),
    }
}

/// See [`auth_layer`].
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<dyn RequestAuth>,
    node_name: Arc<str>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("node_name", &self.node_name)
            .finish_non_exhaustive()
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
            node_name: self.node_name.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around a route.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<dyn RequestAuth>,
    node_name: Arc<str>,
}

impl<S> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("node_name", &self.node_name)
            .finish_non_exhaustive()
    }
}

impl<S> tower::Service<Request<Body>> for AuthService<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The clone is not ready; keep the ready one for this call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        let node_name = self.node_name.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            match check(auth.as_ref(), &parts, &node_name).await {
                Ok(user) => {
                    parts.extensions.insert(user);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(response) => Ok(response),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, uri: &str) -> Attributes {
        let parts = Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts()
            .0;
        request_attributes(&parts, UserInfo::anonymous(), "node-1")
    }

    #[test]
    fn verbs_by_method() {
        for (m, v) in [
            (Method::POST, "create"),
            (Method::GET, "get"),
            (Method::HEAD, ""),
            (Method::PUT, "update"),
            (Method::PATCH, "patch"),
            (Method::DELETE, "delete"),
            (Method::OPTIONS, ""),
            (Method::CONNECT, ""),
        ] {
            assert_eq!(attrs(m.clone(), "/pods").verb, v, "{m}");
        }
    }

    #[test]
    fn subresources_by_path() {
        for (p, s) in [
            ("/stats", "stats"),
            ("/stats/", "stats"),
            ("/stats/summary?only_cpu_and_memory=true", "stats"),
            ("/statsx", "proxy"),
            ("/metrics", "metrics"),
            ("/metrics/cadvisor", "metrics"),
            ("/metrics/resource", "metrics"),
            ("/metricsfoo", "proxy"),
            ("/logs", "log"),
            ("/logs/syslog", "log"),
            ("/checkpoint/ns/pod/ctr", "checkpoint"),
            ("/checkpoint", "checkpoint"),
            ("/pods", "proxy"),
            ("/runningpods/", "proxy"),
            ("/healthz", "proxy"),
            ("/configz", "proxy"),
            ("/exec/ns/pod/ctr", "proxy"),
            ("/containerLogs/ns/pod/ctr", "proxy"),
            ("/", "proxy"),
        ] {
            assert_eq!(attrs(Method::GET, p).subresource, s, "{p}");
        }
    }

    #[test]
    fn fixed_fields() {
        let a = attrs(Method::GET, "/stats/summary?x=1");
        assert_eq!(a.resource, "nodes");
        assert_eq!(a.api_version, "v1");
        assert_eq!(a.name, "node-1");
        assert_eq!(a.path, "/stats/summary");
        assert_eq!(a.user, UserInfo::anonymous());
    }
}
