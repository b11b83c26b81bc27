//! `/exec`, `/attach`, `/portForward` and `/run`, as the kubelet serves them
//! (`pkg/kubelet/server/server.go` `getExec`, `getAttach`, `getPortForward`, `getRun`):
//!
//! 1. the options are parsed from the query (400 on error): exec/attach take `input`,
//!    `output`, `error`, `tty` (`=1` for true; at least one stream; a TTY drops stderr) and
//!    exec the repeated `command`; a WebSocket port-forward needs `port=<p>[,<p>...]`;
//! 2. the pod is found by namespace and name (404 `pod does not exist`), the container
//!    among its running ones (else 500 `container not found ("<name>")`);
//! 3. the runtime is asked for a streaming URL (CRI `Exec`, `Attach`, `PortForward`; its
//!    errors as `streaming.WriteError`: NotFound 404, ResourceExhausted 429 with
//!    `Retry-After: 60`, else 500);
//! 4. the client's upgraded connection is proxied to that URL ([`node_server::proxy`]).
//!
//! `/run/{ns}/{pod}[/{uid}]/{container}?cmd=<space-separated>` runs the command with CRI
//! `ExecSync` and answers with its combined stdout and stderr (`RunInContainer`).
//!
//! The parsing and lookups are pure functions, unit-tested without a runtime.

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use node_runtime::{ContainerState, PodInfo, RuntimeError, StreamFlags};

use crate::PodApi;

/// Seconds a client is told to wait after the runtime's streaming server refused for lack
/// of room (`Retry-After`, the streaming request cache's TTL).
pub const RETRY_AFTER_SECONDS: u64 = 60;

/// The exec/attach/portForward/run routes over `api` (GET and POST, with and without the
/// pod UID segment).
pub fn router(api: PodApi) -> Router {
    Router::new()
        .route("/exec/{ns}/{pod}/{container}", get(exec).post(exec))
        .route(
            "/exec/{ns}/{pod}/{uid}/{container}",
            get(exec_uid).post(exec_uid),
        )
        .route("/attach/{ns}/{pod}/{container}", get(attach).post(attach))
        .route(
            "/attach/{ns}/{pod}/{uid}/{container}",
            get(attach_uid).post(attach_uid),
        )
        .route(
            "/portForward/{ns}/{pod}",
            get(port_forward).post(port_forward),
        )
        .route(
            "/portForward/{ns}/{pod}/{uid}",
            get(port_forward_uid).post(port_forward_uid),
        )
        .route("/run/{ns}/{pod}/{container}", post(run))
        .route("/run/{ns}/{pod}/{uid}/{container}", post(run_uid))
        .with_state(api)
}

/// Which stream session a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `kubectl exec`.
    Exec,
    /// `kubectl attach`.
    Attach,
}

/// The streams of an exec or attach from its query (`remotecommand.NewOptions`): `input`,
/// `output`, `error`, `tty`, each true only as `1`; a TTY drops stderr; at least one stream.
pub fn stream_flags(query: &[(String, String)]) -> Result<StreamFlags, String> {
    let flag = |name: &str| first(query, name).is_some_and(|v| v == "1");
    let tty = flag("tty");
    let mut flags = StreamFlags {
        stdin: flag("input"),
        stdout: flag("output"),
        stderr: flag("error"),
        tty,
    };
    if tty && flags.stderr {
        // The kubelet ignores stderr with a TTY: the terminal merges it into stdout.
        flags.stderr = false;
    }
    if !flags.stdin && !flags.stdout && !flags.stderr {
        return Err("you must specify at least 1 of stdin, stdout, stderr".to_owned());
    }
    Ok(flags)
}

/// The exec command: every `command` query value, in order.
pub fn exec_command(query: &[(String, String)]) -> Vec<String> {
    query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect()
}

