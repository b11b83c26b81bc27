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
use node_config::{FeatureGates, KubeletConfiguration};

use crate::authn::Authenticator;
use crate::authz::Authorizer;
use crate::contract::{Attributes, AuthFuture, Decision, RequestAuth, UserInfo};
use crate::error::ServerError;
use crate::guard::{BodyLimit, CatchPanic, loggable_path, text_response as text};

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

/// Options of the auth filter that come from the agent's configuration rather than from the
/// authenticator or authorizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterOptions {
    /// The `KubeletFineGrainedAuthz` feature gate (Beta and on by default in 1.35): `/pods`,
    /// `/runningpods/`, `/healthz`, `/configz` and `/statusz` are authorized against their own
    /// node subresource first and `proxy` second (see [`subresources_for`]). Off, they are
    /// `proxy` only.
    pub fine_grained_authz: bool,
}

impl Default for FilterOptions {
    /// The 1.35 defaults: `KubeletFineGrainedAuthz` on.
    fn default() -> Self {
        Self {
            fine_grained_authz: true,
        }
    }
}

impl FilterOptions {
    /// The options the effective feature gates give (`KubeletFineGrainedAuthz`).
    pub fn from_gates(gates: &FeatureGates) -> Self {
        Self {
            fine_grained_authz: gates.enabled(FINE_GRAINED_AUTHZ_GATE),
        }
    }

    /// Sets [`fine_grained_authz`](Self::fine_grained_authz).
    #[must_use]
    pub fn with_fine_grained_authz(mut self, fine_grained_authz: bool) -> Self {
        self.fine_grained_authz = fine_grained_authz;
        self
    }
}

/// The feature gate [`FilterOptions::fine_grained_authz`] follows.
pub const FINE_GRAINED_AUTHZ_GATE: &str = "KubeletFineGrainedAuthz";

/// The kubelet's `isSubpath`: `path` is the handler path `handler` (a trailing `/` of
/// `handler` ignored) or below it. `/stats` and `/stats/summary` match `/stats`, `/statsx`
/// does not; `/runningpods` and `/runningpods/x` match `/runningpods/`.
fn is_subpath(path: &str, handler: &str) -> bool {
    let handler = handler.strip_suffix('/').unwrap_or(handler);
    match path.strip_prefix(handler) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The node subresources the kubelet authorizes a request path against, in the order it
/// tries them; the request goes ahead if any of them is allowed.
///
/// | path (and everything below it) | `fine_grained` | otherwise |
/// |---|---|---|
/// | `/stats` | `stats` | `stats` |
/// | `/metrics` | `metrics` | `metrics` |
/// | `/logs` | `log` | `log` |
/// | `/checkpoint` | `checkpoint` | `checkpoint` |
/// | `/pods`, `/runningpods/` | `pods`, `proxy` | `proxy` |
/// | `/healthz` | `healthz`, `proxy` | `proxy` |
/// | `/configz` | `configz`, `proxy` | `proxy` |
/// | `/statusz` | `statusz`, `proxy` | `proxy` |
/// | anything else (`/flagz`, `/exec`, `/containerLogs`, ...) | `proxy` | `proxy` |
///
/// `fine_grained` is the `KubeletFineGrainedAuthz` gate ([`FilterOptions`]). Matching is the
/// kubelet's `isSubpath` (case-sensitive; `/podsX` is not `/pods`).
///
/// Upstream: `pkg/kubelet/server/auth.go` `GetRequestAttributes` (the gate's paths first,
/// then the unconditional ones, `proxy` as the fallback).
///
/// `/statusz` and `/flagz`: the 1.35 mapping could not be pinned
/// (`/work/shared/reference/agent-hardening.md` section 5, "Uncertain for 1.35"). A
/// 1.33-dev auth.go maps `/statusz` to `statusz` then `proxy` under the gate and has no
/// `/flagz` case; a later master maps `/statusz` to `statusz` and `/flagz` to `configz`
/// unconditionally. This follows the auth.go version that was read in full (the table above),
/// which is also what the `KubeletFineGrainedAuthz` documentation lists: `/statusz` behaves like
/// `/configz`, `/flagz` is `proxy`. The agent serves neither path, so the choice only decides
/// which SubjectAccessReviews an authenticated request for them causes before its 404.
pub fn subresources_for(path: &str, fine_grained: bool) -> &'static [&'static str] {
    if fine_grained {
        if is_subpath(path, "/pods") || is_subpath(path, "/runningpods/") {
            return &["pods", "proxy"];
        }
        if is_subpath(path, "/healthz") {
            return &["healthz", "proxy"];
        }
        if is_subpath(path, "/configz") {
            return &["configz", "proxy"];
        }
        if is_subpath(path, "/statusz") {
            return &["statusz", "proxy"];
        }
    }
    if is_subpath(path, "/stats") {
        &["stats"]
    } else if is_subpath(path, "/metrics") {
        &["metrics"]
    } else if is_subpath(path, "/logs") {
        &["log"]
    } else if is_subpath(path, "/checkpoint") {
        &["checkpoint"]
    } else {
        &["proxy"]
    }
}

