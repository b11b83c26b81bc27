//! Applying a node-status strategic-merge patch the way the API server does for the fields the
//! kubelet sends: `conditions` merged by `type` (ordered by `$setElementOrder/conditions`),
//! `addresses` replaced, maps merged (RFC 7386, `null` deletes), scalars replaced.

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

fn merge_conditions(existing: &mut Value, patch: &Value, order: Option<&Value>) {
    let mut list: Vec<Value> = existing.as_array().cloned().unwrap_or_default();
    for pc in patch.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let t = pc.get("type");
        match list.iter_mut().find(|c| c.get("type") == t) {
            Some(c) => json_merge(c, pc),
            None => list.push(pc.clone()),
        }
    }
    if let Some(order) = order.and_then(Value::as_array) {
        let pos = |c: &Value| {
            order
                .iter()
                .position(|o| o.get("type") == c.get("type"))
                .unwrap_or(usize::MAX)
        };
        list.sort_by_key(pos);
    }
    *existing = Value::Array(list);
}

/// Applies `patch` (`{"status": {...}, "metadata": {...}}`) to `node`; returns the patched Node
/// or a message describing why the result is not a valid Node.
pub fn apply_node_status_patch(node: &Node, patch: &Value) -> Result<Node, String> {
    let mut doc = serde_json::to_value(node).map_err(|e| e.to_string())?;
    if let Some(meta) = patch.get("metadata") {
        json_merge(&mut doc["metadata"], meta);
    }
    if let Some(Value::Object(sp)) = patch.get("status") {
        if !doc["status"].is_object() {
            doc["status"] = Value::Object(Map::new());
        }
        let order = sp.get("$setElementOrder/conditions");
        for (k, v) in sp {
            if k.starts_with('$') {
                continue;
            }
            match k.as_str() {
                "conditions" => merge_conditions(&mut doc["status"]["conditions"], v, order),
                "addresses" => doc["status"]["addresses"] = v.clone(),
                _ => {
                    if v.is_null() {
                        if let Value::Object(st) = &mut doc["status"] {
                            st.remove(k);
                        }
                    } else {
                        json_merge(&mut doc["status"][k], v);
                    }
                }
            }
        }
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
}
