//! node-server: the kubelet's secured HTTPS API in a few lines. A self-signed serving
//! certificate is generated into a temporary cert dir, client certificates are checked against
//! a client CA, anonymous access is off, and a real TLS client calls `/pods` and an unknown
//! path: without a certificate both are 401 `Unauthorized` (authentication runs before
//! routing), with one `/pods` is 200 (the handler sees the user) and the unknown path 404.
//!
//! `cargo run -p examples --example secure_api`
#![allow(clippy::print_stdout)] // an example prints what it sees

use std::sync::Arc;

use axum::Extension;
use axum::routing::get;
use node_server::{
    KubeletAuth, RequestAuth, UserInfo, page_not_found, secured, serve_https, serving_cert,
    tls_config,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;

    // A client CA and one client certificate: CN is the user, O the groups.
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "example-client-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);
    let client_key = KeyPair::generate()?;
    let mut client = CertificateParams::default();
    client.distinguished_name.push(DnType::CommonName, "alice");
    client
        .distinguished_name
        .push(DnType::OrganizationName, "operators");
    let client_cert = client.signed_by(&client_key, &issuer)?;
    let ca_file = dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, ca_pem)?;

    // The kubelet's settings: x509 client certificates, anonymous off, AlwaysAllow.
    let mut cfg = node_config::KubeletConfiguration::default();
    cfg.authentication.x509.client_ca_file = ca_file.display().to_string();
    cfg.authentication.anonymous.enabled = Some(false);
    cfg.authorization.mode = "AlwaysAllow".into();
    let cert = serving_cert(&cfg, dir.path(), "example-node", &["127.0.0.1".parse()?])?;
    let tls = tls_config(&cert, Some(&ca_file), "", &[])?;
    let auth: Arc<dyn RequestAuth> = Arc::new(KubeletAuth::from_config(&cfg, None)?);
    let routes = axum::Router::new()
        .route(
            "/pods",
            get(|Extension(user): Extension<UserInfo>| async move {
                format!("hello {} {:?}", user.name, user.groups)
            }),
        )
        .fallback(page_not_found);
    let app = secured(routes, auth, "example-node");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_https(listener, tls, app, async {
        let _ = stopped.await;
    }));
    println!("serving https://{addr} with {}", cert.cert_file.display());

    // A client that trusts the generated serving certificate.
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&cert.cert_file)? {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let anonymous = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    let with_cert = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![client_cert.der().clone()],
            PrivateKeyDer::from_pem_slice(client_key.serialize_pem().as_bytes())?,
        )?;
    let (anonymous, with_cert) = (Arc::new(anonymous), Arc::new(with_cert));
    for (what, config) in [
        ("no certificate", anonymous),
        ("alice's certificate", with_cert),
    ] {
        for path in ["/pods", "/no-such-path"] {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let mut stream = connector
                .connect(ServerName::try_from("localhost")?, tcp)
                .await?;
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await?;
            let status = answer.lines().next().unwrap_or_default();
            let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
            println!("{what:>20} {path:<14}: {status} | {body}");
        }
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
