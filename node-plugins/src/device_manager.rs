//! The device manager: the `Registration` server on `kubelet.sock`, one client per registered
//! plugin, the health model (capacity and allocatable), allocation and the
//! `kubelet_internal_checkpoint`.
//!
//! The flow follows the kubelet: `Register` checks the version and the resource name, dials the
//! plugin's socket back (blocking, 10 s), asks `GetDevicePluginOptions`, and only then answers.
//! A task then consumes `ListAndWatch`; every message is the full device list. When the stream
//! ends the devices turn unhealthy (allocatable 0, capacity kept) and the resource disappears
//! after the grace period (5 minutes). A new registration for the same resource replaces the
//! old one.
//!
//! Where the kubelet trusts its plugins, this manager does not:
//! * every call to a plugin has a deadline ([`DeviceManagerOptions`]; the kubelet's values where
//!   it has one, 10 s where it waits forever), a plugin path that is not a socket is refused
//!   without being opened, and no lock is held while a plugin is waited for, so a plugin that
//!   hangs costs its own resource the deadline and delays nothing else;
//! * devices are reserved before `Allocate` is sent ([`DeviceManager::allocate`]), so
//!   concurrent allocations never share a device;
//! * device lists and `Allocate` answers are checked and bounded ([`crate::limits`]) before
//!   they reach a CRI config or the checkpoint.

use node_util::error_chain;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use node_state::device_manager::{
    DEVICE_MANAGER_CHECKPOINT_FILE, DeviceManagerState, PodDevicesEntry,
};
use node_state::store::FileStore;
use prost::Message;
use tokio::sync::{oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::error::{PluginError, Result};
use crate::proto::deviceplugin::device_plugin_client::DevicePluginClient;
use crate::proto::deviceplugin::registration_server::{Registration, RegistrationServer};
use crate::proto::deviceplugin::{
    AllocateRequest, ContainerAllocateRequest, ContainerAllocateResponse,
    ContainerPreferredAllocationRequest, DevicePluginOptions, Empty, ListAndWatchResponse,
    PreStartContainerRequest, PreferredAllocationRequest, RegisterRequest,
};
use crate::resource_name::is_extended_resource_name;

/// The directory the kubelet hard-codes for device plugins (it does not follow `--root-dir`).
pub const DEFAULT_DEVICE_PLUGINS_DIR: &str = "/var/lib/kubelet/device-plugins";
/// The registration socket's file name inside the device-plugins directory.
pub const KUBELET_SOCKET_NAME: &str = "kubelet.sock";
/// The empty marker file announcing `plugins_registry` support to device plugins.
pub const DEPRECATION_FILE: &str = "DEPRECATION";
/// The only device plugin API version the kubelet accepts.
pub const DEVICE_PLUGIN_VERSION: &str = "v1beta1";
pub use crate::device::{DeviceInfo, HEALTHY, UNHEALTHY};
/// How long a resource whose plugin went away keeps its capacity (`endpointStopGracePeriod`).
pub const ENDPOINT_STOP_GRACE_PERIOD: Duration = Duration::from_secs(5 * 60);
/// The blocking dial-back to a plugin: the kubelet's `dial` in
/// `pkg/kubelet/cm/devicemanager/plugin/v1beta1/client.go` (`context.WithTimeout`, 10 s).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// `PreStartContainer`: `KubeletPreStartContainerRPCTimeoutInSecs` (30 s), used by the
/// kubelet's `preStartContainer` in `pkg/kubelet/cm/devicemanager/endpoint.go`.
pub const PRE_START_TIMEOUT: Duration = Duration::from_secs(30);
/// `GetDevicePluginOptions` during `Register`. Ours: the kubelet calls it with
/// `context.Background()` (`PluginConnected` in `pkg/kubelet/cm/devicemanager/manager.go`),
/// so a plugin that accepts the dial and never answers holds its `Register` call forever. We
/// take the dial's 10 s, so `Register` answers within `dial + options` (20 s) at worst.
pub const OPTIONS_TIMEOUT: Duration = Duration::from_secs(10);
/// From the start of `ListAndWatch` to its first list. Ours (the kubelet's `client.Run` has
/// no deadline): when it passes, the devices carried over from an earlier registration turn
/// unhealthy and a warning is logged; the stream keeps waiting, so a slow plugin still
/// becomes usable when its list arrives.
pub const LIST_AND_WATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// `GetPreferredAllocation`. Ours (the kubelet's `getPreferredAllocation` in `endpoint.go`
/// uses `context.Background()`): 10 s, like the dial. Also bounds the wait for another
/// allocation of the same resource that is asking its plugin at the time.
pub const PREFERRED_ALLOCATION_TIMEOUT: Duration = Duration::from_secs(10);
/// `Allocate`. Ours (the kubelet's `allocate` in `endpoint.go` uses `context.Background()`):
/// 10 s, like the dial. Plugins answer from memory (envs, mounts, device nodes); slow device
/// preparation belongs in `PreStartContainer`, which has 30 s.
pub const ALLOCATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the device manager lives and its timings (tests shorten them). Every call to a
/// plugin has a deadline, so a plugin that hangs costs its own resource the deadline and
/// nothing else.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeviceManagerOptions {
    /// The device-plugins directory: `kubelet.sock`, the plugins' sockets and the checkpoint.
    pub socket_dir: PathBuf,
    /// How long a stopped plugin's resource keeps its capacity.
    pub grace_period: Duration,
    /// Dial-back to a plugin socket ([`DIAL_TIMEOUT`]).
    pub dial_timeout: Duration,
    /// `GetDevicePluginOptions` during registration ([`OPTIONS_TIMEOUT`]).
    pub options_timeout: Duration,
    /// Until the first `ListAndWatch` list ([`LIST_AND_WATCH_TIMEOUT`]).
    pub list_and_watch_timeout: Duration,
    /// `GetPreferredAllocation` ([`PREFERRED_ALLOCATION_TIMEOUT`]).
    pub preferred_allocation_timeout: Duration,
    /// `Allocate` ([`ALLOCATE_TIMEOUT`]).
    pub allocate_timeout: Duration,
    /// `PreStartContainer` ([`PRE_START_TIMEOUT`]).
    pub pre_start_timeout: Duration,
}

impl DeviceManagerOptions {
    /// The kubelet's timings (ours where it has none) for `socket_dir`.
    pub fn new(socket_dir: impl Into<PathBuf>) -> Self {
        Self {
            socket_dir: socket_dir.into(),
            grace_period: ENDPOINT_STOP_GRACE_PERIOD,
            dial_timeout: DIAL_TIMEOUT,
            options_timeout: OPTIONS_TIMEOUT,
            list_and_watch_timeout: LIST_AND_WATCH_TIMEOUT,
            preferred_allocation_timeout: PREFERRED_ALLOCATION_TIMEOUT,
            allocate_timeout: ALLOCATE_TIMEOUT,
            pre_start_timeout: PRE_START_TIMEOUT,
        }
    }

    /// Sets [`grace_period`](Self::grace_period).
    #[must_use]
    pub fn with_grace_period(mut self, grace_period: Duration) -> Self {
        self.grace_period = grace_period;
        self
    }

    /// Sets [`dial_timeout`](Self::dial_timeout).
    #[must_use]
    pub fn with_dial_timeout(mut self, dial_timeout: Duration) -> Self {
        self.dial_timeout = dial_timeout;
        self
    }

    /// Sets [`options_timeout`](Self::options_timeout).
    #[must_use]
    pub fn with_options_timeout(mut self, options_timeout: Duration) -> Self {
        self.options_timeout = options_timeout;
        self
    }

    /// Sets [`list_and_watch_timeout`](Self::list_and_watch_timeout).
    #[must_use]
    pub fn with_list_and_watch_timeout(mut self, list_and_watch_timeout: Duration) -> Self {
        self.list_and_watch_timeout = list_and_watch_timeout;
        self
    }

