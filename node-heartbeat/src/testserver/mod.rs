//! A test-support Kubernetes API server: real HTTP/1.1 on 127.0.0.1 speaking the real JSON types,
//! so that a real `kube::Client` works against it unchanged. It is a test double (behind the
//! `test-server` feature, never in a release binary), not an API server: no authentication, no
//! admission, no validation beyond what is listed here.
//!
//! # What is served
//!
//! * **Leases** (`coordination.k8s.io/v1`): get, create, update with `resourceVersion`
//!   conflicts; **Nodes**: get, create, status patch (conditions merged by `type`, see
//!   [`crate::apply_node_status_patch`]).
//! * **TokenReview** and **SubjectAccessReview** for the kubelet's webhook authentication and
//!   authorization (configurable tokens and access policy).
//! * **Pods** (core/v1), stored by `namespace/name`; every write takes the next server-wide
//!   resourceVersion (one counter for every kind, as etcd's revision):
//!   * `POST .../namespaces/{ns}/pods`: 409 AlreadyExists if present; `metadata.namespace` from
//!     the path (400 if the body names another); `generateName` honoured; `uid` set if absent
//!     (the real server always generates one); `creationTimestamp`, `generation: 1`;
//!     `status.phase: Pending` if the body has none (the real server resets the whole status and
//!     computes `qosClass`, this one keeps a status it is given so tests can seed one); the
//!     `SetDefaults_PodSpec` values an agent reads (`terminationGracePeriodSeconds: 30`,
//!     `restartPolicy: Always`, `dnsPolicy: ClusterFirst`, `schedulerName: default-scheduler`).
//!   * `GET` (404 NotFound Status, `details.kind: pods`), `PUT` (update: the status is kept, as
//!     the pod update strategy does; `resourceVersion` optimistic concurrency with the real 409
//!     Conflict message; a set `uid` that differs is a 409 precondition failure; `generation`
//!     bumped when the spec changes; an update that changes nothing writes nothing), `PUT
//!     .../status` (only the status is taken).
//!   * `GET /api/v1/pods`, `GET .../namespaces/{ns}/pods`: a `PodList` at the current
//!     resourceVersion, in key order. `fieldSelector` (`=`, `==`, `!=`, comma = AND) on the
//!     pod field labels of the real server (`metadata.name`, `metadata.namespace`,
//!     `spec.nodeName`, `spec.restartPolicy`, `spec.schedulerName`,
//!     `spec.serviceAccountName`, `spec.hostNetwork`, `status.phase`, `status.podIP`,
//!     `status.nominatedNodeName`); any other is 400 `field label not supported: <label>`.
//!     `labelSelector` with `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`.
//!     Not implemented: `limit`/`continue` (everything is one page), `resourceVersion` on a
//!     list (always the current state), backslash escapes in selectors.
//!   * **Watch** (`watch=true`/`1` on the list URLs): a chunked `200`, `application/json`, one
//!     `{"type":...,"object":...}` per line, as the watch cache serves it: `resourceVersion`
//!     unset or `"0"` sends a synthetic ADDED per matching pod, then live events;
//!     `resourceVersion=R` replays every kept event after `R`, then live events; `R` below the
//!     compaction floor `F` gets one `ERROR` event (Status `Expired`, code 410, `too old
//!     resource version: R (F)`) and the stream ends. Selectors filter events; an object that
//!     stops matching after a change is sent as DELETED (its previous state at the new
//!     resourceVersion), one that starts matching as ADDED. `allowWatchBookmarks=true`:
//!     BOOKMARK events (`{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":..}}`)
//!     on [`TestApiServer::send_bookmarks`] and every [`DEFAULT_BOOKMARK_PERIOD`] (1 s, far
//!     more often than the real server's roughly once a minute, so tests see them quickly;
//!     [`TestApiServer::set_bookmark_period`]). `sendInitialEvents=true` sends the current
//!     state then a bookmark annotated `k8s.io/initial-events-end` (when bookmarks are
//!     allowed); `sendInitialEvents=false` skips the synthetic events. `timeoutSeconds=T` ends
//!     the stream after T s (without it the stream stays open; the real server picks 30-60
//!     min). The history keeps the last 10 000 events ([`TestApiServer::compact`] drops it).
//!     Guess: a `resourceVersion` newer than the server's is served as a watch from it (the
//!     real server waits up to 3 s, then answers 504 `Too large resource version`).
//!   * `PATCH .../pods/{name}/status` with `application/strategic-merge-patch+json` (what the
//!     kubelet's status manager sends) or `application/merge-patch+json`: only `status` is
//!     taken (the real status strategy also lets labels and annotations through), with the
//!     strategic merge rules of the 1.35 `PodStatus` (conditions by `type`, `podIPs`/`hostIPs`
//!     by `ip`, `resourceClaimStatuses` by `name`, container statuses atomic),
//!     `$setElementOrder`, `$patch: delete|replace`, `$retainKeys`, `null` deleting a key. A
//!     `metadata.uid` that differs from the object's is 409 `Precondition failed: UID in
//!     precondition: X, UID in object meta: Y`; a `metadata.resourceVersion` that differs is a
//!     409 Conflict. A patch that changes nothing writes nothing (no new resourceVersion, no
//!     event), as the real server. Plain `PATCH .../pods/{name}` (strategic or JSON merge)
//!     changes metadata and spec (a status in it is ignored). JSON patch and apply patch are
//!     415.
//!   * `DELETE .../pods/{name}` with an optional `DeleteOptions` body (or `gracePeriodSeconds`
//!     in the query), as `rest.BeforeDelete` plus the pod strategy's `CheckGracefulDelete` and
//!     the generic store: `preconditions.uid`/`resourceVersion` mismatch is 409 Conflict; grace
//!     is the options' `gracePeriodSeconds`, else `spec.terminationGracePeriodSeconds`, else 30;
//!     0 when the pod is unbound (no `spec.nodeName`) or Succeeded/Failed; negative means 1.
//!     First delete: `deletionTimestamp` = now + grace, `deletionGracePeriodSeconds` = grace,
//!     `generation` + 1, a MODIFIED event; with grace > 0 the answer is 200 with the pod.
//!     With grace 0 that update is followed at once by the removal (DELETED, carrying the last
//!     state at a new resourceVersion) and the answer is 200 with the object, so a watcher
//!     sees MODIFIED then DELETED, as from the real store. Already being deleted: a shorter
//!     grace moves `deletionTimestamp` back (not before now; a non-zero grace that has run out
//!     becomes 1) with a MODIFIED event, 0 removes it; an equal or longer one changes nothing;
//!     an object whose `deletionGracePeriodSeconds` is 0 is removed. Not implemented:
//!     finalizers (a pod with finalizers is removed all the same), `propagationPolicy`,
//!     `dryRun`.
//! * **Events** (core/v1): `POST .../namespaces/{ns}/events` (201; 409 if the name exists),
//!   `GET` one, list (`/api/v1/events`, `.../namespaces/{ns}/events`, with the events' field
//!   labels and label selectors), `PATCH` (strategic or JSON merge: the recorder's `count`,
//!   `lastTimestamp`, `message`). No watch, no delete.
//! * **ConfigMaps, Secrets, Services** (core/v1): get, list and watch over HTTP (the pods'
//!   watch protocol, compaction and [`TestApiServer::break_watches`] included), written by the
//!   test ([`TestApiServer::put_config_map`], ...); **TokenRequest**
//!   (`POST .../serviceaccounts/{sa}/token`, [`TestApiServer::token_requests`]); the `/api/v1`
//!   discovery document. See the `objects` module for the details and the guesses.
//!
//! Faults: [`TestApiServer::fail_next`] and [`TestApiServer::fail_all`] answer with a Status of
//! that code (watches too); [`TestApiServer::stop`] takes the server down (listener, every
//! connection and every watch closed, so clients see connection refused) and
//! [`TestApiServer::restart`] brings it back with its objects; [`TestApiServer::break_watches`]
//! ends every open watch stream (clients see the end of the stream). Every request is recorded
//! ([`TestApiServer::requests`]). Malformed input (bad JSON, queries, selectors, huge numbers)
//! gets a 400/404/409/415/422 Status like the real server's; nothing panics.
//!
//! Used by this crate's tests, the hollow-node bench and by simulators.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewStatus, UserInfo};
use k8s_openapi::api::authorization::v1::{
    SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{ApiErrorKind, Error, Result};

mod events;
mod objects;
mod pods;
mod query;
mod watch;

pub use objects::ReceivedTokenRequest;
pub use watch::DEFAULT_BOOKMARK_PERIOD;
use watch::{WatchBody, WatchHub};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// When it arrived (tokio time, so paused-clock tests see virtual time).
    pub at: Instant,
    /// The status code answered.
    pub status: u16,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

/// Per-lease renewal timing, for "was every lease on time" checks.
#[derive(Debug, Clone, Copy)]
pub struct RenewStats {
    /// Last create/update.
    pub last: Instant,
    /// Number of creates/updates.
    pub renewals: u64,
    /// Longest gap between two renewals.
    pub max_gap: Duration,
}

/// A SubjectAccessReview policy: `(allowed, reason)` for a review's spec.
pub type AccessPolicy = Arc<dyn Fn(&SubjectAccessReviewSpec) -> (bool, String) + Send + Sync>;

/// The reason the default policy gives when it denies.
pub const DEFAULT_DENY_REASON: &str = "no access rule allows this request";

#[derive(Default)]
pub(crate) struct State {
    leases: BTreeMap<String, Lease>,
    nodes: BTreeMap<String, Node>,
    rv: u64,
    fail_next: VecDeque<u16>,
    fail_all: Option<u16>,
    record: bool,
    log: Vec<RecordedRequest>,
    renewals: BTreeMap<String, RenewStats>,
    requests_total: u64,
    /// TokenReview: token -> (user name, groups).
    tokens: BTreeMap<String, (String, Vec<String>)>,
    /// SubjectAccessReview: allowed (user, subresource) pairs (subresource "" for none).
    allowed: Vec<(String, String)>,
    /// A policy that replaces `allowed` when set.
    policy: Option<AccessPolicy>,
    /// Pods by `namespace/name`.
    pods: BTreeMap<String, Pod>,
    /// Pod event history and open pod watches.
    pod_watch: WatchHub,
    /// Events by `namespace/name`.
    events: BTreeMap<String, Event>,
    /// ConfigMaps, secrets, services (with their watches) and token requests.
    objects: objects::Objects,
}

/// The running server. Dropping it stops serving.
pub struct TestApiServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for TestApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApiServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    match state.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn status_body(
    code: u16,
    reason: &str,
    message: String,
    kind: &str,
    group: &str,
    name: &str,
) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason,
        "details": {"name": name, "group": group, "kind": kind},
        "code": code
    })
}

fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

impl TestApiServer {
    /// Starts on an ephemeral port of 127.0.0.1, recording requests.
    pub async fn start() -> Result<Self> {
        Self::start_on("127.0.0.1:0".parse().map_err(|_| Error::TestServer {
            addr: "127.0.0.1:0".into(),
            source: std::io::Error::other("bad address"),
        })?)
        .await
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr) -> Result<Self> {
        let state = Arc::new(Mutex::new(State {
            record: true,
            ..Default::default()
        }));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::TestServer {
                addr: addr.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::TestServer {
            addr: addr.to_string(),
            source,
        })?;
        let task = tokio::spawn(serve(listener, state.clone()));
        Ok(TestApiServer {
            addr,
            state,
            task: Mutex::new(Some(task)),
        })
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the server down: the listener, every open connection and every watch stream are
    /// closed, so clients get connection refused/reset. Objects are kept.
    pub fn stop(&self) {
        let mut g = match self.task.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(t) = g.take() {
            t.abort();
        }
        drop(g);
        let mut st = lock(&self.state);
        st.pod_watch.close_all();
        st.objects.hubs().into_iter().for_each(WatchHub::close_all);
    }

    /// Brings the server back on the same port.
    pub async fn restart(&self) -> Result<()> {
        self.stop();
        // The aborted task releases the listener when it is dropped, which happens on a later
        // scheduler turn: retry the bind briefly.
        let mut tries = 0;
        let listener = loop {
            tokio::task::yield_now().await;
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(source) => {
                    return Err(Error::TestServer {
                        addr: self.addr.to_string(),
                        source,
                    });
                }
            }
        };
        let task = tokio::spawn(serve(listener, self.state.clone()));
        match self.task.lock() {
            Ok(mut g) => *g = Some(task),
            Err(p) => *p.into_inner() = Some(task),
        }
        Ok(())
    }

