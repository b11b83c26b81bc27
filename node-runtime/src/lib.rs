//! `node-runtime`: runs pods on a real container runtime through the CRI (`runtime.v1`), the
//! way the kubelet does for static pods.
//!
//! * [`CriClient`]: a CRI client over a Unix socket with the kubelet's 16 MiB message limit,
//!   retrying while the runtime starts, with a clear error when it is unreachable or speaks
//!   another CRI version.
//! * [`StaticPodSource`]: the manifests in `staticPodPath`, named and identified like the
//!   kubelet's static pods; bad manifests are reported and never disturb other pods.
//! * [`PodManager`]: the sync loop (sandbox, images, init containers, containers, volumes,
//!   resources, security context with seccomp resolved by `node-seccomp`, the kubelet's log
//!   layout, restart policy with crash-loop back-off, graceful stop, adoption after a restart).
//! * [`plan`]: the pure half of a pod sync (the kubelet's `computePodActions`): from the
//!   desired pod, the runtime's sandboxes and containers, the back-off state and the time,
//!   what [`PodManager`] does next; unit-tested without a runtime.
//! * [`RuntimeWatch`]: containerd's change events, so a sync loop relists when something
//!   changed rather than every second (other runtimes: every second, as the kubelet).
//! * [`PodRegistry`]: what the other crates ask: a pod by namespace/name with its containers and
//!   runtime IDs, or every active pod; [`pod_status::pod_list`] shows them as the API's
//!   `PodList` (the kubelet's `/pods`).
//! * [`sync_loop`]: the kubelet's sync cadence around [`PodManager::sync`] (runtime events,
//!   static pod directory changes through [`DirWatch`], the relist period) with the
//!   `syncloop` health the kubelet's `/healthz` and watchdog check.
//! * [`shutdown`]: graceful node shutdown: pods stopped in priority groups, each with its grace
//!   period, recorded in `graceful_node_shutdown_state`.
//! * [`cri_logs`]: the kubelet's container log reader (`containerLogs` queries, the CRI log
//!   format with partial lines, tail, since, limits, timestamps, follow across rotations).
//! * [`log_rotation`]: the kubelet's container log manager (size-based rotation, gzip,
//!   `ReopenContainerLog`), on directory descriptors that never follow symlinks.
//! * [`stats`]: the kubelet's `/stats/summary` types and collection (CRI stats, the node's
//!   cgroups, `/proc`, statvfs) and the `/metrics/resource` text.
//!
//! ```no_run
//! use node_runtime::{ClientOptions, CriClient, NodePaths, PodManager, StaticPodSource, SyncOptions};
//! # async fn run() -> Result<(), node_runtime::Error> {
//! let client = CriClient::connect("unix:///run/containerd/containerd.sock", &ClientOptions::default()).await?;
//! let paths = NodePaths { root_dir: "/var/lib/kubelet".into(), pod_logs_dir: "/var/log/pods".into() };
//! let source = StaticPodSource::new("/etc/kubernetes/manifests", "node-1");
//! let manager = PodManager::new(client, source, SyncOptions::new("node-1", paths));
//! let registry = manager.registry(); // hand this to the other crates
//! let mut manager = manager
//!     .run(async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await;
//! manager.remove_all().await?; // stop and remove the pods (a kubelet would leave them running)
//! # let _ = registry; Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod admission;
mod api_source;
pub mod api_volumes;
pub mod atomic_writer;
mod blocking;
mod client;
mod containerd_events;
pub mod cri;
pub mod cri_logs;
mod dir_watch;
pub mod env;
mod error;
mod hook;
pub mod lifecycle;
pub mod log_rotation;
mod manifest;
pub mod metrics;
pub mod network;
pub mod objects;
pub mod plan;
pub mod pod_status;
pub mod prober;
pub mod projection;
mod registry;
pub mod safe_fs;
pub mod shutdown;
mod source;
mod spec;
pub mod stats;
pub mod subpath;
mod sync;
pub mod sync_loop;
pub mod termination;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod validation;
pub mod volumes;
mod watch;

pub use api_source::{ApiPods, TerminatedPod, api_pod, deletion_grace};
pub use client::{
    ClientOptions, CriClient, KUBE_RUNTIME_API_VERSION, MAX_DEADLINE, MAX_MESSAGE_SIZE,
    RuntimeVersion, StreamFlags, call_deadline, image_spec, runtime_not_ready, socket_path,
};
pub use dir_watch::DirWatch;
/// The crate's error type, returned through [`Result`]. Also exported as [`RuntimeError`], its
/// older name.
#[doc(inline)]
pub use error::RuntimeError as Error;
/// The older name of [`Error`] (the same type), kept so existing code compiles; new code
/// names `Error`.
pub use error::RuntimeError;
pub use hook::{ContainerHook, ContainerRequest, HookFuture};
pub use manifest::{
    ANNOTATION_CONFIG_HASH, ANNOTATION_CONFIG_SEEN, ANNOTATION_CONFIG_SOURCE, MAX_MANIFEST_BYTES,
    PodSource, SourcePod, parse_manifest, read_manifest,
};
/// The older name of [`SourcePod`], from when every pod came from a manifest.
pub type StaticPod = SourcePod;
pub use registry::{
    ContainerInfo, ContainerKind, ContainerState, PodCondition, PodInfo, PodPhase, PodRegistry,
};
pub use source::{Scan, StaticPodSource};
pub use spec::{
    ANNOTATION_CONFIG_MIRROR, LABEL_CONTAINER_NAME, LABEL_MANAGED_BY, LABEL_POD_NAME,
    LABEL_POD_NAMESPACE, LABEL_POD_UID, NodePaths, PodIdentity, UNIFIED_MEMORY_SWAP_MAX,
    is_critical_pod, pod_qos,
};
pub use sync::{
    NodeInfoFn, ObjectSourceRef, PodEvent, PodManager, SyncOptions, SyncReport, default_pull_policy,
};
pub use watch::{
    CONTAINERD_CRI_NAMESPACE, ESTABLISHED_AFTER, RESUBSCRIBE_AFTER, RuntimeWatch, WatchState,
};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
