//! The crate's one error type.

use std::path::PathBuf;
use std::time::Duration;

/// How an API call failed, which decides what the loops do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// 409 Conflict: the object changed since it was read (re-read, then retry).
    Conflict,
    /// 404 Not Found.
    NotFound,
    /// 409 AlreadyExists on create.
    AlreadyExists,
    /// Connection refused/reset, timeouts, 429 and 5xx: back off and retry.
    Transient,
    /// Any other 4xx (400, 401, 403, 422...): retrying the same request will not help.
    Permanent,
}

/// Everything that can go wrong in node-heartbeat.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A node fact file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than the crate reads (a node fact file, a kubeconfig).
    #[error("reading {path}: larger than the {limit} bytes read at most")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap, in bytes.
        limit: u64,
    },
    /// A node fact file had unexpected content.
    #[error("parsing {path}: field {field}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The field or line that was wrong.
        field: String,
        /// What was expected.
        reason: String,
    },
    /// `statvfs(2)` on a filesystem failed.
    #[error("statfs {path}")]
    Statfs {
        /// The path queried.
        path: PathBuf,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// `--node-labels` failed the kubelet's validation (message verbatim from the kubelet).
    #[error("{message}")]
    NodeLabels {
        /// The kubelet's message.
        message: String,
    },
    /// The kernel's host name could not be read.
    #[error("couldn't determine hostname")]
    Hostname {
        /// The errno of `gethostname(2)`.
        #[source]
        source: nix::Error,
    },
    /// The host name (an override, or the kernel's) is blank.
    #[error("empty hostname is invalid")]
    EmptyHostname,
    /// A `--node-ip` value was not usable.
    #[error("node IP: {ip:?} {reason}")]
    NodeIp {
        /// The value given.
        ip: String,
        /// Why it was rejected.
        reason: String,
    },
    /// No address could be chosen for the node.
    #[error("can't get ip address of node {node}. error: {reason}")]
    NoNodeAddress {
        /// The node name.
        node: String,
        /// What was tried.
        reason: String,
    },
    /// An eviction threshold (`evictionHard`) could not be parsed.
    #[error("invalid eviction threshold {key}={value:?}: {reason}")]
    EvictionThreshold {
        /// The signal, e.g. `memory.available`.
        key: String,
        /// The value given.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A reserved resource quantity (`systemReserved`/`kubeReserved`) could not be parsed.
    #[error("invalid quantity for {field}[{key}]={value:?}")]
    Quantity {
        /// `systemReserved`, `kubeReserved`, or `status.capacity` (a value read back from
        /// the API server).
        field: &'static str,
        /// The resource name.
        key: String,
        /// The value given.
        value: String,
        /// The parse error.
        #[source]
        source: node_config::ParseQuantityError,
    },
    /// An API request failed.
    #[error("{op} {object}: {kind:?}: {message}")]
    Api {
        /// The operation (`get lease`, `patch node status`...).
        op: &'static str,
        /// The object name.
        object: String,
        /// The classification that drives retries.
        kind: ApiErrorKind,
        /// The API server's message or the transport error text.
        message: String,
    },
    /// The kube client could not be built from a kubeconfig.
    #[error("building API client from {source_name}")]
    Client {
        /// Where the configuration came from.
        source_name: String,
        /// The kube error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The kubeconfig could not be loaded.
    #[error("loading kubeconfig {path}")]
    Kubeconfig {
        /// The kubeconfig path.
        path: PathBuf,
        /// The kube error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The lease could not be updated after all retries.
    #[error("failed {attempts} attempts to update lease")]
    LeaseUpdate {
        /// Attempts made (5, as the kubelet).
        attempts: u32,
    },
    /// A hollow-node fleet setting is out of range ([`crate::hollow::FleetConfig::validate`]).
    #[error("hollow nodes: {field}={value:?}: {reason}")]
    Fleet {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is allowed.
        reason: String,
    },
    /// The node status could not be patched after all retries.
    #[error("update node status exceeds retry count")]
    StatusUpdate,
    /// The operation is not available on this backend (e.g. leases in standalone mode).
    #[error("{op} is not supported by the {backend} backend")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// The backend name.
        backend: &'static str,
    },
    /// The watchdog environment was unusable (`WATCHDOG_USEC` not a positive integer).
    #[error("configure watchdog: {variable}={value:?}: {reason}")]
    WatchdogConfig {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// The watchdog timeout is 1 s or less (the kubelet refuses these).
    #[error("configure watchdog timeout too small: {timeout:?}")]
    WatchdogTooSmall {
        /// The configured timeout.
        timeout: Duration,
    },
    /// `NOTIFY_SOCKET` is unset.
    #[error("notification not supported - (i.e. NOTIFY_SOCKET is unset)")]
    NotifyUnsupported,
    /// Sending to the notify socket failed.
    #[error("sd_notify to {socket}")]
    Notify {
        /// The socket address.
        socket: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The test API server could not start.
    #[error("test API server on {addr}")]
    TestServer {
        /// The bind address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The API error classification, if this is an API error.
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        match self {
            Error::Api { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// True for failures worth retrying with back-off.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.api_kind(),
            Some(ApiErrorKind::Transient | ApiErrorKind::Conflict)
        )
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
