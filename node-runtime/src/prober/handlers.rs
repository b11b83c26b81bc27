//! The acting half of a probe (`pkg/kubelet/prober/prober.go` `runProbe` and `pkg/probe`):
//! one run of an exec, httpGet, tcpSocket or grpc probe, within the probe's timeout.

use std::time::Duration;

use k8s_openapi::api::core::v1::Container;
use tokio::time::Instant;

use super::http::{self, HttpError, MAX_BODY, Url};
use super::spec::{
    HttpGetProbe, PROBE_USER_AGENT, ProbeAction, ProbeSpec, expand_command, go_duration,
    join_host_port,
};
use super::worker::ProbeResult;
use crate::client::CriClient;

/// The most of an exec probe's output that is kept (the kubelet's `maxReadLength`, 10 KiB).
pub const MAX_EXEC_OUTPUT: usize = 10 * 1024;
/// How often a probe is tried when it errors (the kubelet's `maxProbeRetries`).
pub const MAX_PROBE_RETRIES: usize = 3;

/// The outcome of one probe run (the kubelet's `probe.Result` with its output or error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Passed; the output (HTTP body, command output, `service healthy`).
    Success(String),
    /// Passed with a warning (an HTTP redirect the probe did not follow): counts as success,
    /// and the kubelet records a `ProbeWarning` event with this text.
    Warning(String),
    /// Failed, with the output or the reason.
    Failure(String),
    /// The probe could not be run (a bad port, the runtime's error, no handler). Thrown away by
    /// the worker (it counts toward no threshold); the kubelet's event says it "resulted in
    /// unknown state".
    Error(String),
}

impl ProbeOutcome {
    /// The result the worker counts: `None` for an error.
    #[must_use]
    pub fn result(&self) -> Option<ProbeResult> {
        match self {
            Self::Success(_) | Self::Warning(_) => Some(ProbeResult::Success),
            Self::Failure(_) => Some(ProbeResult::Failure),
            Self::Error(_) => None,
        }
    }
}

/// Where a probe runs: the container (its ports and env), its runtime ID and the pod IP.
#[derive(Debug, Clone, Copy)]
pub struct ProbeContext<'a> {
    /// The container's spec.
    pub container: &'a Container,
    /// The container's runtime ID (exec probes).
    pub container_id: &'a str,
    /// The pod's IP, the host of probes that name none. Without one, `127.0.0.1` (the agent
    /// runs host-network pods, whose IP is the node's).
    pub pod_ip: Option<&'a str>,
}

impl ProbeContext<'_> {
    fn host<'h>(&'h self, host: Option<&'h str>) -> &'h str {
        host.or(self.pod_ip)
            .filter(|h| !h.is_empty())
            .unwrap_or("127.0.0.1")
    }
}

/// Runs `spec` once, retrying up to [`MAX_PROBE_RETRIES`] times while it errors (the kubelet's
/// `runProbeWithRetries`). `client` runs exec probes; without one they error.
pub async fn run_probe(
    client: Option<&CriClient>,
    spec: &ProbeSpec,
    ctx: ProbeContext<'_>,
) -> ProbeOutcome {
    let mut outcome = ProbeOutcome::Error("not run".to_owned());
    for _ in 0..MAX_PROBE_RETRIES {
        outcome = run_once(client, spec, ctx).await;
        if !matches!(outcome, ProbeOutcome::Error(_)) {
            break;
        }
    }
    outcome
}

async fn run_once(
    client: Option<&CriClient>,
    spec: &ProbeSpec,
    ctx: ProbeContext<'_>,
) -> ProbeOutcome {
    match &spec.action {
        ProbeAction::Exec { command } => {
            let cmd = expand_command(command, ctx.container.env.as_deref().unwrap_or_default());
            match client {
                Some(client) => exec(client, ctx.container_id, cmd, spec.timeout).await,
                None => ProbeOutcome::Error("exec probes need a container runtime".to_owned()),
            }
        }
        ProbeAction::HttpGet(http) => http_get(http, ctx, spec.timeout).await,
        ProbeAction::TcpSocket { host, port } => match port.resolve(ctx.container) {
            Ok(port) => tcp(ctx.host(host.as_deref()), port, spec.timeout).await,
            Err(e) => ProbeOutcome::Error(e),
        },
        ProbeAction::Grpc { port, service } => match u16::try_from(*port) {
            Ok(p) if p != 0 => grpc(ctx.host(None), p, service, spec.timeout).await,
            _ => ProbeOutcome::Error(format!("invalid port number: {port}")),
        },
        ProbeAction::Missing => {
            ProbeOutcome::Error(format!("missing probe handler for {}", ctx.container.name))
        }
    }
}

