#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The secured port as the agent composes it (node-server's filter and serving loop in front of
//! node-checkpoint's router), against hostile requests, over real TLS with curl (and a raw rustls client
//! where curl cannot send the bytes): authentication before any routing, the kubelet's codes
//! and texts for authenticated requests (the real checkpoint router and a real CRI server
//! behind the filter), panics answered 500 while the server keeps serving, and bounded
//! heads, bodies, connections and idle time.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::routing::{get, post};
use node_checkpoint::test_support::CriTestServer;
use node_checkpoint::{CheckpointConfig, CheckpointService};
use node_config::KubeletConfiguration;
use node_heartbeat::testserver::TestApiServer;
use node_runtime::{ContainerInfo, ContainerKind, ContainerState, PodInfo, PodPhase, PodRegistry};
use node_server::{
    INTERNAL_SERVER_ERROR, KubeletAuth, RequestAuth, ServeOptions, UserInfo, guarded,
    page_not_found, secured, serve_http_with, serve_https_with, serving_cert, tls_config,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const NODE: &str = "node-1";

/// Files curl needs: a client CA and one client certificate (CN alice).
type Pki = common::ClientCerts;

fn pki(dir: &Path) -> Pki {
    common::client_certs(dir, "alice", &[])
}

fn pod_registry() -> PodRegistry {
    let registry = PodRegistry::new();
    registry.upsert(PodInfo {
        namespace: "default".to_owned(),
        name: "web".to_owned(),
        uid: "uid-web".to_owned(),
        source: node_runtime::PodSource::File(PathBuf::from("/etc/kubernetes/manifests/web.yaml")),
        pod: None,
        sandbox_id: Some("sandbox-1".to_owned()),
        pod_ips: Vec::new(),
        phase: PodPhase::Running,
        reason: None,
        message: None,
        conditions: Vec::new(),
        containers: vec![ContainerInfo {
            name: "app".to_owned(),
            kind: ContainerKind::Regular,
            container_id: Some("ctr-app".to_owned()),
            image: "docker.io/library/busybox:local".to_owned(),
            state: ContainerState::Running { started_at: 1 },
            restart_count: 0,
            ready: true,
            log_path: None,
            image_id: None,
            last_state: None,
            started: None,
        }],
    });
    registry
}

/// How often the deliberately panicking test route ran.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The routes behind the filter: a user echo, a test-only route that panics, a route that
/// reads its body, and the real checkpoint router in front of a real CRI test server.
fn routes(checkpoint: Arc<CheckpointService>) -> Router {
    Router::new()
        .route(
            "/pods",
            get(|Extension(user): Extension<UserInfo>| async move { user.name }),
        )
        .route(
            "/panic",
            get(|| async {
                PANICS.fetch_add(1, Ordering::SeqCst);
                if std::hint::black_box(true) {
                    panic!("secret panic detail");
                }
                "unreachable"
            }),
        )
        .route(
            "/echo",
            post(|body: String| async move { body.len().to_string() }),
        )
        .merge(node_checkpoint::router(checkpoint))
        .fallback(page_not_found)
}

/// A running secured server (real TLS on a real socket) with the kubelet's filter.
struct Server {
    addr: SocketAddr,
    serving_ca: PathBuf,
    pki: Pki,
    cri: CriTestServer,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), node_server::ServerError>>,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start(
        tweak: impl FnOnce(&mut KubeletConfiguration, &Pki),
        api: Option<&TestApiServer>,
        options: ServeOptions,
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        let mut cfg = KubeletConfiguration::default();
        cfg.authentication.anonymous.enabled = Some(false);
        cfg.authentication.webhook.enabled = Some(false);
        cfg.authentication.x509.client_ca_file = pki.ca_file.display().to_string();
        cfg.authorization.mode = "AlwaysAllow".to_owned();
        tweak(&mut cfg, &pki);
        let cert = serving_cert(&cfg, &dir.path().join("pki"), NODE, &[]).unwrap();
        let tls = tls_config(
            &cert,
            Some(&pki.ca_file),
            &cfg.tls_min_version,
            &cfg.tls_cipher_suites,
        )
        .unwrap();
        let client = api
            .map(|a| kube::Client::try_from(kube::Config::new(a.url().parse().unwrap())).unwrap());
        let auth: Arc<dyn RequestAuth> = Arc::new(KubeletAuth::from_config(&cfg, client).unwrap());
        let cri = CriTestServer::start(dir.path()).unwrap();
        let checkpoint = CheckpointService::connect(
            CheckpointConfig::new(dir.path().join("root"), NODE),
            &cri.endpoint(),
            pod_registry(),
        )
        .await
        .unwrap();
        let app = secured(routes(Arc::new(checkpoint)), auth, NODE);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_https_with(
            listener,
            tls,
            app,
            async {
                let _ = stopped.await;
            },
            options,
        ));
        Server {
            addr,
            // The generated kubelet.crt holds the leaf and its self-signed CA.
            serving_ca: cert.cert_file.clone(),
            pki,
            cri,
            stop: Some(stop),
            task,
            dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// curl against this server: `--cacert` the serving CA, `--resolve` localhost to it,
    /// `--path-as-is` so curl sends the path as written (and `-g`: no URL globbing); `with_cert` adds alice's client
    /// certificate.
    fn curl(&self, with_cert: bool, args: &[&str]) -> Answer {
        let mut all: Vec<String> = vec![
            "--cacert".into(),
            self.serving_ca.display().to_string(),
            "--resolve".into(),
            format!("localhost:{}:127.0.0.1", self.addr.port()),
            "--path-as-is".into(),
            "-g".into(),
        ];
        if with_cert {
            all.extend([
                "--cert".into(),
                self.pki.cert.display().to_string(),
                "--key".into(),
                self.pki.key.display().to_string(),
            ]);
        }
        all.extend(args.iter().map(|a| (*a).to_owned()));
        curl(&all)
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// A curl answer: status (0 when no HTTP answer came), body, content type.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    content_type: String,
}

fn curl(args: &[String]) -> Answer {
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{content_type}",
        ])
        .args(args)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", "0 "));
    let (code, ctype) = tail.split_once(' ').unwrap_or((tail, ""));
    Answer {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_owned(),
        content_type: ctype.trim().to_owned(),
    }
}