    /// Sets [`preferred_allocation_timeout`](Self::preferred_allocation_timeout).
    #[must_use]
    pub fn with_preferred_allocation_timeout(
        mut self,
        preferred_allocation_timeout: Duration,
    ) -> Self {
        self.preferred_allocation_timeout = preferred_allocation_timeout;
        self
    }

    /// Sets [`allocate_timeout`](Self::allocate_timeout).
    #[must_use]
    pub fn with_allocate_timeout(mut self, allocate_timeout: Duration) -> Self {
        self.allocate_timeout = allocate_timeout;
        self
    }

    /// Sets [`pre_start_timeout`](Self::pre_start_timeout).
    #[must_use]
    pub fn with_pre_start_timeout(mut self, pre_start_timeout: Duration) -> Self {
        self.pre_start_timeout = pre_start_timeout;
        self
    }
}

impl Default for DeviceManagerOptions {
    fn default() -> Self {
        Self::new(DEFAULT_DEVICE_PLUGINS_DIR)
    }
}

/// Node capacity and allocatable per extended resource (`GetCapacity`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceCapacity {
    /// Healthy plus unhealthy devices.
    pub capacity: BTreeMap<String, i64>,
    /// Healthy devices.
    pub allocatable: BTreeMap<String, i64>,
    /// Resources removed by this call after their grace period: report them as 0.
    pub deleted: Vec<String>,
}

/// The devices one container got for one resource, with the plugin's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// The extended resource.
    pub resource: String,
    /// Device IDs, sorted.
    pub device_ids: Vec<String>,
    /// The plugin's `ContainerAllocateResponse`.
    pub response: ContainerAllocateResponse,
}

/// Everything a plugin-served resource is known by.
#[derive(Debug)]
struct Resource {
    generation: u64,
    client: Option<DevicePluginClient<Channel>>,
    options: DevicePluginOptions,
    endpoint: PathBuf,
    devices: BTreeMap<String, DeviceInfo>,
    stopped_at: Option<Instant>,
    stream: Option<AbortHandle>,
    /// Held while an allocation of this resource asks `GetPreferredAllocation`, so the plugin
    /// always chooses among devices nobody else is choosing at the same time. Kept across
    /// re-registrations of the resource.
    choice: Arc<tokio::sync::Mutex<()>>,
}

type ContainerKey = (String, String);

/// Devices chosen for a container whose `Allocate` is still running. They count as in use
/// for every other allocation until the allocation is recorded or the reservation dropped.
#[derive(Debug)]
struct Reserved {
    pod_uid: String,
    resource: String,
    device_ids: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    resources: BTreeMap<String, Resource>,
    allocations: BTreeMap<ContainerKey, BTreeMap<String, Allocation>>,
    /// Allocations restored from the checkpoint and not checked again yet: the first reuse
    /// checks them as the kubelet's re-admission does (`devicesToAllocate`).
    unverified: BTreeSet<(ContainerKey, String)>,
    reservations: BTreeMap<u64, Reserved>,
    next_generation: u64,
    next_reservation: u64,
    /// Numbers checkpoint snapshots in state order (see [`CheckpointSlot`]).
    checkpoint_seq: u64,
}

impl State {
    /// Devices of `resource` held by recorded allocations or pending reservations.
    fn in_use(&self, resource: &str) -> BTreeSet<&str> {
        let allocated = self
            .allocations
            .values()
            .filter_map(|a| a.get(resource))
            .flat_map(|a| a.device_ids.iter());
        let reserved = self
            .reservations
            .values()
            .filter(|r| r.resource == resource)
            .flat_map(|r| r.device_ids.iter());
        allocated.chain(reserved).map(String::as_str).collect()
    }

    /// Healthy devices of `resource` nobody holds, sorted by ID.
    fn available(&self, resource: &str) -> Vec<String> {
        let Some(r) = self.resources.get(resource) else {
            return Vec::new();
        };
        let in_use = self.in_use(resource);
        r.devices
            .values()
            .filter(|d| d.healthy && !in_use.contains(d.id.as_str()))
            .map(|d| d.id.clone())
            .collect()
    }
}

#[derive(Debug)]
struct Shared {
    options: DeviceManagerOptions,
    /// Only through [`Shared::state`], which keeps [`Shared::generation`] current.
    state: Mutex<State>,
    /// Bumped by every critical section that took the state mutably (see [`StateGuard`]).
    generation: AtomicU64,
    changes: watch::Sender<u64>,
    store: Mutex<CheckpointSlot>,
}

impl Shared {
    /// Locks the state. Writing through the guard bumps the generation when it is dropped.
    fn state(&self) -> StateGuard<'_> {
        StateGuard {
            guard: lock(&self.state),
            generation: &self.generation,
            written: false,
        }
    }
}

/// The state lock. Any mutable access marks it written, and dropping a written guard bumps
/// [`Shared::generation`] while the lock is still held, after every change it made: a reader
/// that loads the generation and then takes the lock sees at least the state that generation
/// stands for. Mutable access that changed nothing bumps too (a spurious rebuild for a cache,
/// never a stale answer).
struct StateGuard<'a> {
    guard: MutexGuard<'a, State>,
    generation: &'a AtomicU64,
    written: bool,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.written = true;
        &mut self.guard
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        if self.written {
            // Release: pairs with the Acquire load in `DeviceManager::generation`.
            self.generation.fetch_add(1, Ordering::Release);
        }
    }
}

/// The checkpoint store and the newest snapshot written to it. Writes run on tokio's blocking
/// pool and may finish out of order; a snapshot older than the one on disk is skipped, so the
/// file always ends at the newest state.
#[derive(Debug, Default)]
struct CheckpointSlot {
    store: Option<FileStore>,
    written: u64,
}

/// Writes a snapshot (blocking: write, fsync, rename) unless a newer one is on disk already.
/// A failure is logged: the in-memory state stays authoritative, as in the kubelet.
fn save_checkpoint(shared: &Shared, seq: u64, data: &DeviceManagerState) {
    let mut slot = lock(&shared.store);
    if seq <= slot.written {
        return;
    }
    let Some(store) = slot.store.as_ref() else {
        return;
    };
    match store.save(DEVICE_MANAGER_CHECKPOINT_FILE, data) {
        Ok(()) => slot.written = seq,
        Err(err) => tracing::error!(error = %err, "writing the device manager checkpoint"),
    }
}

/// The device manager. Cheap to clone; every clone shares the same state.
#[derive(Debug, Clone)]
pub struct DeviceManager {
    shared: Arc<Shared>,
}

impl DeviceManager {
    /// A manager for `options.socket_dir`. Nothing touches the filesystem until
    /// [`DeviceManager::start`].
    pub fn new(options: DeviceManagerOptions) -> Self {
        let (changes, _) = watch::channel(0);
        Self {
            shared: Arc::new(Shared {
                options,
                state: Mutex::new(State::default()),
                generation: AtomicU64::new(0),
                changes,
                store: Mutex::new(CheckpointSlot::default()),
            }),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &DeviceManagerOptions {
        &self.shared.options
    }

    /// The registration socket path (`<socket_dir>/kubelet.sock`).
    pub fn socket_path(&self) -> PathBuf {
        self.shared.options.socket_dir.join(KUBELET_SOCKET_NAME)
    }

    /// Starts like the kubelet: creates the directory (0750), restores the checkpoint, removes
    /// every socket in the directory (so running plugins notice and re-register), binds a fresh
    /// `kubelet.sock` (0600) and serves `Registration` until [`RegistrationHandle::stop`].
    pub fn start(&self) -> Result<RegistrationHandle> {
        let dir = &self.shared.options.socket_dir;
        create_dir(dir, 0o750)?;
        let store = FileStore::open(dir).map_err(|source| PluginError::Checkpoint {
            path: dir.clone(),
            source,
        })?;
        self.restore_checkpoint(&store);
        lock(&self.shared.store).store = Some(store);
        cleanup_sockets(dir)?;
        let path = self.socket_path();
        let listener = crate::uds::bind(&path, 0o600)?;
        let (tx, rx) = oneshot::channel::<()>();
        let service = RegistrationServer::new(RegistrationService {
            manager: self.clone(),
        });
        let serve_path = path.clone();
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await
                .map_err(|source| PluginError::Serve {
                    path: serve_path,
                    source,
                })
        });
        tracing::info!(socket = %path.display(), "device plugin registration server started");
        Ok(RegistrationHandle {
            shutdown: Some(tx),
            task,
            path,
        })
    }

