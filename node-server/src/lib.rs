//! The kubelet's secured HTTPS server pieces: the serving certificate (configured or
//! self-signed in the cert dir), the rustls configuration (optional client certificates,
//! `tlsMinVersion`, `tlsCipherSuites`), the TLS accept loop that hands each request its verified
//! client chain, the union authenticator (x509 client certificate, bearer token through
//! TokenReview, anonymous), the authorizer (`AlwaysAllow` or `Webhook` through
//! SubjectAccessReview, with the kubelet's caches) and the auth filter middleware with the
//! kubelet's request-attribute mapping and 401/403/500 answers.
//!
//! ```
//! use std::sync::Arc;
//! use axum::routing::get;
//! use node_server::{RequestAuth, KubeletAuth, auth_layer, serve_https, serving_cert, tls_config};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut cfg = node_config::KubeletConfiguration::default();
//! cfg.authentication.anonymous.enabled = Some(true);
//! cfg.authorization.mode = "AlwaysAllow".into();
//!
//! // No tlsCertFile configured: a self-signed pair is generated in the cert dir.
//! let cert = serving_cert(&cfg, dir.path(), "node-1", &["10.0.0.7".parse()?])?;
//! assert!(cert.generated && cert.cert_file.ends_with("kubelet.crt"));
//! let tls = tls_config(&cert, None, &cfg.tls_min_version, &cfg.tls_cipher_suites)?;
//!
//! let auth: Arc<dyn RequestAuth> = Arc::new(KubeletAuth::from_config(&cfg, None)?);
//! let app = axum::Router::new()
//!     .route("/pods", get(|| async { "{}" }))
//!     .layer(auth_layer(auth, "node-1".to_owned()));
//!
//! tokio::runtime::Runtime::new()?.block_on(async {
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//!     let server = tokio::spawn(serve_https(listener, tls, app, async {
//!         let _ = stopped.await;
//!     }));
//!     let _ = stop.send(());
//!     server.await??;
//!     Ok(())
//! })
//! # }
//! ```

#![deny(missing_docs)]

mod authn;
mod authz;
mod cert;
mod error;
mod filter;
mod serve;
mod tls;

pub use authn::{
    ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, Authenticator, WEBHOOK_TIMEOUT, X509_CACHE_TTL,
    bearer_token, user_from_cert,
};
pub use authz::{Authorizer, WebhookAuthorizer, access_review_spec};
pub use cert::{GENERATED_CERT_FILE, GENERATED_KEY_FILE, ServingCert, serving_cert};
pub use error::ServerError;
pub use filter::{
    AuthLayer, AuthService, KubeletAuth, auth_layer, check, request_attributes, subresource_for,
    verb_for,
};
pub use node_checkpoint::{AlwaysAllow, Attributes, AuthFuture, Decision, RequestAuth, UserInfo};
pub use serve::{HANDSHAKE_TIMEOUT, PeerCertificates, SHUTDOWN_GRACE, serve_http, serve_https};
pub use tls::{cipher_suites, protocol_versions, tls_config};

/// `err` and its sources, `: `-separated, for logs.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