/// The ports of a WebSocket port-forward (`portforward.NewV4Options`): every `port` value,
/// each a comma-separated list of 1–65535. SPDY clients name the port per stream, so their
/// request carries none.
pub fn forward_ports(query: &[(String, String)], websocket: bool) -> Result<Vec<i32>, String> {
    if !websocket {
        return Ok(Vec::new());
    }
    let values: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "port")
        .map(|(_, v)| v.as_str())
        .collect();
    if values.is_empty() {
        return Err("query parameter \"port\" is required".to_owned());
    }
    let mut ports = Vec::new();
    for value in values {
        if value.is_empty() {
            return Err("query parameter \"port\" cannot be empty".to_owned());
        }
        for p in value.split(',') {
            let port =
                parse_port(p).map_err(|e| format!("unable to parse {value:?} as a port: {e}"))?;
            if port < 1 {
                return Err(format!("port {value:?} must be > 0"));
            }
            ports.push(i32::from(port));
        }
    }
    Ok(ports)
}

/// A port as Go's `strconv.ParseUint(p, 10, 16)` reads it: decimal digits only (no sign, no
/// spaces), at most 65535; the error as Go words it.
fn parse_port(p: &str) -> Result<u16, String> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {p:?}: invalid syntax"));
    }
    p.parse::<u16>()
        .map_err(|_| format!("strconv.ParseUint: parsing {p:?}: value out of range"))
}

/// The running container `name` of the pod (its runtime ID), as the kubelet's
/// `findContainer` looks among the runtime's running containers. A `{uid}` path segment does
/// not narrow the search: the kubelet's `Pods.FindPod` looks the pod up by its full name
/// whenever it has one, which it always has here (`pkg/kubelet/container/runtime.go`).
pub fn running_container(pod: &PodInfo, name: &str) -> Result<String, String> {
    let not_found = || format!("container not found ({name:?})");
    let c = pod.container(name).ok_or_else(not_found)?;
    match (&c.state, &c.container_id) {
        (ContainerState::Running { .. }, Some(id)) => Ok(id.clone()),
        _ => Err(not_found()),
    }
}

/// The `/run` command: the `cmd` parameter split on single spaces (the kubelet's
/// `strings.Split(cmd, " ")`).
pub fn run_command(query: &[(String, String)]) -> Vec<String> {
    first(query, "cmd")
        .unwrap_or_default()
        .split(' ')
        .map(str::to_owned)
        .collect()
}

fn first<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn query_pairs(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    node_server::text_response(status, body)
}

/// A runtime error as a Go gRPC client prints it (`rpc error: code = NotFound desc = ...`),
/// which is what the kubelet's answers carry; other errors in full.
pub fn runtime_error_text(err: &RuntimeError) -> String {
    match err.grpc_status() {
        Some(s) => format!("rpc error: code = {:?} desc = {}", s.code(), s.message()),
        None => node_util::error_chain(err),
    }
}

/// A failed streaming call as the kubelet's `streaming.WriteError` answers it: the gRPC
/// code picks the status, the body is the error text.
pub fn runtime_error_response(err: &RuntimeError) -> Response {
    let status = match err.grpc_code() {
        Some(tonic::Code::NotFound) => StatusCode::NOT_FOUND,
        Some(tonic::Code::ResourceExhausted) => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = runtime_error_text(err);
    let mut resp = text(status, body);
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(RETRY_AFTER_SECONDS),
        );
    }
    resp
}

async fn exec(
    State(api): State<PodApi>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    remote_command(api, StreamKind::Exec, ns, pod, container, req).await
}

async fn exec_uid(
    State(api): State<PodApi>,
    Path((ns, pod, _uid, container)): Path<(String, String, String, String)>,
    req: Request,
) -> Response {
    remote_command(api, StreamKind::Exec, ns, pod, container, req).await
}

async fn attach(
    State(api): State<PodApi>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    remote_command(api, StreamKind::Attach, ns, pod, container, req).await
}

