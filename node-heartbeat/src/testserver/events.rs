//! core/v1 Events: create, get, list, and the patch the kubelet's recorder sends for a repeated
//! event (`count`, `lastTimestamp`, `message`).

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::pods::{Answer, generate_name, new_uid};
use super::query::{Query, Selector, event_field};
use super::{State, bad_request, status_body};
use crate::merge::{ListStrategy, json_merge, strategic_merge};

fn key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

fn to_json(e: &Event) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

fn not_found(name: &str) -> Answer {
    (
        404,
        status_body(
            404,
            "NotFound",
            format!("events \"{name}\" not found"),
            "events",
            "",
            name,
        ),
    )
}

/// `POST /api/v1/namespaces/{ns}/events`.
pub(crate) fn create(st: &mut State, ns: &str, body: Option<&Value>) -> Answer {
    let Some(b) = body else {
        return bad_request("missing body".into());
    };
    let mut ev: Event = match serde_json::from_value(b.clone()) {
        Ok(e) => e,
        Err(e) => return bad_request(format!("decoding Event: {e}")),
    };
    if ev
        .metadata
        .namespace
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != ns)
    {
        return bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        );
    }
    let name = match (
        ev.metadata.name.as_deref(),
        ev.metadata.generate_name.as_deref(),
    ) {
        (Some(n), _) if !n.is_empty() => n.to_owned(),
        (_, Some(g)) if !g.is_empty() => generate_name(g),
        _ => {
            return (
                422,
                status_body(
                    422,
                    "Invalid",
                    "Event \"\" is invalid: metadata.name: Required value: name or generateName is required".into(),
                    "Event",
                    "",
                    "",
                ),
            );
        }
    };
    if st.events.contains_key(&key(ns, &name)) {
        return (
            409,
            status_body(
                409,
                "AlreadyExists",
                format!("events \"{name}\" already exists"),
                "events",
                "",
                &name,
            ),
        );
    }
    ev.metadata.name = Some(name.clone());
    ev.metadata.namespace = Some(ns.to_owned());
    ev.metadata.uid = Some(new_uid());
    ev.metadata.creation_timestamp = Some(Time(Timestamp::now()));
    st.rv += 1;
    ev.metadata.resource_version = Some(st.rv.to_string());
    st.events.insert(key(ns, &name), ev.clone());
    (201, to_json(&ev))
}

/// `GET /api/v1/namespaces/{ns}/events/{name}`.
pub(crate) fn get(st: &State, ns: &str, name: &str) -> Answer {
    match st.events.get(&key(ns, name)) {
        Some(e) => (200, to_json(e)),
        None => not_found(name),
    }
}

/// `PATCH /api/v1/namespaces/{ns}/events/{name}` (strategic or JSON merge patch).
pub(crate) fn patch(
    st: &mut State,
    ns: &str,
    name: &str,
    content_type: &str,
    body: Option<&Value>,
) -> Answer {
    let strategic = match content_type.split(';').next().unwrap_or("").trim() {
        "application/strategic-merge-patch+json" => true,
        "application/merge-patch+json" => false,
        other => {
            return (
                415,
                status_body(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format ({other})"),
                    "",
                    "",
                    "",
                ),
            );
        }
    };
    let Some(p @ Value::Object(_)) = body else {
        return bad_request("the patch must be a JSON object".into());
    };
    let Some(current) = st.events.get(&key(ns, name)).cloned() else {
        return not_found(name);
    };
    let mut doc = to_json(&current);
    if strategic {
        // Event has no merge-keyed lists the recorder patches: every list is replaced.
        if let Err(msg) = strategic_merge(&mut doc, p, "", &|_| ListStrategy::Replace) {
            return bad_request(msg);
        }
    } else {
        json_merge(&mut doc, p);
    }
    let mut ev: Event = match serde_json::from_value(doc) {
        Ok(e) => e,
        Err(e) => {
            return (
                422,
                status_body(
                    422,
                    "Invalid",
                    format!("Event \"{name}\" is invalid: {e}"),
                    "Event",
                    "",
                    name,
                ),
            );
        }
    };
    ev.metadata.name.clone_from(&current.metadata.name);
    ev.metadata
        .namespace
        .clone_from(&current.metadata.namespace);
    ev.metadata.uid.clone_from(&current.metadata.uid);
    ev.metadata
        .creation_timestamp
        .clone_from(&current.metadata.creation_timestamp);
    st.rv += 1;
    ev.metadata.resource_version = Some(st.rv.to_string());
    st.events.insert(key(ns, name), ev.clone());
    (200, to_json(&ev))
}

/// `GET /api/v1/events`, `GET /api/v1/namespaces/{ns}/events` (no watch).
pub(crate) fn list(st: &State, ns: Option<&str>, raw_query: Option<&str>) -> Answer {
    let selector = match Query::parse(raw_query).and_then(|q| Selector::from_query(&q, event_field))
    {
        Ok(s) => s,
        Err(e) => return bad_request(e),
    };
    let items: Vec<Value> = st
        .events
        .values()
        .filter(|e| ns.is_none_or(|ns| e.metadata.namespace.as_deref() == Some(ns)))
        .map(to_json)
        .filter(|e| selector.matches(e))
        .collect();
    (
        200,
        json!({
            "kind": "EventList", "apiVersion": "v1",
            "metadata": {"resourceVersion": st.rv.to_string()},
            "items": items,
        }),
    )
}