/// Writes `len` bytes of `x` to a file in `dir` (for `--data-binary @file`).
fn blob(dir: &Path, len: usize) -> String {
    let path = dir.join(format!("blob-{len}"));
    std::fs::write(&path, vec![b'x'; len]).unwrap();
    format!("@{}", path.display())
}

const PATHS: [&str; 9] = [
    "/pods",
    "/checkpoint/a/b/c",
    "/checkpoint/default/web/app",
    "/checkpoint",
    "/nonexistent",
    "/",
    "/panic",
    "/echo",
    "/checkpoint/%ff/b/c",
];

/// Anonymous off, no client certificate: every method on every path, known or not, is 401
/// `Unauthorized`, and nothing behind the filter ran (no panic, no CRI call, no body read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_are_401_on_every_method_and_path() {
    let server = Server::start(|_, _| {}, None, ServeOptions::default()).await;
    let big = blob(server.dir.path(), 3 << 20);
    let panics_before = PANICS.load(Ordering::SeqCst);
    for path in PATHS {
        let url = server.url(path);
        for method in [
            "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW",
        ] {
            let r = server.curl(false, &["-X", method, &url]);
            assert_eq!(
                (r.status, r.body.as_str(), r.content_type.as_str()),
                (401, "Unauthorized", "text/plain; charset=utf-8"),
                "{method} {path}"
            );
        }
        // HEAD (no body in the answer) and a body far over the cap: still 401.
        let r = server.curl(false, &["-I", &url]);
        assert_eq!(r.status, 401, "HEAD {path}");
        let r = server.curl(false, &["-X", "POST", "--data-binary", &big, &url]);
        assert_eq!((r.status, r.body.as_str()), (401, "Unauthorized"), "{path}");
    }
    // Asterisk-form and authority-form targets are no way around the filter.
    let base = server.url("");
    for (method, target) in [("OPTIONS", "*"), ("CONNECT", "localhost:1")] {
        let r = server.curl(false, &["-X", method, "--request-target", target, &base]);
        assert_eq!(
            (r.status, r.body.as_str()),
            (401, "Unauthorized"),
            "{method} {target}"
        );
    }
    // A bearer token nobody can check (no webhook) does not help either.
    let r = server.curl(
        false,
        &["-H", "Authorization: Bearer x", &server.url("/pods")],
    );
    assert_eq!(r.status, 401);
    assert_eq!(PANICS.load(Ordering::SeqCst), panics_before);
    assert!(server.cri.seen().is_empty(), "the runtime was never called");
    server.shutdown().await;
}

