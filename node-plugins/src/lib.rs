//! `node-plugins`: the kubelet's device plugin, plugin registration and pod-resources APIs,
//! wire-compatible with the kubelet so existing device plugins and monitoring agents work
//! unchanged.
//!
//! * [`proto`]: our own protos with the upstream packages (`v1beta1`, `pluginregistration`,
//!   `v1`, `v1alpha1`) and field numbers;
//! * [`DeviceManager`]: the `Registration` server on `kubelet.sock`, the dial-back, the
//!   `ListAndWatch` health model (capacity and allocatable, grace period), allocation
//!   (`GetPreferredAllocation`, `Allocate`, `PreStartContainer`) and the
//!   `kubelet_internal_checkpoint` written through `node-state`;
//!   [`apply_to_container_config`] merges a plugin's answer into node-runtime's CRI config;
//! * [`PodResourcesServer`]: the Pod Resources API (`v1` `List`, `GetAllocatableResources`,
//!   `Get`; `v1alpha1` `List`) with the kubelet's rate limit, on
//!   `<root-dir>/pod-resources/kubelet.sock`;
//! * [`PluginWatcher`]: the `<root-dir>/plugins_registry` watcher (`GetInfo`,
//!   `NotifyRegistrationStatus`; DevicePlugin into the device manager, CSI and DRA recorded);
//! * [`limits`]: what the device manager accepts from a plugin (device lists, `Allocate`
//!   answers), with the bounds as constants;
//! * [`fake_plugin`]: a complete example device plugin (also the `fake-device-plugin` binary).
//!
//! ```
//! use std::time::Duration;
//! use node_plugins::{DeviceManager, DeviceManagerOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let rt = tokio::runtime::Runtime::new()?;
//! rt.block_on(async {
//!     let manager = DeviceManager::new(DeviceManagerOptions::new(dir.path()));
//!     let server = manager.start()?; // serves <dir>/kubelet.sock
//!     assert!(manager.socket_path().exists());
//!     // No plugin registered yet: no extended resources.
//!     assert!(manager.capacity().capacity.is_empty());
//!     assert!(!manager.wait_until(Duration::from_millis(10), |m| m.is_connected("example.com/fake")).await);
//!     server.stop().await
//! })?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod allocator;
mod container;
mod device;
pub mod device_manager;
mod error;
pub mod fake_plugin;
pub mod limits;
pub mod pod_resources;
pub mod proto;
pub mod registry;
mod resource_name;
mod uds;

pub use allocator::DeviceAllocator;
pub use container::apply_to_container_config;
pub use device_manager::{
    ALLOCATE_TIMEOUT, Allocation, DEFAULT_DEVICE_PLUGINS_DIR, DEPRECATION_FILE,
    DEVICE_PLUGIN_VERSION, DIAL_TIMEOUT, DeviceInfo, DeviceManager, DeviceManagerOptions,
    ENDPOINT_STOP_GRACE_PERIOD, HEALTHY, KUBELET_SOCKET_NAME, LIST_AND_WATCH_TIMEOUT,
    OPTIONS_TIMEOUT, PRE_START_TIMEOUT, PREFERRED_ALLOCATION_TIMEOUT, RegistrationHandle,
    ResourceCapacity, UNHEALTHY,
};
/// The crate's error type, returned through [`Result`]. Also exported as [`PluginError`], its
/// older name.
#[doc(inline)]
pub use error::PluginError as Error;
/// The older name of [`Error`] (the same type), kept so existing code compiles; new code
/// names `Error`.
pub use error::PluginError;
pub use error::Result;
pub use pod_resources::{
    CpuMemoryProvider, PodResourcesHandle, PodResourcesOptions, PodResourcesServer, TokenBucket,
    pod_resources_socket,
};
pub use registry::{PluginWatcher, RegisteredPlugin, RegistryOptions};
pub use resource_name::is_extended_resource_name;
pub use uds::connect;