    /// Creates the empty `DEPRECATION` file in the device-plugins directory, which tells
    /// plugins that this agent also accepts device plugins through `plugins_registry`
    /// (the kubelet does this when it installs its DevicePlugin handler).
    pub fn mark_watcher_mode(&self) -> Result<()> {
        let dir = &self.shared.options.socket_dir;
        create_dir(dir, 0o750)?;
        let path = dir.join(DEPRECATION_FILE);
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map(drop)
            .map_err(|source| PluginError::Write { path, source })
    }

    /// Handles a `Register` call: the version and resource-name checks with the kubelet's
    /// messages, then [`DeviceManager::connect_plugin`] on `<socket_dir>/<endpoint>`. Answers
    /// within `dial_timeout + options_timeout` whatever the plugin does.
    pub async fn register(&self, request: RegisterRequest) -> Result<()> {
        if request.version != DEVICE_PLUGIN_VERSION {
            return Err(PluginError::UnsupportedVersion {
                version: request.version,
            });
        }
        if !is_extended_resource_name(&request.resource_name) {
            return Err(PluginError::InvalidResourceName {
                name: request.resource_name,
            });
        }
        let endpoint = self.endpoint_path(&request.endpoint)?;
        self.connect_plugin(&request.resource_name, &endpoint).await
    }

    /// Dials a plugin serving `resource` on `endpoint`, asks its options and starts consuming
    /// its `ListAndWatch` stream. Replaces any earlier plugin for the same resource (the
    /// newest wins, as in the kubelet). Used by `Register` and by the `plugins_registry`
    /// DevicePlugin handler. Bounded by `dial_timeout` (a path that is not a socket fails at
    /// once) plus `options_timeout`; no lock is held while waiting for the plugin.
    pub async fn connect_plugin(&self, resource: &str, endpoint: &Path) -> Result<()> {
        self.check_resource_room(resource)?;
        let options = &self.shared.options;
        let channel = crate::uds::connect(endpoint, options.dial_timeout).await?;
        let mut client = DevicePluginClient::new(channel)
            .max_decoding_message_size(crate::limits::MAX_PLUGIN_MESSAGE_BYTES);
        let plugin_options = call(
            "GetDevicePluginOptions",
            resource,
            options.options_timeout,
            client.get_device_plugin_options(Empty {}),
        )
        .await
        .inspect_err(|err| {
            tracing::warn!(resource, plugin = %endpoint.display(), error = %error_chain(err), "device plugin did not answer GetDevicePluginOptions");
        })?;
        let generation = {
            let mut state = self.shared.state();
            if !state.resources.contains_key(resource)
                && state.resources.len() >= crate::limits::MAX_RESOURCES
            {
                return Err(PluginError::TooManyResources {
                    resource: resource.to_owned(),
                    limit: crate::limits::MAX_RESOURCES,
                });
            }
            state.next_generation += 1;
            let generation = state.next_generation;
            let previous = state.resources.remove(resource);
            if let Some(stream) = previous.as_ref().and_then(|p| p.stream.as_ref()) {
                stream.abort();
            }
            // Devices stay as last known until the new plugin's first list replaces them.
            let (devices, choice) = match previous {
                Some(p) => (p.devices, p.choice),
                None => (BTreeMap::new(), Arc::default()),
            };
            state.resources.insert(
                resource.to_owned(),
                Resource {
                    generation,
                    client: Some(client.clone()),
                    options: plugin_options,
                    endpoint: endpoint.to_path_buf(),
                    devices,
                    stopped_at: None,
                    stream: None,
                    choice,
                },
            );
            generation
        };
        let task = tokio::spawn(run_stream(
            self.clone(),
            resource.to_owned(),
            generation,
            endpoint.to_path_buf(),
            client,
        ));
        if let Some(r) = self.shared.state().resources.get_mut(resource)
            && r.generation == generation
        {
            r.stream = Some(task.abort_handle());
        }
        tracing::info!(resource, endpoint = %endpoint.display(), "device plugin registered");
        self.notify();
        Ok(())
    }

    /// Refuses a new resource name when [`MAX_RESOURCES`](crate::limits::MAX_RESOURCES) are
    /// known already (checked again when the plugin is recorded).
    fn check_resource_room(&self, resource: &str) -> Result<()> {
        let state = self.shared.state();
        if !state.resources.contains_key(resource)
            && state.resources.len() >= crate::limits::MAX_RESOURCES
        {
            return Err(PluginError::TooManyResources {
                resource: resource.to_owned(),
                limit: crate::limits::MAX_RESOURCES,
            });
        }
        Ok(())
    }

    /// Drops the plugin of `resource` as if its stream had ended (the `plugins_registry`
    /// DeRegister path): devices unhealthy, resource removed after the grace period.
    pub fn disconnect_plugin(&self, resource: &str) {
        let generation = self
            .shared
            .state()
            .resources
            .get(resource)
            .map(|r| r.generation);
        if let Some(generation) = generation
            && self.stream_ended(resource, generation)
        {
            self.commit_detached(true);
        }
    }

    /// Stops every plugin stream (the agent is shutting down). Resources stay as they are.
    pub fn shutdown(&self) {
        let mut state = self.shared.state();
        for r in state.resources.values_mut() {
            if let Some(stream) = r.stream.take() {
                stream.abort();
            }
            r.client = None;
        }
    }

    /// Capacity and allocatable per resource, removing resources whose plugin has been gone
    /// longer than the grace period (returned in `deleted`).
    pub fn capacity(&self) -> ResourceCapacity {
        let grace = self.shared.options.grace_period;
        let mut out = ResourceCapacity::default();
        let mut state = self.shared.state();
        let now = Instant::now();
        let expired: Vec<String> = state
            .resources
            .iter()
            .filter(|(_, r)| r.stopped_at.is_some_and(|t| now.duration_since(t) > grace))
            .map(|(name, _)| name.clone())
            .collect();
        for name in expired {
            state.resources.remove(&name);
            out.deleted.push(name);
        }
        for (name, r) in &state.resources {
            let healthy = r.devices.values().filter(|d| d.healthy).count();
            out.capacity.insert(name.clone(), count(r.devices.len()));
            out.allocatable.insert(name.clone(), count(healthy));
        }
        drop(state);
        if !out.deleted.is_empty() {
            self.commit_detached(false);
        }
        out
    }