    /// The next requests get these status codes (a Status body with the matching reason).
    pub fn fail_next(&self, codes: impl IntoIterator<Item = u16>) {
        lock(&self.state).fail_next.extend(codes);
    }

    /// Every request gets `code` until called with `None`.
    pub fn fail_all(&self, code: Option<u16>) {
        lock(&self.state).fail_all = code;
    }

    /// Turns request recording on or off (off for large benches; counters still run).
    pub fn set_recording(&self, on: bool) {
        lock(&self.state).record = on;
    }

    /// Recorded requests so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).log.clone()
    }

    /// Forgets recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.state).log.clear();
    }

    /// Total requests served (including failed ones).
    pub fn requests_total(&self) -> u64 {
        lock(&self.state).requests_total
    }

    /// A lease in `namespace`.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Lease> {
        lock(&self.state)
            .leases
            .get(&format!("{namespace}/{name}"))
            .cloned()
    }

    /// A node.
    pub fn node(&self, name: &str) -> Option<Node> {
        lock(&self.state).nodes.get(name).cloned()
    }

    /// Renewal timing per lease (`namespace/name`).
    pub fn renewals(&self) -> BTreeMap<String, RenewStats> {
        lock(&self.state).renewals.clone()
    }

    /// TokenReview answers `authenticated: true` with `user` and `groups` for `token`; unknown
    /// tokens get `authenticated: false`.
    pub fn add_token(&self, token: &str, user: &str, groups: &[&str]) {
        lock(&self.state).tokens.insert(
            token.to_owned(),
            (
                user.to_owned(),
                groups.iter().map(|g| (*g).to_owned()).collect(),
            ),
        );
    }

    /// SubjectAccessReviews from `user` on `subresource` (of any resource, `""` for none) are
    /// allowed; everything else is denied with [`DEFAULT_DENY_REASON`] (unless a policy is
    /// set with [`TestApiServer::set_access_policy`]).
    pub fn allow_access(&self, user: &str, subresource: &str) {
        lock(&self.state)
            .allowed
            .push((user.to_owned(), subresource.to_owned()));
    }

    /// Decides SubjectAccessReviews with `policy` (`(allowed, reason)`) instead of the
    /// [`TestApiServer::allow_access`] pairs; `None` restores them. The policy runs with the
    /// server's state locked: it must not call back into the server.
    pub fn set_access_policy(&self, policy: Option<AccessPolicy>) {
        lock(&self.state).policy = policy;
    }

    /// Stores a lease as another writer would (bumping its resourceVersion), so the agent's
    /// cached copy becomes stale and its next optimistic update conflicts.
    pub fn modify_lease(&self, namespace: &str, name: &str, f: impl FnOnce(&mut Lease)) -> bool {
        let mut st = lock(&self.state);
        st.rv += 1;
        let rv = st.rv.to_string();
        match st.leases.get_mut(&format!("{namespace}/{name}")) {
            Some(l) => {
                f(l);
                l.metadata.resource_version = Some(rv);
                true
            }
            None => false,
        }
    }

    /// Changes a node as another writer would (a controller setting `spec.podCIDR`, say),
    /// bumping its resourceVersion. `false` when there is no such node.
    pub fn modify_node(&self, name: &str, f: impl FnOnce(&mut Node)) -> bool {
        let mut st = lock(&self.state);
        st.rv += 1;
        let rv = st.rv.to_string();
        match st.nodes.get_mut(name) {
            Some(n) => {
                f(n);
                n.metadata.resource_version = Some(rv);
                true
            }
            None => false,
        }
    }

    /// Creates a pod as `POST /api/v1/namespaces/{ns}/pods` does (namespace from the pod,
    /// `default` if unset); returns the stored pod. Errors are [`Error::Api`] with the
    /// Status message (409 AlreadyExists, 400, 422).
    pub fn create_pod(&self, pod: Pod) -> Result<Pod> {
        let ns = pod
            .metadata
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let body = serde_json::to_value(&pod).unwrap_or(Value::Null);
        let answer = pods::create(&mut lock(&self.state), &ns, Some(&body));
        decode_answer("create pod", &name, answer)
    }

    /// The stored pod `namespace/name`.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        lock(&self.state)
            .pods
            .get(&format!("{namespace}/{name}"))
            .cloned()
    }

    /// Every stored pod, in `namespace/name` order.
    pub fn pods(&self) -> Vec<Pod> {
        lock(&self.state).pods.values().cloned().collect()
    }

    /// Changes a pod as another writer would (a controller, the scheduler, a user): `f` may
    /// change anything but name, namespace and uid; a change gets a new resourceVersion and is
    /// sent to watchers as MODIFIED (`None`: no such pod).
    pub fn update_pod(&self, namespace: &str, name: &str, f: impl FnOnce(&mut Pod)) -> Option<Pod> {
        pods::update_with(&mut lock(&self.state), namespace, name, f)
    }

    /// Deletes a pod with the semantics of `DELETE .../pods/{name}` and
    /// `gracePeriodSeconds: grace` (see the module doc): returns what the HTTP DELETE answers
    /// (the pod, with `deletionTimestamp` set when the deletion is graceful, its last state when
    /// it is gone).
    pub fn delete_pod(&self, namespace: &str, name: &str, grace: Option<i64>) -> Result<Pod> {
        let opts = k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions {
            grace_period_seconds: grace,
            ..Default::default()
        };
        let answer = pods::delete(&mut lock(&self.state), namespace, name, &opts);
        decode_answer("delete pod", name, answer)
    }

    /// The current server-wide resourceVersion (the last write's).
    pub fn resource_version(&self) -> u64 {
        lock(&self.state).rv
    }

    /// Compacts the pod event history up to the current resourceVersion: a watch from an
    /// older resourceVersion then gets the 410 Expired ERROR event (as after an etcd
    /// compaction or a watch-cache window overrun).
    pub fn compact(&self) {
        let mut st = lock(&self.state);
        let rv = st.rv;
        st.pod_watch.compact(rv);
        st.objects.hubs().into_iter().for_each(|h| h.compact(rv));
    }

    /// Ends every open watch stream, as a server-side disconnect: each stream sends what it
    /// already has and ends; clients see the end of the stream and must re-watch.
    pub fn break_watches(&self) {
        let mut st = lock(&self.state);
        st.pod_watch.close_all();
        st.objects.hubs().into_iter().for_each(WatchHub::close_all);
    }

    /// Sends a BOOKMARK at the current resourceVersion on every open watch that allowed
    /// bookmarks (`allowWatchBookmarks=true`).
    pub fn send_bookmarks(&self) {
        let mut st = lock(&self.state);
        let rv = st.rv;
        st.pod_watch.bookmark(rv);
        st.objects.hubs().into_iter().for_each(|h| h.bookmark(rv));
    }

    /// The period of the automatic BOOKMARK events of watches opened from now on
    /// ([`DEFAULT_BOOKMARK_PERIOD`] by default; `None` or zero: only
    /// [`TestApiServer::send_bookmarks`]).
    pub fn set_bookmark_period(&self, period: Option<Duration>) {
        let mut st = lock(&self.state);
        st.pod_watch.bookmark_period = period;
        st.objects
            .hubs()
            .into_iter()
            .for_each(|h| h.bookmark_period = period);
    }

    /// Open watch streams (those whose client has not gone away).
    pub fn watch_count(&self) -> usize {
        let mut st = lock(&self.state);
        st.pod_watch.open()
            + st.objects
                .hubs()
                .into_iter()
                .map(WatchHub::open)
                .sum::<usize>()
    }

    /// Every stored event, in `namespace/name` order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.state).events.values().cloned().collect()
    }
}

