//! Container lifecycle hooks: `postStart`, run right after a container starts (a failure
//! kills the container, `FailedPostStartHook`), and `preStop`, run before it is stopped
//! (`pkg/kubelet/lifecycle/handlers.go`, `kuberuntime_container.go` `startContainer`,
//! `killContainer`):
//!
//! * `exec`: the command in the container (CRI `ExecSync`), failed when it exits non-zero;
//! * `sleep`: waits `seconds`;
//! * `httpGet`: `GET scheme://host:port/path` with the hook's headers and the kubelet's
//!   `User-Agent: kube-lifecycle/1.35` and `Accept: */*` (the probes' HTTP client,
//!   [`crate::prober`]: redirects followed to the same host only), failed on a connection
//!   error or a status outside 200..=399; the host is the hook's `host`, else the pod's IP (for
//!   a host-network pod, 127.0.0.1: its IP is the node's); a named port is looked up in the
//!   container's ports; HTTPS is used without verifying the certificate, as the kubelet.
//!
//! The hook runs for at most the grace period; the caller subtracts what it took from the grace
//! period left for `StopContainer` (at least 2 s, the kubelet's `minimumGracePeriodInSeconds`).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, LifecycleHandler, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::client::CriClient;
use crate::prober::Scheme;
use crate::prober::http::{HttpError, Url};

/// The least grace period `StopContainer` gets after a hook (the kubelet's
/// `minimumGracePeriodInSeconds`).
pub const MIN_GRACE: Duration = Duration::from_secs(2);

/// The kubelet's `User-Agent` for HTTP hooks.
const HOOK_USER_AGENT: &str = "kube-lifecycle/1.35";

/// Runs `container`'s preStop hook, if it has one, in the running container `id` of `pod`
/// (IP `pod_ip`; `None` on the host network), for at most `grace`. `Ok(false)` when there is no hook.
///
/// # Errors
/// Why the hook failed (its exit code and output, the HTTP status, a timeout).
pub async fn run_pre_stop(
    client: &CriClient,
    pod: &Pod,
    container: &Container,
    id: &str,
    grace: Duration,
    pod_ip: Option<&str>,
) -> Result<bool, String> {
    let Some(hook) = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
    else {
        return Ok(false);
    };
    run_handler(client, pod, container, id, hook, grace, pod_ip).await
}

/// Runs `container`'s postStart hook, if it has one, in the just-started container `id` of
/// `pod` (IP `pod_ip`; `None` on the host network). `Ok(false)` when there is no hook.
///
/// # Errors
/// The kubelet's event message for the failed hook (`Exec lifecycle hook ([...]) for Container
/// "c" in Pod "p_ns(uid)" failed - error: ..., message: "..."`, or the HTTP one).
pub async fn run_post_start(
    client: &CriClient,
    pod: &Pod,
    container: &Container,
    id: &str,
    pod_ip: Option<&str>,
) -> Result<bool, String> {
    let Some(hook) = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.post_start.as_ref())
    else {
        return Ok(false);
    };
    // No limit of its own (the kubelet runs it under the sync's context); a day bounds a
    // hook that never returns.
    let limit = Duration::from_secs(24 * 3600);
    run_handler(client, pod, container, id, hook, limit, pod_ip)
        .await
        .map_err(|e| {
            let pod_name = format!(
                "{}_{}({})",
                pod.metadata.name.as_deref().unwrap_or_default(),
                pod.metadata.namespace.as_deref().unwrap_or("default"),
                pod.metadata.uid.as_deref().unwrap_or_default()
            );
            if let Some(exec) = &hook.exec {
                format!(
                    "Exec lifecycle hook ([{}]) for Container {:?} in Pod {pod_name:?} failed - error: {e}",
                    exec.command.clone().unwrap_or_default().join(" "),
                    container.name
                )
            } else if let Some(http) = &hook.http_get {
                format!(
                    "HTTP lifecycle hook ({}) for Container {:?} in Pod {pod_name:?} failed - error: {e}",
                    http.path.as_deref().unwrap_or_default(),
                    container.name
                )
            } else {
                format!(
                    "lifecycle hook for Container {:?} in Pod {pod_name:?} failed - error: {e}",
                    container.name
                )
            }
        })
}