    /// The devices of `resource`, sorted by ID (empty when unknown).
    pub fn devices(&self, resource: &str) -> Vec<DeviceInfo> {
        self.shared
            .state()
            .resources
            .get(resource)
            .map(|r| r.devices.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every resource with its devices (for `GetAllocatableResources`).
    pub fn all_devices(&self) -> BTreeMap<String, Vec<DeviceInfo>> {
        self.shared
            .state()
            .resources
            .iter()
            .map(|(name, r)| (name.clone(), r.devices.values().cloned().collect()))
            .collect()
    }

    /// Whether a plugin is connected for `resource` (stream running).
    pub fn is_connected(&self, resource: &str) -> bool {
        self.shared
            .state()
            .resources
            .get(resource)
            .is_some_and(|r| r.client.is_some())
    }

    /// A number that changes whenever anything this manager reports may have changed:
    /// resources registered, disconnected or removed, devices and their health or topology,
    /// allocations made or released, reservations. Equal numbers mean the same state, so a
    /// reader can keep an answer built from it (the pod-resources server does) until the
    /// number moves. Load it *before* reading the state the answer is built from.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// A receiver that changes on every registration, device update or disconnection.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Waits until `check(self)` holds, re-checking after every change, or `timeout` passes.
    /// Returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&DeviceManager) -> bool,
    ) -> bool {
        let mut rx = self.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            if check(self) {
                return true;
            }
            // Also wake up periodically: the grace period expires without a change event.
            let tick = (Instant::now() + Duration::from_millis(100)).min(deadline);
            match tokio::time::timeout_at(tick, rx.changed()).await {
                Ok(Ok(())) | Err(_) => {}
                Ok(Err(_)) => return check(self),
            }
            if Instant::now() >= deadline {
                return check(self);
            }
        }
    }

    /// Allocates `count` devices of `resource` to a container, like the kubelet at pod
    /// admission (`devicesToAllocate` and `allocateContainerResources` in
    /// `pkg/kubelet/cm/devicemanager/manager.go`): reuses an existing allocation, else picks
    /// healthy free devices (asking `GetPreferredAllocation` when the plugin offers it), calls
    /// `Allocate` with one container request, checks and stores the answer and writes the
    /// checkpoint.
    ///
    /// Concurrent calls never get the same device: the chosen devices are reserved in the
    /// shared state, in the same critical section that found them free, before `Allocate` is
    /// sent; a reservation counts as in use for every other allocation. It is released when
    /// the call fails, times out or its future is dropped (a guard releases it on drop), and
    /// turned into the allocation when the answer is good. When the plugin offers
    /// `GetPreferredAllocation`, allocations of that resource ask it one at a time (a
    /// per-resource async lock, waited for at most `preferred_allocation_timeout`), so the
    /// plugin chooses among devices nobody else is choosing; the kubelet gets the same from
    /// admitting pods one at a time. Other resources are never held up, and no `std` lock is
    /// held across an `.await`.
    ///
    /// An allocation restored from the checkpoint is checked on its first reuse with the
    /// kubelet's errors (resource registered, healthy devices present, its devices still
    /// healthy, its stored answer acceptable); an allocation made by this process is reused
    /// as is, as the kubelet does for container restarts.
    pub async fn allocate(
        &self,
        pod_uid: &str,
        container: &str,
        resource: &str,
        count: usize,
    ) -> Result<Allocation> {
        let key = (pod_uid.to_owned(), container.to_owned());
        let first = {
            let mut state = self.shared.state();
            if let Some(existing) = reuse(&mut state, &key, resource, count)? {
                return Ok(existing);
            }
            let (client, options, endpoint, choice) = plugin_for(&state, resource)?;
            let available = state.available(resource);
            if available.len() < count {
                return Err(PluginError::DevicesUnavailable {
                    resource: resource.to_owned(),
                    requested: count,
                    available: available.len(),
                });
            }
            if options.get_preferred_allocation_available {
                Choice::AskPlugin(choice)
            } else {
                let chosen: Vec<String> = available.into_iter().take(count).collect();
                let id = reserve(&mut state, pod_uid, resource, &chosen);
                Choice::Reserved(Box::new(Picked {
                    reservation: Reservation::new(self.clone(), id),
                    chosen,
                    client,
                    endpoint,
                }))
            }
        };
        let picked = match first {
            Choice::Reserved(picked) => *picked,
            Choice::AskPlugin(choice) => {
                self.choose_with_plugin(pod_uid, resource, count, choice)
                    .await?
            }
        };
        self.allocate_reserved(key, resource, picked).await
    }

    /// The `GetPreferredAllocation` path: one allocation of the resource at a time asks the
    /// plugin, then reserves. The available set is read again after the call (health may have
    /// changed, a plugin without preferences may have replaced this one), so a preference is
    /// only ever honoured for devices that are still free.
    async fn choose_with_plugin(
        &self,
        pod_uid: &str,
        resource: &str,
        count: usize,
        choice: Arc<tokio::sync::Mutex<()>>,
    ) -> Result<Picked> {
        let wait = self.shared.options.preferred_allocation_timeout;
        let _turn = tokio::time::timeout(wait, choice.lock_owned())
            .await
            .map_err(|_| PluginError::Timeout {
                rpc: "waiting for another allocation's GetPreferredAllocation",
                target: resource.to_owned(),
                timeout: wait,
            })?;
        let (mut client, endpoint, available) = {
            let state = self.shared.state();
            let (client, _, endpoint, _) = plugin_for(&state, resource)?;
            (client, endpoint, state.available(resource))
        };
        if available.len() < count {
            return Err(PluginError::DevicesUnavailable {
                resource: resource.to_owned(),
                requested: count,
                available: available.len(),
            });
        }
        let request = PreferredAllocationRequest {
            container_requests: vec![ContainerPreferredAllocationRequest {
                available_device_i_ds: available,
                must_include_device_i_ds: Vec::new(),
                allocation_size: i32::try_from(count).unwrap_or(i32::MAX),
            }],
        };
        let response = call(
            "GetPreferredAllocation",
            resource,
            wait,
            client.get_preferred_allocation(request),
        )
        .await
        .inspect_err(|err| {
            tracing::warn!(resource, plugin = %endpoint.display(), error = %error_chain(err), "GetPreferredAllocation failed");
        })?;
        // No answer means no preference (the kubelet's reading); more than one is a plugin
        // answering a question it was not asked.
        let preferred = match response.container_responses.len() {
            0 => Vec::new(),
            1 => response
                .container_responses
                .into_iter()
                .next()
                .map(|r| r.device_i_ds)
                .unwrap_or_default(),
            got => {
                return Err(PluginError::UnexpectedContainerResponses {
                    rpc: "GetPreferredAllocation",
                    resource: resource.to_owned(),
                    plugin: endpoint,
                    got,
                });
            }
        };
        let mut state = self.shared.state();
        let available = state.available(resource);
        let free: BTreeSet<&str> = available.iter().map(String::as_str).collect();
        let mut chosen: Vec<String> = Vec::with_capacity(count.min(available.len()));
        let mut ignored = 0usize;
        for id in &preferred {
            if chosen.len() == count {
                break;
            }
            if free.contains(id.as_str()) && !chosen.contains(id) {
                chosen.push(id.clone());
            } else {
                ignored += 1;
            }
        }
        if ignored > 0 {
            tracing::warn!(resource, plugin = %endpoint.display(), ignored, "GetPreferredAllocation named devices that are unknown, unavailable or repeated; they were ignored");
        }
        for id in &available {
            if chosen.len() == count {
                break;
            }
            if !chosen.contains(id) {
                chosen.push(id.clone());
            }
        }
        if chosen.len() < count {
            return Err(PluginError::DevicesUnavailable {
                resource: resource.to_owned(),
                requested: count,
                available: available.len(),
            });
        }
        let id = reserve(&mut state, pod_uid, resource, &chosen);
        drop(state);
        Ok(Picked {
            reservation: Reservation::new(self.clone(), id),
            chosen,
            client,
            endpoint,
        })
    }