/// A handler's answer as the typed object, or [`Error::Api`] with the Status message.
fn decode_answer<T: serde::de::DeserializeOwned>(
    op: &'static str,
    object: &str,
    (code, body): (u16, Value),
) -> Result<T> {
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let kind = match (code, body.get("reason").and_then(Value::as_str)) {
        (200..=299, _) => {
            return serde_json::from_value(body).map_err(|e| Error::Api {
                op,
                object: object.to_owned(),
                kind: ApiErrorKind::Permanent,
                message: e.to_string(),
            });
        }
        (409, Some("AlreadyExists")) => ApiErrorKind::AlreadyExists,
        (409, _) => ApiErrorKind::Conflict,
        (404, _) => ApiErrorKind::NotFound,
        _ => ApiErrorKind::Permanent,
    };
    Err(Error::Api {
        op,
        object: object.to_owned(),
        kind,
        message,
    })
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    // Connections live in this set so that aborting the serve task closes them all.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let st = state.clone();
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

/// The response body: a whole JSON document, or a watch stream.
type Body = UnsyncBoxBody<Bytes, Infallible>;

/// What a route answers.
pub(crate) enum Reply {
    /// A status code and a JSON body.
    Json(u16, Value),
    /// A `200` watch stream.
    Watch(WatchBody),
}

impl From<(u16, Value)> for Reply {
    fn from((code, body): (u16, Value)) -> Self {
        Reply::Json(code, body)
    }
}

fn respond(code: u16, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    with_json_type(code, Full::new(Bytes::from(bytes)).boxed_unsync())
}

fn with_json_type(code: u16, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// One request, as the routes see it.
pub(crate) struct Req<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    content_type: &'a str,
    body: Option<&'a Value>,
    /// The body was not empty but not JSON either.
    body_invalid: bool,
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> std::result::Result<Response<Body>, Infallible> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let mut st = lock(&state);
    if path.starts_with("/debug/") {
        // Test-only endpoints for out-of-process users (the hollow-node bench); not faulted,
        // not recorded.
        let out = debug(&mut st, &method, &path);
        drop(st);
        return Ok(respond(out.0, &out.1));
    }
    st.requests_total += 1;
    let injected = st.fail_next.pop_front().or(st.fail_all);
    let reply = match injected {
        Some(code) => Reply::Json(
            code,
            status_body(
                code,
                reason_of(code),
                format!("injected failure {code}"),
                "",
                "",
                "",
            ),
        ),
        None => {
            let r = Req {
                method: &method,
                path: &path,
                query: query.as_deref(),
                content_type: &content_type,
                body: json_body.as_ref(),
                body_invalid: !body.is_empty() && json_body.is_none(),
            };
            route(&mut st, &state, &r)
        }
    };
    let code = match &reply {
        Reply::Json(code, _) => *code,
        Reply::Watch(_) => 200,
    };
    if st.record {
        st.log.push(RecordedRequest {
            method,
            path,
            at: Instant::now(),
            status: code,
            body: json_body,
        });
    }
    drop(st);
    Ok(match reply {
        Reply::Json(code, out) => respond(code, &out),
        Reply::Watch(w) => with_json_type(200, w.boxed_unsync()),
    })
}

/// `GET /debug/renewals`: lease count, renewals, longest gap between renewals (ms) and how
/// many leases are overdue now; `POST /debug/renewals/reset` restarts the gap measurement.
fn debug(st: &mut State, method: &str, path: &str) -> (u16, Value) {
    let now = Instant::now();
    match (method, path) {
        ("GET", "/debug/renewals") => {
            let max_gap = st
                .renewals
                .values()
                .map(|r| r.max_gap)
                .max()
                .unwrap_or_default();
            let longest_since_last = st
                .renewals
                .values()
                .map(|r| now.saturating_duration_since(r.last))
                .max()
                .unwrap_or_default();
            let renewals: u64 = st.renewals.values().map(|r| r.renewals).sum();
            (
                200,
                json!({
                    "leases": st.renewals.len(),
                    "renewals": renewals,
                    "maxGapMs": u64::try_from(max_gap.as_millis()).unwrap_or(u64::MAX),
                    "longestSinceLastMs":
                        u64::try_from(longest_since_last.as_millis()).unwrap_or(u64::MAX),
                    "nodes": st.nodes.len(),
                    "requestsTotal": st.requests_total,
                }),
            )
        }
        ("POST", "/debug/renewals/reset") => {
            for r in st.renewals.values_mut() {
                r.max_gap = Duration::ZERO;
                r.renewals = 0;
            }
            (200, json!({}))
        }
        _ => (
            404,
            status_body(
                404,
                "NotFound",
                format!("no debug endpoint {method} {path}"),
                "",
                "",
                "",
            ),
        ),
    }
}

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/";

fn next_rv(st: &mut State) -> String {
    st.rv += 1;
    st.rv.to_string()
}

fn record_renewal(st: &mut State, key: &str) {
    let now = Instant::now();
    st.renewals
        .entry(key.to_owned())
        .and_modify(|r| {
            r.max_gap = r.max_gap.max(now.saturating_duration_since(r.last));
            r.last = now;
            r.renewals += 1;
        })
        .or_insert(RenewStats {
            last: now,
            renewals: 1,
            max_gap: Duration::ZERO,
        });
}

fn bad_request(msg: String) -> (u16, Value) {
    (400, status_body(400, "BadRequest", msg, "", "", ""))
}

fn route(st: &mut State, state: &Arc<Mutex<State>>, req: &Req<'_>) -> Reply {
    if req.method == "GET" && (req.path == "/api/v1" || req.path == "/api/v1/") {
        return Reply::from(objects::discovery(st));
    }
    if let Some(rest) = req.path.strip_prefix("/api/v1/")
        && let Some(reply) = route_core(st, state, req, rest)
    {
        return reply;
    }
    Reply::from(route_legacy(st, req.method, req.path, req.body))
}

fn method_not_allowed(method: &str, path: &str) -> (u16, Value) {
    (
        405,
        status_body(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method on the requested resource ({method} {path})"
            ),
            "",
            "",
            "",
        ),
    )
}

