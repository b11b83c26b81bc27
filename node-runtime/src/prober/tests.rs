//! Handlers against real servers on 127.0.0.1 and the manager's workers end to end.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;

fn container(json: serde_json::Value) -> Container {
    serde_json::from_value(json).unwrap()
}

fn spec(kind: ProbeKind, json: serde_json::Value) -> ProbeSpec {
    let probe: Probe = serde_json::from_value(json).unwrap();
    ProbeSpec::new(kind, &probe)
}

async fn probe(json: serde_json::Value, c: &Container) -> ProbeOutcome {
    let spec = spec(ProbeKind::Readiness, json);
    let ctx = ProbeContext {
        container: c,
        container_id: "c1",
        pod_ip: Some("127.0.0.1"),
    };
    run_probe(None, &spec, ctx).await
}

async fn http_probe(port: u16, path: &str) -> ProbeOutcome {
    probe(
        serde_json::json!({"httpGet": {"port": port, "path": path}}),
        &Container::default(),
    )
    .await
}

/// Reads a request head (up to the blank line).
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 65536 {
        match s.read(&mut byte).await {
            Ok(1) => buf.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// Answers one connection with each of `answers` in turn; returns the request heads.
fn serve(l: TcpListener, answers: Vec<String>) -> JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        for a in answers {
            let (mut s, _) = l.accept().await.unwrap();
            seen.push(read_head(&mut s).await);
            let _ = s.write_all(a.as_bytes()).await;
            let _ = s.shutdown().await;
        }
        seen
    })
}

/// Answers every connection with `answer`, forever.
fn serve_forever(l: TcpListener, answer: &'static str) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                read_head(&mut s).await;
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    })
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    listener().await.1
}

#[tokio::test]
async fn http_200_sends_the_kubelet_headers() {
    let (l, port) = listener().await;
    let server = serve(
        l,
        vec!["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA".into()],
    );
    assert_eq!(
        http_probe(port, "/healthz").await,
        ProbeOutcome::Success("ok".into())
    );
    let seen = server.await.unwrap();
    let req = &seen[0];
    assert!(req.starts_with("GET /healthz HTTP/1.1\r\n"), "{req}");
    assert!(
        req.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
        "{req}"
    );
    assert!(req.contains("\r\nUser-Agent: kube-probe/1.35\r\n"), "{req}");
    assert!(req.contains("\r\nAccept: */*\r\n"), "{req}");
    assert!(req.contains("\r\nConnection: close\r\n"), "{req}");
    assert!(
        !req.to_ascii_lowercase().contains("accept-encoding"),
        "{req}"
    );
}

#[tokio::test]
async fn same_host_redirects_are_followed() {
    let (l, port) = listener().await;
    let server = serve(
        l,
        vec![
            "HTTP/1.1 301 Moved\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n".into(),
            format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/last\r\n\r\n"),
            // No length: the body runs to the end of the connection; chunked works too.
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfine\r\n0\r\n\r\n".into(),
        ],
    );
    assert_eq!(
        http_probe(port, "/").await,
        ProbeOutcome::Success("fine".into())
    );
    let seen = server.await.unwrap();
    assert!(seen[1].starts_with("GET /next HTTP/1.1"), "{}", seen[1]);
    assert!(seen[2].starts_with("GET /last HTTP/1.1"), "{}", seen[2]);
}

#[tokio::test]
async fn a_cross_host_redirect_is_a_warning() {
    let (l, port) = listener().await;
    let server = serve(
        l,
        vec![format!(
            "HTTP/1.1 302 Found\r\nLocation: http://localhost:{port}/elsewhere\r\n\r\nsee there"
        )],
    );
    assert_eq!(
        http_probe(port, "/").await,
        ProbeOutcome::Warning("Probe terminated redirects, Response body: see there".into())
    );
    server.await.unwrap();
}

#[tokio::test]
async fn endless_redirects_stop_at_ten() {
    let (l, port) = listener().await;
    let answers = (0..10)
        .map(|i| format!("HTTP/1.1 307 Again\r\nLocation: /r{i}\r\n\r\n"))
        .collect();
    let server = serve(l, answers);
    let ProbeOutcome::Failure(e) = http_probe(port, "/").await else {
        panic!("not a failure");
    };
    assert!(e.ends_with("stopped after 10 redirects"), "{e}");
    assert_eq!(server.await.unwrap().len(), 10);
}