/// Bytes as text, at most `limit` bytes (cut on a character boundary).
fn text(bytes: &[u8], limit: usize) -> String {
    let bytes = &bytes[..bytes.len().min(limit)];
    String::from_utf8_lossy(bytes).into_owned()
}

/// An exec probe: `cmd` in container `id` through the CRI's `ExecSync` with the probe's
/// timeout; exit 0 is success, output is stdout then stderr.
pub async fn exec(
    client: &CriClient,
    id: &str,
    cmd: Vec<String>,
    timeout: Duration,
) -> ProbeOutcome {
    let secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
    match client.exec_sync(id, cmd.clone(), secs).await {
        Ok(out) => {
            let mut output = out.stdout;
            output.extend_from_slice(&out.stderr);
            let output = text(&output, MAX_EXEC_OUTPUT);
            if out.exit_code == 0 {
                ProbeOutcome::Success(output)
            } else {
                ProbeOutcome::Failure(output)
            }
        }
        Err(e) if e.grpc_code() == Some(tonic::Code::DeadlineExceeded) => {
            ProbeOutcome::Failure(exec_timeout_message(&cmd, timeout))
        }
        Err(e) => ProbeOutcome::Error(e.with_cause()),
    }
}

/// The output of an exec probe that ran out of time.
#[must_use]
pub fn exec_timeout_message(cmd: &[String], timeout: Duration) -> String {
    format!(
        "command timed out: {:?} timed out after {}",
        cmd.join(" "),
        go_duration(timeout)
    )
}

/// An httpGet probe (`pkg/probe/http`): 2xx success, 3xx a warning, else failure.
async fn http_get(http: &HttpGetProbe, ctx: ProbeContext<'_>, timeout: Duration) -> ProbeOutcome {
    let port = match http.port.resolve(ctx.container) {
        Ok(p) => p,
        Err(e) => return ProbeOutcome::Error(e),
    };
    let url = Url::new(
        http.scheme,
        ctx.host(http.host.as_deref()),
        port,
        &http.path,
    );
    http_outcome(http::get(&url, &http.headers, PROBE_USER_AGENT, timeout).await)
}

/// The probe outcome of an HTTP exchange (`DoHTTPProbe`).
fn http_outcome(response: Result<http::Response, HttpError>) -> ProbeOutcome {
    match response {
        Err(HttpError::Transport(e)) => ProbeOutcome::Failure(e),
        Err(HttpError::Body(e)) => ProbeOutcome::Error(e),
        Ok(r) => {
            let body = text(&r.body, MAX_BODY);
            match r.status {
                200..=299 => ProbeOutcome::Success(body),
                300..=399 => ProbeOutcome::Warning(format!(
                    "Probe terminated redirects, Response body: {body}"
                )),
                code => ProbeOutcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
            }
        }
    }
}

/// A tcpSocket probe: success when a connection to `host:port` opens within `timeout`.
pub async fn tcp(host: &str, port: u16, timeout: Duration) -> ProbeOutcome {
    let addr = join_host_port(host, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(stream)) => {
            drop(stream);
            ProbeOutcome::Success(String::new())
        }
        Ok(Err(e)) => ProbeOutcome::Failure(format!("dial tcp {addr}: {}", http::dial_error(&e))),
        Err(_) => ProbeOutcome::Failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    /// The service to check; `""` for the server as a whole.
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    /// The [`ServingStatus`].
    #[prost(enumeration = "ServingStatus", tag = "1")]
    pub status: i32,
}

/// `grpc.health.v1.HealthCheckResponse.ServingStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ServingStatus {
    /// `UNKNOWN`.
    Unknown = 0,
    /// `SERVING`.
    Serving = 1,
    /// `NOT_SERVING`.
    NotServing = 2,
    /// `SERVICE_UNKNOWN` (watch only).
    ServiceUnknown = 3,
}

/// The name Go's generated `String()` gives a serving status.
#[must_use]
pub fn serving_status_name(status: i32) -> String {
    match ServingStatus::try_from(status) {
        Ok(ServingStatus::Unknown) => "UNKNOWN".to_owned(),
        Ok(ServingStatus::Serving) => "SERVING".to_owned(),
        Ok(ServingStatus::NotServing) => "NOT_SERVING".to_owned(),
        Ok(ServingStatus::ServiceUnknown) => "SERVICE_UNKNOWN".to_owned(),
        Err(_) => status.to_string(),
    }
}