/// Pods and events under `/api/v1/`; `None` for the other core paths (nodes).
fn route_core(
    st: &mut State,
    state: &Arc<Mutex<State>>,
    req: &Req<'_>,
    rest: &str,
) -> Option<Reply> {
    let parts: Vec<&str> = rest.split('/').collect();
    if let Some(reply) = objects::route(st, state, req, &parts) {
        return Some(reply);
    }
    let resource = match parts.as_slice() {
        [r, ..] | ["namespaces", _, r, ..] if *r == "pods" || *r == "events" => *r,
        _ => return None,
    };
    if req.body_invalid {
        return Some(Reply::from(bad_request(
            "the request body is not valid JSON".into(),
        )));
    }
    let (m, body) = (req.method, req.body);
    let answer: (u16, Value) = match (resource, m, parts.as_slice()) {
        ("pods", "GET", ["pods"]) => {
            return Some(pods::list_or_watch(st, state, None, req.query));
        }
        ("pods", "GET", ["namespaces", ns, "pods"]) => {
            return Some(pods::list_or_watch(st, state, Some(ns), req.query));
        }
        ("pods", "POST", ["namespaces", ns, "pods"]) => pods::create(st, ns, body),
        (
            "pods",
            "GET",
            ["namespaces", ns, "pods", name] | ["namespaces", ns, "pods", name, "status"],
        ) => pods::get(st, ns, name),
        ("pods", "PUT", ["namespaces", ns, "pods", name]) => {
            pods::replace(st, ns, name, body, false)
        }
        ("pods", "PUT", ["namespaces", ns, "pods", name, "status"]) => {
            pods::replace(st, ns, name, body, true)
        }
        ("pods", "PATCH", ["namespaces", ns, "pods", name]) => {
            pods::patch(st, ns, name, req.content_type, body, false)
        }
        ("pods", "PATCH", ["namespaces", ns, "pods", name, "status"]) => {
            pods::patch(st, ns, name, req.content_type, body, true)
        }
        ("pods", "DELETE", ["namespaces", ns, "pods", name]) => {
            match query::Query::parse(req.query)
                .map_err(bad_request)
                .and_then(|q| pods::delete_options(body, &q))
            {
                Ok(opts) => pods::delete(st, ns, name, &opts),
                Err(e) => e,
            }
        }
        ("events", "GET", ["events"]) => events::list(st, None, req.query),
        ("events", "GET", ["namespaces", ns, "events"]) => events::list(st, Some(ns), req.query),
        ("events", "POST", ["namespaces", ns, "events"]) => events::create(st, ns, body),
        ("events", "GET", ["namespaces", ns, "events", name]) => events::get(st, ns, name),
        ("events", "PATCH", ["namespaces", ns, "events", name]) => {
            events::patch(st, ns, name, req.content_type, body)
        }
        (_, _, ["pods" | "events"] | ["namespaces", _, _] | ["namespaces", _, _, _])
        | ("pods", _, ["namespaces", _, _, _, "status"]) => method_not_allowed(m, req.path),
        _ => (
            404,
            status_body(
                404,
                "NotFound",
                format!(
                    "the server could not find the requested resource ({m} {})",
                    req.path
                ),
                "",
                "",
                "",
            ),
        ),
    };
    Some(Reply::from(answer))
}