/// With alice's certificate the kubelet's own answers come back: 404 texts, 405 for a wrong
/// method on the checkpoint route, the checkpoint texts (including the bad-timeout 404 for a
/// value beyond a Go Duration), 413 for oversized bodies, and non-UTF-8 path segments are a
/// plain 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_requests_keep_the_kubelets_codes_and_texts() {
    let server = Server::start(|_, _| {}, None, ServeOptions::default()).await;
    let get = |path: &str| server.curl(true, &[&server.url(path)]);
    let post = |path: &str| server.curl(true, &["-X", "POST", &server.url(path)]);

    let r = get("/pods");
    assert_eq!((r.status, r.body.as_str()), (200, "alice"));
    for path in ["/nonexistent", "/pods%ff", "/checkpoint", "/"] {
        let r = get(path);
        assert_eq!(
            (r.status, r.body.as_str()),
            (404, "404 page not found"),
            "{path}"
        );
    }
    assert_eq!(get("/checkpoint/default/web/app").status, 405);
    let r = server.curl(
        true,
        &["-X", "OPTIONS", "--request-target", "*", &server.url("")],
    );
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found"));

    let r = post("/checkpoint/default/web/app?timeout=400000000000");
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "cannot parse value of timeout parameter")
    );
    let r = post("/checkpoint/default/web/app?timeout=5&timeout=9223372037");
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "cannot parse value of timeout parameter")
    );
    for path in [
        "/checkpoint/%ff/web/app",
        "/checkpoint/default/%c3%28/app",
        "/checkpoint/nope/web/app",
    ] {
        let r = post(path);
        assert_eq!(
            (r.status, r.body.as_str()),
            (404, "pod does not exist"),
            "{path}"
        );
    }
    let r = post("/checkpoint/default/web/app?timeout=-1");
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            500,
            "checkpointing of default/web/app failed (CheckpointContainer requires the timeout value to be > 0)"
        )
    );
    assert!(server.cri.seen().is_empty());
    let r = post("/checkpoint/default/web/app?timeout=9223372036");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type, "application/json");
    assert!(r.body.starts_with("{\"items\":[\""), "{}", r.body);
    assert_eq!(server.cri.seen()[0].timeout, 9_223_372_036);

    // Bodies: under the cap read, over it 413, declared or streamed.
    let small = blob(server.dir.path(), 1000);
    let url = server.url("/echo");
    let r = server.curl(true, &["--data-binary", &small, &url]);
    assert_eq!((r.status, r.body.as_str()), (200, "1000"));
    let big = blob(server.dir.path(), (1 << 20) + 1);
    let r = server.curl(true, &["--data-binary", &big, &url]);
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.body, "request body too large: more than 1048576 bytes");
    let r = server.curl(
        true,
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &big,
            &url,
        ],
    );
    assert_eq!(r.status, 413, "{}", r.body);
    // A route that takes no body ignores one (never reads it).
    let r = server.curl(
        true,
        &["-X", "GET", "--data-binary", &small, &server.url("/pods")],
    );
    assert_eq!((r.status, r.body.as_str()), (200, "alice"));
    server.shutdown().await;
}

/// Webhook authorization on the checkpoint route: alice may only use `proxy`, so the
/// checkpoint (verb `create`, subresource `checkpoint`) is the kubelet's 403, and so is a GET
/// on it (authorization comes before the 405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_authorization_is_the_filters_403() {
    let api = TestApiServer::start().await.unwrap();
    api.add_token("alice-token", "alice", &["system:authenticated"]);
    api.allow_access("alice", "proxy");
    let server = Server::start(
        |cfg, _| {
            cfg.authentication.webhook.enabled = Some(true);
            cfg.authorization.mode = "Webhook".to_owned();
        },
        Some(&api),
        ServeOptions::default(),
    )
    .await;
    let bearer = ["-H", "Authorization: Bearer alice-token"];
    let url = server.url("/checkpoint/default/web/app");
    let r = server.curl(false, &[bearer[0], bearer[1], "-X", "POST", &url]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            403,
            "Forbidden (user=alice, verb=create, resource=nodes, subresource(s)=[checkpoint])\n"
        )
    );
    let r = server.curl(false, &[bearer[0], bearer[1], &url]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            403,
            "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[checkpoint])\n"
        )
    );
    let r = server.curl(false, &[bearer[0], bearer[1], &server.url("/nonexistent")]);
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found"));
    let r = server.curl(
        false,
        &["-H", "Authorization: Bearer wrong", "-X", "PUT", &url],
    );
    assert_eq!((r.status, r.body.as_str()), (401, "Unauthorized"));
    assert!(server.cri.seen().is_empty());
    server.shutdown().await;
}

