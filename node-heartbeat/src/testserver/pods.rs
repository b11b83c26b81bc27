//! core/v1 Pods: create, get, update, list and watch with selectors, the status subresource
//! (strategic and JSON merge patches, UID precondition) and graceful deletion.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Bytes;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::query::{Query, Selector, pod_field};
use super::watch::{
    EventType, Filter, WatchBody, WatchEvent, WatchSpec, bookmark_line, convert, line,
};
use super::{Reply, State, bad_request, status_body};
use crate::merge::{json_merge, pod_list_strategy, strategic_merge};

/// The longest `timeoutSeconds` honoured (longer asks are cut to this): a year.
const MAX_WATCH_TIMEOUT: u64 = 365 * 24 * 3600;

pub(crate) type Answer = (u16, Value);

fn key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

fn to_json(pod: &Pod) -> Value {
    serde_json::to_value(pod).unwrap_or(Value::Null)
}

pub(crate) fn not_found(name: &str) -> Answer {
    (
        404,
        status_body(
            404,
            "NotFound",
            format!("pods \"{name}\" not found"),
            "pods",
            "",
            name,
        ),
    )
}

fn conflict(name: &str, why: &str) -> Answer {
    (
        409,
        status_body(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on pods \"{name}\": {why}"),
            "pods",
            "",
            name,
        ),
    )
}

const MODIFIED_MSG: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

fn uid_precondition_failed(name: &str, want: &str, have: &str) -> Answer {
    (
        409,
        status_body(
            409,
            "Conflict",
            format!("Precondition failed: UID in precondition: {want}, UID in object meta: {have}"),
            "pods",
            "",
            name,
        ),
    )
}

fn invalid(name: &str, msg: String) -> Answer {
    (422, status_body(422, "Invalid", msg, "Pod", "", name))
}

/// A random RFC 4122 version 4 UUID, the form the API server gives `metadata.uid`.
pub(crate) fn new_uid() -> String {
    let a: u64 = rand::random();
    let b: u64 = rand::random();
    let (a, b) = ((a & !0xf000) | 0x4000, (b & !(0xc << 60)) | (0x8 << 60));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// `generateName` plus five random characters, as the API server's name generator.
pub(crate) fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut s = prefix.to_owned();
    for _ in 0..5 {
        let i = usize::from(rand::random::<u8>()) % ALPHABET.len();
        s.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'x')));
    }
    s
}

/// The API server's defaults for the pod-level spec fields an agent reads
/// (`pkg/apis/core/v1/defaults.go` `SetDefaults_PodSpec`).
fn default_spec(pod: &mut Pod) {
    if let Some(spec) = &mut pod.spec {
        spec.termination_grace_period_seconds.get_or_insert(30);
        spec.restart_policy
            .get_or_insert_with(|| "Always".to_owned());
        spec.dns_policy
            .get_or_insert_with(|| "ClusterFirst".to_owned());
        spec.scheduler_name
            .get_or_insert_with(|| "default-scheduler".to_owned());
    }
}

fn decode_pod(body: Option<&Value>) -> Result<Pod, Answer> {
    let Some(b) = body else {
        return Err(bad_request("missing body".into()));
    };
    if let Some(kind) = b.get("kind").and_then(Value::as_str)
        && kind != "Pod"
    {
        return Err(bad_request(format!("expected kind Pod, got {kind}")));
    }
    if let Some(av) = b.get("apiVersion").and_then(Value::as_str)
        && av != "v1"
    {
        return Err(bad_request(format!("expected apiVersion v1, got {av}")));
    }
    serde_json::from_value(b.clone()).map_err(|e| bad_request(format!("decoding Pod: {e}")))
}

fn check_namespace(pod: &Pod, ns: &str) -> Result<(), Answer> {
    match pod.metadata.namespace.as_deref() {
        Some(n) if !n.is_empty() && n != ns => Err(bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        )),
        _ => Ok(()),
    }
}

