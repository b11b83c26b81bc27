//! The contract between the filter and whoever authenticates and authorizes: who asked
//! ([`UserInfo`]), what they asked for ([`Attributes`]), the answer ([`Decision`]) and the
//! [`RequestAuth`] trait the kubelet's own implementation ([`crate::KubeletAuth`]) and an
//! embedder's implement.

use std::future::Future;
use std::pin::Pin;

use http::request::Parts;

/// A boxed future, so [`RequestAuth`] stays object-safe.
pub type AuthFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who made the request. Allowed requests carry it in their extensions, so a handler can
/// take `Extension<UserInfo>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// User name (`system:anonymous` for anonymous requests).
    pub name: String,
    /// Groups (`system:unauthenticated` for anonymous requests).
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The kubelet's anonymous user.
    pub fn anonymous() -> Self {
        Self {
            name: "system:anonymous".to_owned(),
            groups: vec!["system:unauthenticated".to_owned()],
        }
    }
}

/// The attributes of an authorization request (a SubjectAccessReview's
/// `resourceAttributes`), built by [`crate::request_attributes`]: verb from the method,
/// resource `nodes`, subresource from the path, name = the node name. A request can have
/// several records differing only in the subresource ([`crate::subresources_for`]); the
/// filter asks about them in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// Who.
    pub user: UserInfo,
    /// `create`, `get`, `update`, `patch`, `delete`, or empty for any other method.
    pub verb: &'static str,
    /// `v1`.
    pub api_version: &'static str,
    /// `nodes`.
    pub resource: &'static str,
    /// `stats`, `metrics`, `log`, `checkpoint`, `pods`, `healthz`, `configz`, `statusz` or
    /// `proxy`.
    pub subresource: &'static str,
    /// The node name.
    pub name: String,
    /// The request path.
    pub path: String,
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refused (HTTP 403), with the authorizer's reason (logged, not sent).
    Deny(String),
}

/// Authentication and authorization for the filter: [`crate::KubeletAuth`] (x509, bearer
/// token webhook, anonymous; Webhook or AlwaysAllow) or an embedder's own.
pub trait RequestAuth: Send + Sync + 'static {
    /// Who sent `request`: `Ok(None)` for an unauthenticated request (HTTP 401), `Err` for an
    /// authentication error (HTTP 401 too).
    fn authenticate<'a>(
        &'a self,
        request: &'a Parts,
    ) -> AuthFuture<'a, Result<Option<UserInfo>, String>>;

    /// Whether the user may do what `attributes` describe; `Err` is an authorizer failure
    /// (HTTP 500).
    fn authorize<'a>(
        &'a self,
        attributes: &'a Attributes,
    ) -> AuthFuture<'a, Result<Decision, String>>;
}

/// The kubelet's command-line defaults: anonymous requests allowed, authorization mode
/// `AlwaysAllow`. Only for a node whose port is not reachable by untrusted clients.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysAllow;

impl RequestAuth for AlwaysAllow {
    fn authenticate<'a>(
        &'a self,
        _request: &'a Parts,
    ) -> AuthFuture<'a, Result<Option<UserInfo>, String>> {
        Box::pin(async { Ok(Some(UserInfo::anonymous())) })
    }

    fn authorize<'a>(
        &'a self,
        _attributes: &'a Attributes,
    ) -> AuthFuture<'a, Result<Decision, String>> {
        Box::pin(async { Ok(Decision::Allow) })
    }
}

/// The client certificate chain rustls verified for this connection (leaf first), in every
/// request's extensions; empty when the client sent none (or client certificates are not
/// requested).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificates(pub Vec<rustls_pki_types::CertificateDer<'static>>);
