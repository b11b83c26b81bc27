//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong talking to the runtime or handling pods.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The endpoint is not a `unix://` URL (or a bare absolute socket path).
    #[error("invalid container runtime endpoint {endpoint:?}: expected unix:///path/to/socket")]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
    },
    /// Nothing answered at the endpoint within the connect deadline.
    #[error("container runtime is not reachable at {endpoint}: {reason}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// What the last attempt saw (socket missing, connection refused, ...).
        reason: String,
    },
    /// The runtime answered but does not speak CRI `runtime.v1`.
    #[error("container runtime at {endpoint} does not speak CRI runtime.v1: {reason}")]
    WrongVersion {
        /// The endpoint.
        endpoint: String,
        /// The runtime's answer.
        reason: String,
    },
    /// A CRI call failed.
    #[error("CRI {call} failed: {status}")]
    Call {
        /// RPC name, e.g. `RunPodSandbox`.
        call: &'static str,
        /// gRPC status from the runtime.
        status: Box<tonic::Status>,
    },
    /// A static pod manifest could not be used.
    #[error("invalid static pod manifest {path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A pod's spec cannot be turned into CRI requests (bad quantity, missing volume, ...).
    #[error("pod {pod}: {reason}")]
    PodSpec {
        /// `namespace/name`.
        pod: String,
        /// What is wrong.
        reason: String,
    },
    /// A seccomp profile could not be resolved for a container.
    #[error("pod {pod} container {container}: CreateContainerError: {source}")]
    Seccomp {
        /// `namespace/name`.
        pod: String,
        /// Container name.
        container: String,
        /// The resolution error (boxed: it is large and rare).
        #[source]
        source: Box<node_seccomp::Error>,
    },
    /// A path built from pod data would leave its base directory, or meets a symlink or a
    /// file type where none may be (a container may have planted it).
    #[error("refusing {path}: {reason}")]
    UnsafePath {
        /// The path (as far as it was built).
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// Filesystem work for a pod (volume or log directories) failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    pub(crate) fn call(call: &'static str, status: tonic::Status) -> Self {
        Self::Call {
            call,
            status: Box::new(status),
        }
    }

    /// The gRPC code when this is a failed CRI call.
    pub fn grpc_code(&self) -> Option<tonic::Code> {
        match self {
            Self::Call { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}