/// Runs one lifecycle handler for at most `limit`.
async fn run_handler(
    client: &CriClient,
    pod: &Pod,
    container: &Container,
    id: &str,
    hook: &LifecycleHandler,
    limit: Duration,
    pod_ip: Option<&str>,
) -> Result<bool, String> {
    let grace = limit;
    let run = async {
        if let Some(exec) = &hook.exec {
            let cmd = exec.command.clone().unwrap_or_default();
            let secs = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
            let out = client
                .exec_sync(id, cmd.clone(), secs)
                .await
                .map_err(|e| e.with_cause())?;
            if out.exit_code != 0 {
                // The kubelet's form, with the command's output (stdout, then stderr).
                let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
                output.push_str(&String::from_utf8_lossy(&out.stderr));
                return Err(format!(
                    "command '{}' exited with {}: , message: {output:?}",
                    cmd.join(" "),
                    out.exit_code,
                ));
            }
        } else if let Some(sleep) = &hook.sleep {
            let secs = u64::try_from(sleep.seconds).unwrap_or(0);
            tokio::time::sleep(Duration::from_secs(secs).min(grace)).await;
        } else if let Some(http) = &hook.http_get {
            http_get(pod, container, http, pod_ip).await?;
        } else if hook.tcp_socket.is_some() {
            // Deprecated and never run by the kubelet either.
            return Ok(());
        }
        Ok(())
    };
    match tokio::time::timeout(grace, run).await {
        Ok(Ok(())) => Ok(true),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("timed out after {grace:?}")),
    }
}

/// The port of an HTTP hook: a number, or a name from the container's ports.
fn port_of(container: &Container, port: &IntOrString) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("couldn't find port {name:?} in the container's ports")),
    }
}

/// The URL and headers of an HTTP hook (pure, for tests).
fn hook_url(http: &HTTPGetAction, host: &str, port: u16) -> (Url, Vec<(String, String)>) {
    let scheme = if http
        .scheme
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"))
    {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let path = http.path.as_deref().unwrap_or("/");
    let headers = http
        .http_headers
        .iter()
        .flatten()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect();
    (Url::new(scheme, host, port, path), headers)
}

/// The HTTP request of an HTTP hook (pure, for tests): the probes' request with the hooks'
/// `User-Agent`.
#[cfg(test)]
fn http_request(http: &HTTPGetAction, host: &str, port: u16) -> String {
    let (url, headers) = hook_url(http, host, port);
    crate::prober::http::request(&url, &headers, HOOK_USER_AGENT)
}

async fn http_get(
    pod: &Pod,
    container: &Container,
    http: &HTTPGetAction,
    pod_ip: Option<&str>,
) -> Result<(), String> {
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    let host = match http.host.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => h.to_owned(),
        None if host_network => "127.0.0.1".to_owned(),
        None => match pod_ip {
            Some(ip) => ip.to_owned(),
            None => return Err("the pod has no IP yet".to_owned()),
        },
    };
    let port = port_of(container, &http.port)?;
    let (url, headers) = hook_url(http, &host, port);
    // No timeout of its own: the hook runs within the grace period (run_pre_stop).
    let response = crate::prober::http::get(&url, &headers, HOOK_USER_AGENT, Duration::MAX)
        .await
        .map_err(|e| match e {
            HttpError::Transport(e) | HttpError::Body(e) => e,
        })?;
    if (200..400).contains(&response.status) {
        Ok(())
    } else {
        Err(format!(
            "HTTP status {} from {host}:{port}",
            response.status
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn http_requests_are_built_safely() {
        let http: HTTPGetAction = serde_json::from_value(serde_json::json!({
            "path": "drain", "port": 8080,
            "httpHeaders": [
                {"name": "X-A", "value": "1"},
                {"name": "X-Bad", "value": "x\r\nInjected: yes"}
            ]
        }))
        .unwrap();
        let req = http_request(&http, "127.0.0.1", 8080);
        assert_eq!(
            req,
            "GET /drain HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: kube-lifecycle/1.35\r\nAccept: */*\r\nX-A: 1\r\nConnection: close\r\n\r\n"
        );
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "web", "containerPort": 80}]
        }))
        .unwrap();
        assert_eq!(port_of(&c, &IntOrString::String("web".into())), Ok(80));
        assert!(port_of(&c, &IntOrString::String("nope".into())).is_err());
        assert!(port_of(&c, &IntOrString::Int(70000)).is_err());
    }

    #[tokio::test]
    async fn an_http_hook_talks_to_a_real_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            for answer in ["HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 500 Oops\r\n\r\n"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0; 1024];
                let n = s.read(&mut buf).await.unwrap();
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /stop HTTP/1.1\r\n"));
                s.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "spec": {"hostNetwork": true, "containers": []}
        }))
        .unwrap();
        let c = Container::default();
        let http: HTTPGetAction = serde_json::from_value(serde_json::json!({
            "path": "/stop", "port": port
        }))
        .unwrap();
        assert_eq!(http_get(&pod, &c, &http, None).await, Ok(()));
        let err = http_get(&pod, &c, &http, None).await.unwrap_err();
        assert!(err.starts_with("HTTP status 500"), "{err}");
        server.await.unwrap();
    }
}
