//! core/v1 ConfigMaps, Secrets and Services (what pods reference), the `serviceaccounts/token`
//! subresource (TokenRequest) and the `/api/v1` discovery document.
//!
//! Served over HTTP: `GET` one (404 NotFound Status `configmaps "x" not found`), list and watch
//! (`GET .../namespaces/{ns}/{resource}` and `GET /api/v1/{resource}`, `watch=true`, the same
//! protocol as pods: synthetic ADDED for a watch without a resourceVersion, replay after `R`, 410
//! `Expired` below the compaction floor, selectors, bookmarks, `timeoutSeconds`), and `POST
//! .../namespaces/{ns}/serviceaccounts/{sa}/token`. Writes come from the test through
//! [`TestApiServer::put_config_map`], [`TestApiServer::delete_config_map`] and their siblings
//! (a simplification: no `POST`/`PUT`/`DELETE` over HTTP for these kinds); each write takes the
//! next server-wide resourceVersion and is sent to the open watches.
//!
//! Field selectors: `metadata.name`, `metadata.namespace` for every kind, `type` for secrets,
//! `spec.clusterIP` and `spec.type` for services (the real servers' field label sets).
//!
//! Token requests (guesses noted): the service account need not exist (the real server answers
//! 404 for a missing one) and the bound pod is not checked (the real server checks the pod's
//! name and uid); `spec.expirationSeconds` defaults to 3600 and is validated as the real server
//! does (422 below 600 s or above 2^32 s); `status.token` is `token-<n>-<pod>` (an opaque string,
//! not a JWT); `status.expirationTimestamp` is now + the requested `expirationSeconds`, or the
//! lifetime set with [`TestApiServer::set_token_lifetime`] (whole seconds, as the real server's
//! timestamps). [`TestApiServer::set_token_endpoint`] (false) makes the endpoint answer 404 and
//! drops `serviceaccounts/token` from the `/api/v1` discovery document, as an API server
//! without TokenRequest support.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Bytes;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestStatus};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::pods::{Answer, new_uid};
use super::query::{Query, Selector};
use super::watch::{EventType, Filter, WatchBody, WatchEvent, WatchHub, WatchSpec, convert, line};
use super::{Reply, Req, State, TestApiServer, bad_request, lock, status_body};

/// The longest `timeoutSeconds` honoured (longer asks are cut to this): a year.
const MAX_WATCH_TIMEOUT: u64 = 365 * 24 * 3600;

/// The kinds served here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    ConfigMap,
    Secret,
    Service,
}

impl Kind {
    pub(crate) fn from_plural(plural: &str) -> Option<Kind> {
        match plural {
            "configmaps" => Some(Kind::ConfigMap),
            "secrets" => Some(Kind::Secret),
            "services" => Some(Kind::Service),
            _ => None,
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmaps",
            Kind::Secret => "secrets",
            Kind::Service => "services",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::Service => "Service",
        }
    }

    fn field(self) -> fn(&Value, &str) -> Option<String> {
        match self {
            Kind::ConfigMap => config_map_field,
            Kind::Secret => secret_field,
            Kind::Service => service_field,
        }
    }
}

