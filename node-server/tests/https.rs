#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Real TLS on real sockets: the generated serving certificate, client certificates, bearer
//! tokens and SubjectAccessReviews against the in-process test API server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::routing::{get, post};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use node_config::KubeletConfiguration;
use node_heartbeat::testserver::TestApiServer;
use node_server::{
    FilterOptions, KubeletAuth, PeerCertificates, RequestAuth, ServingCert, UserInfo, secured_with,
    serve_http, serve_https, serving_cert, tls_config,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const NODE: &str = "node-1";

/// A test certificate authority that issues client certificates.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(cn: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn write(&self, dir: &Path) -> String {
        let path = dir.join(format!("ca-{}.crt", rand_suffix()));
        std::fs::write(&path, &self.pem).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// A client certificate with subject CN=`cn`, O=`orgs`.
    fn client(&self, cn: &str, orgs: &[&str]) -> ClientId {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        // rcgen keeps one value per attribute type; a second O goes in under its raw OID
        // (2.5.4.10), which encodes the same attribute.
        assert!(orgs.len() <= 2, "at most two O values");
        for (i, o) in orgs.iter().enumerate() {
            let ty = if i == 0 {
                DnType::OrganizationName
            } else {
                DnType::CustomDnType(vec![2, 5, 4, 10])
            };
            params.distinguished_name.push(ty, *o);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ClientId {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

struct ClientId {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for ClientId {
    fn clone(&self) -> Self {
        ClientId {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// A running HTTPS server with the kubelet's auth filter.
struct Server {
    addr: SocketAddr,
    serving_ca: CertificateDer<'static>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), node_server::ServerError>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(cfg: &KubeletConfiguration, api: Option<&TestApiServer>) -> Server {
        Self::start_with(cfg, api, FilterOptions::default()).await
    }

    async fn start_with(
        cfg: &KubeletConfiguration,
        api: Option<&TestApiServer>,
        options: FilterOptions,
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let cert = serving_cert(cfg, dir.path(), NODE, &[]).unwrap();
        let ca_file = (!cfg.authentication.x509.client_ca_file.is_empty())
            .then(|| Path::new(&cfg.authentication.x509.client_ca_file));
        let tls = tls_config(&cert, ca_file, &cfg.tls_min_version, &cfg.tls_cipher_suites).unwrap();
        let client = api
            .map(|a| kube::Client::try_from(kube::Config::new(a.url().parse().unwrap())).unwrap());
        let auth: Arc<dyn RequestAuth> = Arc::new(KubeletAuth::from_config(cfg, client).unwrap());
        let app =
            axum::Router::new()
                .route("/pods", get(whoami))
                .route("/runningpods/", get(whoami))
                .route("/healthz", get(whoami))
                .route("/configz", get(whoami))
                .route("/stats/summary", get(whoami))
                .route("/metrics", get(whoami))
                .route("/logs/{*rest}", post(whoami))
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        "slow done"
                    }),
                )
                .route(
                    "/peer",
                    get(|Extension(p): Extension<PeerCertificates>| async move {
                        p.0.len().to_string()
                    }),
                );
        let app = secured_with(app, auth, NODE, options);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_https(listener, tls, app, async {
            let _ = stopped.await;
        }));
        let serving_ca = generated_ca(&cert);
        Server {
            addr,
            serving_ca,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str, id: Option<&ClientId>, token: Option<&str>) -> (u16, String) {
        self.request("GET", path, id, token).await.unwrap()
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        id: Option<&ClientId>,
        token: Option<&str>,
    ) -> Result<(u16, String), String> {
        let mut sender = self.connect(id).await?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = sender
            .send_request(req.body(Empty::<Bytes>::new()).unwrap())
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        if status >= 400 {
            assert_eq!(ct.as_deref(), Some("text/plain; charset=utf-8"), "{body}");
        }
        Ok((status, body))
    }

    async fn connect(
        &self,
        id: Option<&ClientId>,
    ) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.serving_ca.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match id {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("http handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(sender)
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

async fn whoami(Extension(user): Extension<UserInfo>) -> String {
    format!("{} {}", user.name, user.groups.join(","))
}

/// The CA of a generated serving certificate (the second certificate of kubelet.crt).
fn generated_ca(cert: &ServingCert) -> CertificateDer<'static> {
    let pem = std::fs::read(&cert.cert_file).unwrap();
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(chain.len(), 2, "leaf then CA");
    chain[1].clone()
}

fn config(anonymous: bool, mode: &str) -> KubeletConfiguration {
    let mut cfg = KubeletConfiguration::default();
    cfg.authentication.anonymous.enabled = Some(anonymous);
    cfg.authentication.webhook.enabled = Some(false);
    cfg.authorization.mode = mode.to_owned();
    cfg
}

#[tokio::test]
async fn client_certificates_map_to_users_and_foreign_cas_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test-client-ca");
    let other = TestCa::new("other-ca");
    let mut cfg = config(false, "AlwaysAllow");
    cfg.authentication.x509.client_ca_file = ca.write(dir.path());
    let server = Server::start(&cfg, None).await;

    let alice = ca.client("alice", &["ops", "dev"]);
    assert_eq!(
        server.get("/pods", Some(&alice), None).await,
        (200, "alice ops,dev,system:authenticated".to_owned())
    );
    assert_eq!(server.get("/peer", Some(&alice), None).await.1, "1");

    // No certificate, anonymous off: 401.
    assert_eq!(
        server.get("/pods", None, None).await,
        (401, "Unauthorized".to_owned())
    );

    // Signed by another CA: the handshake is refused (TLS 1.3 clients notice on first use).
    let mallory = other.client("mallory", &["system:masters"]);
    let result = server.request("GET", "/pods", Some(&mallory), None).await;
    assert!(result.is_err(), "{result:?}");

    server.shutdown().await;
}

#[tokio::test]
async fn anonymous_requests_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test-client-ca");
    let mut cfg = config(true, "AlwaysAllow");
    cfg.authentication.x509.client_ca_file = ca.write(dir.path());
    let server = Server::start(&cfg, None).await;
    assert_eq!(
        server.get("/pods", None, None).await,
        (200, "system:anonymous system:unauthenticated".to_owned())
    );
    assert_eq!(server.get("/peer", None, None).await.1, "0");
    // A certificate still wins over anonymous.
    let bob = ca.client("bob", &[]);
    assert_eq!(
        server.get("/pods", Some(&bob), None).await.1,
        "bob system:authenticated"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bearer_tokens_through_token_review() {
    let api = TestApiServer::start().await.unwrap();
    api.add_token("good-token", "carol", &["system:authenticated", "team"]);
    let mut cfg = config(true, "AlwaysAllow");
    cfg.authentication.webhook.enabled = Some(true);
    cfg.authentication.webhook.cache_ttl = node_config::Duration::from_mins(2);
    let server = Server::start(&cfg, Some(&api)).await;

    assert_eq!(
        server.get("/pods", None, Some("good-token")).await,
        (200, "carol system:authenticated,team".to_owned())
    );
    // A rejected token is a 401 even with anonymous on.
    assert_eq!(
        server.get("/pods", None, Some("bad-token")).await,
        (401, "Unauthorized".to_owned())
    );
    // No token: anonymous.
    assert_eq!(
        server.get("/pods", None, None).await.1,
        "system:anonymous system:unauthenticated"
    );
    let reviews = |api: &TestApiServer| {
        api.requests()
            .iter()
            .filter(|r| r.path.ends_with("/tokenreviews"))
            .count()
    };
    assert_eq!(reviews(&api), 2);
    let sent = api
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/tokenreviews"))
        .unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.body.unwrap()["spec"]["token"], "good-token");
    // Both answers are cached for cacheTTL.
    server.get("/pods", None, Some("good-token")).await;
    server.get("/pods", None, Some("bad-token")).await;
    assert_eq!(reviews(&api), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn webhook_authorization_allows_denies_caches_and_fails() {
    let api = TestApiServer::start().await.unwrap();
    api.add_token("alice-token", "alice", &["system:authenticated"]);
    api.allow_access("alice", "proxy");
    let mut cfg = config(false, "Webhook");
    cfg.authentication.webhook.enabled = Some(true);
    cfg.authentication.webhook.cache_ttl = node_config::Duration::from_mins(2);
    cfg.authorization.webhook.cache_authorized_ttl = node_config::Duration::from_mins(5);
    cfg.authorization.webhook.cache_unauthorized_ttl = node_config::Duration::from_secs(30);
    let server = Server::start(&cfg, Some(&api)).await;
    let sars = |api: &TestApiServer| {
        api.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/subjectaccessreviews"))
            .collect::<Vec<_>>()
    };

    // KubeletFineGrainedAuthz (on by default): nodes/pods is asked first and denied, then
    // nodes/proxy, which alice has.
    assert_eq!(
        server.get("/pods", None, Some("alice-token")).await,
        (200, "alice system:authenticated".to_owned())
    );
    let sent = sars(&api);
    assert_eq!(sent.len(), 2);
    let spec = &sent[1].body.as_ref().unwrap()["spec"];
    assert_eq!(spec["user"], "alice");
    assert_eq!(spec["groups"], serde_json::json!(["system:authenticated"]));
    assert_eq!(
        spec["resourceAttributes"],
        serde_json::json!({"verb": "get", "version": "v1", "resource": "nodes",
            "subresource": "proxy", "name": NODE})
    );
    assert_eq!(
        sent[0].body.as_ref().unwrap()["spec"]["resourceAttributes"]["subresource"],
        "pods"
    );

    assert_eq!(
        server
            .get("/stats/summary", None, Some("alice-token"))
            .await,
        (
            403,
            "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[stats])\n".to_owned()
        )
    );
    assert_eq!(
        server
            .request("POST", "/logs/syslog", None, Some("alice-token"))
            .await
            .unwrap(),
        (
            403,
            "Forbidden (user=alice, verb=create, resource=nodes, subresource(s)=[log])\n"
                .to_owned()
        )
    );
    assert_eq!(sars(&api).len(), 4);

    // Within the TTLs the answers come from the caches (the denied nodes/pods one too).
    assert_eq!(server.get("/pods", None, Some("alice-token")).await.0, 200);
    assert_eq!(
        server
            .get("/stats/summary", None, Some("alice-token"))
            .await
            .0,
        403
    );
    assert_eq!(sars(&api).len(), 4);

    // The API server fails: 500 for an uncached decision.
    api.fail_all(Some(500));
    assert_eq!(
        server.get("/metrics", None, Some("alice-token")).await,
        (
            500,
            "Authorization error (user=alice, verb=get, resource=nodes, subresource=metrics)"
                .to_owned()
        )
    );
    api.fail_all(None);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let server = Server::start(&config(true, "AlwaysAllow"), None).await;
    let mut sender = server.connect(None).await.unwrap();
    let req = hyper::Request::builder()
        .uri("/slow")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let in_flight = tokio::spawn(async move {
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let addr = server.addr;
    server.shutdown().await;
    assert_eq!(in_flight.await.unwrap(), (200, "slow done".to_owned()));
    // The listener is gone.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn plain_http_server_serves_and_stops() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/healthz", get(|| async { "ok" }));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_http(listener, app, async {
        let _ = stopped.await;
    }));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            hyper::Request::builder()
                .uri("/healthz")
                .header("host", "localhost")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn tls13_only_server_refuses_tls12_clients() {
    let mut cfg = config(true, "AlwaysAllow");
    cfg.tls_min_version = "VersionTLS13".to_owned();
    let server = Server::start(&cfg, None).await;
    // A TLS 1.3 client works.
    assert_eq!(server.get("/pods", None, None).await.0, 200);
    // A TLS 1.2-only client does not.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.serving_ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let result = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(result.is_err());
    server.shutdown().await;
}

/// The subresources of the SubjectAccessReviews `api` received since the last call, in order,
/// each with its user and verb.
fn take_reviews(api: &TestApiServer) -> Vec<(String, String, String)> {
    let out = api
        .requests()
        .into_iter()
        .filter(|r| r.path == "/apis/authorization.k8s.io/v1/subjectaccessreviews")
        .map(|r| {
            let spec = &r.body.as_ref().unwrap()["spec"];
            let attrs = &spec["resourceAttributes"];
            assert_eq!(
                (&attrs["resource"], &attrs["version"], &attrs["name"]),
                (
                    &serde_json::json!("nodes"),
                    &serde_json::json!("v1"),
                    &serde_json::json!(NODE)
                ),
                "{spec}"
            );
            (
                spec["user"].as_str().unwrap().to_owned(),
                attrs["verb"].as_str().unwrap().to_owned(),
                attrs["subresource"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    api.clear_requests();
    out
}

/// x509 users and a Webhook authorizer without caches (every request reviewed afresh).
async fn fine_grained_server(
    api: &TestApiServer,
    dir: &Path,
    ca: &TestCa,
    fine_grained_authz: bool,
) -> Server {
    let mut cfg = config(false, "Webhook");
    cfg.authentication.x509.client_ca_file = ca.write(dir);
    cfg.authorization.webhook.cache_authorized_ttl = node_config::Duration::from_secs(0);
    cfg.authorization.webhook.cache_unauthorized_ttl = node_config::Duration::from_secs(0);
    Server::start_with(
        &cfg,
        Some(api),
        FilterOptions::default().with_fine_grained_authz(fine_grained_authz),
    )
    .await
}

fn reviews(user: &str, subresources: &[&str]) -> Vec<(String, String, String)> {
    subresources
        .iter()
        .map(|s| (user.to_owned(), "get".to_owned(), (*s).to_owned()))
        .collect()
}

/// KubeletFineGrainedAuthz on: `/pods`, `/runningpods/`, `/healthz` and `/configz` ask for
/// their own subresource first and `proxy` second; either one lets the request through, and
/// a user with neither gets the kubelet's 403 listing both.
#[tokio::test]
async fn fine_grained_subresources_first_then_proxy() {
    let api = TestApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test-client-ca");
    for sub in ["pods", "healthz", "configz"] {
        api.allow_access("reader", sub);
    }
    api.allow_access("proxier", "proxy");
    let server = fine_grained_server(&api, dir.path(), &ca, true).await;
    let reader = ca.client("reader", &[]);
    let proxier = ca.client("proxier", &[]);
    let nobody = ca.client("nobody", &[]);
    take_reviews(&api);

    for (path, sub) in [
        ("/pods", "pods"),
        ("/runningpods/", "pods"),
        ("/healthz", "healthz"),
        ("/configz", "configz"),
    ] {
        // The fine-grained subresource alone: one review.
        assert_eq!(
            server.get(path, Some(&reader), None).await,
            (200, "reader system:authenticated".to_owned()),
            "{path}"
        );
        assert_eq!(take_reviews(&api), reviews("reader", &[sub]), "{path}");
        // proxy alone: the fine-grained review is denied, the proxy one allows.
        assert_eq!(
            server.get(path, Some(&proxier), None).await,
            (200, "proxier system:authenticated".to_owned()),
            "{path}"
        );
        assert_eq!(
            take_reviews(&api),
            reviews("proxier", &[sub, "proxy"]),
            "{path}"
        );
        // Neither: 403 naming both, after both reviews.
        assert_eq!(
            server.get(path, Some(&nobody), None).await,
            (
                403,
                format!(
                    "Forbidden (user=nobody, verb=get, resource=nodes, subresource(s)=[{sub} proxy])\n"
                )
            ),
            "{path}"
        );
        assert_eq!(
            take_reviews(&api),
            reviews("nobody", &[sub, "proxy"]),
            "{path}"
        );
    }

    // Paths outside the table are proxy only; /podsX is not /pods.
    assert_eq!(
        server.get("/podsX", Some(&reader), None).await,
        (
            403,
            "Forbidden (user=reader, verb=get, resource=nodes, subresource(s)=[proxy])\n"
                .to_owned()
        )
    );
    assert_eq!(take_reviews(&api), reviews("reader", &["proxy"]));

    // An authorizer error on the first record is a 500 naming it; proxy is not tried.
    api.fail_next([500]);
    assert_eq!(
        server.get("/pods", Some(&proxier), None).await,
        (
            500,
            "Authorization error (user=proxier, verb=get, resource=nodes, subresource=pods)"
                .to_owned()
        )
    );
    let sent = api.requests();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].status, 500);
    api.clear_requests();
    // The next request is reviewed normally again.
    assert_eq!(server.get("/pods", Some(&proxier), None).await.0, 200);
    assert_eq!(take_reviews(&api), reviews("proxier", &["pods", "proxy"]));
    server.shutdown().await;
}

/// KubeletFineGrainedAuthz off: the same paths are proxy only, so `nodes/pods` and friends
/// alone are 403.
#[tokio::test]
async fn without_fine_grained_authz_only_proxy_counts() {
    let api = TestApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test-client-ca");
    for sub in ["pods", "healthz", "configz"] {
        api.allow_access("reader", sub);
    }
    api.allow_access("proxier", "proxy");
    let server = fine_grained_server(&api, dir.path(), &ca, false).await;
    let reader = ca.client("reader", &[]);
    let proxier = ca.client("proxier", &[]);
    take_reviews(&api);

    for path in ["/pods", "/runningpods/", "/healthz", "/configz"] {
        assert_eq!(
            server.get(path, Some(&reader), None).await,
            (
                403,
                "Forbidden (user=reader, verb=get, resource=nodes, subresource(s)=[proxy])\n"
                    .to_owned()
            ),
            "{path}"
        );
        assert_eq!(take_reviews(&api), reviews("reader", &["proxy"]), "{path}");
        assert_eq!(
            server.get(path, Some(&proxier), None).await.0,
            200,
            "{path}"
        );
        assert_eq!(take_reviews(&api), reviews("proxier", &["proxy"]), "{path}");
    }
    server.shutdown().await;
}