fn store(st: &mut State, pod: Pod, kind: EventType, prev: Option<&Pod>) -> Pod {
    let mut pod = pod;
    st.rv += 1;
    let rv = st.rv;
    pod.metadata.resource_version = Some(rv.to_string());
    let object = to_json(&pod);
    let k = key(
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default(),
    );
    st.pods.insert(k, pod.clone());
    st.pod_watch.publish(WatchEvent {
        rv,
        kind,
        object,
        prev: prev.map(to_json),
    });
    pod
}

/// `POST /api/v1/namespaces/{ns}/pods`.
pub(crate) fn create(st: &mut State, ns: &str, body: Option<&Value>) -> Answer {
    let mut pod = match decode_pod(body) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if let Err(e) = check_namespace(&pod, ns) {
        return e;
    }
    let name = match (
        pod.metadata.name.as_deref(),
        pod.metadata.generate_name.as_deref(),
    ) {
        (Some(n), _) if !n.is_empty() => n.to_owned(),
        (_, Some(g)) if !g.is_empty() => generate_name(g),
        _ => {
            return invalid(
                "",
                "Pod \"\" is invalid: metadata.name: Required value: name or generateName is required"
                    .into(),
            );
        }
    };
    if st.pods.contains_key(&key(ns, &name)) {
        return (
            409,
            status_body(
                409,
                "AlreadyExists",
                format!("pods \"{name}\" already exists"),
                "pods",
                "",
                &name,
            ),
        );
    }
    pod.metadata.name = Some(name);
    pod.metadata.namespace = Some(ns.to_owned());
    if pod.metadata.uid.as_deref().is_none_or(str::is_empty) {
        pod.metadata.uid = Some(new_uid());
    }
    pod.metadata.creation_timestamp = Some(Time(Timestamp::now()));
    pod.metadata.generation = Some(1);
    pod.metadata.deletion_timestamp = None;
    pod.metadata.deletion_grace_period_seconds = None;
    default_spec(&mut pod);
    let status = pod.status.get_or_insert_with(Default::default);
    status.phase.get_or_insert_with(|| "Pending".to_owned());
    let pod = store(st, pod, EventType::Added, None);
    (201, to_json(&pod))
}

/// `GET /api/v1/namespaces/{ns}/pods/{name}`.
pub(crate) fn get(st: &State, ns: &str, name: &str) -> Answer {
    match st.pods.get(&key(ns, name)) {
        Some(p) => (200, to_json(p)),
        None => not_found(name),
    }
}

/// `PUT /api/v1/namespaces/{ns}/pods/{name}` (`status: false`: the status is kept, as the pod
/// update strategy does) and `PUT .../status` (`status: true`: only the status is taken).
pub(crate) fn replace(
    st: &mut State,
    ns: &str,
    name: &str,
    body: Option<&Value>,
    status: bool,
) -> Answer {
    let new = match decode_pod(body) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if let Err(e) = check_namespace(&new, ns) {
        return e;
    }
    if new.metadata.name.as_deref().is_some_and(|n| n != name) {
        return bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            new.metadata.name.as_deref().unwrap_or_default()
        ));
    }
    let Some(current) = st.pods.get(&key(ns, name)).cloned() else {
        return not_found(name);
    };
    if let Some(uid) = new.metadata.uid.as_deref()
        && !uid.is_empty()
        && Some(uid) != current.metadata.uid.as_deref()
    {
        return uid_precondition_failed(name, uid, current.metadata.uid.as_deref().unwrap_or(""));
    }
    if let Some(rv) = new.metadata.resource_version.as_deref()
        && !rv.is_empty()
        && Some(rv) != current.metadata.resource_version.as_deref()
    {
        return conflict(name, MODIFIED_MSG);
    }
    let mut out = if status {
        let mut p = current.clone();
        p.status = new.status;
        p
    } else {
        let mut p = new;
        p.status.clone_from(&current.status);
        keep_system_fields(&mut p, &current);
        default_spec(&mut p);
        if p.spec != current.spec {
            p.metadata.generation = Some(current.metadata.generation.unwrap_or(0) + 1);
        }
        p
    };
    out.metadata
        .resource_version
        .clone_from(&current.metadata.resource_version);
    if out == current {
        return (200, to_json(&current));
    }
    let out = store(st, out, EventType::Modified, Some(&current));
    (200, to_json(&out))
}