#[tokio::test]
async fn http_errors_are_failures() {
    let (l, port) = listener().await;
    let server = serve(
        l,
        vec!["HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nboom".into()],
    );
    assert_eq!(
        http_probe(port, "/").await,
        ProbeOutcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    server.await.unwrap();

    let port = closed_port().await;
    assert_eq!(
        http_probe(port, "/x").await,
        ProbeOutcome::Failure(format!(
            "Get \"http://127.0.0.1:{port}/x\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        ))
    );
}

#[tokio::test]
async fn hostile_servers_are_failures_not_panics() {
    let (l, port) = listener().await;
    let server = serve(l, vec!["garbage\r\n\r\n".into(), String::new()]);
    let ProbeOutcome::Failure(e) = http_probe(port, "/").await else {
        panic!("not a failure");
    };
    assert!(e.ends_with("malformed HTTP response \"garbage\""), "{e}");
    // A connection closed without an answer.
    let ProbeOutcome::Failure(e) = http_probe(port, "/").await else {
        panic!("not a failure");
    };
    assert!(e.ends_with(": EOF"), "{e}");
    server.await.unwrap();

    // Headers that never end.
    let (l, port) = listener().await;
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        read_head(&mut s).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
        let line = format!("X-Big: {}\r\n", "a".repeat(1000));
        for _ in 0..200 {
            if s.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let ProbeOutcome::Failure(e) = http_probe(port, "/").await else {
        panic!("not a failure");
    };
    assert!(
        e.contains("server response headers exceeded 65536 bytes"),
        "{e}"
    );
    server.await.unwrap();

    // A huge body is read up to 10 KiB.
    let (l, port) = listener().await;
    let body = "b".repeat(100_000);
    let server = serve(l, vec![format!("HTTP/1.1 200 OK\r\n\r\n{body}")]);
    let ProbeOutcome::Success(out) = http_probe(port, "/").await else {
        panic!("not a success");
    };
    assert_eq!(out.len(), MAX_BODY);
    server.await.unwrap();
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (l, port) = listener().await;
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    });
    let start = Instant::now();
    let outcome = probe(
        serde_json::json!({"httpGet": {"port": port}, "timeoutSeconds": 1}),
        &Container::default(),
    )
    .await;
    let took = start.elapsed();
    let ProbeOutcome::Failure(e) = outcome else {
        panic!("not a failure: {outcome:?}");
    };
    assert!(e.contains("Client.Timeout exceeded"), "{e}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    server.abort();
}

#[tokio::test]
async fn named_ports_and_custom_headers() {
    let (l, port) = listener().await;
    let server = serve(l, vec!["HTTP/1.1 204 No Content\r\n\r\n".into()]);
    let c = container(serde_json::json!({
        "name": "app", "ports": [{"name": "web", "containerPort": port}]
    }));
    let outcome = probe(
        serde_json::json!({"httpGet": {"port": "web", "path": "/h?x=1", "httpHeaders": [
            {"name": "X-Custom", "value": "yes"},
            {"name": "Host", "value": "svc.example"},
            {"name": "Accept", "value": ""},
            {"name": "User-Agent", "value": "mine"}
        ]}}),
        &c,
    )
    .await;
    assert_eq!(outcome, ProbeOutcome::Success(String::new()));
    let req = &server.await.unwrap()[0];
    assert!(req.starts_with("GET /h?x=1 HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("\r\nHost: svc.example\r\n"), "{req}");
    assert!(req.contains("\r\nX-Custom: yes\r\n"), "{req}");
    assert!(req.contains("\r\nUser-Agent: mine\r\n"), "{req}");
    assert!(!req.contains("Accept"), "{req}");
    assert!(!req.contains("kube-probe"), "{req}");

    // A port name the container does not have: an error (retried, then thrown away).
    let outcome = probe(serde_json::json!({"httpGet": {"port": "nope"}}), &c).await;
    assert_eq!(outcome, ProbeOutcome::Error("port nope not found".into()));
}

#[tokio::test]
async fn https_accepts_a_self_signed_certificate() {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = key.cert.der().clone();
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], private)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (l, port) = listener().await;
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut tls = acceptor.accept(s).await.unwrap();
        let head = read_head(&mut tls).await;
        tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
            .await
            .unwrap();
        let _ = tls.shutdown().await;
        head
    });
    let outcome = probe(
        serde_json::json!({"httpGet": {"port": port, "scheme": "HTTPS", "path": "/tls"}}),
        &Container::default(),
    )
    .await;
    assert_eq!(outcome, ProbeOutcome::Success("secure".into()));
    assert!(server.await.unwrap().starts_with("GET /tls HTTP/1.1\r\n"));

    // HTTPS to a plain-HTTP server fails the handshake: a failure, not a panic.
    let (l, port) = listener().await;
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let outcome = probe(
        serde_json::json!({"httpGet": {"port": port, "scheme": "HTTPS"}}),
        &Container::default(),
    )
    .await;
    assert!(
        matches!(&outcome, ProbeOutcome::Failure(e) if e.contains("tls")),
        "{outcome:?}"
    );
    server.abort();
}

#[tokio::test]
async fn tcp_open_and_closed() {
    let (l, port) = listener().await;
    let c = Container::default();
    let open = probe(serde_json::json!({"tcpSocket": {"port": port}}), &c).await;
    assert_eq!(open, ProbeOutcome::Success(String::new()));
    drop(l);
    let closed = probe(serde_json::json!({"tcpSocket": {"port": port}}), &c).await;
    assert_eq!(
        closed,
        ProbeOutcome::Failure(format!(
            "dial tcp 127.0.0.1:{port}: connect: connection refused"
        ))
    );
    let host = probe(
        serde_json::json!({"tcpSocket": {"port": port, "host": "::1"}}),
        &c,
    )
    .await;
    assert!(
        matches!(&host, ProbeOutcome::Failure(e) if e.starts_with(&format!("dial tcp [::1]:{port}: "))),
        "{host:?}"
    );
}

/// A `grpc.health.v1.Health` server: the service `"sick"` is NOT_SERVING, the others SERVING.
#[derive(Clone)]
struct Health;

impl tonic::server::NamedService for Health {
    const NAME: &'static str = "grpc.health.v1.Health";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<tonic::codegen::http::Request<tonic::body::Body>> for Health {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() != HEALTH_CHECK_PATH {
                return Ok(tonic::Status::unimplemented("no such method").into_http());
            }
            let check = tower::service_fn(|r: tonic::Request<HealthCheckRequest>| async move {
                let status = if r.get_ref().service == "sick" {
                    ServingStatus::NotServing
                } else {
                    ServingStatus::Serving
                };
                Ok::<_, tonic::Status>(tonic::Response::new(HealthCheckResponse {
                    status: status as i32,
                }))
            });
            let codec =
                tonic_prost::ProstCodec::<HealthCheckResponse, HealthCheckRequest>::default();
            Ok(tonic::server::Grpc::new(codec).unary(check, req).await)
        })
    }
}