async fn attach_uid(
    State(api): State<PodApi>,
    Path((ns, pod, _uid, container)): Path<(String, String, String, String)>,
    req: Request,
) -> Response {
    remote_command(api, StreamKind::Attach, ns, pod, container, req).await
}

async fn remote_command(
    api: PodApi,
    kind: StreamKind,
    ns: String,
    pod_name: String,
    container: String,
    req: Request,
) -> Response {
    let query = query_pairs(&req);
    let flags = match stream_flags(&query) {
        Ok(f) => f,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let Some(pod) = api.pod(&ns, &pod_name) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let id = match running_container(&pod, &container) {
        Ok(id) => id,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let url = match kind {
        StreamKind::Exec => api.cri().exec_url(&id, exec_command(&query), flags).await,
        StreamKind::Attach => api.cri().attach_url(&id, flags).await,
    };
    match url {
        Ok(url) => node_server::proxy::proxy_upgrade(req, &url).await,
        Err(e) => runtime_error_response(&e),
    }
}

async fn port_forward(
    State(api): State<PodApi>,
    Path((ns, pod)): Path<(String, String)>,
    req: Request,
) -> Response {
    forward(api, ns, pod, None, req).await
}

async fn port_forward_uid(
    State(api): State<PodApi>,
    Path((ns, pod, uid)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    forward(api, ns, pod, Some(uid), req).await
}

async fn forward(
    api: PodApi,
    ns: String,
    pod_name: String,
    uid: Option<String>,
    req: Request,
) -> Response {
    let query = query_pairs(&req);
    let websocket = node_server::proxy::is_websocket_request(req.headers());
    let ports = match forward_ports(&query, websocket) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let Some(pod) = api.pod(&ns, &pod_name) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    if uid.as_deref().is_some_and(|u| u != pod.uid) {
        return text(StatusCode::NOT_FOUND, "pod not found");
    }
    let Some(sandbox) = pod.sandbox_id.clone() else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "pod not found ({:?})",
                format!("{}_{}", pod.name, pod.namespace)
            ),
        );
    };
    match api.cri().port_forward_url(&sandbox, ports).await {
        Ok(url) => node_server::proxy::proxy_upgrade(req, &url).await,
        Err(e) => runtime_error_response(&e),
    }
}

async fn run(
    State(api): State<PodApi>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    run_in_container(api, ns, pod, container, req).await
}

async fn run_uid(
    State(api): State<PodApi>,
    Path((ns, pod, _uid, container)): Path<(String, String, String, String)>,
    req: Request,
) -> Response {
    run_in_container(api, ns, pod, container, req).await
}

