//! A container probe as the workers use it: the API object with the API server's defaults
//! applied (`pkg/apis/core/v1/defaults.go` `SetDefaults_Probe`, `SetDefaults_HTTPGetAction`)
//! and every number made safe to compute with.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, EnvVar, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The largest period, timeout or initial delay a probe gets, in seconds (one year). The API
/// allows any `int32` (68 years); a cap keeps every deadline far inside what `Instant` and the
/// timers can represent.
pub const MAX_PROBE_SECONDS: u64 = 365 * 24 * 3600;

/// The kubelet's `User-Agent` for probes (`kube-probe/<major>.<minor>`).
pub const PROBE_USER_AGENT: &str = "kube-probe/1.35";

/// Which of a container's probes (the kubelet's `probeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeKind {
    /// `startupProbe`: gates the other two until it succeeds.
    Startup,
    /// `readinessProbe`: the container's `ready`.
    Readiness,
    /// `livenessProbe`: a failure restarts the container.
    Liveness,
}

impl ProbeKind {
    /// The three kinds in the order the kubelet starts their workers.
    pub const ALL: [ProbeKind; 3] = [
        ProbeKind::Startup,
        ProbeKind::Readiness,
        ProbeKind::Liveness,
    ];

    /// The name in events (`Liveness probe failed: ...`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Startup => "Startup",
            Self::Readiness => "Readiness",
            Self::Liveness => "Liveness",
        }
    }

    /// The container's probe of this kind, if it has one.
    #[must_use]
    pub fn probe_of(self, container: &Container) -> Option<&Probe> {
        match self {
            Self::Startup => container.startup_probe.as_ref(),
            Self::Readiness => container.readiness_probe.as_ref(),
            Self::Liveness => container.liveness_probe.as_ref(),
        }
    }
}

/// `httpGet.scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (the default).
    Http,
    /// HTTPS without certificate verification, as the kubelet.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// A port as a probe names it: a number or the name of one of the container's ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    /// A port number (checked when the probe runs).
    Number(i32),
    /// A named port, looked up in the container's `ports`.
    Name(String),
}

impl PortRef {
    fn from_api(port: &IntOrString) -> Self {
        match port {
            IntOrString::Int(n) => Self::Number(*n),
            // A number written as a string is a number for the kubelet too
            // (`intstr.IntValue` parses it).
            IntOrString::String(s) => match s.parse() {
                Ok(n) => Self::Number(n),
                Err(_) => Self::Name(s.clone()),
            },
        }
    }

    /// The port number in `container` (the kubelet's `probe.ResolveContainerPort`).
    ///
    /// # Errors
    /// A named port the container does not have, or a number outside 1..=65535.
    pub fn resolve(&self, container: &Container) -> Result<u16, String> {
        let n = match self {
            Self::Number(n) => *n,
            Self::Name(name) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("port {name} not found"))?,
        };
        u16::try_from(n)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("invalid port number: {n}"))
    }
}

/// An `httpGet` probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGetProbe {
    /// `scheme`.
    pub scheme: Scheme,
    /// `host`; the pod IP when `None`.
    pub host: Option<String>,
    /// `port`.
    pub port: PortRef,
    /// `path` (default `/`), with a query if it has one.
    pub path: String,
    /// `httpHeaders` as `(name, value)`, in order.
    pub headers: Vec<(String, String)>,
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    /// `exec.command`, run in the container through the CRI.
    Exec {
        /// The command (before `$(VAR)` expansion).
        command: Vec<String>,
    },
    /// `httpGet`.
    HttpGet(HttpGetProbe),
    /// `tcpSocket`.
    TcpSocket {
        /// `host`; the pod IP when `None`.
        host: Option<String>,
        /// `port`.
        port: PortRef,
    },
    /// `grpc`: `grpc.health.v1.Health/Check` on the pod IP.
    Grpc {
        /// `port`.
        port: i32,
        /// `service` (default `""`).
        service: String,
    },
    /// No handler set (API validation forbids it): every run is an error, as the kubelet's
    /// `missing probe handler`.
    Missing,
}

/// A probe with the API defaults applied and its numbers made safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// Which probe.
    pub kind: ProbeKind,
    /// What it runs.
    pub action: ProbeAction,
    /// `timeoutSeconds` (default 1).
    pub timeout: Duration,
    /// `periodSeconds` (default 10).
    pub period: Duration,
    /// `initialDelaySeconds` (default 0).
    pub initial_delay: Duration,
    /// `successThreshold` (default 1; always 1 for liveness and startup probes).
    pub success_threshold: u32,
    /// `failureThreshold` (default 3).
    pub failure_threshold: u32,
    /// `terminationGracePeriodSeconds` of the probe (liveness and startup), the grace period of
    /// a kill it causes; `None` uses the pod's.
    pub termination_grace_seconds: Option<i64>,
    /// What was changed from the API object because it was out of range (empty for a valid
    /// probe), for a log line.
    pub adjustments: Vec<String>,
}