/// The authorization attribute records of a request, one per subresource of
/// [`subresources_for`] in order, as the kubelet builds them: verb from the method, resource
/// `nodes` (apiVersion `v1`), name = `node_name`; they differ only in the subresource.
pub fn request_attributes(
    parts: &Parts,
    user: UserInfo,
    node_name: &str,
    options: FilterOptions,
) -> Vec<Attributes> {
    let path = parts.uri.path();
    subresources_for(path, options.fine_grained_authz)
        .iter()
        .map(|subresource| Attributes {
            user: user.clone(),
            verb: verb_for(&parts.method),
            api_version: "v1",
            resource: "nodes",
            subresource,
            name: node_name.to_owned(),
            path: path.to_owned(),
        })
        .collect()
}

/// One record, as the kubelet's `Authorization error (...)` names it.
fn describe(a: &Attributes) -> String {
    format!(
        "user={}, verb={}, resource={}, subresource={}",
        a.user.name, a.verb, a.resource, a.subresource
    )
}

/// All records (they differ only in the subresource), as the kubelet's `Forbidden (...)`
/// names them: Go's `%v` of the subresource list, `[pods proxy]`.
fn describe_all(first: &Attributes, subresources: &[&str]) -> String {
    format!(
        "user={}, verb={}, resource={}, subresource(s)=[{}]",
        first.user.name,
        first.verb,
        first.resource,
        subresources.join(" ")
    )
}

/// Runs the kubelet's filter on `parts`: `Ok(user)` to go ahead, `Err(response)` with the
/// kubelet's 401/403/500 answer.
///
/// The records of [`request_attributes`] are authorized in order and the first allowed one
/// lets the request through. An authorizer error on a record is a 500 naming that record at
/// once, without trying the next one; when every record is denied the 403 lists all their
/// subresources: `Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[pods proxy])`
/// and a newline. Upstream: `pkg/kubelet/server/server.go` `InstallAuthFilter`.
pub async fn check(
    auth: &dyn RequestAuth,
    parts: &Parts,
    node_name: &str,
    options: FilterOptions,
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
    let records = request_attributes(parts, user, node_name, options);
    let mut reasons = Vec::with_capacity(records.len());
    for attrs in &records {
        match auth.authorize(attrs).await {
            Ok(Decision::Allow) => return Ok(attrs.user.clone()),
            Ok(Decision::Deny(reason)) => reasons.push(reason),
            Err(err) => {
                tracing::warn!(error = %err, path = loggable_path(&attrs.path), "authorization error ({})", describe(attrs));
                return Err(text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("Authorization error ({})", describe(attrs)),
                ));
            }
        }
    }
    let subresources: Vec<&str> = records.iter().map(|a| a.subresource).collect();
    let Some(first) = records.first() else {
        // subresources_for never gives an empty list; answer like the kubelet would anyway.
        return Err(text(
            StatusCode::FORBIDDEN,
            "Authorization error: could not determine attributes for request".to_owned(),
        ));
    };
    let described = describe_all(first, &subresources);
    tracing::info!(reasons = ?reasons, path = loggable_path(&first.path), "forbidden ({described})");
    Err(text(
        StatusCode::FORBIDDEN,
        format!("Forbidden ({described})\n"),
    ))
}