/// Something else than the health service, so a server without it can be built.
#[derive(Clone)]
struct Other;

impl tonic::server::NamedService for Other {
    const NAME: &'static str = "example.Other";
}

impl tower::Service<tonic::codegen::http::Request<tonic::body::Body>> for Other {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async { Ok(tonic::Status::unimplemented("").into_http()) })
    }
}

#[tokio::test]
async fn grpc_health_checks() {
    let (l, port) = listener().await;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(Health)
            .serve_with_incoming(incoming),
    );
    let t = Duration::from_secs(1);
    assert_eq!(
        grpc("127.0.0.1", port, "", t).await,
        ProbeOutcome::Success("service healthy".into())
    );
    assert_eq!(
        grpc("127.0.0.1", port, "sick", t).await,
        ProbeOutcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
    );
    // Through run_probe: the pod IP and the probe's service.
    let outcome = probe(
        serde_json::json!({"grpc": {"port": port, "service": "sick"}}),
        &Container::default(),
    )
    .await;
    assert!(matches!(outcome, ProbeOutcome::Failure(_)), "{outcome:?}");
    server.abort();

    let (l, port) = listener().await;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(Other)
            .serve_with_incoming(incoming),
    );
    let ProbeOutcome::Failure(e) = grpc("127.0.0.1", port, "", t).await else {
        panic!("not a failure");
    };
    assert!(
        e.starts_with(
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health)"
        ),
        "{e}"
    );
    server.abort();

    // Nothing listening: a connection failure.
    let port = closed_port().await;
    let ProbeOutcome::Failure(e) = grpc("127.0.0.1", port, "", t).await else {
        panic!("not a failure");
    };
    assert!(
        e.starts_with(&format!(
            "error: failed to connect service at \"127.0.0.1:{port}\""
        )) || e.starts_with("timeout: failed to connect service"),
        "{e}"
    );

    // A server that accepts and never speaks HTTP/2: the deadline.
    let (l, port) = listener().await;
    let silent = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    });
    let start = Instant::now();
    let ProbeOutcome::Failure(e) = grpc("127.0.0.1", port, "", t).await else {
        panic!("not a failure");
    };
    assert!(e.starts_with("timeout: "), "{e}");
    assert!(start.elapsed() < Duration::from_secs(3));
    silent.abort();
}