fn str_at(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn meta_field(obj: &Value, label: &str) -> Option<String> {
    match label {
        "metadata.name" => Some(str_at(obj, "/metadata/name")),
        "metadata.namespace" => Some(str_at(obj, "/metadata/namespace")),
        _ => None,
    }
}

fn config_map_field(obj: &Value, label: &str) -> Option<String> {
    meta_field(obj, label)
}

fn secret_field(obj: &Value, label: &str) -> Option<String> {
    match label {
        "type" => Some(str_at(obj, "/type")),
        _ => meta_field(obj, label),
    }
}

fn service_field(obj: &Value, label: &str) -> Option<String> {
    match label {
        "spec.clusterIP" => Some(str_at(obj, "/spec/clusterIP")),
        "spec.type" => Some(str_at(obj, "/spec/type")),
        _ => meta_field(obj, label),
    }
}

/// The objects of one kind, by `namespace/name`, and their watches.
#[derive(Debug, Default)]
pub(crate) struct Store {
    items: BTreeMap<String, Value>,
    pub(crate) hub: WatchHub,
}

/// A token request the server received.
#[derive(Debug, Clone)]
pub struct ReceivedTokenRequest {
    /// The namespace of the path.
    pub namespace: String,
    /// The service account of the path.
    pub service_account: String,
    /// The body as received (before defaulting).
    pub request: TokenRequest,
}

/// The state of this module.
#[derive(Debug, Default)]
pub(crate) struct Objects {
    config_maps: Store,
    secrets: Store,
    services: Store,
    token_requests: Vec<ReceivedTokenRequest>,
    tokens_issued: u64,
    token_lifetime: Option<Duration>,
    token_endpoint_disabled: bool,
}

impl Objects {
    fn store(&mut self, kind: Kind) -> &mut Store {
        match kind {
            Kind::ConfigMap => &mut self.config_maps,
            Kind::Secret => &mut self.secrets,
            Kind::Service => &mut self.services,
        }
    }

    /// The watch hubs of every kind here (for compaction, bookmarks, closing).
    pub(crate) fn hubs(&mut self) -> [&mut WatchHub; 3] {
        [
            &mut self.config_maps.hub,
            &mut self.secrets.hub,
            &mut self.services.hub,
        ]
    }
}

fn not_found(kind: Kind, name: &str) -> Answer {
    (
        404,
        status_body(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", kind.plural()),
            kind.plural(),
            "",
            name,
        ),
    )
}

/// `GET .../namespaces/{ns}/{kind}/{name}`.
pub(crate) fn get(st: &mut State, kind: Kind, ns: &str, name: &str) -> Answer {
    match st.objects.store(kind).items.get(&format!("{ns}/{name}")) {
        Some(v) => (200, v.clone()),
        None => not_found(kind, name),
    }
}

/// List or watch of one kind, in `ns` or every namespace.
pub(crate) fn list_or_watch(
    st: &mut State,
    state: &Arc<Mutex<State>>,
    kind: Kind,
    ns: Option<&str>,
    raw_query: Option<&str>,
) -> Reply {
    let query = match Query::parse(raw_query) {
        Ok(q) => q,
        Err(e) => return Reply::from(bad_request(e)),
    };
    let filter = match Selector::from_query(&query, kind.field()) {
        Ok(selector) => Filter {
            namespace: ns.map(str::to_owned),
            selector,
        },
        Err(e) => return Reply::from(bad_request(e)),
    };
    match query.flag("watch") {
        Ok(true) => watch(st, state, kind, filter, &query).unwrap_or_else(Reply::from),
        Ok(false) => {
            let items: Vec<Value> = st
                .objects
                .store(kind)
                .items
                .values()
                .filter(|v| filter.matches(v))
                .cloned()
                .collect();
            Reply::Json(
                200,
                json!({
                    "kind": format!("{}List", kind.name()), "apiVersion": "v1",
                    "metadata": {"resourceVersion": st.rv.to_string()},
                    "items": items,
                }),
            )
        }
        Err(e) => Reply::from(bad_request(e)),
    }
}

fn watch(
    st: &mut State,
    state: &Arc<Mutex<State>>,
    kind: Kind,
    filter: Filter,
    query: &Query,
) -> Result<Reply, Answer> {
    let bookmarks = query.flag("allowWatchBookmarks").map_err(bad_request)?;
    let timeout = match query.get("timeoutSeconds") {
        None | Some("") => None,
        Some(t) => Some(Duration::from_secs(
            t.parse::<u64>()
                .map_err(|_| bad_request(format!("invalid timeoutSeconds {t:?}")))?
                .min(MAX_WATCH_TIMEOUT),
        )),
    };
    let start = match query.get("resourceVersion") {
        None | Some("" | "0") => None,
        Some(r) => Some(
            r.parse::<u64>()
                .map_err(|_| bad_request(format!("invalid resource version {r:?}")))?,
        ),
    };
    // `sendInitialEvents` is not supported for these kinds (guess: not needed by the agent).
    let store = st.objects.store(kind);
    let mut lines: Vec<Bytes> = Vec::new();
    match start {
        None => lines.extend(
            store
                .items
                .values()
                .filter(|v| filter.matches(v))
                .map(|v| line("ADDED", v)),
        ),
        Some(r) => {
            let floor = store.hub.floor;
            if r < floor {
                let err = line(
                    "ERROR",
                    &json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure",
                        "message": format!("too old resource version: {r} ({floor})"),
                        "reason": "Expired", "code": 410
                    }),
                );
                return Ok(Reply::Watch(WatchBody::just(
                    state.clone(),
                    vec![err],
                    filter,
                )));
            }
            lines.extend(store.hub.since(r).filter_map(|e| convert(e, &filter)));
        }
    }
    let rx = store.hub.subscribe();
    let spec = WatchSpec {
        filter,
        kind: kind.name(),
        bookmarks,
        timeout,
        bookmark_period: store.hub.bookmark_period,
    };
    Ok(Reply::Watch(WatchBody::live(
        state.clone(),
        rx,
        lines,
        spec,
    )))
}

