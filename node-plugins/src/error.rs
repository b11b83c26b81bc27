//! The crate's one error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in `node-plugins`. Messages the kubelet sends to plugins
/// (registration refusals, allocation failures) are reproduced word for word.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// A directory could not be created or prepared.
    #[error("preparing directory {path}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A socket file could not be removed, bound or given its mode.
    #[error("{action} socket {path}")]
    Socket {
        /// `removing`, `binding`, `setting the mode of`.
        action: &'static str,
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Connecting to a plugin's socket failed.
    #[error("connecting to {path}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// An RPC failed or timed out.
    #[error("{rpc} on {target}")]
    Rpc {
        /// The RPC name, e.g. `GetDevicePluginOptions`.
        rpc: &'static str,
        /// The resource name or socket path called.
        target: String,
        /// The status the peer (or the deadline) returned.
        #[source]
        source: tonic::Status,
    },
    /// A call did not finish within the kubelet's timeout.
    #[error("{rpc} on {target} timed out after {timeout:?}")]
    Timeout {
        /// The call (`dial`, `GetInfo`, ...).
        rpc: &'static str,
        /// The resource name or socket path called.
        target: String,
        /// The limit that was hit.
        timeout: Duration,
    },
    /// `Register` with a version the kubelet does not speak (the kubelet's message).
    #[error(
        "requested API version {version:?} is not supported by kubelet. Supported version is [\"v1beta1\"]"
    )]
    UnsupportedVersion {
        /// The version the plugin sent.
        version: String,
    },
    /// `Register` with a name that is not an extended resource name (the kubelet's message).
    #[error("the ResourceName {name:?} is invalid")]
    InvalidResourceName {
        /// The resource name the plugin sent.
        name: String,
    },
    /// An endpoint that is not a plain file name inside the device-plugins directory.
    #[error("invalid endpoint {endpoint:?}: expected a socket file name inside {dir}")]
    InvalidEndpoint {
        /// What the plugin sent.
        endpoint: String,
        /// The device-plugins directory.
        dir: PathBuf,
    },
    /// Allocation for a resource no plugin serves (the kubelet's message).
    #[error("cannot allocate unregistered device {resource}")]
    UnregisteredResource {
        /// The resource name.
        resource: String,
    },
    /// Not enough healthy free devices (the kubelet's message).
    #[error(
        "requested number of devices unavailable for {resource}. Requested: {requested}, Available: {available}"
    )]
    DevicesUnavailable {
        /// The resource name.
        resource: String,
        /// Devices asked for.
        requested: usize,
        /// Healthy devices not allocated elsewhere.
        available: usize,
    },
    /// The resource's plugin is gone (its devices are unhealthy) or has reported no healthy
    /// device (the kubelet's message).
    #[error("no healthy devices present; cannot allocate unhealthy devices {resource}")]
    NoHealthyDevices {
        /// The resource name.
        resource: String,
    },
    /// A container's earlier allocation (restored from the checkpoint) holds a device that is
    /// no longer healthy (the kubelet's message).
    #[error(
        "previously allocated devices are no longer healthy; cannot allocate unhealthy devices {resource}"
    )]
    UnhealthyAllocatedDevices {
        /// The resource name.
        resource: String,
    },
    /// A container asks for a different number of devices than it was given (the kubelet's
    /// message).
    #[error(
        "pod {pod_uid:?} container {container:?} changed request for resource {resource:?} from {from} to {to}"
    )]
    RequestChanged {
        /// The pod UID.
        pod_uid: String,
        /// The container name.
        container: String,
        /// The resource name.
        resource: String,
        /// Devices allocated.
        from: usize,
        /// Devices asked for now.
        to: usize,
    },
    /// The plugin answered `Allocate` without a container response (the kubelet's message,
    /// with the resource and the plugin).
    #[error("no containers return in allocation response from {plugin} for {resource}")]
    EmptyAllocation {
        /// The resource name.
        resource: String,
        /// The plugin's socket.
        plugin: PathBuf,
    },
    /// The plugin answered for more containers than the one it was asked about.
    #[error(
        "{rpc} response from {plugin} for {resource} has {got} container responses, expected 1"
    )]
    UnexpectedContainerResponses {
        /// `Allocate` or `GetPreferredAllocation`.
        rpc: &'static str,
        /// The resource name.
        resource: String,
        /// The plugin's socket.
        plugin: PathBuf,
        /// How many it sent.
        got: usize,
    },
    /// An answer of a plugin failed the checks of [`crate::limits`].
    #[error("{rpc} response from {plugin} for {resource} refused: {problem}")]
    InvalidPluginResponse {
        /// `Allocate` (or `checkpointed Allocate` for an answer restored from the checkpoint).
        rpc: &'static str,
        /// The resource name.
        resource: String,
        /// The plugin's socket.
        plugin: PathBuf,
        /// The entry and what was expected.
        problem: Box<crate::limits::ResponseProblem>,
    },
    /// The pod was released while its allocation was waiting for the plugin.
    #[error("allocation of {resource} for pod {pod_uid} cancelled: the pod was released")]
    AllocationCancelled {
        /// The pod UID.
        pod_uid: String,
        /// The resource name.
        resource: String,
    },
    /// A registration for a new resource name while the limit of resources is reached.
    #[error("cannot register {resource}: {limit} device plugin resources are registered already")]
    TooManyResources {
        /// The resource name.
        resource: String,
        /// [`crate::limits::MAX_RESOURCES`].
        limit: usize,
    },
    /// A plugin endpoint that exists but is not a socket (nothing is opened).
    #[error("{path} is not a socket but a {kind}")]
    NotASocket {
        /// The path.
        path: PathBuf,
        /// `regular file`, `directory`, `FIFO`, ...
        kind: &'static str,
    },
    /// Serving a gRPC socket failed.
    #[error("serving {path}")]
    Serve {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// The device-manager checkpoint could not be read or written.
    #[error("device manager checkpoint in {path}")]
    Checkpoint {
        /// The checkpoint directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: node_state::Error,
    },
}

/// `Result` with [`PluginError`].
pub type Result<T, E = PluginError> = std::result::Result<T, E>;