    /// Sends `Allocate` for reserved devices and records the checked answer; the reservation
    /// is released on every way out but success.
    async fn allocate_reserved(
        &self,
        key: ContainerKey,
        resource: &str,
        picked: Picked,
    ) -> Result<Allocation> {
        let Picked {
            mut reservation,
            mut chosen,
            mut client,
            endpoint,
        } = picked;
        let endpoint = endpoint.as_path();
        chosen.sort();
        let request = AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: chosen.clone(),
            }],
        };
        let response = call(
            "Allocate",
            resource,
            self.shared.options.allocate_timeout,
            client.allocate(request),
        )
        .await
        .inspect_err(|err| {
            tracing::warn!(resource, plugin = %endpoint.display(), error = %error_chain(err), "Allocate failed; devices released");
        })?;
        let got = response.container_responses.len();
        let response = match got {
            0 => {
                return Err(PluginError::EmptyAllocation {
                    resource: resource.to_owned(),
                    plugin: endpoint.to_path_buf(),
                });
            }
            1 => response
                .container_responses
                .into_iter()
                .next()
                .unwrap_or_default(),
            got => {
                return Err(PluginError::UnexpectedContainerResponses {
                    rpc: "Allocate",
                    resource: resource.to_owned(),
                    plugin: endpoint.to_path_buf(),
                    got,
                });
            }
        };
        if let Err(problem) = crate::limits::check_allocate_response(&response) {
            tracing::warn!(resource, plugin = %endpoint.display(), %problem, "Allocate answer refused; devices released");
            return Err(PluginError::InvalidPluginResponse {
                rpc: "Allocate",
                resource: resource.to_owned(),
                plugin: endpoint.to_path_buf(),
                problem: Box::new(problem),
            });
        }
        let allocation = Allocation {
            resource: resource.to_owned(),
            device_ids: chosen,
            response,
        };
        let recorded = {
            let mut state = self.shared.state();
            let Some(id) = reservation.take() else {
                return Err(PluginError::AllocationCancelled {
                    pod_uid: key.0,
                    resource: resource.to_owned(),
                });
            };
            if state.reservations.remove(&id).is_none() {
                // The pod was released while its plugin was answering.
                return Err(PluginError::AllocationCancelled {
                    pod_uid: key.0,
                    resource: resource.to_owned(),
                });
            }
            let by_resource = state.allocations.entry(key).or_default();
            match by_resource.get(resource) {
                // A concurrent call for the same container won: keep its devices, free ours.
                Some(existing) => existing.clone(),
                None => {
                    by_resource.insert(resource.to_owned(), allocation.clone());
                    allocation
                }
            }
        };
        self.commit(true).await;
        Ok(recorded)
    }

    /// Devices of `resource` reserved by allocations whose `Allocate` is still running.
    pub fn reserved_devices(&self, resource: &str) -> Vec<String> {
        let state = self.shared.state();
        let mut ids: Vec<String> = state
            .reservations
            .values()
            .filter(|r| r.resource == resource)
            .flat_map(|r| r.device_ids.iter().cloned())
            .collect();
        ids.sort();
        ids
    }

    /// What to add to the container's CRI config before it starts
    /// (`GetDeviceRunContainerOptions`): calls `PreStartContainer` (`pre_start_timeout`, 30 s)
    /// for each resource whose plugin asks for it, then merges every allocation's envs,
    /// mounts, devices, annotations and CDI devices (resources in name order; later values win
    /// on equal keys). Every answer passes [`crate::limits::check_allocate_response`] first.
    pub async fn run_container_options(
        &self,
        pod_uid: &str,
        container: &str,
    ) -> Result<ContainerAllocateResponse> {
        let allocations = self.container_allocations(pod_uid, container);
        let mut merged = ContainerAllocateResponse::default();
        for allocation in allocations {
            let (client, options, endpoint) = {
                let state = self.shared.state();
                match state.resources.get(&allocation.resource) {
                    Some(r) => (r.client.clone(), r.options, r.endpoint.clone()),
                    None => (None, DevicePluginOptions::default(), PathBuf::new()),
                }
            };
            // Checked when it was made; checked again here because an allocation restored
            // from the checkpoint may not have been reused through `allocate` yet.
            if let Err(problem) = crate::limits::check_allocate_response(&allocation.response) {
                return Err(PluginError::InvalidPluginResponse {
                    rpc: "stored Allocate",
                    resource: allocation.resource,
                    plugin: endpoint,
                    problem: Box::new(problem),
                });
            }
            if options.pre_start_required {
                let Some(mut client) = client else {
                    return Err(PluginError::UnregisteredResource {
                        resource: allocation.resource,
                    });
                };
                let request = PreStartContainerRequest {
                    devices_ids: allocation.device_ids.clone(),
                };
                call(
                    "PreStartContainer",
                    &allocation.resource,
                    self.shared.options.pre_start_timeout,
                    client.pre_start_container(request),
                )
                .await
                .inspect_err(|err| {
                    tracing::warn!(resource = allocation.resource, plugin = %endpoint.display(), error = %error_chain(err), "PreStartContainer failed");
                })?;
            }
            let r = allocation.response;
            merged.envs.extend(r.envs);
            merged.annotations.extend(r.annotations);
            merged.mounts.extend(r.mounts);
            merged.devices.extend(r.devices);
            merged.cdi_devices.extend(r.cdi_devices);
        }
        Ok(merged)
    }

    /// The allocations of one container, by resource name.
    pub fn container_allocations(&self, pod_uid: &str, container: &str) -> Vec<Allocation> {
        self.shared
            .state()
            .allocations
            .get(&(pod_uid.to_owned(), container.to_owned()))
            .map(|a| a.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The devices of one container with their NUMA nodes, as `(resource, device ID, nodes)`,
    /// read under one lock without copying the resources' device lists.
    pub fn container_device_topology(
        &self,
        pod_uid: &str,
        container: &str,
    ) -> Vec<(String, String, Vec<i64>)> {
        let state = self.shared.state();
        let Some(by_resource) = state
            .allocations
            .get(&(pod_uid.to_owned(), container.to_owned()))
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for allocation in by_resource.values() {
            let known = state.resources.get(&allocation.resource);
            for id in &allocation.device_ids {
                let nodes = known
                    .and_then(|r| r.devices.get(id))
                    .map(|d| d.numa_nodes.clone())
                    .unwrap_or_default();
                out.push((allocation.resource.clone(), id.clone(), nodes));
            }
        }
        out
    }

    /// Forgets the allocations of a pod that is gone and writes the checkpoint before it
    /// returns. Reservations of the pod whose `Allocate` is still running are dropped too:
    /// those calls fail instead of recording devices for a pod that no longer exists.
    ///
    /// Blocking (the checkpoint is fsynced): from async code, call it through
    /// `tokio::task::spawn_blocking`, as `PodManager` calls its container hook.
    pub fn release_pod(&self, pod_uid: &str) {
        let removed = {
            let mut state = self.shared.state();
            let before = (state.allocations.len(), state.reservations.len());
            state.allocations.retain(|(uid, _), _| uid != pod_uid);
            state.unverified.retain(|((uid, _), _)| uid != pod_uid);
            state.reservations.retain(|_, r| r.pod_uid != pod_uid);
            before != (state.allocations.len(), state.reservations.len())
        };
        if removed {
            self.commit_blocking(true);
        }
    }

    fn endpoint_path(&self, endpoint: &str) -> Result<PathBuf> {
        let dir = &self.shared.options.socket_dir;
        let mut components = Path::new(endpoint).components();
        match (components.next(), components.next()) {
            // Our own registration socket is not a plugin.
            (Some(Component::Normal(name)), None)
                if name != KUBELET_SOCKET_NAME && !endpoint.contains('\0') =>
            {
                Ok(dir.join(name))
            }
            _ => Err(PluginError::InvalidEndpoint {
                endpoint: crate::limits::shown(endpoint),
                dir: dir.clone(),
            }),
        }
    }

    /// A `ListAndWatch` list: checked (see [`crate::limits`]), then it replaces the resource's
    /// devices. A list equal to the current one changes nothing (no checkpoint write), so a
    /// plugin repeating itself costs no disk writes.
    ///
    /// Returns whether the state changed (then the caller commits it).
    fn update_devices(
        &self,
        resource: &str,
        generation: u64,
        endpoint: &Path,
        message: ListAndWatchResponse,
    ) -> bool {
        let checked = crate::limits::check_device_list(message.devices);
        {
            let mut state = self.shared.state();
            let Some(r) = state.resources.get_mut(resource) else {
                return false;
            };
            if r.generation != generation {
                return false;
            }
            match checked {
                Ok(list) => {
                    for (id, reason) in list.dropped.iter().take(MAX_LOGGED_PROBLEMS) {
                        tracing::warn!(resource, plugin = %endpoint.display(), device = ?id, reason, "device plugin list entry dropped or changed");
                    }
                    if list.dropped.len() > MAX_LOGGED_PROBLEMS {
                        tracing::warn!(resource, plugin = %endpoint.display(), more = list.dropped.len() - MAX_LOGGED_PROBLEMS, "more device plugin list entries dropped or changed");
                    }
                    if r.devices == list.devices {
                        return false;
                    }
                    // Every message is the full list: rebuild the set.
                    r.devices = list.devices;
                }
                Err(len) => {
                    tracing::warn!(
                        resource,
                        plugin = %endpoint.display(),
                        devices = len,
                        limit = crate::limits::MAX_DEVICES_PER_RESOURCE,
                        "device plugin list refused: too many devices; devices marked unhealthy"
                    );
                    if r.devices.values().all(|d| !d.healthy) {
                        return false;
                    }
                    for d in r.devices.values_mut() {
                        d.healthy = false;
                    }
                }
            }
        }
        true
    }

    /// The plugin started `ListAndWatch` but sent no list within `list_and_watch_timeout`:
    /// whatever an earlier registration reported can no longer be trusted. Returns whether
    /// the state changed (then the caller commits it).
    fn list_late(&self, resource: &str, generation: u64, endpoint: &Path) -> bool {
        let changed = {
            let mut state = self.shared.state();
            let Some(r) = state.resources.get_mut(resource) else {
                return false;
            };
            if r.generation != generation {
                return false;
            }
            let changed = r.devices.values().any(|d| d.healthy);
            for d in r.devices.values_mut() {
                d.healthy = false;
            }
            changed
        };
        tracing::warn!(
            resource,
            plugin = %endpoint.display(),
            timeout = ?self.shared.options.list_and_watch_timeout,
            "device plugin sent no ListAndWatch list in time; devices marked unhealthy until it does"
        );
        changed
    }

    /// The plugin's stream ended: devices unhealthy, resource removed after the grace period.
    /// Returns whether the state changed (then the caller commits it).
    fn stream_ended(&self, resource: &str, generation: u64) -> bool {
        {
            let mut state = self.shared.state();
            let Some(r) = state.resources.get_mut(resource) else {
                return false;
            };
            if r.generation != generation {
                return false;
            }
            for d in r.devices.values_mut() {
                d.healthy = false;
            }
            r.client = None;
            r.stopped_at = Some(Instant::now());
            if let Some(stream) = r.stream.take() {
                stream.abort();
            }
        }
        tracing::warn!(
            resource,
            "device plugin disconnected; devices marked unhealthy"
        );
        true
    }

    fn notify(&self) {
        self.shared.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A snapshot of the current state for `kubelet_internal_checkpoint`, numbered in state
    /// order (taken under the state lock).
    fn snapshot(&self) -> (u64, DeviceManagerState) {
        let boot_id = read_boot_id();
        let mut state = self.shared.state();
        state.checkpoint_seq += 1;
        (state.checkpoint_seq, checkpoint_of(&state, boot_id))
    }

    /// Writes `kubelet_internal_checkpoint` (allocations and healthy devices per resource)
    /// for the current state on tokio's blocking pool and waits for it, then, with `notify`,
    /// tells subscribers: checkpoint first, as the kubelet does, so a reader woken by the
    /// change sees it. Without a tokio runtime the write runs inline.
    async fn commit(&self, notify: bool) {
        if let Some(task) = self.commit_detached(notify)
            && let Err(err) = task.await
        {
            tracing::error!(error = %err, "device manager checkpoint write did not finish");
        }
    }

    /// [`Self::commit`] without waiting: for callers that cannot await (the write still
    /// happens before the notification, on the blocking pool).
    fn commit_detached(&self, notify: bool) -> Option<tokio::task::JoinHandle<()>> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.commit_blocking(notify);
            return None;
        };
        let manager = self.clone();
        let (seq, data) = self.snapshot();
        Some(runtime.spawn_blocking(move || {
            save_checkpoint(&manager.shared, seq, &data);
            if notify {
                manager.notify();
            }
        }))
    }

    /// [`Self::commit`] on the calling thread (which blocks for the write and fsync).
    fn commit_blocking(&self, notify: bool) {
        let (seq, data) = self.snapshot();
        save_checkpoint(&self.shared, seq, &data);
        if notify {
            self.notify();
        }
    }

    /// The checkpoint content for the current state.
    pub fn checkpoint_state(&self) -> DeviceManagerState {
        checkpoint_of(&self.shared.state(), read_boot_id())
    }

    /// Restores allocations and resource names from the checkpoint, like the kubelet's
    /// `readCheckpoint`: running containers keep their devices; each resource is known with no
    /// devices (capacity 0) until its plugin registers again, and is removed after the grace
    /// period if it never does. An unreadable checkpoint is logged and ignored. Restored
    /// allocations are checked again on their first reuse ([`DeviceManager::allocate`]).
    fn restore_checkpoint(&self, store: &FileStore) {
        let data: DeviceManagerState = match store.load(DEVICE_MANAGER_CHECKPOINT_FILE) {
            Ok(data) => data,
            Err(node_state::Error::NotFound { .. }) => return,
            Err(err) => {
                tracing::error!(error = %err, "continuing after failing to read the device manager checkpoint");
                return;
            }
        };
        let mut state = self.shared.state();
        for entry in data.pod_device_entries.unwrap_or_default() {
            let mut ids: Vec<String> = entry
                .device_ids
                .unwrap_or_default()
                .into_values()
                .flat_map(Option::unwrap_or_default)
                .collect();
            ids.sort();
            ids.dedup();
            let response = entry
                .alloc_resp
                .as_deref()
                .map(ContainerAllocateResponse::decode)
                .transpose()
                .unwrap_or_else(|err| {
                    tracing::warn!(error = %err, pod = %entry.pod_uid, "undecodable AllocResp in checkpoint");
                    None
                })
                .unwrap_or_default();
            let key = (entry.pod_uid, entry.container_name);
            state
                .unverified
                .insert((key.clone(), entry.resource_name.clone()));
            state.allocations.entry(key).or_default().insert(
                entry.resource_name.clone(),
                Allocation {
                    resource: entry.resource_name,
                    device_ids: ids,
                    response,
                },
            );
        }
        let now = Instant::now();
        for name in data.registered_devices.unwrap_or_default().into_keys() {
            state.next_generation += 1;
            let generation = state.next_generation;
            state.resources.entry(name).or_insert(Resource {
                generation,
                client: None,
                options: DevicePluginOptions::default(),
                endpoint: PathBuf::new(),
                devices: BTreeMap::new(),
                stopped_at: Some(now),
                stream: None,
                choice: Arc::default(),
            });
        }
    }

    /// The endpoint socket `resource` was registered with.
    pub fn endpoint(&self, resource: &str) -> Option<PathBuf> {
        self.shared
            .state()
            .resources
            .get(resource)
            .map(|r| r.endpoint.clone())
    }
}