/// Stores `object` (JSON of `kind`) as a create or an update, at the next resourceVersion.
fn put(st: &mut State, kind: Kind, mut object: Value) -> Value {
    let ns = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
        .to_owned();
    let name = str_at(&object, "/metadata/name");
    let key = format!("{ns}/{name}");
    st.rv += 1;
    let rv = st.rv;
    let store = st.objects.store(kind);
    let prev = store.items.get(&key).cloned();
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    let meta = &mut object["metadata"];
    meta["namespace"] = json!(ns);
    meta["resourceVersion"] = json!(rv.to_string());
    let keep = |field: &str| {
        prev.as_ref()
            .and_then(|p| p["metadata"].get(field))
            .cloned()
    };
    meta["uid"] = keep("uid").unwrap_or_else(|| json!(new_uid()));
    meta["creationTimestamp"] = keep("creationTimestamp")
        .unwrap_or_else(|| serde_json::to_value(Time(Timestamp::now())).unwrap_or(Value::Null));
    object["apiVersion"] = json!("v1");
    object["kind"] = json!(kind.name());
    store.items.insert(key, object.clone());
    store.hub.publish(WatchEvent {
        rv,
        kind: if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        },
        object: object.clone(),
        prev,
    });
    object
}

fn remove(st: &mut State, kind: Kind, ns: &str, name: &str) -> bool {
    let key = format!("{ns}/{name}");
    if !st.objects.store(kind).items.contains_key(&key) {
        return false;
    }
    st.rv += 1;
    let rv = st.rv;
    let store = st.objects.store(kind);
    let Some(prev) = store.items.remove(&key) else {
        return false;
    };
    let mut last = prev.clone();
    last["metadata"]["resourceVersion"] = json!(rv.to_string());
    store.hub.publish(WatchEvent {
        rv,
        kind: EventType::Deleted,
        object: last,
        prev: Some(prev),
    });
    true
}

fn typed<T: serde::de::DeserializeOwned + Default>(v: Value) -> T {
    serde_json::from_value(v).unwrap_or_default()
}