/// The kubelet's auth filter as a tower layer ([`check`]): 401 `Unauthorized`, 403
/// `Forbidden (user=…, verb=…, resource=…, subresource(s)=[…])`, 500
/// `Authorization error (…)`, all `text/plain; charset=utf-8`. Allowed requests reach the inner
/// service with the [`UserInfo`] in their extensions. `options` carries the
/// `KubeletFineGrainedAuthz` gate.
///
/// Put it in front of the whole router ([`crate::secured`] does), not on a router with
/// `Router::layer`: a route merged in later, or axum's own 404/405 answers, would otherwise be
/// reachable without authentication.
pub fn auth_layer(
    auth: Arc<dyn RequestAuth>,
    node_name: String,
    options: FilterOptions,
) -> AuthLayer {
    AuthLayer {
        auth,
        node_name: node_name.into(),
        options,
    }
}

/// See [`auth_layer`].
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<dyn RequestAuth>,
    node_name: Arc<str>,
    options: FilterOptions,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("node_name", &self.node_name)
            .field("options", &self.options)
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
            options: self.options,
        }
    }
}

/// The service [`AuthLayer`] wraps around a route.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<dyn RequestAuth>,
    node_name: Arc<str>,
    options: FilterOptions,
}

impl<S> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("node_name", &self.node_name)
            .field("options", &self.options)
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
        let options = self.options;
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            match check(auth.as_ref(), &parts, &node_name, options).await {
                Ok(user) => {
                    parts.extensions.insert(user);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(response) => Ok(response),
            }
        })
    }
}

/// The kubelet's secured port in front of `routes`: [`CatchPanic`], then the auth filter
/// ([`auth_layer`]: 401, 403, 500), then [`BodyLimit`] ([`crate::MAX_REQUEST_BODY_BYTES`]), then
/// `routes`. The filter sees every request before any route matching, so unknown paths and
/// wrong methods are 401 for an unauthenticated client and 404/405 only for an authorized one.
/// Give `routes` its fallback (e.g. [`crate::page_not_found`]) before passing it in.
///
/// The filter uses the 1.35 defaults ([`FilterOptions::default`]: `KubeletFineGrainedAuthz`
/// on); [`secured_with`] takes the agent's effective options.
pub fn secured(
    routes: axum::Router,
    auth: Arc<dyn RequestAuth>,
    node_name: impl Into<String>,
) -> axum::Router {
    secured_with(routes, auth, node_name, FilterOptions::default())
}