#[tokio::test]
async fn exec_probes_through_the_cri() {
    use crate::test_support::FakeCri;
    let dir = tempfile::tempdir().unwrap();
    let cri = FakeCri::start(dir.path()).unwrap();
    let client = crate::CriClient::connect(&cri.endpoint(), &crate::ClientOptions::default())
        .await
        .unwrap();
    let sandbox = client
        .run_pod_sandbox(crate::cri::PodSandboxConfig::default())
        .await
        .unwrap();
    let id = client
        .create_container(
            &sandbox,
            crate::cri::ContainerConfig::default(),
            crate::cri::PodSandboxConfig::default(),
        )
        .await
        .unwrap();
    let c = container(serde_json::json!({
        "name": "app", "env": [{"name": "FILE", "value": "/tmp/ok"}]
    }));
    let spec = spec(
        ProbeKind::Liveness,
        serde_json::json!({"exec": {"command": ["cat", "$(FILE)"]}, "timeoutSeconds": 2}),
    );
    let ctx = ProbeContext {
        container: &c,
        container_id: &id,
        pod_ip: None,
    };
    assert_eq!(
        run_probe(Some(&client), &spec, ctx).await,
        ProbeOutcome::Success(String::new())
    );
    assert_eq!(
        cri.execs(),
        [(id.clone(), vec!["cat".into(), "/tmp/ok".into()])]
    );

    // A runtime error is retried three times, then thrown away.
    let unknown = ProbeContext {
        container_id: "no-such-container",
        ..ctx
    };
    cri.take_calls();
    let outcome = run_probe(Some(&client), &spec, unknown).await;
    assert!(matches!(outcome, ProbeOutcome::Error(_)), "{outcome:?}");
    let execs = cri
        .take_calls()
        .iter()
        .filter(|c| c.method == "ExecSync")
        .count();
    assert_eq!(execs, MAX_PROBE_RETRIES);

    // The runtime's deadline is the probe's timeout: a failure with the kubelet's text.
    cri.fail(
        "ExecSync",
        Some((tonic::Code::DeadlineExceeded, "timeout 2s exceeded")),
    );
    assert_eq!(
        run_probe(Some(&client), &spec, ctx).await,
        ProbeOutcome::Failure("command timed out: \"cat /tmp/ok\" timed out after 2s".into())
    );
    // Without a runtime: an error.
    assert!(matches!(
        run_probe(None, &spec, ctx).await,
        ProbeOutcome::Error(_)
    ));
}

// ---- the manager ----

fn pod(containers: serde_json::Value) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "uid-1"},
            "spec": {"containers": containers}
        }))
        .unwrap(),
    )
}

fn running(name: &str, id: &str) -> ProbedContainer {
    ProbedContainer {
        name: name.into(),
        container_id: Some(id.into()),
        running_since: SystemTime::now().checked_sub(Duration::from_secs(100)),
        running: true,
        may_restart: true,
    }
}

fn target(pod: &Arc<Pod>, containers: Vec<ProbedContainer>) -> ProbeTarget {
    ProbeTarget {
        uid: "uid-1".into(),
        namespace: "ns".into(),
        name: "web".into(),
        pod: pod.clone(),
        pod_ip: Some("127.0.0.1".into()),
        deleting: false,
        terminal: false,
        containers,
    }
}