/// The health service's `Check` method.
pub const HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// A grpc probe (`pkg/probe/grpc`): `grpc.health.v1.Health/Check` for `service` on
/// `host:port` over plaintext HTTP/2, connection and call within `timeout`.
pub async fn grpc(host: &str, port: u16, service: &str, timeout: Duration) -> ProbeOutcome {
    let addr = join_host_port(host, port);
    let t = go_duration(timeout);
    let start = Instant::now();
    let deadline = start
        .checked_add(timeout)
        .unwrap_or(start + Duration::from_secs(365 * 24 * 3600));
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{addr}")) {
        Ok(e) => e.connect_timeout(timeout),
        Err(e) => {
            return ProbeOutcome::Failure(format!(
                "error: failed to connect service at {addr:?}: {e}"
            ));
        }
    };
    let endpoint = match endpoint.user_agent(PROBE_USER_AGENT) {
        Ok(e) => e,
        Err(e) => return ProbeOutcome::Error(e.to_string()),
    };
    let channel = match tokio::time::timeout_at(deadline, endpoint.connect()).await {
        Err(_) => {
            return ProbeOutcome::Failure(format!(
                "timeout: failed to connect service {addr:?} within {t}: context deadline exceeded"
            ));
        }
        Ok(Err(e)) => {
            return ProbeOutcome::Failure(format!(
                "error: failed to connect service at {addr:?}: {}",
                node_util::error_chain(&e)
            ));
        }
        Ok(Ok(c)) => c,
    };
    let mut client = tonic::client::Grpc::new(channel);
    let call = async {
        client
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(node_util::error_chain(&e)))?;
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: service.to_owned(),
        });
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(HEALTH_CHECK_PATH);
        client.unary(request, path, codec).await
    };
    match tokio::time::timeout_at(deadline, call).await {
        Err(_) => ProbeOutcome::Failure(format!("timeout: health rpc did not complete within {t}")),
        Ok(Err(status)) => match status.code() {
            tonic::Code::Unimplemented => ProbeOutcome::Failure(format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                status.message()
            )),
            tonic::Code::DeadlineExceeded => {
                ProbeOutcome::Failure(format!("timeout: health rpc did not complete within {t}"))
            }
            // A call cut short by its own grpc-timeout is reported by tonic as CANCELLED.
            tonic::Code::Cancelled if status.message() == "Timeout expired" => {
                ProbeOutcome::Failure(format!("timeout: health rpc did not complete within {t}"))
            }
            code => ProbeOutcome::Failure(format!(
                "error: health rpc probe failed: rpc error: code = {code:?} desc = {}",
                status.message()
            )),
        },
        Ok(Ok(response)) => {
            let status = response.into_inner().status;
            if status == ServingStatus::Serving as i32 {
                ProbeOutcome::Success("service healthy".to_owned())
            } else {
                ProbeOutcome::Failure(format!(
                    "service unhealthy (responded with {:?})",
                    serving_status_name(status)
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_outcomes() {
        let ok = |status: u16, body: &str| {
            http_outcome(Ok(http::Response {
                status,
                body: body.as_bytes().to_vec(),
            }))
        };
        assert_eq!(ok(200, "fine"), ProbeOutcome::Success("fine".into()));
        assert_eq!(ok(299, ""), ProbeOutcome::Success(String::new()));
        assert_eq!(
            ok(302, "moved"),
            ProbeOutcome::Warning("Probe terminated redirects, Response body: moved".into())
        );
        assert_eq!(
            ok(500, "boom"),
            ProbeOutcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
        assert_eq!(
            ok(199, ""),
            ProbeOutcome::Failure("HTTP probe failed with statuscode: 199".into())
        );
        assert_eq!(
            http_outcome(Err(HttpError::Transport("x".into()))),
            ProbeOutcome::Failure("x".into())
        );
        assert_eq!(
            http_outcome(Err(HttpError::Body("y".into()))).result(),
            None
        );
        assert_eq!(
            ProbeOutcome::Warning(String::new()).result(),
            Some(ProbeResult::Success)
        );
    }

    #[test]
    fn exec_texts() {
        let cmd = vec!["sh".to_owned(), "-c".to_owned(), "sleep 5".to_owned()];
        assert_eq!(
            exec_timeout_message(&cmd, Duration::from_secs(1)),
            "command timed out: \"sh -c sleep 5\" timed out after 1s"
        );
        // Output is cut at 10 KiB, also inside a multi-byte character.
        let long = "é".repeat(MAX_EXEC_OUTPUT);
        assert!(text(long.as_bytes(), MAX_EXEC_OUTPUT).len() <= MAX_EXEC_OUTPUT + 2);
        assert_eq!(serving_status_name(2), "NOT_SERVING");
        assert_eq!(serving_status_name(9), "9");
    }
}