/// [`secured`] with the filter's `options` (the `KubeletFineGrainedAuthz` gate, see
/// [`FilterOptions::from_gates`]).
pub fn secured_with(
    routes: axum::Router,
    auth: Arc<dyn RequestAuth>,
    node_name: impl Into<String>,
    options: FilterOptions,
) -> axum::Router {
    let filtered = tower::Layer::layer(
        &auth_layer(auth, node_name.into(), options),
        BodyLimit::new(routes),
    );
    axum::Router::new().fallback_service(CatchPanic::new(filtered))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str) -> Parts {
        Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn attrs(method: Method, uri: &str) -> Attributes {
        let mut all = request_attributes(
            &parts(method, uri),
            UserInfo::anonymous(),
            "node-1",
            FilterOptions::default(),
        );
        all.remove(0)
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

    /// Every row of the kubelet's table, gate on and gate off.
    #[test]
    fn subresources_by_path_and_gate() {
        let proxy: &[&str] = &["proxy"];
        for (p, on, off) in [
            ("/stats", &["stats"][..], &["stats"][..]),
            ("/stats/", &["stats"], &["stats"]),
            ("/stats/summary", &["stats"], &["stats"]),
            ("/statsx", proxy, proxy),
            ("/metrics", &["metrics"], &["metrics"]),
            ("/metrics/cadvisor", &["metrics"], &["metrics"]),
            ("/metrics/resource", &["metrics"], &["metrics"]),
            ("/metricsfoo", proxy, proxy),
            ("/logs", &["log"], &["log"]),
            ("/logs/", &["log"], &["log"]),
            ("/logs/syslog", &["log"], &["log"]),
            ("/checkpoint", &["checkpoint"], &["checkpoint"]),
            ("/checkpoint/ns/pod/ctr", &["checkpoint"], &["checkpoint"]),
            ("/checkpointx", proxy, proxy),
            ("/pods", &["pods", "proxy"], proxy),
            ("/pods/", &["pods", "proxy"], proxy),
            ("/pods/anything", &["pods", "proxy"], proxy),
            ("/podsX", proxy, proxy),
            ("/runningpods", &["pods", "proxy"], proxy),
            ("/runningpods/", &["pods", "proxy"], proxy),
            ("/runningpods/x", &["pods", "proxy"], proxy),
            ("/runningpodsx", proxy, proxy),
            // Case-sensitive, like the kubelet's mux: /runningPods is not /runningpods.
            ("/runningPods/", proxy, proxy),
            ("/healthz", &["healthz", "proxy"], proxy),
            ("/healthz/", &["healthz", "proxy"], proxy),
            ("/healthz/syncloop", &["healthz", "proxy"], proxy),
            ("/healthzx", proxy, proxy),
            ("/configz", &["configz", "proxy"], proxy),
            ("/configz/", &["configz", "proxy"], proxy),
            ("/configzx", proxy, proxy),
            ("/statusz", &["statusz", "proxy"], proxy),
            ("/statuszx", proxy, proxy),
            ("/flagz", proxy, proxy),
            ("/spec", proxy, proxy),
            ("/exec/ns/pod/ctr", proxy, proxy),
            ("/attach/ns/pod/ctr", proxy, proxy),
            ("/portForward/ns/pod", proxy, proxy),
            ("/containerLogs/ns/pod/ctr", proxy, proxy),
            ("/run/ns/pod/ctr", proxy, proxy),
            ("/debug/pprof/", proxy, proxy),
            ("/", proxy, proxy),
            ("", proxy, proxy),
            // Only a path's start counts: a fine-grained name deeper down is proxy.
            ("/exec/pods", proxy, proxy),
            ("//pods", proxy, proxy),
        ] {
            assert_eq!(subresources_for(p, true), on, "{p:?} gate on");
            assert_eq!(subresources_for(p, false), off, "{p:?} gate off");
        }
    }

    #[test]
    fn records_follow_the_gate_and_the_query_is_not_the_path() {
        let p = parts(Method::GET, "/pods?x=/stats");
        let on = request_attributes(&p, UserInfo::anonymous(), "n", FilterOptions::default());
        assert_eq!(
            on.iter().map(|a| a.subresource).collect::<Vec<_>>(),
            ["pods", "proxy"]
        );
        // The records differ only in the subresource.
        assert_eq!(
            Attributes {
                subresource: "pods",
                ..on[1].clone()
            },
            on[0]
        );
        let off = request_attributes(
            &p,
            UserInfo::anonymous(),
            "n",
            FilterOptions {
                fine_grained_authz: false,
            },
        );
        assert_eq!(off.len(), 1);
        assert_eq!(off[0], on[1]);
        assert_eq!(off[0].path, "/pods");
    }

    #[test]
    fn options_from_the_gates() {
        let defaults = FeatureGates::default();
        assert!(FilterOptions::from_gates(&defaults).fine_grained_authz);
        assert_eq!(
            FilterOptions::default(),
            FilterOptions::from_gates(&defaults)
        );
        for (name, value) in [(FINE_GRAINED_AUTHZ_GATE, false), ("AllBeta", false)] {
            let settings = std::collections::BTreeMap::from([(name.to_owned(), value)]);
            let gates = FeatureGates::new(&settings).unwrap();
            assert!(
                !FilterOptions::from_gates(&gates).fine_grained_authz,
                "{name}"
            );
        }
    }

    #[test]
    fn forbidden_lists_every_subresource() {
        let a = attrs(Method::GET, "/pods");
        assert_eq!(
            describe_all(&a, &["pods", "proxy"]),
            "user=system:anonymous, verb=get, resource=nodes, subresource(s)=[pods proxy]"
        );
        assert_eq!(
            describe(&a),
            "user=system:anonymous, verb=get, resource=nodes, subresource=pods"
        );
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