/// The running `Registration` server; stop it with [`RegistrationHandle::stop`].
#[derive(Debug)]
pub struct RegistrationHandle {
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
    path: PathBuf,
}

impl RegistrationHandle {
    /// The socket served.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            // The task never panics; a cancelled task has nothing more to report.
            Err(_) => Ok(()),
        }
    }
}

impl Drop for RegistrationHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

struct RegistrationService {
    manager: DeviceManager,
}

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Empty>, Status> {
        let request = request.into_inner();
        let resource = request.resource_name.clone();
        tracing::info!(resource, "got registration request from device plugin");
        match self.manager.register(request).await {
            Ok(()) => Ok(Response::new(Empty {})),
            Err(err) => {
                let message = error_chain(&err);
                tracing::warn!(resource, error = %message, "bad registration request from device plugin");
                // The kubelet returns plain Go errors: gRPC code Unknown.
                Err(Status::unknown(message))
            }
        }
    }
}

/// Consumes a plugin's `ListAndWatch` until it ends. The first list is awaited with a deadline
/// (`list_and_watch_timeout`): when it passes, the devices turn unhealthy ([`DeviceManager::list_late`])
/// and the stream keeps waiting.
async fn run_stream(
    manager: DeviceManager,
    resource: String,
    generation: u64,
    endpoint: PathBuf,
    mut client: DevicePluginClient<Channel>,
) {
    let start = async {
        let mut stream = client.list_and_watch(Empty {}).await?.into_inner();
        let first = stream.message().await?;
        Ok::<_, Status>((stream, first))
    };
    tokio::pin!(start);
    let started = tokio::select! {
        started = &mut start => started,
        () = tokio::time::sleep(manager.shared.options.list_and_watch_timeout) => {
            if manager.list_late(&resource, generation, &endpoint) {
                manager.commit(true).await;
            }
            start.await
        }
    };
    match started {
        Ok((mut stream, mut next)) => {
            while let Some(message) = next {
                if manager.update_devices(&resource, generation, &endpoint, message) {
                    manager.commit(true).await;
                }
                next = match stream.message().await {
                    Ok(next) => next,
                    Err(status) => {
                        tracing::warn!(resource, plugin = %endpoint.display(), error = %status, "ListAndWatch ended");
                        break;
                    }
                };
            }
        }
        Err(status) => {
            tracing::warn!(resource, plugin = %endpoint.display(), error = %status, "ListAndWatch failed");
        }
    }
    if manager.stream_ended(&resource, generation) {
        manager.commit(true).await;
    }
}