/// The fields an update cannot change.
fn keep_system_fields(p: &mut Pod, current: &Pod) {
    let m = &mut p.metadata;
    let c = &current.metadata;
    m.name.clone_from(&c.name);
    m.namespace.clone_from(&c.namespace);
    m.uid.clone_from(&c.uid);
    m.creation_timestamp.clone_from(&c.creation_timestamp);
    m.deletion_timestamp.clone_from(&c.deletion_timestamp);
    m.deletion_grace_period_seconds
        .clone_from(&c.deletion_grace_period_seconds);
    m.generation = c.generation;
}

fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

fn unsupported_media(content_type: &str) -> Answer {
    (
        415,
        status_body(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media types include: application/strategic-merge-patch+json, application/merge-patch+json (this test server)"
            ),
            "",
            "",
            "",
        ),
    )
}

/// `PATCH .../pods/{name}/status` (`status: true`) and `PATCH .../pods/{name}` (`status:
/// false`: metadata and spec; a status in the patch is ignored, as the pod update strategy
/// does).
pub(crate) fn patch(
    st: &mut State,
    ns: &str,
    name: &str,
    content_type: &str,
    body: Option<&Value>,
    status: bool,
) -> Answer {
    let strategic = match media_type(content_type) {
        "application/strategic-merge-patch+json" => true,
        "application/merge-patch+json" => false,
        other => return unsupported_media(other),
    };
    let Some(p @ Value::Object(_)) = body else {
        return bad_request("the patch must be a JSON object".into());
    };
    let Some(current) = st.pods.get(&key(ns, name)).cloned() else {
        return not_found(name);
    };
    if let Some(uid) = p.pointer("/metadata/uid") {
        let want = uid.as_str().unwrap_or_default();
        if Some(want) != current.metadata.uid.as_deref() {
            return uid_precondition_failed(
                name,
                want,
                current.metadata.uid.as_deref().unwrap_or(""),
            );
        }
    }
    if let Some(rv) = p
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        && Some(rv) != current.metadata.resource_version.as_deref()
    {
        return conflict(name, MODIFIED_MSG);
    }
    let mut doc = to_json(&current);
    let result = if status {
        match p.get("status") {
            None => Ok(()),
            Some(sp) if strategic => {
                strategic_merge(&mut doc["status"], sp, "status", &pod_list_strategy)
            }
            Some(sp) => {
                json_merge(&mut doc["status"], sp);
                Ok(())
            }
        }
    } else {
        let mut without_status = p.clone();
        if let Value::Object(m) = &mut without_status {
            m.remove("status");
        }
        if strategic {
            strategic_merge(&mut doc, &without_status, "", &pod_list_strategy)
        } else {
            json_merge(&mut doc, &without_status);
            Ok(())
        }
    };
    if let Err(msg) = result {
        return bad_request(msg);
    }
    let mut out: Pod = match serde_json::from_value(doc) {
        Ok(p) => p,
        Err(e) => return invalid(name, format!("Pod \"{name}\" is invalid: {e}")),
    };
    if status {
        let s = out.status.take();
        out = Pod {
            status: s,
            ..current.clone()
        };
    } else {
        out.status.clone_from(&current.status);
        keep_system_fields(&mut out, &current);
        if out.spec != current.spec {
            out.metadata.generation = Some(current.metadata.generation.unwrap_or(0) + 1);
        }
        out.metadata
            .resource_version
            .clone_from(&current.metadata.resource_version);
    }
    if out == current {
        return (200, to_json(&current));
    }
    let out = store(st, out, EventType::Modified, Some(&current));
    (200, to_json(&out))
}

fn add_secs(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs))
        .unwrap_or(if secs < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
}

fn delete_conflict(name: &str, why: String) -> Answer {
    (
        409,
        status_body(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on Pod \"{name}\": {why}"),
            "Pod",
            "",
            name,
        ),
    )
}

