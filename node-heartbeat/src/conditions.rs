//! Node conditions with the kubelet's types, reasons and messages (verbatim), and the
//! runtime-state errors that make a node NotReady.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::NodeCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::pressure::Pressure;

/// `Ready`.
pub const READY: &str = "Ready";
/// `MemoryPressure`.
pub const MEMORY_PRESSURE: &str = "MemoryPressure";
/// `DiskPressure`.
pub const DISK_PRESSURE: &str = "DiskPressure";
/// `PIDPressure`.
pub const PID_PRESSURE: &str = "PIDPressure";
/// `NetworkUnavailable`.
pub const NETWORK_UNAVAILABLE: &str = "NetworkUnavailable";

/// `maxWaitForContainerRuntime`: a runtime not seen for longer is "down".
pub const MAX_WAIT_FOR_CONTAINER_RUNTIME: Duration = Duration::from_secs(30);

/// Sets (or adds) condition `type_` as the kubelet's setters do: the heartbeat time is always
/// `now`; the transition time changes only when the status changes.
pub fn set_condition(
    conditions: &mut Vec<NodeCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let now_t = Some(Time(now));
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = now_t.clone();
        }
        c.status = status.to_owned();
        c.reason = Some(reason.to_owned());
        c.message = Some(message.to_owned());
        c.last_heartbeat_time = now_t;
    } else {
        conditions.push(NodeCondition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            last_heartbeat_time: now_t.clone(),
            last_transition_time: now_t,
        });
    }
}

