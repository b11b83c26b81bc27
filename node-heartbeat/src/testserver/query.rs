//! Query strings and selectors: percent-decoding, `fieldSelector` and `labelSelector` parsing
//! and matching against an object's JSON.

use serde_json::Value;

/// The decoded `key=value` pairs of a query string, in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(Vec<(String, String)>);

/// Decodes `%XX` escapes and `+` (a space, as `application/x-www-form-urlencoded`).
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("invalid percent-encoding in query {s:?}"))?;
                out.push(hex);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("query {s:?} is not UTF-8"))
}

impl Query {
    /// Parses a raw (still percent-encoded) query string.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Self, String> {
        let mut pairs = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((percent_decode(k)?, percent_decode(v)?));
        }
        Ok(Query(pairs))
    }

    /// The last value of `key` (the API server takes the first; clients send each once).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: `true`/`1` (and the other spellings Go's `strconv.ParseBool`
    /// takes) is true, absent is false.
    pub(crate) fn flag(&self, key: &str) -> Result<bool, String> {
        match self.get(key) {
            None | Some("") => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => Err(format!("invalid boolean {other:?} for {key}")),
        }
    }
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    op: Op,
}

impl Requirement {
    fn matches(&self, value: Option<&str>) -> bool {
        match (&self.op, value) {
            (Op::Eq(v), Some(x)) => x == v,
            (Op::Eq(_), None) => false,
            (Op::NotEq(v), x) => x != Some(v.as_str()),
            (Op::In(vs), Some(x)) => vs.iter().any(|v| v == x),
            (Op::In(_), None) => false,
            (Op::NotIn(vs), x) => x.is_none_or(|x| !vs.iter().any(|v| v == x)),
            (Op::Exists, x) => x.is_some(),
            (Op::NotExists, x) => x.is_none(),
        }
    }
}

/// How a resource exposes its selectable fields: the value of a field label, or `None` when
/// the resource does not support that label.
pub(crate) type FieldGetter = fn(&Value, &str) -> Option<String>;

/// A parsed `fieldSelector` plus `labelSelector` (both: every requirement must hold).
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    fields: Vec<Requirement>,
    labels: Vec<Requirement>,
    getter: Option<FieldGetter>,
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_field_term(term: &str) -> Result<Requirement, String> {
    let (key, op) = if let Some((k, v)) = term.split_once("!=") {
        (k, Op::NotEq(v.to_owned()))
    } else if let Some((k, v)) = term.split_once("==") {
        (k, Op::Eq(v.to_owned()))
    } else if let Some((k, v)) = term.split_once('=') {
        (k, Op::Eq(v.to_owned()))
    } else {
        return Err(format!(
            "invalid selector: '{term}'; can't understand '{term}'"
        ));
    };
    Ok(Requirement {
        key: key.trim().to_owned(),
        op,
    })
}

fn parse_set(rest: &str, term: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!("unable to parse requirement: {term:?}: expected a (values) list")
        })?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_label_term(term: &str) -> Result<Requirement, String> {
    if let Some(k) = term.strip_prefix('!') {
        return Ok(Requirement {
            key: k.trim().to_owned(),
            op: Op::NotExists,
        });
    }
    if let Some((k, rest)) = term.split_once(" notin ") {
        return Ok(Requirement {
            key: k.trim().to_owned(),
            op: Op::NotIn(parse_set(rest, term)?),
        });
    }
    if let Some((k, rest)) = term.split_once(" in ") {
        return Ok(Requirement {
            key: k.trim().to_owned(),
            op: Op::In(parse_set(rest, term)?),
        });
    }
    if term.contains('=') {
        let r = parse_field_term(term)?;
        return Ok(Requirement {
            key: r.key,
            op: match r.op {
                Op::Eq(v) => Op::Eq(v.trim().to_owned()),
                Op::NotEq(v) => Op::NotEq(v.trim().to_owned()),
                other => other,
            },
        });
    }
    if term.contains(['(', ')', ' ', '<', '>']) {
        return Err(format!("unable to parse requirement: {term:?}"));
    }
    Ok(Requirement {
        key: term.to_owned(),
        op: Op::Exists,
    })
}

impl Selector {
    /// The selectors of `query` for a resource whose field labels `getter` knows. An unknown
    /// field label is answered like the API server: `field label not supported: <label>`.
    pub(crate) fn from_query(query: &Query, getter: FieldGetter) -> Result<Self, String> {
        let mut sel = Selector {
            getter: Some(getter),
            ..Default::default()
        };
        if let Some(fs) = query.get("fieldSelector") {
            for term in split_top_level(fs) {
                let r = parse_field_term(term)?;
                if getter(&Value::Null, &r.key).is_none() {
                    return Err(format!("field label not supported: {}", r.key));
                }
                sel.fields.push(r);
            }
        }
        if let Some(ls) = query.get("labelSelector") {
            for term in split_top_level(ls) {
                sel.labels.push(parse_label_term(term)?);
            }
        }
        Ok(sel)
    }

