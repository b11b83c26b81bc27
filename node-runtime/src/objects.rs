//! What pods reference on the API server: configMaps, secrets, services (for the service
//! environment variables) and service-account tokens. The pod manager asks an
//! [`ObjectSource`] for them when it sets up a pod's configMap, secret, downwardAPI and
//! projected volumes and its containers' environment; `node-cluster`'s `ApiObjects` is the
//! implementation backed by the API server (caching and refreshing them the kubelet's way).
//! Without a source (a standalone agent), a pod that references an API object cannot start,
//! as with a kubelet without an API server.

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};

/// A boxed future answering an [`ObjectSource`] question; the error is a message for the
/// pod's events and status (e.g. `failed to sync configmap cache: ...`).
pub type ObjectFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// A service-account token a projected volume asks for (the kubelet's TokenRequest, bound to
/// the pod).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenRequest {
    /// The pod's namespace.
    pub namespace: String,
    /// `spec.serviceAccountName` (`default` when unset).
    pub service_account: String,
    /// The projection's `audience`, when set (else the API server's default audiences).
    pub audiences: Vec<String>,
    /// The projection's `expirationSeconds` (API default 3600).
    pub expiration_seconds: i64,
    /// The pod's name (the token's `boundObjectRef`).
    pub pod_name: String,
    /// The pod's UID (the token's `boundObjectRef`).
    pub pod_uid: String,
}

/// A token the API server issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// `status.token`.
    pub token: String,
    /// `status.expirationTimestamp`.
    pub expiration: SystemTime,
}

/// Where the pod manager gets the API objects pods reference. Implementations cache: the
/// pod manager asks on every pass for every running pod that references objects (that is
/// how changed objects reach mounted volumes), so answers must be cheap when nothing changed.
pub trait ObjectSource: Send + Sync + 'static {
    /// The configMap `namespace/name`; `Ok(None)` when it does not exist.
    fn config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> ObjectFuture<'a, Option<ConfigMap>>;

    /// The secret `namespace/name`; `Ok(None)` when it does not exist.
    fn secret<'a>(&'a self, namespace: &'a str, name: &'a str) -> ObjectFuture<'a, Option<Secret>>;

    /// The services whose environment variables a pod in `namespace` gets: those of
    /// `namespace` and the master service `kubernetes` of `default`.
    fn services<'a>(&'a self, namespace: &'a str) -> ObjectFuture<'a, Vec<Service>>;

    /// A token for `request`: a cached one unless it needs refreshing (the kubelet refreshes
    /// after 80 % of its lifetime, or 24 h).
    fn token<'a>(&'a self, request: &'a TokenRequest) -> ObjectFuture<'a, Token>;

    /// The pod `uid` is gone: drop what was kept for it (its tokens, objects only it used).
    fn forget_pod(&self, uid: &str) {
        let _ = uid;
    }
}