fn route_legacy(st: &mut State, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    if let Some(rest) = path.strip_prefix(LEASES) {
        let parts: Vec<&str> = rest.split('/').collect();
        return match (method, parts.as_slice()) {
            ("GET", [ns, "leases", name]) => get_lease(st, ns, name),
            ("POST", [ns, "leases"]) => create_lease(st, ns, body),
            ("PUT", [ns, "leases", name]) => update_lease(st, ns, name, body),
            _ => (
                404,
                status_body(
                    404,
                    "NotFound",
                    format!("the server could not find the requested resource ({method} {path})"),
                    "",
                    "",
                    "",
                ),
            ),
        };
    }
    match (method, path) {
        ("POST", TOKEN_REVIEWS) => return token_review(st, body),
        ("POST", ACCESS_REVIEWS) => return access_review(st, body),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/api/v1/nodes") {
        let parts: Vec<&str> = rest
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        return match (method, parts.as_slice()) {
            ("GET", [name]) => match st.nodes.get(*name) {
                Some(n) => (200, serde_json::to_value(n).unwrap_or(Value::Null)),
                None => (
                    404,
                    status_body(
                        404,
                        "NotFound",
                        format!("nodes \"{name}\" not found"),
                        "nodes",
                        "",
                        name,
                    ),
                ),
            },
            ("POST", []) => create_node(st, body),
            ("PATCH", [name, "status"]) => patch_status(st, name, body),
            _ => (
                404,
                status_body(
                    404,
                    "NotFound",
                    format!("the server could not find the requested resource ({method} {path})"),
                    "",
                    "",
                    "",
                ),
            ),
        };
    }
    (
        404,
        status_body(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({method} {path})"),
            "",
            "",
            "",
        ),
    )
}

const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

fn check_kind(b: &Value, api_version: &str, kind: &str) -> std::result::Result<(), (u16, Value)> {
    if b.get("apiVersion").and_then(Value::as_str) != Some(api_version)
        || b.get("kind").and_then(Value::as_str) != Some(kind)
    {
        return Err(bad_request(format!(
            "expected apiVersion {api_version}, kind {kind}"
        )));
    }
    Ok(())
}