    /// Whether the object (its JSON) matches every requirement.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let label_ok = self
            .labels
            .iter()
            .all(|r| r.matches(labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str)));
        label_ok
            && self.fields.iter().all(|r| {
                let v = self.getter.and_then(|g| g(obj, &r.key));
                r.matches(Some(v.as_deref().unwrap_or("")))
            })
    }
}

fn str_at(obj: &Value, pointer: &str) -> String {
    match obj.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The field labels of core/v1 Pods (`pkg/apis/core/v1/conversion.go` field label conversion
/// and `pkg/registry/core/pod/strategy.go` `ToSelectableFields`).
pub(crate) fn pod_field(obj: &Value, label: &str) -> Option<String> {
    Some(match label {
        "metadata.name" => str_at(obj, "/metadata/name"),
        "metadata.namespace" => str_at(obj, "/metadata/namespace"),
        "spec.nodeName" => str_at(obj, "/spec/nodeName"),
        "spec.restartPolicy" => str_at(obj, "/spec/restartPolicy"),
        "spec.schedulerName" => str_at(obj, "/spec/schedulerName"),
        "spec.serviceAccountName" => str_at(obj, "/spec/serviceAccountName"),
        "spec.hostNetwork" => {
            let v = str_at(obj, "/spec/hostNetwork");
            if v.is_empty() { "false".to_owned() } else { v }
        }
        "status.phase" => str_at(obj, "/status/phase"),
        "status.podIP" => str_at(obj, "/status/podIPs/0/ip"),
        "status.nominatedNodeName" => str_at(obj, "/status/nominatedNodeName"),
        _ => return None,
    })
}

/// The field labels of core/v1 Events (`pkg/registry/core/event/strategy.go`).
pub(crate) fn event_field(obj: &Value, label: &str) -> Option<String> {
    Some(match label {
        "metadata.name" => str_at(obj, "/metadata/name"),
        "metadata.namespace" => str_at(obj, "/metadata/namespace"),
        "involvedObject.kind" => str_at(obj, "/involvedObject/kind"),
        "involvedObject.namespace" => str_at(obj, "/involvedObject/namespace"),
        "involvedObject.name" => str_at(obj, "/involvedObject/name"),
        "involvedObject.uid" => str_at(obj, "/involvedObject/uid"),
        "involvedObject.apiVersion" => str_at(obj, "/involvedObject/apiVersion"),
        "involvedObject.resourceVersion" => str_at(obj, "/involvedObject/resourceVersion"),
        "involvedObject.fieldPath" => str_at(obj, "/involvedObject/fieldPath"),
        "reason" => str_at(obj, "/reason"),
        "reportingComponent" => str_at(obj, "/reportingComponent"),
        "source" => str_at(obj, "/source/component"),
        "type" => str_at(obj, "/type"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(q: &str) -> Result<Selector, String> {
        Selector::from_query(&Query::parse(Some(q))?, pod_field)
    }

    #[test]
    fn decode_and_select() {
        let pod = json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "tier": "1"}},
                         "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        assert!(
            sel("fieldSelector=spec.nodeName%3Dn1")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            sel("fieldSelector=spec.nodeName%3D%3Dn1%2Cstatus.phase%21%3DPending")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !sel("fieldSelector=spec.nodeName%3Dn2")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            sel("fieldSelector=spec.nodeName%3D")
                .unwrap()
                .matches(&json!({}))
        );
        assert_eq!(
            sel("fieldSelector=spec.foo%3Dx").unwrap_err(),
            "field label not supported: spec.foo"
        );
        assert!(sel("labelSelector=app%3Dweb,tier").unwrap().matches(&pod));
        assert!(
            sel("labelSelector=app+in+(web,db),!gone")
                .unwrap()
                .matches(&pod)
        );
        assert!(!sel("labelSelector=app!%3Dweb").unwrap().matches(&pod));
        assert!(sel("labelSelector=zone!%3Deu").unwrap().matches(&pod));
        assert!(sel("fieldSelector=nonsense").is_err());
        assert!(Query::parse(Some("a=%zz")).is_err());
        assert!(Query::parse(Some("a=%ff")).is_err());
        assert!(sel("labelSelector=a+in+web").is_err());
    }
}
