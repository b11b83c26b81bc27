//! Where heartbeats go: one trait, a real API server through `kube`, or standalone (no control
//! plane: the status is kept locally for the agent to serve; no lease).

use std::future::Future;
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::error::{ApiErrorKind, Error, Result};

/// The namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The API operations the heartbeat loops need. Implementations never panic; every failure is
/// an [`Error::Api`] whose [`ApiErrorKind`] drives retries.
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs (`kube`, `standalone`).
    fn name(&self) -> &'static str;
    /// GET `leases/<name>` in `kube-node-lease`.
    fn get_lease(&self, name: &str) -> impl Future<Output = Result<Lease>> + Send;
    /// POST a lease.
    fn create_lease(&self, lease: &Lease) -> impl Future<Output = Result<Lease>> + Send;
    /// PUT a lease (optimistic: fails with Conflict when `resourceVersion` is stale).
    fn update_lease(&self, lease: &Lease) -> impl Future<Output = Result<Lease>> + Send;
    /// GET `nodes/<name>`.
    fn get_node(&self, name: &str) -> impl Future<Output = Result<Node>> + Send;
    /// POST a Node (registration).
    fn create_node(&self, node: &Node) -> impl Future<Output = Result<Node>> + Send;
    /// Strategic-merge PATCH of `nodes/<name>/status`.
    fn patch_node_status(
        &self,
        name: &str,
        patch: &serde_json::Value,
    ) -> impl Future<Output = Result<Node>> + Send;
    /// Called on repeated heartbeat failures; the kubelet closes all client connections here.
    fn on_repeated_failure(&self) {}
    /// Whether this backend keeps a node lease.
    fn supports_lease(&self) -> bool {
        true
    }
}

fn classify(code: u16, reason: &str) -> ApiErrorKind {
    match code {
        409 if reason == "AlreadyExists" => ApiErrorKind::AlreadyExists,
        409 => ApiErrorKind::Conflict,
        404 => ApiErrorKind::NotFound,
        429 | 500..=599 => ApiErrorKind::Transient,
        _ => ApiErrorKind::Permanent,
    }
}

fn error_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn map_kube(op: &'static str, object: &str, e: &kube::Error) -> Error {
    let (kind, message) = match e {
        kube::Error::Api(status) => (
            classify(status.code, &status.reason),
            status.message.clone(),
        ),
        // Transport, timeouts, TLS, bad bodies: the server may be down or restarting.
        other => (ApiErrorKind::Transient, error_text(other)),
    };
    Error::Api {
        op,
        object: object.to_owned(),
        kind,
        message,
    }
}

/// A real API server through `kube`, with the kubelet's heartbeat-client settings: its own
/// connection pool, timeout `min(nodeStatusUpdateFrequency, leaseDuration)`, no client-side
/// retries (the loops retry with the kubelet's back-off).
pub struct KubeBackend {
    config: kube::Config,
    apis: RwLock<(Api<Lease>, Api<Node>)>,
}

impl std::fmt::Debug for KubeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeBackend")
            .field("cluster_url", &self.config.cluster_url)
            .finish_non_exhaustive()
    }
}

/// The largest kubeconfig [`read_kubeconfig`] accepts: 4 MiB. One with a few dozen clusters
/// and embedded certificates is some hundreds of KiB.
pub const MAX_KUBECONFIG_BYTES: u64 = 4 << 20;

/// Reads a kubeconfig (`--kubeconfig`) with kube's parser (multi-document files merged, paths
/// made absolute against the file's directory), after checking the file first: it must be a
/// regular file (a device such as `/dev/zero` or a FIFO is refused instead of being read
/// without end or blocking), of at most [`MAX_KUBECONFIG_BYTES`] (only that much is read), and
/// not a UTF-16 text with an odd number of bytes (kube-client 5.0 indexes past the end of such
/// a file and panics).
///
/// kube then reads the file again itself; the kubeconfig is trusted configuration (root-owned),
/// so a file swapped in between is outside the threat model. Files the kubeconfig names (CA,
/// client certificate and key, token file) are read by kube later, without a cap.
///
/// # Errors
/// [`Error::Kubeconfig`] when the file is missing, not a regular file, or does not parse;
/// [`Error::TooLarge`] when it is longer than the cap.
pub fn read_kubeconfig(path: &Path) -> Result<kube::config::Kubeconfig> {
    use std::io::Read;
    let fail = |source: Box<dyn std::error::Error + Send + Sync>| Error::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(Box::new(e)))?;
    if !meta.is_file() {
        return Err(fail(
            format!("not a regular file ({:?})", meta.file_type()).into(),
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KUBECONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| fail(Box::new(e)))?;
    if bytes.len() as u64 > MAX_KUBECONFIG_BYTES {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_KUBECONFIG_BYTES,
        });
    }
    if let [0xFF, 0xFE, rest @ ..] | [0xFE, 0xFF, rest @ ..] = bytes.as_slice()
        && rest.len() % 2 == 1
    {
        return Err(fail(
            "UTF-16 text (it starts with a byte order mark) with an odd number of bytes".into(),
        ));
    }
    kube::config::Kubeconfig::read_from(path).map_err(|e| fail(Box::new(e)))
}