/// The request body as a review object of `api_version`/`kind`, or the 400 answer.
fn decode_review<T: serde::de::DeserializeOwned>(
    body: Option<&Value>,
    api_version: &str,
    kind: &str,
) -> std::result::Result<T, (u16, Value)> {
    let Some(b) = body else {
        return Err(bad_request("missing body".into()));
    };
    check_kind(b, api_version, kind)?;
    serde_json::from_value(b.clone()).map_err(|e| bad_request(format!("decoding {kind}: {e}")))
}

fn token_review(st: &mut State, body: Option<&Value>) -> (u16, Value) {
    let mut review: TokenReview =
        match decode_review(body, "authentication.k8s.io/v1", "TokenReview") {
            Ok(r) => r,
            Err(e) => return e,
        };
    let token = review.spec.token.clone().unwrap_or_default();
    review.status = Some(match st.tokens.get(&token) {
        Some((name, groups)) => TokenReviewStatus {
            authenticated: Some(true),
            user: Some(UserInfo {
                username: Some(name.clone()),
                uid: Some(format!("uid-{name}")),
                groups: Some(groups.clone()),
                extra: None,
            }),
            ..Default::default()
        },
        None => TokenReviewStatus {
            authenticated: Some(false),
            error: Some("invalid bearer token".to_owned()),
            ..Default::default()
        },
    });
    (201, serde_json::to_value(&review).unwrap_or(Value::Null))
}

fn access_review(st: &mut State, body: Option<&Value>) -> (u16, Value) {
    let mut review: SubjectAccessReview =
        match decode_review(body, "authorization.k8s.io/v1", "SubjectAccessReview") {
            Ok(r) => r,
            Err(e) => return e,
        };
    let (allowed, reason) = match &st.policy {
        Some(policy) => policy(&review.spec),
        None => {
            let user = review.spec.user.clone().unwrap_or_default();
            let sub = review
                .spec
                .resource_attributes
                .as_ref()
                .and_then(|r| r.subresource.clone())
                .unwrap_or_default();
            if st.allowed.iter().any(|(u, s)| *u == user && *s == sub) {
                (true, String::new())
            } else {
                (false, DEFAULT_DENY_REASON.to_owned())
            }
        }
    };
    review.status = Some(SubjectAccessReviewStatus {
        allowed,
        denied: Some(!allowed),
        reason: (!reason.is_empty()).then_some(reason),
        evaluation_error: None,
    });
    (201, serde_json::to_value(&review).unwrap_or(Value::Null))
}

fn get_lease(st: &mut State, ns: &str, name: &str) -> (u16, Value) {
    match st.leases.get(&format!("{ns}/{name}")) {
        Some(l) => (200, serde_json::to_value(l).unwrap_or(Value::Null)),
        None => (
            404,
            status_body(
                404,
                "NotFound",
                format!("leases.coordination.k8s.io \"{name}\" not found"),
                "leases",
                "coordination.k8s.io",
                name,
            ),
        ),
    }
}

fn parse_lease(body: Option<&Value>) -> std::result::Result<Lease, (u16, Value)> {
    let Some(b) = body else {
        return Err(bad_request("missing body".into()));
    };
    let lease: Lease = serde_json::from_value(b.clone())
        .map_err(|e| bad_request(format!("decoding Lease: {e}")))?;
    if b.get("apiVersion").and_then(Value::as_str) != Some("coordination.k8s.io/v1")
        || b.get("kind").and_then(Value::as_str) != Some("Lease")
    {
        return Err(bad_request(
            "expected apiVersion coordination.k8s.io/v1, kind Lease".into(),
        ));
    }
    Ok(lease)
}

fn create_lease(st: &mut State, ns: &str, body: Option<&Value>) -> (u16, Value) {
    let mut lease = match parse_lease(body) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let name = lease.metadata.name.clone().unwrap_or_default();
    let key = format!("{ns}/{name}");
    if st.leases.contains_key(&key) {
        return (
            409,
            status_body(
                409,
                "AlreadyExists",
                format!("leases.coordination.k8s.io \"{name}\" already exists"),
                "leases",
                "coordination.k8s.io",
                &name,
            ),
        );
    }
    lease.metadata.namespace = Some(ns.to_owned());
    lease.metadata.resource_version = Some(next_rv(st));
    lease.metadata.uid = Some(format!("lease-uid-{}", st.rv));
    lease.metadata.creation_timestamp = Some(Time(Timestamp::now()));
    st.leases.insert(key.clone(), lease.clone());
    record_renewal(st, &key);
    (201, serde_json::to_value(&lease).unwrap_or(Value::Null))
}

fn update_lease(st: &mut State, ns: &str, name: &str, body: Option<&Value>) -> (u16, Value) {
    let mut lease = match parse_lease(body) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let key = format!("{ns}/{name}");
    let Some(current) = st.leases.get(&key) else {
        return (
            404,
            status_body(
                404,
                "NotFound",
                format!("leases.coordination.k8s.io \"{name}\" not found"),
                "leases",
                "coordination.k8s.io",
                name,
            ),
        );
    };
    if let Some(rv) = &lease.metadata.resource_version
        && Some(rv) != current.metadata.resource_version.as_ref()
    {
        return (
            409,
            status_body(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                ),
                "leases",
                "coordination.k8s.io",
                name,
            ),
        );
    }
    lease.metadata.uid.clone_from(&current.metadata.uid);
    lease
        .metadata
        .creation_timestamp
        .clone_from(&current.metadata.creation_timestamp);
    lease.metadata.namespace = Some(ns.to_owned());
    lease.metadata.resource_version = Some(next_rv(st));
    st.leases.insert(key.clone(), lease.clone());
    record_renewal(st, &key);
    (200, serde_json::to_value(&lease).unwrap_or(Value::Null))
}