impl ProbeSpec {
    /// The probe of `kind` from its API object. Never fails: unset and zero fields get the API
    /// defaults; negative numbers (API validation rejects them) get the defaults too, and
    /// values above [`MAX_PROBE_SECONDS`] are capped; each change is listed in
    /// [`ProbeSpec::adjustments`].
    #[must_use]
    pub fn new(kind: ProbeKind, probe: &Probe) -> Self {
        let mut adjustments = Vec::new();
        let mut seconds = |field: &str, value: Option<i32>, default: u64, min: u64| -> Duration {
            let secs = match value.map(|v| (v, u64::try_from(v))) {
                None | Some((0, _)) => default,
                Some((v, Err(_))) => {
                    adjustments.push(format!("{field} {v} is invalid, using {default}"));
                    default
                }
                Some((v, Ok(s))) if s < min => {
                    adjustments.push(format!("{field} {v} is invalid, using {default}"));
                    default
                }
                Some((v, Ok(s))) if s > MAX_PROBE_SECONDS => {
                    adjustments.push(format!("{field} {v} is capped to {MAX_PROBE_SECONDS}"));
                    MAX_PROBE_SECONDS
                }
                Some((_, Ok(s))) => s,
            };
            Duration::from_secs(secs)
        };
        let timeout = seconds("timeoutSeconds", probe.timeout_seconds, 1, 1);
        let period = seconds("periodSeconds", probe.period_seconds, 10, 1);
        let initial_delay = seconds("initialDelaySeconds", probe.initial_delay_seconds, 0, 0);
        let mut threshold = |field: &str, value: Option<i32>, default: u32| -> u32 {
            match value {
                None | Some(0) => default,
                Some(v) if v < 0 => {
                    adjustments.push(format!("{field} {v} is invalid, using {default}"));
                    default
                }
                Some(v) => v.unsigned_abs(),
            }
        };
        let mut success_threshold = threshold("successThreshold", probe.success_threshold, 1);
        let failure_threshold = threshold("failureThreshold", probe.failure_threshold, 3);
        if kind != ProbeKind::Readiness && success_threshold != 1 {
            adjustments.push(format!(
                "successThreshold {success_threshold} must be 1 for a {} probe, using 1",
                kind.name().to_lowercase()
            ));
            success_threshold = 1;
        }
        let termination_grace_seconds = match kind {
            ProbeKind::Readiness => None,
            _ => probe.termination_grace_period_seconds.map(|g| g.max(0)),
        };
        Self {
            kind,
            action: action_of(probe),
            timeout,
            period,
            initial_delay,
            success_threshold,
            failure_threshold,
            termination_grace_seconds,
            adjustments,
        }
    }
}

/// The handler, in the kubelet's order (exec, httpGet, tcpSocket, grpc).
fn action_of(probe: &Probe) -> ProbeAction {
    if let Some(exec) = &probe.exec {
        return ProbeAction::Exec {
            command: exec.command.clone().unwrap_or_default(),
        };
    }
    if let Some(http) = &probe.http_get {
        let scheme = match http.scheme.as_deref() {
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            _ => Scheme::Http,
        };
        return ProbeAction::HttpGet(HttpGetProbe {
            scheme,
            host: http.host.clone().filter(|h| !h.is_empty()),
            port: PortRef::from_api(&http.port),
            path: http
                .path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".to_owned()),
            headers: http
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        });
    }
    if let Some(tcp) = &probe.tcp_socket {
        return ProbeAction::TcpSocket {
            host: tcp.host.clone().filter(|h| !h.is_empty()),
            port: PortRef::from_api(&tcp.port),
        };
    }
    if let Some(grpc) = &probe.grpc {
        return ProbeAction::Grpc {
            port: grpc.port,
            service: grpc.service.clone().unwrap_or_default(),
        };
    }
    ProbeAction::Missing
}

/// `command` with `$(VAR)` replaced by the container's literal `env` values (the kubelet's
/// `ExpandContainerCommandOnlyStatic`: `valueFrom` variables are not known here and stay as
/// written; `$$` is a literal `$`).
#[must_use]
pub fn expand_command(command: &[String], env: &[EnvVar]) -> Vec<String> {
    let lookup = |name: &str| -> Option<&str> {
        env.iter()
            .rev()
            .find(|e| e.name == name && e.value_from.is_none())
            .map(|e| e.value.as_deref().unwrap_or(""))
    };
    command
        .iter()
        .map(|arg| crate::env::expand(arg, lookup))
        .collect()
}

