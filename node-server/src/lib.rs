//! The kubelet's secured HTTPS server pieces: the serving certificate (configured or
//! self-signed in the cert dir), the rustls configuration (optional client certificates,
//! `tlsMinVersion`, `tlsCipherSuites`), the TLS accept loop that hands each request its verified
//! client chain, the union authenticator (x509 client certificate, bearer token through
//! TokenReview, anonymous), the authorizer (`AlwaysAllow` or `Webhook` through
//! SubjectAccessReview, with the kubelet's caches) and the auth filter with the kubelet's
//! request-attribute mapping and 401/403/500 answers.
//!
//! Routes are plain axum routing: [`secured`] puts them behind the one filter, which runs
//! before any route matching (an unauthenticated request is 401 on every method and path),
//! with [`CatchPanic`] in front (a panicking handler is a 500, never a dead server) and
//! [`BodyLimit`] behind. The accept loops ([`serve_https`], [`serve_http`]) bound connections,
//! header sizes and header read time ([`ServeOptions`]) and catch panics themselves too.
//!
//! ```
//! use std::sync::Arc;
//! use axum::routing::get;
//! use node_server::{
//!     KubeletAuth, RequestAuth, page_not_found, secured, serve_https, serving_cert, tls_config,
//! };
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
//! let routes = axum::Router::new()
//!     .route("/pods", get(|| async { "{}" }))
//!     .fallback(page_not_found);
//! let app = secured(routes, auth, "node-1");
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
mod contract;
mod error;
mod filter;
mod guard;
pub mod proxy;
mod serve;
mod tls;

pub use authn::{
    ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, Authenticator, WEBHOOK_TIMEOUT, X509_CACHE_TTL,
    bearer_token, user_from_cert,
};
pub use authz::{Authorizer, WebhookAuthorizer, access_review_spec};
pub use cert::{GENERATED_CERT_FILE, GENERATED_KEY_FILE, ServingCert, serving_cert};
pub use contract::{AlwaysAllow, Attributes, AuthFuture, Decision, RequestAuth, UserInfo};
/// The crate's error type, returned through [`Result`]. Also exported as [`ServerError`], its
/// older name.
#[doc(inline)]
pub use error::ServerError as Error;
/// The older name of [`Error`] (the same type), kept so existing code compiles; new code
/// names `Error`.
pub use error::ServerError;
pub use filter::{
    AuthLayer, AuthService, FINE_GRAINED_AUTHZ_GATE, FilterOptions, KubeletAuth, auth_layer, check,
    request_attributes, secured, secured_with, subresources_for, verb_for,
};
pub use guard::{
    BodyLimit, CatchPanic, CatchPanicFuture, CatchPanicLayer, INTERNAL_SERVER_ERROR,
    MAX_REQUEST_BODY_BYTES, PAGE_NOT_FOUND, guarded, page_not_found, text_response,
};
pub use serve::{
    HANDSHAKE_TIMEOUT, HEADER_READ_TIMEOUT, MAX_CONNECTIONS, MAX_HEADER_BYTES, PeerCertificates,
    SHUTDOWN_GRACE, ServeOptions, serve_http, serve_http_with, serve_https, serve_https_with,
};
pub use tls::{cipher_suites, protocol_versions, tls_config};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