/// Removes the pod now: a DELETED event with its last state at a new resourceVersion; the
/// answer is the last stored state.
fn remove(st: &mut State, k: &str) -> Option<Pod> {
    let last = st.pods.remove(k)?;
    st.rv += 1;
    let rv = st.rv;
    let mut gone = last.clone();
    gone.metadata.resource_version = Some(rv.to_string());
    let prev = to_json(&last);
    st.pod_watch.publish(WatchEvent {
        rv,
        kind: EventType::Deleted,
        object: to_json(&gone),
        prev: Some(prev),
    });
    Some(last)
}

/// `DELETE /api/v1/namespaces/{ns}/pods/{name}`: the generic registry's `rest.BeforeDelete`
/// with the pod strategy's `CheckGracefulDelete`.
pub(crate) fn delete(st: &mut State, ns: &str, name: &str, opts: &DeleteOptions) -> Answer {
    let k = key(ns, name);
    let Some(current) = st.pods.get(&k).cloned() else {
        return not_found(name);
    };
    if let Some(pre) = &opts.preconditions {
        let have_uid = current.metadata.uid.as_deref().unwrap_or("");
        if let Some(uid) = pre.uid.as_deref()
            && uid != have_uid
        {
            return delete_conflict(
                name,
                format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({have_uid}). The object might have been deleted and then recreated"
                ),
            );
        }
        let have_rv = current.metadata.resource_version.as_deref().unwrap_or("");
        if let Some(rv) = pre.resource_version.as_deref()
            && rv != have_rv
        {
            return delete_conflict(
                name,
                format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({have_rv}). The object might have been modified"
                ),
            );
        }
    }
    // Negative values mean 1 s on the delete path.
    let requested = opts.grace_period_seconds.map(|g| if g < 0 { 1 } else { g });
    let now = Timestamp::now();
    let mut pod = current.clone();
    let period = if let Some(ts) = current.metadata.deletion_timestamp.as_ref() {
        // Already being deleted: the grace period may only shorten.
        let old = current.metadata.deletion_grace_period_seconds.unwrap_or(0);
        if old == 0 {
            return match remove(st, &k) {
                Some(p) => (200, to_json(&p)),
                None => not_found(name),
            };
        }
        let Some(mut period) = requested.filter(|p| *p < old) else {
            return (200, to_json(&current));
        };
        let mut new_ts = add_secs(add_secs(ts.0, -old), period);
        if new_ts < now {
            new_ts = now;
            if period != 0 {
                period = 1;
            }
        }
        pod.metadata.deletion_timestamp = Some(Time(new_ts));
        pod.metadata.deletion_grace_period_seconds = Some(period);
        period
    } else {
        let spec = current.spec.as_ref();
        let mut period = requested
            .or_else(|| spec.and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30);
        if spec
            .and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty)
        {
            period = 0;
        }
        if matches!(
            current.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        ) {
            period = 0;
        }
        if period < 0 {
            period = 1;
        }
        pod.metadata.deletion_timestamp = Some(Time(add_secs(now, period)));
        pod.metadata.deletion_grace_period_seconds = Some(period);
        if let Some(g) = pod.metadata.generation.filter(|g| *g > 0) {
            pod.metadata.generation = Some(g + 1);
        }
        period
    };
    let updated = store(st, pod, EventType::Modified, Some(&current));
    if period > 0 {
        return (200, to_json(&updated));
    }
    match remove(st, &k) {
        Some(p) => (200, to_json(&p)),
        None => not_found(name),
    }
}

/// The delete options of a request: the JSON body, else `gracePeriodSeconds` in the query.
pub(crate) fn delete_options(body: Option<&Value>, query: &Query) -> Result<DeleteOptions, Answer> {
    let mut opts: DeleteOptions = match body {
        Some(b) => serde_json::from_value(b.clone())
            .map_err(|e| bad_request(format!("decoding DeleteOptions: {e}")))?,
        None => DeleteOptions::default(),
    };
    if opts.grace_period_seconds.is_none()
        && let Some(g) = query.get("gracePeriodSeconds")
    {
        opts.grace_period_seconds = Some(
            g.parse()
                .map_err(|_| bad_request(format!("invalid gracePeriodSeconds {g:?}")))?,
        );
    }
    Ok(opts)
}