async fn run_in_container(
    api: PodApi,
    ns: String,
    pod_name: String,
    container: String,
    req: Request,
) -> Response {
    let Some(pod) = api.pod(&ns, &pod_name) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let cmd = run_command(&query_pairs(&req));
    let id = match running_container(&pod, &container) {
        Ok(id) => id,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    match api.cri().exec_sync(&id, cmd.clone(), 0).await {
        Ok(out) if out.exit_code == 0 => {
            let mut body = out.stdout;
            body.extend_from_slice(&out.stderr);
            (
                StatusCode::OK,
                [(http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        // The kubelet's CRI client turns a non-zero exit into an error naming the command.
        Ok(out) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "command '{}' exited with {}: {}",
                cmd.join(" "),
                out.exit_code,
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, runtime_error_text(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn streams_follow_remotecommand_new_options() {
        let f = stream_flags(&q(&[("input", "1"), ("output", "1"), ("error", "1")])).unwrap();
        assert_eq!(
            f,
            StreamFlags {
                stdin: true,
                stdout: true,
                stderr: true,
                tty: false
            }
        );
        // A TTY drops stderr.
        let f = stream_flags(&q(&[("output", "1"), ("error", "1"), ("tty", "1")])).unwrap();
        assert!(f.tty && f.stdout && !f.stderr);
        // Only "1" is true.
        assert_eq!(
            stream_flags(&q(&[("output", "true"), ("error", "yes")])).unwrap_err(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
        // A TTY with stderr alone has no stream left.
        assert!(stream_flags(&q(&[("error", "1"), ("tty", "1")])).is_err());
    }

    #[test]
    fn commands_keep_their_order_and_run_splits_on_spaces() {
        assert_eq!(
            exec_command(&q(&[
                ("command", "sh"),
                ("output", "1"),
                ("command", "-c"),
                ("command", "echo a b")
            ])),
            ["sh", "-c", "echo a b"]
        );
        assert_eq!(run_command(&q(&[("cmd", "echo  hi")])), ["echo", "", "hi"]);
        assert_eq!(run_command(&q(&[])), [""]);
    }

    #[test]
    fn websocket_port_forward_needs_valid_ports() {
        assert_eq!(forward_ports(&q(&[]), false).unwrap(), Vec::<i32>::new());
        assert_eq!(
            forward_ports(&q(&[]), true).unwrap_err(),
            "query parameter \"port\" is required"
        );
        assert_eq!(
            forward_ports(&q(&[("port", "80,443"), ("port", "8080")]), true).unwrap(),
            [80, 443, 8080]
        );
        assert_eq!(
            forward_ports(&q(&[("port", "")]), true).unwrap_err(),
            "query parameter \"port\" cannot be empty"
        );
        assert!(
            forward_ports(&q(&[("port", "0")]), true)
                .unwrap_err()
                .contains("must be > 0")
        );
        for bad in ["65536", "-1", "8o", "80,", "+80", " 80"] {
            assert!(forward_ports(&q(&[("port", bad)]), true).is_err(), "{bad}");
        }
        assert_eq!(
            forward_ports(&q(&[("port", "65536")]), true).unwrap_err(),
            "unable to parse \"65536\" as a port: strconv.ParseUint: parsing \"65536\": value out of range"
        );
        assert_eq!(
            forward_ports(&q(&[("port", "8o")]), true).unwrap_err(),
            "unable to parse \"8o\" as a port: strconv.ParseUint: parsing \"8o\": invalid syntax"
        );
    }

    fn pod(state: ContainerState, id: Option<&str>) -> PodInfo {
        PodInfo {
            namespace: "default".into(),
            name: "web".into(),
            uid: "u-1".into(),
            source: node_runtime::PodSource::Api,
            pod: None,
            sandbox_id: Some("sb".into()),
            pod_ips: Vec::new(),
            phase: node_runtime::PodPhase::Running,
            reason: None,
            message: None,
            conditions: Vec::new(),
            containers: vec![node_runtime::ContainerInfo {
                name: "app".into(),
                kind: node_runtime::ContainerKind::Regular,
                container_id: id.map(str::to_owned),
                image: "busybox".into(),
                state,
                restart_count: 0,
                ready: true,
                log_path: None,
                image_id: None,
                last_state: None,
                started: None,
            }],
        }
    }

    #[test]
    fn only_running_containers_of_the_named_pod_are_found() {
        let running = ContainerState::Running { started_at: 1 };
        let p = pod(running, Some("c1"));
        assert_eq!(running_container(&p, "app").unwrap(), "c1");
        assert_eq!(
            running_container(&p, "other").unwrap_err(),
            "container not found (\"other\")"
        );
        let waiting = pod(
            ContainerState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: String::new(),
            },
            Some("c1"),
        );
        assert!(running_container(&waiting, "app").is_err());
    }

    #[test]
    fn runtime_errors_map_as_streaming_write_error() {
        let err = |code| RuntimeError::Call {
            call: "Exec",
            status: Box::new(tonic::Status::new(code, "boom")),
        };
        let r = runtime_error_response(&err(tonic::Code::NotFound));
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = runtime_error_response(&err(tonic::Code::ResourceExhausted));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers().get("retry-after").unwrap(), "60");
        let r = runtime_error_response(&err(tonic::Code::Unavailable));
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
