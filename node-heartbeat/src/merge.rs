//! Strategic merge patches the way the API server applies them, for the fields the kubelet and
//! the test server send: maps merged (`null` deletes a key), scalars and atomic lists replaced,
//! lists with a `patchMergeKey` merged element by element (ordered by `$setElementOrder/<list>`,
//! `{"$patch": "delete", <key>: ...}` entries removing elements, `{"$patch": "replace"}`
//! replacing the list), lists of scalars with `patchStrategy: merge` merged as sets
//! (`$deleteFromPrimitiveList/<list>` removes), `$patch: replace|delete` on maps and
//! `$retainKeys`. Which list is which comes from a per-type table (the Go struct tags of
//! `k8s.io/api`), e.g. [`pod_list_strategy`].
//!
//! [`apply_node_status_patch`] is the node-status patch the heartbeat sends: `conditions`
//! merged by `type`, every other list (`addresses`, `images`, ...) replaced.

use k8s_openapi::api::core::v1::Node;
use serde_json::{Map, Value};

/// RFC 7386 JSON merge patch.
pub fn json_merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        json_merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// How a strategic merge patch treats one list field: the `patchStrategy` and `patchMergeKey`
/// struct tags of the Go type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "test-server"), allow(dead_code))]
pub(crate) enum ListStrategy {
    /// No `patchStrategy` (or `+listType=atomic`): the patch's list replaces the object's.
    Replace,
    /// `patchStrategy:"merge"` with `patchMergeKey`: elements are matched by that key.
    MergeKey(&'static str),
    /// `patchStrategy:"merge"` on a list of scalars: a set union.
    Set,
}

/// The list table of a type: the dotted path of a list field (list indices left out, e.g.
/// `status.conditions`, `spec.containers.env`) to its strategy.
pub(crate) type Schema<'a> = &'a dyn Fn(&str) -> ListStrategy;

const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Applies the strategic merge patch `patch` (a JSON object) to `target` (the object found at
/// `path`, `""` for the document root). Errors name what the patch got wrong; the caller
/// answers them as a 400.
pub(crate) fn strategic_merge(
    target: &mut Value,
    patch: &Value,
    path: &str,
    schema: Schema<'_>,
) -> Result<(), String> {
    let Value::Object(p) = patch else {
        return Err(format!(
            "{}: a strategic merge patch must be a JSON object",
            if path.is_empty() { "<root>" } else { path }
        ));
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    match target {
        Value::Object(t) => merge_map(t, p, path, schema),
        _ => Ok(()),
    }
}

/// The patch map without its directive keys (`$patch`, `$retainKeys`, ...).
fn without_directives(p: &Map<String, Value>) -> Map<String, Value> {
    p.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn merge_map(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    path: &str,
    schema: Schema<'_>,
) -> Result<(), String> {
    match patch.get("$patch").map(|d| d.as_str()) {
        None | Some(Some("merge")) => {}
        Some(Some("replace")) => {
            *target = without_directives(patch);
            return Ok(());
        }
        Some(Some("delete")) => {
            target.clear();
            return Ok(());
        }
        Some(other) => {
            return Err(format!(
                "{path}: unknown patch type {}",
                other.map_or_else(|| "(not a string)".to_owned(), str::to_owned)
            ));
        }
    }
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        let child = join(path, k);
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(pm) => {
                if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                    target.remove(k);
                    continue;
                }
                let entry = target
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(e) = entry {
                    merge_map(e, pm, &child, schema)?;
                }
            }
            Value::Array(items) => {
                let order = patch.get(&format!("{SET_ORDER}{k}"));
                match schema(&child) {
                    ListStrategy::Replace => {
                        target.insert(k.clone(), v.clone());
                    }
                    ListStrategy::MergeKey(key) => {
                        let entry = target.entry(k.clone()).or_insert(Value::Null);
                        merge_list(entry, items, order, Some(key), &child, schema)?;
                    }
                    ListStrategy::Set => {
                        let entry = target.entry(k.clone()).or_insert(Value::Null);
                        merge_list(entry, items, order, None, &child, schema)?;
                    }
                }
            }
            scalar => {
                target.insert(k.clone(), scalar.clone());
            }
        }
    }
    // Lists that only appear in directives.
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            if patch.contains_key(field) {
                continue;
            }
            let key = match schema(&join(path, field)) {
                ListStrategy::MergeKey(key) => Some(key),
                ListStrategy::Set => None,
                ListStrategy::Replace => continue,
            };
            if let Some(entry) = target.get_mut(field) {
                merge_list(entry, &[], Some(v), key, &join(path, field), schema)?;
            }
        } else if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            let Value::Array(gone) = v else {
                return Err(format!("{}: {k} must be a list", join(path, field)));
            };
            if let Some(Value::Array(list)) = target.get_mut(field) {
                list.retain(|x| !gone.contains(x));
            }
        }
    }
    match patch.get("$retainKeys") {
        None => {}
        Some(Value::Array(keep)) => {
            target.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k.as_str())));
        }
        Some(_) => return Err(format!("{path}: $retainKeys must be a list")),
    }
    Ok(())
}