/// A whole-second duration as Go prints a `time.Duration` (`1s`, `1m30s`, `1h0m0s`), for
/// the kubelet's message texts.
#[must_use]
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `host:port`, with an IPv6 host in brackets (Go's `net.JoinHostPort`).
#[must_use]
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(json: serde_json::Value) -> Probe {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn api_defaults() {
        let p = ProbeSpec::new(
            ProbeKind::Readiness,
            &probe(serde_json::json!({"httpGet": {"port": 80}})),
        );
        assert_eq!(p.timeout, Duration::from_secs(1));
        assert_eq!(p.period, Duration::from_secs(10));
        assert_eq!(p.initial_delay, Duration::ZERO);
        assert_eq!((p.success_threshold, p.failure_threshold), (1, 3));
        assert!(p.adjustments.is_empty());
        assert_eq!(
            p.action,
            ProbeAction::HttpGet(HttpGetProbe {
                scheme: Scheme::Http,
                host: None,
                port: PortRef::Number(80),
                path: "/".into(),
                headers: vec![],
            })
        );
        // Zero is "unset" for the API server's defaulting too.
        let p = ProbeSpec::new(
            ProbeKind::Liveness,
            &probe(
                serde_json::json!({"tcpSocket": {"port": "web"}, "periodSeconds": 0,
                "timeoutSeconds": 0, "failureThreshold": 0, "successThreshold": 0}),
            ),
        );
        assert_eq!(
            (p.period, p.timeout),
            (Duration::from_secs(10), Duration::from_secs(1))
        );
        assert_eq!((p.success_threshold, p.failure_threshold), (1, 3));
        assert_eq!(
            p.action,
            ProbeAction::TcpSocket {
                host: None,
                port: PortRef::Name("web".into())
            }
        );
        let p = ProbeSpec::new(ProbeKind::Startup, &Probe::default());
        assert_eq!(p.action, ProbeAction::Missing);
        let p = ProbeSpec::new(
            ProbeKind::Liveness,
            &probe(serde_json::json!({"grpc": {"port": 9000}, "terminationGracePeriodSeconds": 7})),
        );
        assert_eq!(
            p.action,
            ProbeAction::Grpc {
                port: 9000,
                service: String::new()
            }
        );
        assert_eq!(p.termination_grace_seconds, Some(7));
    }

    #[test]
    fn hostile_numbers_are_made_safe() {
        let p = ProbeSpec::new(
            ProbeKind::Liveness,
            &probe(serde_json::json!({"exec": {"command": ["true"]},
                "periodSeconds": -5, "timeoutSeconds": i32::MIN, "initialDelaySeconds": -1,
                "successThreshold": 5, "failureThreshold": -3})),
        );
        assert_eq!(p.period, Duration::from_secs(10));
        assert_eq!(p.timeout, Duration::from_secs(1));
        assert_eq!(p.initial_delay, Duration::ZERO);
        assert_eq!((p.success_threshold, p.failure_threshold), (1, 3));
        assert_eq!(p.adjustments.len(), 5, "{:?}", p.adjustments);
        let p = ProbeSpec::new(
            ProbeKind::Readiness,
            &probe(serde_json::json!({"exec": {"command": ["true"]},
                "periodSeconds": i32::MAX, "timeoutSeconds": i32::MAX,
                "initialDelaySeconds": i32::MAX, "successThreshold": i32::MAX,
                "failureThreshold": i32::MAX})),
        );
        let cap = Duration::from_secs(MAX_PROBE_SECONDS);
        assert_eq!((p.period, p.timeout, p.initial_delay), (cap, cap, cap));
        assert_eq!(p.success_threshold, i32::MAX.unsigned_abs());
        // The deadlines it leads to are representable.
        assert!(std::time::Instant::now().checked_add(p.period).is_some());
    }

    #[test]
    fn ports_resolve_like_the_kubelet() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "web", "containerPort": 8080},
                                   {"name": "bad", "containerPort": 70000}]
        }))
        .unwrap();
        assert_eq!(PortRef::Name("web".into()).resolve(&c), Ok(8080));
        assert_eq!(
            PortRef::Name("nope".into()).resolve(&c),
            Err("port nope not found".into())
        );
        assert!(PortRef::Name("bad".into()).resolve(&c).is_err());
        assert!(PortRef::Number(0).resolve(&c).is_err());
        assert!(PortRef::Number(-1).resolve(&c).is_err());
        assert_eq!(
            PortRef::from_api(&IntOrString::String("81".into())),
            PortRef::Number(81)
        );
    }

    #[test]
    fn commands_expand_static_env_only() {
        let env: Vec<EnvVar> = serde_json::from_value(serde_json::json!([
            {"name": "A", "value": "x"},
            {"name": "S", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ]))
        .unwrap();
        let cmd = ["echo $(A)-$(S)-$(B)-$$(A)-$-$(".to_owned()];
        assert_eq!(expand_command(&cmd, &env), ["echo x-$(S)-$(B)-$(A)-$-$("]);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
    }
}
