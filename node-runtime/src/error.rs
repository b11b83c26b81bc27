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
    /// The separate image service endpoint (`imageServiceEndpoint`) is unreachable or does
    /// not answer the CRI v1 image API (`ImageFsInfo`).
    #[error("validate CRI v1 image API for endpoint {endpoint:?}: {reason}")]
    ImageService {
        /// The image endpoint.
        endpoint: String,
        /// What the connection attempt or the `ImageFsInfo` call saw.
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
    /// A pod volume could not be set up (a hostPath `type` check, an emptyDir a container
    /// tampered with): the pod waits in `ContainerCreating`, as with the kubelet's
    /// `MountVolume.SetUp failed for volume "<name>" : <error>`.
    #[error("pod {pod}: {message}")]
    VolumeSetup {
        /// `namespace/name`.
        pod: String,
        /// The kubelet's wording.
        message: String,
    },
    /// A container's configuration could not be made from the pod (a subPath that cannot be
    /// prepared, a `subPathExpr` with a missing variable): the container waits with
    /// `CreateContainerConfigError` and the message the kubelet shows (details are logged).
    #[error("pod {pod} container {container}: {message}")]
    ContainerConfig {
        /// `namespace/name`.
        pod: String,
        /// Container name.
        container: String,
        /// The kubelet's wording, e.g.
        /// `failed to prepare subPath for volumeMount "data" of container "app"`.
        message: String,
        /// What the node found, for the log only (the kubelet keeps host paths out of the
        /// status); empty when the message says it all.
        detail: String,
    },
    /// A seccomp profile could not be resolved for a container.
    #[error("pod {pod} container {container}: CreateContainerError")]
    Seccomp {
        /// `namespace/name`.
        pod: String,
        /// Container name.
        container: String,
        /// The resolution error (boxed: it is large and rare).
        #[source]
        source: Box<node_seccomp::Error>,
    },
    /// A container's image is not there and cannot be had: `ErrImagePull` (the pull failed)
    /// or `ErrImageNeverPull` (absent with `imagePullPolicy: Never`), the kubelet's waiting
    /// reasons.
    #[error("{reason}: {message}")]
    Image {
        /// `ErrImagePull` or `ErrImageNeverPull`.
        reason: &'static str,
        /// The kubelet's message, e.g. `Container image "x" is not present with pull policy
        /// of Never`.
        message: String,
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
    /// Filesystem work run off the async executor did not finish: it panicked (a bug) or the
    /// runtime is shutting down.
    #[error("{action}: blocking work {reason}")]
    Blocking {
        /// What was being done, e.g. `removing pod directory`.
        action: &'static str,
        /// `panicked` or `was cancelled`.
        reason: &'static str,
    },
}

impl RuntimeError {
    pub(crate) fn call(call: &'static str, status: tonic::Status) -> Self {
        Self::Call {
            call,
            status: Box::new(status),
        }
    }

    /// The `waiting.reason` a container shows while this error keeps it from starting:
    /// `ContainerCreating` (volumes), `CreateContainerConfigError` (its configuration) or
    /// `CreateContainerError` (anything else).
    pub fn waiting_reason(&self) -> &'static str {
        match self {
            Self::VolumeSetup { .. } => "ContainerCreating",
            Self::ContainerConfig { .. } => "CreateContainerConfigError",
            Self::Image { reason, .. } => reason,
            _ => "CreateContainerError",
        }
    }

    /// The `waiting.message` for this error: the kubelet's user-facing text where there is
    /// one, else the whole error.
    pub fn waiting_message(&self) -> String {
        match self {
            Self::VolumeSetup { message, .. }
            | Self::ContainerConfig { message, .. }
            | Self::Image { message, .. } => message.clone(),
            other => node_util::error_chain(other),
        }
    }

    /// The message with its causes (`source()`, as [`node_util::error_chain`] prints them) or
    /// the node's detail of a [`RuntimeError::ContainerConfig`] appended, for one-line reports
    /// and logs.
    pub fn with_cause(&self) -> String {
        match self {
            Self::ContainerConfig { detail, .. } if !detail.is_empty() => {
                format!("{self} ({detail})")
            }
            other => node_util::error_chain(other),
        }
    }

    /// The gRPC code when this is a failed CRI call.
    pub fn grpc_code(&self) -> Option<tonic::Code> {
        self.grpc_status().map(tonic::Status::code)
    }

    /// The runtime's gRPC status when this is a failed CRI call.
    pub fn grpc_status(&self) -> Option<&tonic::Status> {
        match self {
            Self::Call { status, .. } => Some(status),
            _ => None,
        }
    }
}