async fn call<T>(
    rpc: &'static str,
    target: &str,
    timeout: Duration,
    fut: impl Future<Output = std::result::Result<Response<T>, Status>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(source)) => Err(PluginError::Rpc {
            rpc,
            target: target.to_owned(),
            source,
        }),
        Err(_) => Err(PluginError::Timeout {
            rpc,
            target: target.to_owned(),
            timeout,
        }),
    }
}

/// At most this many dropped list entries are logged one by one per message.
const MAX_LOGGED_PROBLEMS: usize = 10;

/// How an allocation gets its devices.
enum Choice {
    /// Chosen and reserved in the first critical section.
    Reserved(Box<Picked>),
    /// The plugin is asked first, holding the resource's choice lock.
    AskPlugin(Arc<tokio::sync::Mutex<()>>),
}

/// Reserved devices and the plugin to send `Allocate` to.
struct Picked {
    reservation: Reservation,
    chosen: Vec<String>,
    client: DevicePluginClient<Channel>,
    endpoint: PathBuf,
}

/// Devices held for an allocation in progress; dropping it (error, timeout, the caller's
/// future dropped) releases them. Never dropped while the state lock is held.
struct Reservation {
    manager: DeviceManager,
    id: Option<u64>,
}

impl Reservation {
    fn new(manager: DeviceManager, id: u64) -> Self {
        Self {
            manager,
            id: Some(id),
        }
    }

    /// Disarms the guard: the caller turns the reservation into an allocation.
    fn take(&mut self) -> Option<u64> {
        self.id.take()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let released = self.manager.shared.state().reservations.remove(&id);
        if let Some(r) = released {
            tracing::debug!(resource = r.resource, pod = r.pod_uid, devices = ?r.device_ids, "device reservation released");
            self.manager.notify();
        }
    }
}

fn reserve(state: &mut State, pod_uid: &str, resource: &str, chosen: &[String]) -> u64 {
    state.next_reservation += 1;
    let id = state.next_reservation;
    state.reservations.insert(
        id,
        Reserved {
            pod_uid: pod_uid.to_owned(),
            resource: resource.to_owned(),
            device_ids: chosen.to_vec(),
        },
    );
    id
}

type PluginHandle = (
    DevicePluginClient<Channel>,
    DevicePluginOptions,
    PathBuf,
    Arc<tokio::sync::Mutex<()>>,
);

/// The connected plugin of `resource`, with the kubelet's errors when there is none to ask:
/// unknown resource, then no healthy device (a stopped plugin's devices are all unhealthy).
fn plugin_for(state: &State, resource: &str) -> Result<PluginHandle> {
    let Some(r) = state.resources.get(resource) else {
        return Err(PluginError::UnregisteredResource {
            resource: resource.to_owned(),
        });
    };
    if !r.devices.values().any(|d| d.healthy) {
        return Err(PluginError::NoHealthyDevices {
            resource: resource.to_owned(),
        });
    }
    let Some(client) = r.client.clone() else {
        return Err(PluginError::UnregisteredResource {
            resource: resource.to_owned(),
        });
    };
    Ok((client, r.options, r.endpoint.clone(), r.choice.clone()))
}

/// The existing allocation of a container for `resource`, if any. The count must not have
/// changed; an allocation restored from the checkpoint is checked once, in the kubelet's order
/// (`devicesToAllocate`): resource registered, some healthy device, all of its devices
/// healthy; and its stored answer must pass [`crate::limits::check_allocate_response`].
fn reuse(
    state: &mut State,
    key: &ContainerKey,
    resource: &str,
    count: usize,
) -> Result<Option<Allocation>> {
    let Some(existing) = state
        .allocations
        .get(key)
        .and_then(|a| a.get(resource))
        .cloned()
    else {
        return Ok(None);
    };
    if existing.device_ids.len() != count {
        return Err(PluginError::RequestChanged {
            pod_uid: key.0.clone(),
            container: key.1.clone(),
            resource: resource.to_owned(),
            from: existing.device_ids.len(),
            to: count,
        });
    }
    let marker = (key.clone(), resource.to_owned());
    if !state.unverified.contains(&marker) {
        return Ok(Some(existing));
    }
    let Some(r) = state.resources.get(resource) else {
        return Err(PluginError::UnregisteredResource {
            resource: resource.to_owned(),
        });
    };
    let healthy: BTreeSet<&str> = r
        .devices
        .values()
        .filter(|d| d.healthy)
        .map(|d| d.id.as_str())
        .collect();
    if healthy.is_empty() {
        return Err(PluginError::NoHealthyDevices {
            resource: resource.to_owned(),
        });
    }
    if !existing
        .device_ids
        .iter()
        .all(|id| healthy.contains(id.as_str()))
    {
        return Err(PluginError::UnhealthyAllocatedDevices {
            resource: resource.to_owned(),
        });
    }
    if let Err(problem) = crate::limits::check_allocate_response(&existing.response) {
        return Err(PluginError::InvalidPluginResponse {
            rpc: "checkpointed Allocate",
            resource: resource.to_owned(),
            plugin: r.endpoint.clone(),
            problem: Box::new(problem),
        });
    }
    state.unverified.remove(&marker);
    Ok(Some(existing))
}