/// The client configuration of a kubeconfig file (`--kubeconfig`): [`read_kubeconfig`]'s
/// checks, then kube's resolution of its current context (credentials, CA, exec plugins). One
/// configuration serves the heartbeat ([`KubeBackend::from_config`], with its timeouts) and
/// the agent's other API clients (`kube::Client::try_from`).
///
/// # Errors
/// [`Error::Kubeconfig`] / [`Error::TooLarge`] as [`read_kubeconfig`]; [`Error::Kubeconfig`]
/// when the context cannot be resolved.
pub async fn load_kubeconfig(path: &Path) -> Result<kube::Config> {
    let kc = read_kubeconfig(path)?;
    kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kubeconfig {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
}

impl KubeBackend {
    /// Builds the backend from a kube config, applying the heartbeat timeout.
    pub fn from_config(mut config: kube::Config, timeout: Duration) -> Result<Self> {
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        config.default_retry = false;
        let apis = Self::build(&config)?;
        Ok(KubeBackend {
            config,
            apis: RwLock::new(apis),
        })
    }

    /// A backend for a plain URL (e.g. the test API server `http://127.0.0.1:PORT`).
    pub fn for_url(url: &str, timeout: Duration) -> Result<Self> {
        let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| Error::Api {
            op: "parse server url",
            object: url.to_owned(),
            kind: ApiErrorKind::Permanent,
            message: e.to_string(),
        })?;
        Self::from_config(kube::Config::new(uri), timeout)
    }

    /// A backend from a kubeconfig file (`--kubeconfig`), read with [`load_kubeconfig`].
    pub async fn from_kubeconfig(path: &Path, timeout: Duration) -> Result<Self> {
        Self::from_config(load_kubeconfig(path).await?, timeout)
    }

    fn build(config: &kube::Config) -> Result<(Api<Lease>, Api<Node>)> {
        let client = kube::Client::try_from(config.clone()).map_err(|e| Error::Client {
            source_name: config.cluster_url.to_string(),
            source: Box::new(e),
        })?;
        Ok((
            Api::namespaced(client.clone(), LEASE_NAMESPACE),
            Api::all(client),
        ))
    }

    fn leases(&self) -> Api<Lease> {
        match self.apis.read() {
            Ok(g) => g.0.clone(),
            Err(p) => p.into_inner().0.clone(),
        }
    }

    fn nodes(&self) -> Api<Node> {
        match self.apis.read() {
            Ok(g) => g.1.clone(),
            Err(p) => p.into_inner().1.clone(),
        }
    }
}

fn lease_name(lease: &Lease) -> String {
    lease.metadata.name.clone().unwrap_or_default()
}

impl Backend for KubeBackend {
    fn name(&self) -> &'static str {
        "kube"
    }

    async fn get_lease(&self, name: &str) -> Result<Lease> {
        self.leases()
            .get(name)
            .await
            .map_err(|e| map_kube("get lease", name, &e))
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        self.leases()
            .create(&PostParams::default(), lease)
            .await
            .map_err(|e| map_kube("create lease", &lease_name(lease), &e))
    }

    async fn update_lease(&self, lease: &Lease) -> Result<Lease> {
        let name = lease_name(lease);
        self.leases()
            .replace(&name, &PostParams::default(), lease)
            .await
            .map_err(|e| map_kube("update lease", &name, &e))
    }

    async fn get_node(&self, name: &str) -> Result<Node> {
        self.nodes()
            .get(name)
            .await
            .map_err(|e| map_kube("get node", name, &e))
    }

    async fn create_node(&self, node: &Node) -> Result<Node> {
        let name = node.metadata.name.clone().unwrap_or_default();
        self.nodes()
            .create(&PostParams::default(), node)
            .await
            .map_err(|e| map_kube("create node", &name, &e))
    }

    async fn patch_node_status(&self, name: &str, patch: &serde_json::Value) -> Result<Node> {
        self.nodes()
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .map_err(|e| map_kube("patch node status", name, &e))
    }

    /// Drops the connection pool by building a new client, like the kubelet's `closeAllConns`.
    fn on_repeated_failure(&self) {
        match Self::build(&self.config) {
            Ok(apis) => match self.apis.write() {
                Ok(mut g) => *g = apis,
                Err(p) => *p.into_inner() = apis,
            },
            Err(e) => tracing::warn!(error = %e, "rebuilding the heartbeat client failed"),
        }
    }
}

/// No control plane: the Node is kept in memory for the agent to serve locally; there is no
/// lease (the lease loop is not started).
#[derive(Debug, Default)]
pub struct StandaloneBackend {
    node: Mutex<Option<Node>>,
    generation: Mutex<u64>,
}