fn create_node(st: &mut State, body: Option<&Value>) -> (u16, Value) {
    let Some(b) = body else {
        return bad_request("missing body".into());
    };
    let mut node: Node = match serde_json::from_value(b.clone()) {
        Ok(n) => n,
        Err(e) => return bad_request(format!("decoding Node: {e}")),
    };
    let name = node.metadata.name.clone().unwrap_or_default();
    if st.nodes.contains_key(&name) {
        return (
            409,
            status_body(
                409,
                "AlreadyExists",
                format!("nodes \"{name}\" already exists"),
                "nodes",
                "",
                &name,
            ),
        );
    }
    node.metadata.resource_version = Some(next_rv(st));
    node.metadata.uid = Some(format!("node-uid-{}-{}", name, st.rv));
    node.metadata.creation_timestamp = Some(Time(Timestamp::now()));
    st.nodes.insert(name, node.clone());
    (201, serde_json::to_value(&node).unwrap_or(Value::Null))
}

fn patch_status(st: &mut State, name: &str, body: Option<&Value>) -> (u16, Value) {
    let Some(patch) = body else {
        return bad_request("missing body".into());
    };
    let Some(node) = st.nodes.get(name) else {
        return (
            404,
            status_body(
                404,
                "NotFound",
                format!("nodes \"{name}\" not found"),
                "nodes",
                "",
                name,
            ),
        );
    };
    match crate::merge::apply_node_status_patch(node, patch) {
        Ok(mut n) => {
            n.metadata.resource_version = Some(next_rv(st));
            st.nodes.insert(name.to_owned(), n.clone());
            (200, serde_json::to_value(&n).unwrap_or(Value::Null))
        }
        Err(msg) => (422, status_body(422, "Invalid", msg, "nodes", "", name)),
    }
}

#[cfg(test)]
mod pod_tests;

#[cfg(test)]
mod tests {

    use super::*;
    use k8s_openapi::api::authentication::v1::TokenReviewSpec;
    use k8s_openapi::api::authorization::v1::ResourceAttributes;

    fn client(server: &TestApiServer) -> kube::Client {
        kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap()
    }

    fn sar(user: &str, subresource: &str) -> SubjectAccessReview {
        SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.to_owned()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some("get".to_owned()),
                    resource: Some("nodes".to_owned()),
                    subresource: Some(subresource.to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn token_and_access_reviews() {
        let server = TestApiServer::start().await.unwrap();
        server.add_token("t1", "alice", &["g1"]);
        server.allow_access("alice", "stats");
        let c = client(&server);
        let pp = kube::api::PostParams::default();

        let tokens: kube::Api<TokenReview> = kube::Api::all(c.clone());
        let review = |t: &str| TokenReview {
            spec: TokenReviewSpec {
                token: Some(t.to_owned()),
                audiences: None,
            },
            ..Default::default()
        };
        let ok = tokens.create(&pp, &review("t1")).await.unwrap();
        let status = ok.status.unwrap();
        assert_eq!(status.authenticated, Some(true));
        let user = status.user.unwrap();
        assert_eq!(user.username.as_deref(), Some("alice"));
        assert_eq!(user.groups, Some(vec!["g1".to_owned()]));
        let bad = tokens.create(&pp, &review("nope")).await.unwrap();
        assert_eq!(bad.status.unwrap().authenticated, Some(false));

        let sars: kube::Api<SubjectAccessReview> = kube::Api::all(c);
        let allowed = sars.create(&pp, &sar("alice", "stats")).await.unwrap();
        assert!(allowed.status.unwrap().allowed);
        let denied = sars.create(&pp, &sar("alice", "proxy")).await.unwrap();
        let status = denied.status.unwrap();
        assert!(!status.allowed);
        assert_eq!(status.reason.as_deref(), Some(DEFAULT_DENY_REASON));

        server.set_access_policy(Some(Arc::new(|spec: &SubjectAccessReviewSpec| {
            (spec.user.as_deref() == Some("bob"), "only bob".to_owned())
        })));
        let bob = sars.create(&pp, &sar("bob", "anything")).await.unwrap();
        assert!(bob.status.unwrap().allowed);
        let alice = sars.create(&pp, &sar("alice", "stats")).await.unwrap();
        assert_eq!(alice.status.unwrap().reason.as_deref(), Some("only bob"));

        let recorded = server.requests();
        assert_eq!(recorded.len(), 6);
        assert!(
            recorded
                .iter()
                .all(|r| r.method == "POST" && r.status == 201)
        );
        assert_eq!(
            recorded[0].path,
            "/apis/authentication.k8s.io/v1/tokenreviews"
        );
        assert_eq!(
            recorded[2].path,
            "/apis/authorization.k8s.io/v1/subjectaccessreviews"
        );
    }
}