/// A handler that panics is a plain-text 500 without the panic message, and the same server
/// (the same keep-alive connection, even) serves the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_500_and_the_server_keeps_serving() {
    let server = Server::start(|_, _| {}, None, ServeOptions::default()).await;
    let before = PANICS.load(Ordering::SeqCst);
    let r = server.curl(true, &[&server.url("/panic")]);
    assert_eq!(
        (r.status, r.body.as_str(), r.content_type.as_str()),
        (500, INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8")
    );
    assert!(!r.body.contains("secret"));
    assert_eq!(PANICS.load(Ordering::SeqCst), before + 1);
    // Two URLs in one curl run share one connection: the panic did not end it.
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "--path-as-is", "--cacert"])
        .arg(&server.serving_ca)
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", server.addr.port()))
        .arg("--cert")
        .arg(&server.pki.cert)
        .arg("--key")
        .arg(&server.pki.key)
        .args(["-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n"])
        .arg(server.url("/panic"))
        .args(["-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n"])
        .arg(server.url("/pods"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "500 1\n200 0\n");
    let r = server.curl(true, &[&server.url("/pods")]);
    assert_eq!((r.status, r.body.as_str()), (200, "alice"));
    server.shutdown().await;

    // The plain (healthz) port behind guarded() does the same.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = guarded(
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/panic",
                get(|| async {
                    if std::hint::black_box(true) {
                        panic!("secret panic detail");
                    }
                    "unreachable"
                }),
            )
            .fallback(page_not_found),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_http_with(
        listener,
        app,
        async {
            let _ = stopped.await;
        },
        ServeOptions::default(),
    ));
    let url = |p: &str| format!("http://{addr}{p}");
    let r = curl(&[url("/panic")]);
    assert_eq!((r.status, r.body.as_str()), (500, INTERNAL_SERVER_ERROR));
    let r = curl(&[url("/healthz")]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A finished TLS handshake with `server` (trusting its serving CA), no request sent.
async fn tls_connect(server: &Server) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&server.serving_ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// A rustls client for bytes curl will not send.
async fn raw_tls(server: &Server, request: &[u8]) -> String {
    let mut tls = tls_connect(server).await;
    tls.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Heads that are too large or not HTTP are refused by the server before any handler or
/// the filter: 431 for a huge header or path, 400 for raw non-UTF-8 bytes in the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_heads_are_a_clear_4xx() {
    let server = Server::start(|_, _| {}, None, ServeOptions::default()).await;
    // Heads over the 64 KiB limit but within the server's read buffer (64 KiB + 8 KiB), so
    // the server has read the whole request when it answers and closes: the client always
    // gets the 431. (A much larger head is cut off when the buffer is full; the client may
    // then see the connection reset before it reads the answer.)
    let huge = format!("X-Filler: {}", "a".repeat(66 * 1024));
    for with_cert in [false, true] {
        let r = server.curl(with_cert, &["-H", &huge, &server.url("/pods")]);
        assert_eq!(r.status, 431, "{with_cert}");
        let long_path = format!("/pods/{}", "p".repeat(67 * 1024));
        let r = server.curl(with_cert, &[&server.url(&long_path)]);
        assert_eq!(r.status, 431, "{with_cert}");
        let long_query = format!("/checkpoint/default/web/app?{}", "timeout=1&".repeat(6800));
        let r = server.curl(with_cert, &["-X", "POST", &server.url(&long_query)]);
        assert_eq!(r.status, 431, "{with_cert}");
    }
    // Many repeated parameters within the head limit: parsed, last one wins.
    let many = format!(
        "/checkpoint/default/web/app?{}timeout=400000000000",
        "timeout=1&".repeat(3000)
    );
    let r = server.curl(true, &["-X", "POST", &server.url(&many)]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "cannot parse value of timeout parameter")
    );
    let answer = raw_tls(
        &server,
        b"GET /p\xffods HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let answer = raw_tls(
        &server,
        b"GET /pods HTTP/1.1\r\nHost: localhost\r\nX-Bad: \xff\x00\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    // Unauthenticated and well-formed: still the filter's 401.
    let answer = raw_tls(
        &server,
        b"GET /p%ffods HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    server.shutdown().await;
}

async fn eof_within(stream: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(limit, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// A client cannot hold the server: connections beyond the limit are closed at once, a
/// connection that never finishes its TLS handshake or never sends a request head (also
/// between keep-alive requests) is closed after its timeout, and freed slots are reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_idle_clients_are_bounded() {
    let options = ServeOptions::default()
        .with_max_connections(2)
        .with_header_read_timeout(Duration::from_secs(1))
        .with_handshake_timeout(Duration::from_secs(5));
    let server = Server::start(|_, _| {}, None, options).await;
    // Two silent TCP connections take both slots...
    let mut a = TcpStream::connect(server.addr).await.unwrap();
    let mut b = TcpStream::connect(server.addr).await.unwrap();
    // ...so a third is closed without a handshake (curl sees no HTTP answer).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = server.curl(true, &["--max-time", "5", &server.url("/pods")]);
        if r.status == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "third connection served: {r:?}");
    }
    // The silent ones are closed when the handshake timeout passes...
    assert!(eof_within(&mut a, Duration::from_secs(10)).await);
    assert!(eof_within(&mut b, Duration::from_secs(10)).await);
    // ...and the slots are free again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = server.curl(true, &[&server.url("/pods")]);
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots never freed: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An idle TLS connection (handshake done, no request) is closed after the header read
    // timeout.
    let mut idle = tls_connect(&server).await;
    let start = Instant::now();
    assert!(eof_within(&mut idle, Duration::from_secs(5)).await);
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    server.shutdown().await;
}