/// The MemoryPressure, DiskPressure and PIDPressure setters.
pub fn set_pressure_conditions(conditions: &mut Vec<NodeCondition>, p: Pressure, now: Timestamp) {
    let rows = [
        (
            MEMORY_PRESSURE,
            p.memory,
            (
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            ),
            (
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
        ),
        (
            DISK_PRESSURE,
            p.disk,
            ("KubeletHasDiskPressure", "kubelet has disk pressure"),
            ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ),
        (
            PID_PRESSURE,
            p.pid,
            (
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
            ),
            (
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
        ),
    ];
    for (type_, on, yes, no) in rows {
        let (status, (reason, message)) = if on { ("True", yes) } else { ("False", no) };
        set_condition(conditions, type_, status, reason, message, now);
    }
}

/// What the kubelet knows about its runtime when computing Ready (`runtimeState`).
#[derive(Debug, Clone, Default)]
pub struct RuntimeHealth {
    /// When the runtime status was last fetched successfully (`None`: never).
    pub last_sync: Option<Instant>,
    /// The runtime's `RuntimeReady` condition when false (e.g. `RuntimeReady=false reason:... message:...`).
    pub runtime_not_ready: Option<String>,
    /// Network state: `None` until known; `Some(Ok)` ready; `Some(Err(text))` not ready.
    pub network: Option<std::result::Result<(), String>>,
    /// Failing health checks: (name, error), e.g. `("PLEG", "pleg was last seen active 3m1s ago; threshold is 3m0s")`.
    pub failing_checks: Vec<(String, String)>,
    /// Storage errors (`storageErrors`).
    pub storage_errors: Vec<String>,
    /// Shutdown-manager errors.
    pub shutdown_errors: Vec<String>,
}

impl RuntimeHealth {
    /// A runtime that answered now and a ready network.
    pub fn healthy(now: Instant) -> Self {
        RuntimeHealth {
            last_sync: Some(now),
            network: Some(Ok(())),
            ..Default::default()
        }
    }

    /// The error strings of `runtimeErrors`, `networkErrors`, `storageErrors` and the shutdown
    /// manager, in the kubelet's order.
    pub fn errors(&self, now: Instant) -> Vec<String> {
        let mut errs = Vec::new();
        match self.last_sync {
            None => {
                errs.push("container runtime status check may not have completed yet".to_owned())
            }
            Some(t) if now.saturating_duration_since(t) > MAX_WAIT_FOR_CONTAINER_RUNTIME => {
                errs.push("container runtime is down".to_owned());
            }
            Some(_) => {}
        }
        for (name, err) in &self.failing_checks {
            errs.push(format!("{name} is not healthy: {err}"));
        }
        if let Some(cond) = &self.runtime_not_ready {
            errs.push(format!("container runtime not ready: {cond}"));
        }
        match &self.network {
            None => errs.push("network state unknown".to_owned()),
            Some(Err(e)) => errs.push(e.clone()),
            Some(Ok(())) => {}
        }
        errs.extend(self.storage_errors.iter().cloned());
        errs.extend(self.shutdown_errors.iter().cloned());
        errs
    }
}

/// Formats errors like `utilerrors.NewAggregate(...).Error()`: one error as is, several as
/// `[a, b]`, duplicates removed.
pub fn aggregate(errs: &[String]) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for e in errs {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [] => None,
        [one] => Some((*one).to_owned()),
        many => Some(format!("[{}]", many.join(", "))),
    }
}

/// The Ready setter: True/`KubeletReady` unless any error or missing capacity
/// (`cpu`, `memory`, `pods`, and `ephemeral-storage` when local storage isolation is on).
pub fn set_ready_condition(
    conditions: &mut Vec<NodeCondition>,
    errors: &[String],
    missing_capacity: &[&str],
    warnings: &[String],
    now: Timestamp,
) {
    let mut errs = errors.to_vec();
    if !missing_capacity.is_empty() {
        errs.push(format!(
            "missing node capacity for resources: {}",
            missing_capacity.join(", ")
        ));
    }
    let (status, reason, mut message) = match aggregate(&errs) {
        Some(msg) => ("False", "KubeletNotReady", msg),
        None => (
            "True",
            "KubeletReady",
            "kubelet is posting ready status".to_owned(),
        ),
    };
    for w in warnings {
        message.push_str(". WARNING: ");
        message.push_str(w);
    }
    set_condition(conditions, READY, status, reason, &message, now);
}

/// The status of condition `type_`, if present.
pub fn condition_status<'a>(conditions: &'a [NodeCondition], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_kept_while_unchanged() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let t2: Timestamp = "2026-01-01T00:00:20Z".parse().unwrap();
        let mut c = Vec::new();
        set_pressure_conditions(&mut c, Pressure::default(), t0);
        set_pressure_conditions(&mut c, Pressure::default(), t1);
        assert_eq!(c.len(), 3);
        let m = &c[0];
        assert_eq!(
            (m.type_.as_str(), m.status.as_str()),
            ("MemoryPressure", "False")
        );
        assert_eq!(m.reason.as_deref(), Some("KubeletHasSufficientMemory"));
        assert_eq!(
            m.message.as_deref(),
            Some("kubelet has sufficient memory available")
        );
        assert_eq!(m.last_transition_time, Some(Time(t0)));
        assert_eq!(m.last_heartbeat_time, Some(Time(t1)));
        set_pressure_conditions(
            &mut c,
            Pressure {
                memory: false,
                disk: true,
                pid: true,
            },
            t2,
        );
        assert_eq!(c[1].reason.as_deref(), Some("KubeletHasDiskPressure"));
        assert_eq!(c[1].last_transition_time, Some(Time(t2)));
        assert_eq!(
            c[2].message.as_deref(),
            Some("kubelet has insufficient PID available")
        );
        assert_eq!(c[0].last_transition_time, Some(Time(t0)));
    }

    #[test]
    fn ready_reasons_and_messages() {
        let now = Instant::now();
        let ts: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut c = Vec::new();
        set_ready_condition(
            &mut c,
            &RuntimeHealth::healthy(now).errors(now),
            &[],
            &[],
            ts,
        );
        assert_eq!(c[0].status, "True");
        assert_eq!(c[0].reason.as_deref(), Some("KubeletReady"));
        assert_eq!(
            c[0].message.as_deref(),
            Some("kubelet is posting ready status")
        );

        let fresh = RuntimeHealth::default();
        set_ready_condition(&mut c, &fresh.errors(now), &[], &[], ts);
        assert_eq!(c[0].status, "False");
        assert_eq!(c[0].reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(
            c[0].message.as_deref(),
            Some(
                "[container runtime status check may not have completed yet, network state unknown]"
            )
        );

        let mut h = RuntimeHealth::healthy(now);
        h.network = Some(Err("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized".into()));
        set_ready_condition(&mut c, &h.errors(now), &[], &[], ts);
        assert_eq!(
            c[0].message.as_deref(),
            Some(
                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
            )
        );

        let down = RuntimeHealth::healthy(now);
        let later = now + Duration::from_secs(31);
        assert_eq!(
            down.errors(later),
            vec!["container runtime is down".to_owned()]
        );
        let mut pleg = RuntimeHealth::healthy(now);
        pleg.failing_checks.push((
            "PLEG".into(),
            "pleg was last seen active 3m0.5s ago; threshold is 3m0s".into(),
        ));
        assert_eq!(
            pleg.errors(now),
            vec![
                "PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s"
                    .to_owned()
            ]
        );

        set_ready_condition(&mut c, &[], &["cpu", "memory"], &["swap on".into()], ts);
        assert_eq!(
            c[0].message.as_deref(),
            Some("missing node capacity for resources: cpu, memory. WARNING: swap on")
        );
    }
}