/// `POST .../namespaces/{ns}/serviceaccounts/{sa}/token`.
pub(crate) fn create_token(st: &mut State, ns: &str, sa: &str, body: Option<&Value>) -> Answer {
    if st.objects.token_endpoint_disabled {
        return (
            404,
            status_body(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
                "",
                "",
                "",
            ),
        );
    }
    let Some(b) = body else {
        return bad_request("missing body".into());
    };
    if b.get("apiVersion").and_then(Value::as_str) != Some("authentication.k8s.io/v1")
        || b.get("kind").and_then(Value::as_str) != Some("TokenRequest")
    {
        return bad_request(
            "expected apiVersion authentication.k8s.io/v1, kind TokenRequest".into(),
        );
    }
    let mut tr: TokenRequest = match serde_json::from_value(b.clone()) {
        Ok(t) => t,
        Err(e) => return bad_request(format!("decoding TokenRequest: {e}")),
    };
    st.objects.token_requests.push(ReceivedTokenRequest {
        namespace: ns.to_owned(),
        service_account: sa.to_owned(),
        request: tr.clone(),
    });
    let seconds = *tr.spec.expiration_seconds.get_or_insert(3600);
    let invalid = |why: &str| {
        (
            422,
            status_body(
                422,
                "Invalid",
                format!(
                    "TokenRequest.authentication.k8s.io \"{sa}\" is invalid: spec.expirationSeconds: Invalid value: {seconds}: {why}"
                ),
                "TokenRequest",
                "authentication.k8s.io",
                sa,
            ),
        )
    };
    if seconds < 600 {
        return invalid("may not specify a duration less than 10 minutes");
    }
    if seconds > 1 << 32 {
        return invalid("may not specify a duration larger than 2^32 seconds");
    }
    st.objects.tokens_issued += 1;
    let pod = tr
        .spec
        .bound_object_ref
        .as_ref()
        .and_then(|r| r.name.clone())
        .unwrap_or_default();
    let lifetime = st
        .objects
        .token_lifetime
        .map_or(seconds, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH);
    let expiration = now
        .checked_add(SignedDuration::from_secs(lifetime))
        .unwrap_or(Timestamp::MAX);
    tr.metadata.name = Some(sa.to_owned());
    tr.metadata.namespace = Some(ns.to_owned());
    tr.metadata.creation_timestamp = Some(Time(now));
    tr.status = Some(TokenRequestStatus {
        token: format!("token-{}-{pod}", st.objects.tokens_issued),
        expiration_timestamp: Time(expiration),
    });
    (201, serde_json::to_value(&tr).unwrap_or(Value::Null))
}

/// `GET /api/v1`: the core group's resource list (a subset: what this server serves).
pub(crate) fn discovery(st: &State) -> Answer {
    let resource = |name: &str, kind: &str, namespaced: bool, verbs: &[&str]| json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs});
    let mut resources = vec![
        resource("configmaps", "ConfigMap", true, &["get", "list", "watch"]),
        resource("events", "Event", true, &["create", "get", "list", "patch"]),
        resource("nodes", "Node", false, &["create", "get"]),
        resource("nodes/status", "Node", false, &["patch"]),
        resource(
            "pods",
            "Pod",
            true,
            &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
        ),
        resource("pods/status", "Pod", true, &["get", "patch", "update"]),
        resource("secrets", "Secret", true, &["get", "list", "watch"]),
        resource("services", "Service", true, &["get", "list", "watch"]),
    ];
    if !st.objects.token_endpoint_disabled {
        let mut token = resource("serviceaccounts/token", "TokenRequest", true, &["create"]);
        token["group"] = json!("authentication.k8s.io");
        token["version"] = json!("v1");
        resources.push(token);
    }
    (
        200,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": resources}),
    )
}

/// Routes `/api/v1/...` paths of the kinds served here; `None` for other paths.
pub(crate) fn route(
    st: &mut State,
    state: &Arc<Mutex<State>>,
    req: &Req<'_>,
    parts: &[&str],
) -> Option<Reply> {
    let m = req.method;
    if let ["namespaces", ns, "serviceaccounts", sa, "token"] = parts {
        if req.body_invalid {
            return Some(Reply::from(bad_request(
                "the request body is not valid JSON".into(),
            )));
        }
        return Some(Reply::from(match m {
            "POST" => create_token(st, ns, sa, req.body),
            _ => super::method_not_allowed(m, req.path),
        }));
    }
    let (kind, ns, name) = match parts {
        [plural] => (Kind::from_plural(plural)?, None, None),
        ["namespaces", ns, plural] => (Kind::from_plural(plural)?, Some(*ns), None),
        ["namespaces", ns, plural, name] => (Kind::from_plural(plural)?, Some(*ns), Some(*name)),
        _ => return None,
    };
    Some(match (m, name) {
        ("GET", None) => list_or_watch(st, state, kind, ns, req.query),
        ("GET", Some(name)) => Reply::from(get(st, kind, ns.unwrap_or_default(), name)),
        _ => Reply::from(super::method_not_allowed(m, req.path)),
    })
}