impl StandaloneBackend {
    /// An empty standalone store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current Node, as the agent would serve it.
    pub fn node(&self) -> Option<Node> {
        match self.node.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn with_node<T>(&self, f: impl FnOnce(&mut Option<Node>) -> T) -> T {
        match self.node.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    fn next_version(&self) -> String {
        let mut g = match self.generation.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g += 1;
        g.to_string()
    }
}

fn unsupported(op: &'static str) -> Error {
    Error::Unsupported {
        op,
        backend: "standalone",
    }
}

impl Backend for StandaloneBackend {
    fn name(&self) -> &'static str {
        "standalone"
    }

    fn supports_lease(&self) -> bool {
        false
    }

    async fn get_lease(&self, _name: &str) -> Result<Lease> {
        Err(unsupported("get lease"))
    }

    async fn create_lease(&self, _lease: &Lease) -> Result<Lease> {
        Err(unsupported("create lease"))
    }

    async fn update_lease(&self, _lease: &Lease) -> Result<Lease> {
        Err(unsupported("update lease"))
    }

    async fn get_node(&self, name: &str) -> Result<Node> {
        self.node()
            .filter(|n| n.metadata.name.as_deref() == Some(name))
            .ok_or_else(|| Error::Api {
                op: "get node",
                object: name.to_owned(),
                kind: ApiErrorKind::NotFound,
                message: format!("nodes \"{name}\" not found"),
            })
    }

    async fn create_node(&self, node: &Node) -> Result<Node> {
        let rv = self.next_version();
        let name = node.metadata.name.clone().unwrap_or_default();
        self.with_node(|slot| {
            if slot.is_some() {
                return Err(Error::Api {
                    op: "create node",
                    object: name.clone(),
                    kind: ApiErrorKind::AlreadyExists,
                    message: format!("nodes \"{name}\" already exists"),
                });
            }
            let mut n = node.clone();
            n.metadata.resource_version = Some(rv);
            n.metadata.uid = Some(format!("standalone-{name}"));
            *slot = Some(n.clone());
            Ok(n)
        })
    }

    async fn patch_node_status(&self, name: &str, patch: &serde_json::Value) -> Result<Node> {
        let rv = self.next_version();
        self.with_node(|slot| {
            let Some(node) = slot
                .as_mut()
                .filter(|n| n.metadata.name.as_deref() == Some(name))
            else {
                return Err(Error::Api {
                    op: "patch node status",
                    object: name.to_owned(),
                    kind: ApiErrorKind::NotFound,
                    message: format!("nodes \"{name}\" not found"),
                });
            };
            let patched =
                crate::merge::apply_node_status_patch(node, patch).map_err(|message| {
                    Error::Api {
                        op: "patch node status",
                        object: name.to_owned(),
                        kind: ApiErrorKind::Permanent,
                        message,
                    }
                })?;
            *node = patched;
            node.metadata.resource_version = Some(rv);
            Ok(node.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(409, "Conflict"), ApiErrorKind::Conflict);
        assert_eq!(classify(409, "AlreadyExists"), ApiErrorKind::AlreadyExists);
        assert_eq!(classify(404, "NotFound"), ApiErrorKind::NotFound);
        assert_eq!(classify(500, "InternalError"), ApiErrorKind::Transient);
        assert_eq!(classify(429, "TooManyRequests"), ApiErrorKind::Transient);
        assert_eq!(classify(403, "Forbidden"), ApiErrorKind::Permanent);
    }

    /// Regression (fuzzing audit): the kubeconfig was read without a limit; `/dev/zero` as
    /// `--kubeconfig` made kube read until memory ran out.
    #[test]
    fn kubeconfig_reads_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_kubeconfig(Path::new("/dev/zero")).unwrap_err();
        let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            text.starts_with("loading kubeconfig /dev/zero: not a regular file"),
            "{text}"
        );

        let big = dir.path().join("big.yaml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_KUBECONFIG_BYTES + 1).unwrap();
        let err = read_kubeconfig(&big).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "reading {}: larger than the 4194304 bytes read at most",
                big.display()
            )
        );

        // Regression (fuzzing, kubeconfig target): kube-client 5.0 panics on a UTF-16 file
        // with an odd byte count (`FF FE 20`); it is an error now.
        let odd = dir.path().join("utf16-odd");
        std::fs::write(&odd, b"\xff\xfe ").unwrap();
        let err = read_kubeconfig(&odd).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(
            source,
            "UTF-16 text (it starts with a byte order mark) with an odd number of bytes"
        );
        // An even UTF-16 file still reaches kube's decoder.
        std::fs::write(&odd, b"\xff\xfe{\x00}\x00").unwrap();
        read_kubeconfig(&odd).unwrap();

        // A normal kubeconfig still loads, with relative paths made absolute.
        let ok = dir.path().join("kubeconfig");
        std::fs::write(
            &ok,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority: pki/ca.crt\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\nusers:\n- name: u\n  user:\n    token: abc\n",
        )
        .unwrap();
        let kc = read_kubeconfig(&ok).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("x"));
        let ca = kc.clusters[0]
            .cluster
            .as_ref()
            .unwrap()
            .certificate_authority
            .clone();
        assert_eq!(
            ca,
            Some(dir.path().join("pki/ca.crt").to_string_lossy().into_owned())
        );
    }
}