/// The value an element is matched by: its merge key, or the scalar itself in a set.
fn element_key<'v>(v: &'v Value, key: Option<&str>) -> Option<&'v Value> {
    match key {
        Some(k) => v.get(k),
        None => Some(v),
    }
}

/// Merges a patch list into `existing` (a merge-keyed list when `key` is set, a set of scalars
/// otherwise), then orders it by `order` (`$setElementOrder/<list>`).
fn merge_list(
    existing: &mut Value,
    items: &[Value],
    order: Option<&Value>,
    key: Option<&str>,
    path: &str,
    schema: Schema<'_>,
) -> Result<(), String> {
    let original: Vec<Value> = existing.as_array().cloned().unwrap_or_default();
    let replace = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    let mut list = if replace {
        Vec::new()
    } else {
        original.clone()
    };
    for item in items {
        let Some(kname) = key else {
            if item.is_object() || item.is_array() {
                return Err(format!("{path}: expected a list of scalars"));
            }
            if !list.contains(item) {
                list.push(item.clone());
            }
            continue;
        };
        let Value::Object(obj) = item else {
            return Err(format!("{path}: list element {item} is not a map"));
        };
        match obj.get("$patch").map(Value::as_str) {
            None | Some(Some("merge")) => {}
            Some(Some("replace")) => continue,
            Some(Some("delete")) => {
                let Some(kv) = obj.get(kname) else {
                    return Err(format!(
                        "{path}: delete directive {item} does not contain declared merge key: {kname}"
                    ));
                };
                list.retain(|e| e.get(kname) != Some(kv));
                continue;
            }
            Some(_) => return Err(format!("{path}: unknown patch type in {item}")),
        }
        let Some(kv) = obj.get(kname) else {
            return Err(format!(
                "{path}: map: {item} does not contain declared merge key: {kname}"
            ));
        };
        match list.iter_mut().find(|e| e.get(kname) == Some(kv)) {
            Some(Value::Object(e)) => merge_map(e, obj, path, schema)?,
            Some(other) => {
                let mut m = Map::new();
                merge_map(&mut m, obj, path, schema)?;
                *other = Value::Object(m);
            }
            None => {
                let mut m = Map::new();
                merge_map(&mut m, obj, path, schema)?;
                list.push(Value::Object(m));
            }
        }
    }
    if let Some(order) = order {
        let Value::Array(order) = order else {
            return Err(format!("{path}: $setElementOrder must be a list"));
        };
        list = apply_element_order(list, order, &original, key);
    }
    *existing = Value::Array(list);
    Ok(())
}

