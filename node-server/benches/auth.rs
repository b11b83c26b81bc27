//! Per-request cost of the kubelet's auth filter on an axum router, against the same router
//! without it: anonymous + AlwaysAllow, a client certificate (re-verified against the client
//! CA and mapped to a user) + AlwaysAllow, and a bearer token + Webhook with both answers
//! cached (TokenReview and SubjectAccessReview served once by the test API server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use node_config::KubeletConfiguration;
use node_heartbeat::testserver::TestApiServer;
use node_server::{FilterOptions, KubeletAuth, PeerCertificates, RequestAuth, auth_layer};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tower::ServiceExt;

fn router() -> axum::Router {
    axum::Router::new().route("/pods", get(|| async { "{}" }))
}

fn with_auth(cfg: &KubeletConfiguration, client: Option<kube::Client>) -> axum::Router {
    let auth: Arc<dyn RequestAuth> = Arc::new(KubeletAuth::from_config(cfg, client).unwrap());
    router().layer(auth_layer(
        auth,
        "node-1".to_owned(),
        FilterOptions::default(),
    ))
}

fn request(certs: Option<&PeerCertificates>, token: Option<&str>) -> http::Request<Body> {
    let mut req = http::Request::builder().uri("/pods");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut req = req.body(Body::empty()).unwrap();
    if let Some(c) = certs {
        req.extensions_mut().insert(c.clone());
    }
    req
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // A client CA and one client certificate.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "bench-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name.push(DnType::CommonName, "alice");
    leaf.distinguished_name
        .push(DnType::OrganizationName, "ops");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = leaf.signed_by(&key, &issuer).unwrap();
    let certs = PeerCertificates(vec![leaf.der().clone()]);

    let mut anon = KubeletConfiguration::default();
    anon.authentication.anonymous.enabled = Some(true);
    anon.authorization.mode = "AlwaysAllow".to_owned();
    let mut x509 = anon.clone();
    x509.authentication.anonymous.enabled = Some(false);
    x509.authentication.x509.client_ca_file = ca_file.to_string_lossy().into_owned();

    let api = rt.block_on(TestApiServer::start()).unwrap();
    api.add_token("tok", "carol", &["system:authenticated"]);
    // nodes/pods: with KubeletFineGrainedAuthz (on by default) the first record of `/pods` is
    // allowed, so each request is one cached review, as before the gate.
    api.allow_access("carol", "pods");
    let client = rt.block_on(async {
        kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap()
    });
    let mut webhook = KubeletConfiguration::default();
    webhook.authentication.webhook.enabled = Some(true);
    webhook.authentication.webhook.cache_ttl = node_config::Duration::from_hours(1);
    webhook.authorization.mode = "Webhook".to_owned();
    webhook.authorization.webhook.cache_authorized_ttl = node_config::Duration::from_hours(1);
    webhook.authorization.webhook.cache_unauthorized_ttl = node_config::Duration::from_hours(1);

    let bare = router();
    let anon = with_auth(&anon, None);
    let x509 = with_auth(&x509, None);
    let webhook = rt.block_on(async { with_auth(&webhook, Some(client)) });

    // Every variant must actually answer 200 before it is timed.
    for (name, app, req) in [
        ("bare", &bare, request(None, None)),
        ("anon", &anon, request(None, None)),
        ("x509", &x509, request(Some(&certs), None)),
        ("webhook", &webhook, request(None, Some("tok"))),
    ] {
        let status = rt.block_on(app.clone().oneshot(req)).unwrap().status();
        assert_eq!(status, 200, "{name}");
    }

    let mut g = c.benchmark_group("auth_filter");
    g.bench_function("bare_router", |b| {
        b.iter(|| {
            rt.block_on(bare.clone().oneshot(request(None, None)))
                .unwrap()
        })
    });
    g.bench_function("anonymous_always_allow", |b| {
        b.iter(|| {
            rt.block_on(anon.clone().oneshot(request(None, None)))
                .unwrap()
        })
    });
    g.bench_function("x509_always_allow", |b| {
        b.iter(|| {
            rt.block_on(x509.clone().oneshot(request(Some(&certs), None)))
                .unwrap()
        })
    });
    g.bench_function("token_webhook_cached", |b| {
        b.iter(|| {
            rt.block_on(webhook.clone().oneshot(request(None, Some("tok"))))
                .unwrap()
        })
    });
    g.finish();
    assert_eq!(
        api.requests().len(),
        2,
        "one TokenReview and one SAR, then cached"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