impl TestApiServer {
    /// Creates or replaces a configMap (namespace `default` if unset), as another writer
    /// would: the next resourceVersion, `uid` and `creationTimestamp` kept from the previous
    /// version, an ADDED or MODIFIED watch event. Returns the stored object. (Not checked:
    /// the real server refuses to change the data of an `immutable` one.)
    pub fn put_config_map(&self, config_map: ConfigMap) -> ConfigMap {
        let v = serde_json::to_value(&config_map).unwrap_or(Value::Null);
        typed(put(&mut lock(&self.state), Kind::ConfigMap, v))
    }

    /// Creates or replaces a secret, as [`TestApiServer::put_config_map`].
    pub fn put_secret(&self, secret: Secret) -> Secret {
        let v = serde_json::to_value(&secret).unwrap_or(Value::Null);
        typed(put(&mut lock(&self.state), Kind::Secret, v))
    }

    /// Creates or replaces a service, as [`TestApiServer::put_config_map`].
    pub fn put_service(&self, service: Service) -> Service {
        let v = serde_json::to_value(&service).unwrap_or(Value::Null);
        typed(put(&mut lock(&self.state), Kind::Service, v))
    }

    /// Deletes a configMap (a DELETED watch event at the next resourceVersion); `false` when
    /// there is none.
    pub fn delete_config_map(&self, namespace: &str, name: &str) -> bool {
        remove(&mut lock(&self.state), Kind::ConfigMap, namespace, name)
    }

    /// Deletes a secret, as [`TestApiServer::delete_config_map`].
    pub fn delete_secret(&self, namespace: &str, name: &str) -> bool {
        remove(&mut lock(&self.state), Kind::Secret, namespace, name)
    }

    /// Deletes a service, as [`TestApiServer::delete_config_map`].
    pub fn delete_service(&self, namespace: &str, name: &str) -> bool {
        remove(&mut lock(&self.state), Kind::Service, namespace, name)
    }

    /// The token requests received so far (`POST .../serviceaccounts/{sa}/token`), oldest first.
    pub fn token_requests(&self) -> Vec<ReceivedTokenRequest> {
        lock(&self.state).objects.token_requests.clone()
    }

    /// The lifetime of the tokens issued from now on (`None`: the requested
    /// `expirationSeconds`, the default). A lifetime shorter than the request's makes a token
    /// that an agent must refresh at once.
    pub fn set_token_lifetime(&self, lifetime: Option<Duration>) {
        lock(&self.state).objects.token_lifetime = lifetime;
    }

    /// Serves (`true`, the default) or hides (`false`: 404 and not in discovery) the
    /// `serviceaccounts/token` subresource.
    pub fn set_token_endpoint(&self, enabled: bool) {
        lock(&self.state).objects.token_endpoint_disabled = !enabled;
    }
}

#[cfg(test)]
mod tests {
    use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
    use kube::core::Resource;

    use super::*;

    /// The next event of a watch stream (at most 5 s).
    async fn next_event<K, S>(stream: &mut S) -> WatchEvent<K>
    where
        K: Resource + Clone,
        S: tokio_stream::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin,
    {
        let next = tokio_stream::StreamExt::next(stream);
        tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    }

    fn client(server: &TestApiServer) -> kube::Client {
        kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap()
    }