/// The API server's ordering for `$setElementOrder` (apimachinery `strategicpatch`
/// `normalizeElementOrder` + `mergeSortedSlice`): the elements named in `order` come in that
/// order; the others (server-only elements) keep their relative order and are interleaved by
/// their position in the object's list before the patch.
fn apply_element_order(
    list: Vec<Value>,
    order: &[Value],
    original: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let order_keys: Vec<&Value> = order.iter().filter_map(|o| element_key(o, key)).collect();
    let pos_in = |keys: &[&Value], v: &Value| -> Option<usize> {
        let k = element_key(v, key)?;
        keys.iter().position(|x| *x == k)
    };
    let original_keys: Vec<&Value> = original
        .iter()
        .filter_map(|o| element_key(o, key))
        .collect();
    let (mut ordered, server_only): (Vec<Value>, Vec<Value>) = list
        .into_iter()
        .partition(|v| pos_in(&order_keys, v).is_some());
    ordered.sort_by_key(|v| pos_in(&order_keys, v).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(ordered.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = ordered.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (pos_in(&original_keys, l), pos_in(&original_keys, r)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some(v) = next {
            out.push(v);
        }
    }
    out
}

/// The list strategies of a core/v1 Pod, from the struct tags of `k8s.io/api` `core/v1/types.go`
/// (v0.35, the Kubernetes 1.35 types):
///
/// * `PodStatus.conditions`: `patchStrategy:"merge" patchMergeKey:"type"`;
/// * `PodStatus.podIPs`, `PodStatus.hostIPs`: `patchStrategy:"merge" patchMergeKey:"ip"`;
/// * `PodStatus.resourceClaimStatuses`: `patchStrategy:"merge,retainKeys" patchMergeKey:"name"`;
/// * `PodStatus.containerStatuses`, `initContainerStatuses`, `ephemeralContainerStatuses`:
///   `+listType=atomic`, no patch strategy: replaced;
/// * `ObjectMeta.ownerReferences`: merge key `uid`; `ObjectMeta.finalizers`: merge (a set);
/// * `PodSpec.containers`, `initContainers`, `ephemeralContainers`, `volumes`: merge key `name`;
///   `Container.env`: `name`; `Container.ports`: `containerPort`; `Container.volumeMounts`:
///   `mountPath`; `Container.volumeDevices`: `devicePath`.
#[cfg_attr(not(feature = "test-server"), allow(dead_code))]
pub(crate) fn pod_list_strategy(path: &str) -> ListStrategy {
    use ListStrategy::{MergeKey, Replace, Set};
    match path {
        "status.conditions" => MergeKey("type"),
        "status.podIPs" | "status.hostIPs" => MergeKey("ip"),
        "status.resourceClaimStatuses" => MergeKey("name"),
        "metadata.ownerReferences" => MergeKey("uid"),
        "metadata.finalizers" => Set,
        "spec.containers"
        | "spec.initContainers"
        | "spec.ephemeralContainers"
        | "spec.volumes"
        | "spec.imagePullSecrets" => MergeKey("name"),
        _ => match path.rsplit_once('.') {
            Some((
                "spec.containers" | "spec.initContainers" | "spec.ephemeralContainers",
                field,
            )) => match field {
                "env" => MergeKey("name"),
                "ports" => MergeKey("containerPort"),
                "volumeMounts" => MergeKey("mountPath"),
                "volumeDevices" => MergeKey("devicePath"),
                _ => Replace,
            },
            _ => Replace,
        },
    }
}

/// The node-status lists as the heartbeat's patch needs them: `conditions` merged by `type`,
/// every other list replaced.
fn node_status_list_strategy(path: &str) -> ListStrategy {
    match path {
        "status.conditions" => ListStrategy::MergeKey("type"),
        _ => ListStrategy::Replace,
    }
}

/// Applies `patch` (`{"status": {...}, "metadata": {...}}`) to `node`; returns the patched Node
/// or a message describing why the patch or its result is not valid.
pub fn apply_node_status_patch(node: &Node, patch: &Value) -> Result<Node, String> {
    let mut doc = serde_json::to_value(node).map_err(|e| e.to_string())?;
    if let Some(meta) = patch.get("metadata") {
        json_merge(&mut doc["metadata"], meta);
    }
    if let Some(sp @ Value::Object(_)) = patch.get("status") {
        strategic_merge(&mut doc["status"], sp, "status", &node_status_list_strategy)?;
    }
    serde_json::from_value(doc).map_err(|e| format!("patched node is invalid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_merge_by_type_and_order() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "KubeletNotReady"},
                {"type": "NetworkUnavailable", "status": "False"}
            ], "capacity": {"cpu": "2", "example.com/gpu": "1"}}
        }))
        .unwrap();
        let patch = json!({"status": {
            "$setElementOrder/conditions": [{"type": "MemoryPressure"}, {"type": "Ready"}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}, {"type": "MemoryPressure", "status": "False"}],
            "capacity": {"cpu": "4", "example.com/gpu": null}
        }});
        let out = apply_node_status_patch(&node, &patch).unwrap();
        let st = out.status.unwrap();
        let types: Vec<&str> = st
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(types, vec!["MemoryPressure", "Ready", "NetworkUnavailable"]);
        assert_eq!(
            st.conditions.as_ref().unwrap()[1].reason.as_deref(),
            Some("KubeletReady")
        );
        let cap = st.capacity.unwrap();
        assert_eq!(cap["cpu"].0, "4");
        assert!(!cap.contains_key("example.com/gpu"));
    }

    fn pod_merge(target: Value, patch: Value) -> Result<Value, String> {
        let mut t = target;
        strategic_merge(&mut t, &patch, "", &pod_list_strategy)?;
        Ok(t)
    }

    #[test]
    fn pod_status_lists() {
        let pod = json!({"status": {
            "conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}, {"type": "C", "status": "False"}],
            "podIPs": [{"ip": "10.0.0.1"}],
            "containerStatuses": [{"name": "a", "ready": true}, {"name": "b", "ready": true}],
            "phase": "Pending"
        }});
        let out = pod_merge(
            pod,
            json!({"status": {
                "$setElementOrder/conditions": [{"type": "C"}, {"type": "D"}, {"type": "A"}],
                "conditions": [{"type": "D", "status": "True"}, {"type": "A", "status": "False", "reason": null}, {"$patch": "delete", "type": "B"}],
                "podIPs": [{"ip": "fd00::1"}],
                "containerStatuses": [{"name": "b", "ready": false}],
                "phase": "Running"
            }}),
        )
        .unwrap();
        let types: Vec<&str> = out["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["C", "D", "A"]);
        assert_eq!(out["status"]["conditions"][2]["status"], "False");
        assert_eq!(
            out["status"]["podIPs"],
            json!([{"ip": "10.0.0.1"}, {"ip": "fd00::1"}])
        );
        assert_eq!(
            out["status"]["containerStatuses"],
            json!([{"name": "b", "ready": false}])
        );
        assert_eq!(out["status"]["phase"], "Running");
    }

    #[test]
    fn server_only_elements_keep_their_place() {
        // A (server only), B, C in the object; the patch orders C before B.
        let out = pod_merge(
            json!({"status": {"conditions": [{"type": "A"}, {"type": "B"}, {"type": "C"}]}}),
            json!({"status": {"$setElementOrder/conditions": [{"type": "C"}, {"type": "B"}]}}),
        )
        .unwrap();
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "A"}, {"type": "C"}, {"type": "B"}])
        );
    }

    #[test]
    fn directives_and_errors() {
        let out = pod_merge(
            json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}}}),
            json!({"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"], "labels": {"$patch": "replace", "z": "3"}}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
        assert_eq!(out["metadata"]["labels"], json!({"z": "3"}));
        let out = pod_merge(
            json!({"status": {"conditions": [{"type": "A"}, {"type": "B"}]}}),
            json!({"status": {"conditions": [{"$patch": "replace"}, {"type": "C"}]}}),
        )
        .unwrap();
        assert_eq!(out["status"]["conditions"], json!([{"type": "C"}]));
        assert!(
            pod_merge(
                json!({}),
                json!({"status": {"conditions": [{"status": "True"}]}})
            )
            .unwrap_err()
            .contains("does not contain declared merge key: type")
        );
        assert!(pod_merge(json!({}), json!([1])).is_err());
        assert!(pod_merge(json!({}), json!({"status": {"$patch": 7}})).is_err());
    }
}