/// Waits (at most 15 s) until `f` holds, waking on published changes.
async fn wait_until(m: &ProbeManager, what: &str, mut f: impl FnMut() -> bool) {
    let mut changed = m.changed();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let _ = tokio::time::timeout(Duration::from_millis(100), changed.changed()).await;
    }
}

#[tokio::test]
async fn readiness_follows_the_server() {
    let port = closed_port().await;
    let pod = pod(serde_json::json!([{"name": "app", "readinessProbe": {
        "tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 1}}]));
    let m = ProbeManager::without_runtime();
    m.update(vec![target(&pod, vec![running("app", "c1")])]);
    assert_eq!(m.worker_count(), 1);
    assert!(m.started("uid-1", "app", "c1"), "no startup probe");
    assert!(!m.ready("uid-1", "app", "c1"));
    wait_until(&m, "a readiness failure", || {
        m.result("uid-1", "app", ProbeKind::Readiness, "c1") == Some(ProbeResult::Failure)
    })
    .await;
    assert!(!m.ready("uid-1", "app", "c1"));
    let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    wait_until(&m, "ready", || m.ready("uid-1", "app", "c1")).await;
    // Another instance of the container is not ready; nor is an exited one.
    assert!(!m.ready("uid-1", "app", "c0"));
    drop(l);
    wait_until(&m, "not ready", || !m.ready("uid-1", "app", "c1")).await;
    let events = m.take_events();
    assert!(
        events.iter().any(|e| e.reason == "Unhealthy"
            && e.message.starts_with("Readiness probe failed: dial tcp")
            && e.field_path.as_deref() == Some("spec.containers{app}")
            && e.warning),
        "{events:?}"
    );
    // A container without a readiness probe is ready when running.
    assert!(m.ready("uid-1", "other", "x1"));
    m.stop_all();
}

#[tokio::test]
async fn liveness_failures_ask_to_kill_that_container_only() {
    let (l, port) = listener().await;
    let server = serve_forever(l, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
    let pod = pod(serde_json::json!([{"name": "app", "livenessProbe": {
        "httpGet": {"port": port, "path": "/live"}, "periodSeconds": 1, "failureThreshold": 2,
        "terminationGracePeriodSeconds": 5}}]));
    let m = ProbeManager::without_runtime();
    m.update(vec![target(&pod, vec![running("app", "c1")])]);
    wait_until(&m, "a kill request", || {
        m.kill_request("uid-1", "app", "c1").is_some()
    })
    .await;
    assert_eq!(
        m.kill_request("uid-1", "app", "c1"),
        Some(ProbeKill {
            probe: ProbeKind::Liveness,
            grace: Some(5),
            message: "Container app failed liveness probe, will be restarted".into(),
        })
    );
    assert_eq!(m.kill_request("uid-1", "app", "c0"), None);
    assert_eq!(m.kill_request("uid-2", "app", "c1"), None);
    let events = m.take_events();
    assert!(
        events
            .iter()
            .filter(|e| e.message == "Liveness probe failed: HTTP probe failed with statuscode: 500")
            .count()
            >= 2,
        "{events:?}"
    );

    // The restarted container starts over (liveness Success, probing resumes); it will not be
    // restarted again, so the message has no suffix.
    let mut c2 = running("app", "c2");
    c2.may_restart = false;
    m.update(vec![target(&pod, vec![c2])]);
    assert_eq!(m.kill_request("uid-1", "app", "c2"), None);
    wait_until(&m, "a kill request for c2", || {
        m.kill_request("uid-1", "app", "c2").is_some()
    })
    .await;
    assert_eq!(
        m.kill_request("uid-1", "app", "c2").map(|k| k.message),
        Some("Container app failed liveness probe".into())
    );
    m.remove_pod("uid-1");
    assert_eq!(m.kill_request("uid-1", "app", "c2"), None);
    server.abort();
}

#[tokio::test]
async fn startup_gates_readiness_and_liveness() {
    let (l, port) = listener().await;
    let closed = closed_port().await;
    let pod = pod(serde_json::json!([{"name": "app",
        "startupProbe": {"tcpSocket": {"port": closed}, "periodSeconds": 1, "failureThreshold": 1000},
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
        "livenessProbe": {"tcpSocket": {"port": closed}, "periodSeconds": 1, "failureThreshold": 1}
    }]));
    let m = ProbeManager::without_runtime();
    m.update(vec![target(&pod, vec![running("app", "c1")])]);
    assert_eq!(m.worker_count(), 3);
    wait_until(&m, "startup Unknown", || {
        m.result("uid-1", "app", ProbeKind::Startup, "c1") == Some(ProbeResult::Unknown)
    })
    .await;
    let ticks = m.tick_count();
    wait_until(&m, "a few ticks", || m.tick_count() >= ticks + 6).await;
    assert!(!m.started("uid-1", "app", "c1"));
    assert!(!m.ready("uid-1", "app", "c1"));
    // Liveness never ran (no failure although its port is closed), readiness neither.
    assert_eq!(m.kill_request("uid-1", "app", "c1"), None);
    assert_ne!(
        m.result("uid-1", "app", ProbeKind::Readiness, "c1"),
        Some(ProbeResult::Success)
    );
    drop(l);
    m.stop_all();
}

#[tokio::test]
async fn workers_stop_with_their_pod() {
    let port = closed_port().await;
    let pod = pod(serde_json::json!([
        {"name": "a", "readinessProbe": {"tcpSocket": {"port": port}},
                      "livenessProbe": {"tcpSocket": {"port": port}}},
        {"name": "b", "livenessProbe": {"tcpSocket": {"port": port}}},
        {"name": "c"}
    ]));
    let m = ProbeManager::without_runtime();
    let t = target(&pod, vec![running("a", "a1"), running("b", "b1")]);
    m.update(vec![t.clone()]);
    assert_eq!(m.worker_count(), 3);
    // Another pass with the same pod starts nothing new.
    m.update(vec![t.clone()]);
    assert_eq!(m.worker_count(), 3);
    m.remove_pod("uid-1");
    wait_workers(&m, 0).await;
    // A pass without the pod stops its workers too.
    m.update(vec![t]);
    assert_eq!(m.worker_count(), 3);
    m.update(vec![]);
    wait_workers(&m, 0).await;
}

#[tokio::test]
async fn a_deleted_pod_stops_liveness_and_a_finished_pod_stops_all() {
    let port = closed_port().await;
    let pod = pod(serde_json::json!([{"name": "a",
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
        "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1}}]));
    let m = ProbeManager::without_runtime();
    let mut t = target(&pod, vec![running("a", "a1")]);
    t.deleting = true;
    m.update(vec![t.clone()]);
    wait_workers(&m, 1).await;
    assert_eq!(m.kill_request("uid-1", "a", "a1"), None);
    t.terminal = true;
    m.update(vec![t.clone()]);
    wait_workers(&m, 0).await;
    // Finished workers are not started again by later passes.
    m.update(vec![t]);
    assert_eq!(m.worker_count(), 0);
}

async fn wait_workers(m: &ProbeManager, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while m.worker_count() != n {
        assert!(
            Instant::now() < deadline,
            "{} workers left",
            m.worker_count()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_manager_wakes_only_on_its_ticks() {
    // A probe with no handler errors at once (no I/O), so virtual time is exact.
    let pod = pod(serde_json::json!([{"name": "app", "livenessProbe": {"periodSeconds": 10}}]));
    let m = ProbeManager::without_runtime();
    m.update(vec![target(&pod, vec![running("app", "c1")])]);
    let mut samples = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(m.tick_count());
    }
    // The first tick within one period (start jitter), then one every 10 s: ten in 100 s
    // (eleven only if the jitter was 0).
    let ticks = m.tick_count();
    assert!(ticks == 10 || ticks == 11, "{samples:?}");
    let steps: Vec<usize> = samples
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1] != w[0])
        .map(|(i, _)| i)
        .collect();
    assert!(steps.windows(2).all(|w| w[1] - w[0] == 10), "{samples:?}");
    let events = m.take_events();
    assert_eq!(u64::try_from(events.len()).unwrap(), ticks);
    assert_eq!(
        events[0].message,
        "Liveness probe errored and resulted in unknown state: missing probe handler for app"
    );
    // Errors are thrown away: liveness keeps its initial Success.
    assert_eq!(
        m.result("uid-1", "app", ProbeKind::Liveness, "c1"),
        Some(ProbeResult::Success)
    );
    m.stop_all();
}