fn filter_of(ns: Option<&str>, query: &Query) -> Result<Filter, Answer> {
    let selector = Selector::from_query(query, pod_field).map_err(bad_request)?;
    Ok(Filter {
        namespace: ns.map(str::to_owned),
        selector,
    })
}

/// `GET /api/v1/pods`, `GET /api/v1/namespaces/{ns}/pods`, with `watch=true` a watch.
pub(crate) fn list_or_watch(
    st: &mut State,
    state: &Arc<Mutex<State>>,
    ns: Option<&str>,
    raw_query: Option<&str>,
) -> Reply {
    let query = match Query::parse(raw_query) {
        Ok(q) => q,
        Err(e) => return Reply::from(bad_request(e)),
    };
    let filter = match filter_of(ns, &query) {
        Ok(f) => f,
        Err(e) => return Reply::from(e),
    };
    match query.flag("watch") {
        Ok(true) => watch(st, state, filter, &query).unwrap_or_else(Reply::from),
        Ok(false) => {
            let items: Vec<Value> = st
                .pods
                .values()
                .map(to_json)
                .filter(|p| filter.matches(p))
                .collect();
            Reply::Json(
                200,
                json!({
                    "kind": "PodList", "apiVersion": "v1",
                    "metadata": {"resourceVersion": st.rv.to_string()},
                    "items": items,
                }),
            )
        }
        Err(e) => Reply::from(bad_request(e)),
    }
}

fn too_old(rv: u64, floor: u64) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("too old resource version: {rv} ({floor})"),
        "reason": "Expired", "code": 410
    })
}

fn watch(
    st: &mut State,
    state: &Arc<Mutex<State>>,
    filter: Filter,
    query: &Query,
) -> Result<Reply, Answer> {
    let bookmarks = query.flag("allowWatchBookmarks").map_err(bad_request)?;
    let send_initial = match query.get("sendInitialEvents") {
        None | Some("") => None,
        Some(_) => Some(query.flag("sendInitialEvents").map_err(bad_request)?),
    };
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
    let initial = send_initial.unwrap_or(start.is_none());
    let mut lines: Vec<Bytes> = Vec::new();
    if initial {
        for p in st.pods.values() {
            let v = to_json(p);
            if filter.matches(&v) {
                lines.push(line("ADDED", &v));
            }
        }
        if send_initial == Some(true) && bookmarks {
            lines.push(bookmark_line("Pod", st.rv, true));
        }
    } else if let Some(r) = start {
        let floor = st.pod_watch.floor;
        if r < floor {
            let err = line("ERROR", &too_old(r, floor));
            return Ok(Reply::Watch(WatchBody::just(
                state.clone(),
                vec![err],
                filter,
            )));
        }
        lines.extend(st.pod_watch.since(r).filter_map(|e| convert(e, &filter)));
    }
    let rx = st.pod_watch.subscribe();
    let spec = WatchSpec {
        filter,
        kind: "Pod",
        bookmarks,
        timeout,
        bookmark_period: st.pod_watch.bookmark_period,
    };
    Ok(Reply::Watch(WatchBody::live(
        state.clone(),
        rx,
        lines,
        spec,
    )))
}

/// The test-side update: `f` changes the stored pod as another writer would (name, namespace
/// and uid are kept); a change bumps the resourceVersion and is sent to watchers as MODIFIED.
pub(crate) fn update_with(
    st: &mut State,
    ns: &str,
    name: &str,
    f: impl FnOnce(&mut Pod),
) -> Option<Pod> {
    let current = st.pods.get(&key(ns, name)).cloned()?;
    let mut p = current.clone();
    f(&mut p);
    p.metadata.name.clone_from(&current.metadata.name);
    p.metadata.namespace.clone_from(&current.metadata.namespace);
    p.metadata.uid.clone_from(&current.metadata.uid);
    p.metadata
        .resource_version
        .clone_from(&current.metadata.resource_version);
    if p == current {
        return Some(current);
    }
    Some(store(st, p, EventType::Modified, Some(&current)))
}