    fn cm(name: &str, value: &str) -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns"}, "data": {"k": value}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn config_maps_get_list_watch_and_410() {
        let server = TestApiServer::start().await.unwrap();
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(client(&server), "ns");
        let err = api.get("a").await.unwrap_err();
        assert!(
            matches!(err, kube::Error::Api(s) if s.code == 404 && s.message == "configmaps \"a\" not found")
        );
        let a = server.put_config_map(cm("a", "1"));
        server.put_config_map(cm("b", "1"));
        assert_eq!(api.get("a").await.unwrap(), a);
        assert!(a.metadata.uid.is_some());
        let only_a = ListParams::default().fields("metadata.name=a");
        let list = api.list(&only_a).await.unwrap();
        assert_eq!(list.items, vec![a.clone()]);
        let rv = list.metadata.resource_version.unwrap();
        let bad = api.list(&ListParams::default().fields("spec.x=1")).await;
        assert!(bad.is_err());

        let wp = WatchParams::default().fields("metadata.name=a");
        let mut stream = Box::pin(api.watch(&wp, &rv).await.unwrap());
        server.put_config_map(cm("b", "2"));
        let a2 = server.put_config_map(cm("a", "2"));
        assert_eq!(a2.metadata.uid, a.metadata.uid);
        assert!(matches!(next_event(&mut stream).await, WatchEvent::Modified(o) if o == a2));
        assert!(server.delete_config_map("ns", "a"));
        assert!(!server.delete_config_map("ns", "a"));
        assert!(matches!(
            next_event(&mut stream).await,
            WatchEvent::Deleted(_)
        ));

        server.compact();
        let mut old = Box::pin(api.watch(&wp, &rv).await.unwrap());
        assert!(matches!(next_event(&mut old).await, WatchEvent::Error(s) if s.code == 410));
        server.break_watches();
        let end = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_stream::StreamExt::next(&mut stream),
        )
        .await
        .unwrap();
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn token_requests() {
        let server = TestApiServer::start().await.unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
            kube::Api::namespaced(client(&server), "ns");
        let mut tr: TokenRequest = serde_json::from_value(json!({
            "spec": {"audiences": [], "expirationSeconds": 600,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"}}
        }))
        .unwrap();
        let pp = PostParams::default();
        let a = api.create_token_request("sa", &pp, &tr).await.unwrap();
        let b = api.create_token_request("sa", &pp, &tr).await.unwrap();
        let (sa, sb) = (a.status.unwrap(), b.status.unwrap());
        assert_ne!(sa.token, sb.token);
        assert!(sa.token.ends_with("-p"));
        let left = sa.expiration_timestamp.0.duration_until(Timestamp::now());
        assert!(left.as_secs() <= -598, "{left:?}");
        server.set_token_lifetime(Some(Duration::from_secs(5)));
        let c = api.create_token_request("sa", &pp, &tr).await.unwrap();
        let left = c
            .status
            .unwrap()
            .expiration_timestamp
            .0
            .duration_until(Timestamp::now());
        assert!(left.as_secs() >= -5, "{left:?}");

        tr.spec.expiration_seconds = Some(599);
        let err = api.create_token_request("sa", &pp, &tr).await.unwrap_err();
        assert!(matches!(err, kube::Error::Api(s) if s.code == 422
            && s.message.ends_with("Invalid value: 599: may not specify a duration less than 10 minutes")));
        let received = server.token_requests();
        assert_eq!(received.len(), 4);
        assert_eq!(received[0].service_account, "sa");

        let discovery = client(&server).list_core_api_resources("v1").await.unwrap();
        assert!(
            discovery
                .resources
                .iter()
                .any(|r| r.name == "serviceaccounts/token")
        );
        server.set_token_endpoint(false);
        let err = api.create_token_request("sa", &pp, &tr).await.unwrap_err();
        assert!(matches!(err, kube::Error::Api(s) if s.code == 404));
        let discovery = client(&server).list_core_api_resources("v1").await.unwrap();
        assert!(
            !discovery
                .resources
                .iter()
                .any(|r| r.name == "serviceaccounts/token")
        );
    }
}
