//! Taints from conditions: the node lifecycle controller's mapping, and `registerWithTaints`.

use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};

/// `node.kubernetes.io/not-ready`.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// `node.kubernetes.io/unreachable`.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `node.kubernetes.io/memory-pressure`.
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
/// `node.kubernetes.io/disk-pressure`.
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
/// `node.kubernetes.io/network-unavailable`.
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
/// `node.kubernetes.io/pid-pressure`.
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
/// `node.kubernetes.io/unschedulable`.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// `nodeConditionToTaintKeyStatusMap`: (condition, status) -> taint key.
pub const CONDITION_TAINTS: [(&str, &str, &str); 6] = [
    ("Ready", "False", TAINT_NOT_READY),
    ("Ready", "Unknown", TAINT_UNREACHABLE),
    ("MemoryPressure", "True", TAINT_MEMORY_PRESSURE),
    ("DiskPressure", "True", TAINT_DISK_PRESSURE),
    ("NetworkUnavailable", "True", TAINT_NETWORK_UNAVAILABLE),
    ("PIDPressure", "True", TAINT_PID_PRESSURE),
];

fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.to_owned(),
        effect: effect.to_owned(),
        value: None,
        time_added: None,
    }
}

/// The NoSchedule pass: every matching entry of the map becomes a `NoSchedule` taint, plus
/// `unschedulable` when `spec.unschedulable` is set. Sorted by key.
pub fn no_schedule_taints(conditions: &[NodeCondition], unschedulable: bool) -> Vec<Taint> {
    let mut out: Vec<Taint> = conditions
        .iter()
        .flat_map(|c| {
            CONDITION_TAINTS
                .iter()
                .filter(move |(t, s, _)| *t == c.type_ && *s == c.status)
                .map(|(_, _, key)| taint(key, "NoSchedule"))
        })
        .collect();
    if unschedulable {
        out.push(taint(TAINT_UNSCHEDULABLE, "NoSchedule"));
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out.dedup_by(|a, b| a.key == b.key);
    out
}

/// The NoExecute pass: only Ready counts: False -> `not-ready:NoExecute`,
/// Unknown (or missing after the grace period) -> `unreachable:NoExecute`, True -> none.
pub fn no_execute_taint(conditions: &[NodeCondition]) -> Option<Taint> {
    match conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
    {
        Some("True") => None,
        Some("False") => Some(taint(TAINT_NOT_READY, "NoExecute")),
        _ => Some(taint(TAINT_UNREACHABLE, "NoExecute")),
    }
}

/// All taints the node lifecycle controller would put on `node` now.
pub fn controller_taints(node: &Node) -> Vec<Taint> {
    let conds: &[NodeCondition] = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[]);
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let mut t = no_schedule_taints(conds, unschedulable);
    t.extend(no_execute_taint(conds));
    t
}

/// Registration taints: `registerWithTaints`, plus `unschedulable:NoSchedule` when
/// `--register-schedulable=false`.
pub fn registration_taints(
    register_with_taints: &[node_config::Taint],
    register_schedulable: bool,
) -> Vec<Taint> {
    let mut out: Vec<Taint> = register_with_taints
        .iter()
        .map(|t| Taint {
            key: t.key.clone(),
            value: (!t.value.is_empty()).then(|| t.value.clone()),
            effect: t.effect.clone(),
            time_added: None,
        })
        .collect();
    if !register_schedulable && !out.iter().any(|t| t.key == TAINT_UNSCHEDULABLE) {
        out.push(taint(TAINT_UNSCHEDULABLE, "NoSchedule"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(t: &str, s: &str) -> NodeCondition {
        NodeCondition {
            type_: t.into(),
            status: s.into(),
            ..Default::default()
        }
    }

    #[test]
    fn mapping() {
        let c = vec![
            cond("MemoryPressure", "True"),
            cond("DiskPressure", "False"),
            cond("PIDPressure", "True"),
            cond("NetworkUnavailable", "True"),
            cond("Ready", "False"),
        ];
        let keys: Vec<String> = no_schedule_taints(&c, true)
            .into_iter()
            .map(|t| t.key)
            .collect();
        assert_eq!(
            keys,
            vec![
                TAINT_MEMORY_PRESSURE,
                TAINT_NETWORK_UNAVAILABLE,
                TAINT_NOT_READY,
                TAINT_PID_PRESSURE,
                TAINT_UNSCHEDULABLE
            ]
        );
        assert_eq!(no_execute_taint(&c).unwrap().key, TAINT_NOT_READY);
        assert_eq!(
            no_execute_taint(&[cond("Ready", "Unknown")]).unwrap().key,
            TAINT_UNREACHABLE
        );
        assert!(no_execute_taint(&[cond("Ready", "True")]).is_none());
        assert!(
            no_schedule_taints(
                &[cond("Ready", "True"), cond("DiskPressure", "False")],
                false
            )
            .is_empty()
        );
    }

    #[test]
    fn registration() {
        let cfg = vec![node_config::Taint {
            key: "dedicated".into(),
            value: "gpu".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        }];
        let t = registration_taints(&cfg, false);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].value.as_deref(), Some("gpu"));
        assert_eq!(t[1].key, TAINT_UNSCHEDULABLE);
        assert_eq!(registration_taints(&cfg, true).len(), 1);
    }
}