/// The checkpoint content for `state`.
fn checkpoint_of(state: &State, boot_id: String) -> DeviceManagerState {
    let mut entries = Vec::new();
    for ((uid, container), by_resource) in &state.allocations {
        for allocation in by_resource.values() {
            let numa = state.resources.get(&allocation.resource);
            let mut by_node: BTreeMap<i64, Vec<String>> = BTreeMap::new();
            for id in &allocation.device_ids {
                let nodes = numa
                    .and_then(|r| r.devices.get(id))
                    .map(|d| d.numa_nodes.clone())
                    .unwrap_or_default();
                if nodes.is_empty() {
                    by_node.entry(-1).or_default().push(id.clone());
                }
                for node in nodes {
                    by_node.entry(node).or_default().push(id.clone());
                }
            }
            entries.push(PodDevicesEntry {
                pod_uid: uid.clone(),
                container_name: container.clone(),
                resource_name: allocation.resource.clone(),
                device_ids: Some(
                    by_node
                        .into_iter()
                        .map(|(node, ids)| (node, Some(ids)))
                        .collect(),
                ),
                alloc_resp: Some(allocation.response.encode_to_vec()),
            });
        }
    }
    let registered = state
        .resources
        .iter()
        .map(|(name, r)| {
            let healthy: Vec<String> = r
                .devices
                .values()
                .filter(|d| d.healthy)
                .map(|d| d.id.clone())
                .collect();
            (name.clone(), Some(healthy))
        })
        .collect();
    DeviceManagerState {
        pod_device_entries: Some(entries),
        registered_devices: Some(registered),
        checksum: 0,
        boot_id,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn create_dir(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|source| PluginError::Dir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Removes every socket in `dir` (the kubelet's `CleanupPluginDirectory`): directories,
/// regular files (the checkpoint, `DEPRECATION`) and anything else stay.
fn cleanup_sockets(dir: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let entries = std::fs::read_dir(dir).map_err(|source| PluginError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let is_socket = entry.file_type().map(|t| t.is_socket()).unwrap_or(false);
        if !is_socket {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(socket = %path.display(), "removed stale socket"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(PluginError::Socket {
                    action: "removing",
                    path,
                    source,
                });
            }
        }
    }
    Ok(())
}

fn read_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {

    use super::*;

    fn manager_with_store(dir: &Path) -> DeviceManager {
        let m = DeviceManager::new(DeviceManagerOptions::new(dir));
        lock(&m.shared.store).store = Some(FileStore::open(dir).unwrap());
        m
    }

    fn allocate_in_memory(m: &DeviceManager, pod: &str) {
        m.shared.state().allocations.insert(
            (pod.to_owned(), "app".to_owned()),
            BTreeMap::from([(
                "example.com/dev".to_owned(),
                Allocation {
                    resource: "example.com/dev".to_owned(),
                    device_ids: vec![format!("{pod}-dev")],
                    response: ContainerAllocateResponse::default(),
                },
            )]),
        );
    }

    fn pods_on_disk(dir: &Path) -> Vec<String> {
        let state: DeviceManagerState = FileStore::open(dir)
            .unwrap()
            .load(DEVICE_MANAGER_CHECKPOINT_FILE)
            .unwrap();
        state
            .pod_device_entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.pod_uid)
            .collect()
    }

    /// Writes run on the blocking pool and may finish out of order: the older snapshot,
    /// written last, must not take the file back.
    #[test]
    fn an_older_snapshot_written_late_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager_with_store(dir.path());
        let (old_seq, old) = m.snapshot();
        allocate_in_memory(&m, "pod-a");
        let (new_seq, new) = m.snapshot();
        assert!(new_seq > old_seq);
        save_checkpoint(&m.shared, new_seq, &new);
        save_checkpoint(&m.shared, old_seq, &old);
        assert_eq!(pods_on_disk(dir.path()), ["pod-a"]);
    }

    /// Commits from the executor thread: none awaited but the last, and the file still ends
    /// at the newest state; a waiter woken by the change finds it on disk.
    #[tokio::test(flavor = "current_thread")]
    async fn detached_commits_end_at_the_newest_state_before_the_notification() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager_with_store(dir.path());
        let mut changes = m.subscribe();
        changes.borrow_and_update();
        let mut pending = Vec::new();
        for i in 0..20 {
            allocate_in_memory(&m, &format!("pod-{i:02}"));
            pending.push(m.commit_detached(false).expect("inside a runtime"));
        }
        allocate_in_memory(&m, "pod-last");
        let notified = m.commit_detached(true).expect("inside a runtime");
        changes.changed().await.unwrap();
        let mut want: Vec<String> = (0..20).map(|i| format!("pod-{i:02}")).collect();
        want.push("pod-last".to_owned());
        assert_eq!(pods_on_disk(dir.path()), want);
        notified.await.unwrap();
        for task in pending {
            task.await.unwrap();
        }
        assert_eq!(pods_on_disk(dir.path()), want);
    }
    fn resource_with(generation: u64) -> Resource {
        Resource {
            generation,
            client: None,
            options: DevicePluginOptions::default(),
            endpoint: PathBuf::from("/dev/null/plugin.sock"),
            devices: BTreeMap::new(),
            stopped_at: None,
            stream: None,
            choice: Arc::default(),
        }
    }

    fn list(numa: i64, health: &str) -> ListAndWatchResponse {
        ListAndWatchResponse {
            devices: vec![crate::proto::deviceplugin::Device {
                id: "dev-0".to_owned(),
                health: health.to_owned(),
                topology: Some(crate::proto::deviceplugin::TopologyInfo {
                    nodes: vec![crate::proto::deviceplugin::NumaNode { id: numa }],
                }),
            }],
        }
    }

    /// Every change of what the manager reports moves its generation (the pod-resources
    /// server keeps answers while it stays put); reads leave it alone.
    #[test]
    fn generation_moves_with_every_change_and_only_then() {
        let m = DeviceManager::new(DeviceManagerOptions::new("/dev/null/plugins"));
        let endpoint = Path::new("/dev/null/plugin.sock");
        let mut seen = m.generation();
        let mut moved = |m: &DeviceManager| {
            let now = m.generation();
            let moved = now != seen;
            seen = now;
            moved
        };

        m.shared
            .state()
            .resources
            .insert("example.com/dev".to_owned(), resource_with(1));
        assert!(moved(&m), "registration");
        assert!(m.update_devices("example.com/dev", 1, endpoint, list(0, HEALTHY)));
        assert!(moved(&m), "device list");
        assert!(m.update_devices("example.com/dev", 1, endpoint, list(1, HEALTHY)));
        assert!(moved(&m), "topology");
        assert!(m.update_devices("example.com/dev", 1, endpoint, list(1, UNHEALTHY)));
        assert!(moved(&m), "health");

        // Reads: what List, Get and GetAllocatableResources ask, and the capacity.
        m.container_device_topology("pod-a", "app");
        m.container_allocations("pod-a", "app");
        m.all_devices();
        m.devices("example.com/dev");
        m.capacity();
        m.checkpoint_state();
        assert!(!moved(&m), "reads");

        allocate_in_memory(&m, "pod-a");
        assert!(moved(&m), "allocation");
        assert_eq!(
            m.container_device_topology("pod-a", "app"),
            [(
                "example.com/dev".to_owned(),
                "pod-a-dev".to_owned(),
                Vec::new()
            )]
        );
        m.release_pod("pod-a");
        assert!(moved(&m), "release");
        assert!(m.stream_ended("example.com/dev", 1));
        assert!(moved(&m), "plugin gone");
        m.shared
            .state()
            .resources
            .get_mut("example.com/dev")
            .unwrap()
            .stopped_at = Some(Instant::now() - Duration::from_secs(3600));
        assert!(moved(&m));
        assert_eq!(m.capacity().deleted, ["example.com/dev"]);
        assert!(moved(&m), "resource removed after its grace period");
        assert!(!moved(&m));
    }
}
