//! The `plugins_registry` watcher (`<root-dir>/plugins_registry`): finds plugin sockets,
//! asks each one `GetInfo`, hands it to the handler of its type and answers with
//! `NotifyRegistrationStatus`, like the kubelet's plugin manager.
//!
//! * The directory is scanned recursively every `interval` (the kubelet's reconciler runs
//!   every second); names starting with `.` are ignored, and only Unix sockets count.
//! * A socket is identified by its path and inode: a re-created socket is deregistered and
//!   registered again; a removed socket is deregistered.
//! * A failed registration is not retried until the socket is re-created (as in the kubelet).
//! * Every registration runs in its own task with the kubelet's timeouts (dial 10 s,
//!   `GetInfo` 1 s, `NotifyRegistrationStatus` 5 s), so a plugin that never answers, crashes
//!   or floods never blocks the agent or other plugins.
//! * `DevicePlugin` goes to the [`DeviceManager`]; `CSIPlugin` and `DRAPlugin` are recorded
//!   with their name, endpoint and versions for the components that use them.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::device_manager::{DEVICE_PLUGIN_VERSION, DeviceManager, create_dir};
use crate::error::{PluginError, Result};
use crate::proto::pluginregistration::registration_client::RegistrationClient;
use crate::proto::pluginregistration::{InfoRequest, PluginInfo, RegistrationStatus};
use crate::resource_name::is_extended_resource_name;
use node_util::error_chain;

/// `PluginInfo.type` of a device plugin.
pub const DEVICE_PLUGIN_TYPE: &str = "DevicePlugin";
/// `PluginInfo.type` of a CSI driver.
pub const CSI_PLUGIN_TYPE: &str = "CSIPlugin";
/// `PluginInfo.type` of a DRA driver.
pub const DRA_PLUGIN_TYPE: &str = "DRAPlugin";
/// Directory name under the root dir.
pub const PLUGINS_REGISTRY_DIR: &str = "plugins_registry";
/// Dial timeout for a registration socket.
pub const REGISTRY_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// `GetInfo` timeout.
pub const GET_INFO_TIMEOUT: Duration = Duration::from_secs(1);
/// `NotifyRegistrationStatus` timeout.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Watcher settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegistryOptions {
    /// The watched directory (`<root-dir>/plugins_registry`).
    pub dir: PathBuf,
    /// Rescan period.
    pub interval: Duration,
    /// Dial timeout.
    pub dial_timeout: Duration,
    /// `GetInfo` timeout.
    pub get_info_timeout: Duration,
    /// `NotifyRegistrationStatus` timeout.
    pub notify_timeout: Duration,
}

impl RegistryOptions {
    /// The kubelet's timings for `<root_dir>/plugins_registry`.
    pub fn new(root_dir: &Path) -> Self {
        Self {
            dir: root_dir.join(PLUGINS_REGISTRY_DIR),
            interval: Duration::from_secs(1),
            dial_timeout: REGISTRY_DIAL_TIMEOUT,
            get_info_timeout: GET_INFO_TIMEOUT,
            notify_timeout: NOTIFY_TIMEOUT,
        }
    }

    /// Sets [`dir`](Self::dir).
    #[must_use]
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// Sets [`interval`](Self::interval).
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`dial_timeout`](Self::dial_timeout).
    #[must_use]
    pub fn with_dial_timeout(mut self, dial_timeout: Duration) -> Self {
        self.dial_timeout = dial_timeout;
        self
    }

    /// Sets [`get_info_timeout`](Self::get_info_timeout).
    #[must_use]
    pub fn with_get_info_timeout(mut self, get_info_timeout: Duration) -> Self {
        self.get_info_timeout = get_info_timeout;
        self
    }

    /// Sets [`notify_timeout`](Self::notify_timeout).
    #[must_use]
    pub fn with_notify_timeout(mut self, notify_timeout: Duration) -> Self {
        self.notify_timeout = notify_timeout;
        self
    }
}

/// How long a burst of directory changes settles before a pass.
const SOCKET_SETTLE: Duration = Duration::from_millis(50);

/// A plugin registered through the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredPlugin {
    /// `PluginInfo.type`.
    pub kind: String,
    /// `PluginInfo.name` (the resource name of a device plugin, the driver name otherwise).
    pub name: String,
    /// Where the plugin serves its API (the registration socket when `endpoint` was empty).
    pub endpoint: PathBuf,
    /// `PluginInfo.supported_versions`.
    pub versions: Vec<String>,
    /// The registration socket.
    pub socket: PathBuf,
}

type Stamp = u64;

#[derive(Debug, Default)]
struct State {
    registered: BTreeMap<PathBuf, (Stamp, RegisteredPlugin)>,
    failed: BTreeMap<PathBuf, (Stamp, String)>,
    in_flight: BTreeSet<PathBuf>,
}

#[derive(Debug)]
struct Inner {
    options: RegistryOptions,
    devices: DeviceManager,
    state: Mutex<State>,
}

/// The watcher. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PluginWatcher {
    inner: Arc<Inner>,
}

impl PluginWatcher {
    /// A watcher handing device plugins to `devices`.
    pub fn new(options: RegistryOptions, devices: DeviceManager) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                devices,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Creates the directory (0755, as the kubelet), writes the device manager's
    /// `DEPRECATION` marker and starts the reconcile loop: a pass as soon as an entry of the
    /// directory changes (inotify, so registration starts when a socket appears) and every
    /// `interval` (which finds sockets in subdirectories and retries). Abort the returned task
    /// to stop it.
    pub fn start(&self) -> Result<JoinHandle<()>> {
        create_dir(&self.inner.options.dir, 0o755)?;
        self.inner.devices.mark_watcher_mode()?;
        let mut changes = node_runtime::DirWatch::new(&self.inner.options.dir);
        let watcher = self.clone();
        Ok(tokio::spawn(async move {
            let mut tick = tokio::time::interval(watcher.inner.options.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = changes.changed() => {
                        // A plugin binds its socket, then chmods it: let the burst settle.
                        tokio::time::sleep(SOCKET_SETTLE).await;
                    }
                }
                watcher.reconcile();
            }
        }))
    }

    /// The plugins registered now, by socket path.
    pub fn plugins(&self) -> Vec<RegisteredPlugin> {
        lock(&self.inner.state)
            .registered
            .values()
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Sockets whose registration failed, with the error sent to the plugin.
    pub fn failures(&self) -> BTreeMap<PathBuf, String> {
        lock(&self.inner.state)
            .failed
            .iter()
            .map(|(path, (_, e))| (path.clone(), e.clone()))
            .collect()
    }

    /// One reconcile pass: deregister what is gone or re-created, start registering what is
    /// new. Never waits on a plugin.
    pub fn reconcile(&self) {
        let desired = scan(&self.inner.options.dir);
        let mut to_register = Vec::new();
        let mut to_deregister = Vec::new();
        {
            let mut state = lock(&self.inner.state);
            let stale: Vec<PathBuf> = state
                .registered
                .iter()
                .filter(|(path, (stamp, _))| desired.get(*path) != Some(stamp))
                .map(|(path, _)| path.clone())
                .collect();
            for path in stale {
                if let Some((_, plugin)) = state.registered.remove(&path) {
                    to_deregister.push(plugin);
                }
            }
            state
                .failed
                .retain(|path, (stamp, _)| desired.get(path) == Some(stamp));
            for (path, stamp) in &desired {
                if !state.registered.contains_key(path)
                    && !state.failed.contains_key(path)
                    && !state.in_flight.contains(path)
                {
                    state.in_flight.insert(path.clone());
                    to_register.push((path.clone(), *stamp));
                }
            }
        }
        for plugin in to_deregister {
            tracing::info!(socket = %plugin.socket.display(), name = plugin.name, "deregistering plugin");
            if plugin.kind == DEVICE_PLUGIN_TYPE {
                self.inner.devices.disconnect_plugin(&plugin.name);
            }
        }
        for (path, stamp) in to_register {
            let watcher = self.clone();
            tokio::spawn(async move { watcher.register(&path, stamp).await });
        }
    }

    /// Dial, `GetInfo`, validate and register with the type's handler, record the outcome, then
    /// notify the plugin. Recording comes before the notification, as in the kubelet (handler,
    /// then actual state of the world, then `NotifyRegistrationStatus`), so a plugin whose
    /// resources are visible is also listed by [`PluginWatcher::plugins`].
    async fn register(&self, socket: &Path, stamp: Stamp) {
        let (result, client) = self.register_with_handler(socket).await;
        let status = {
            let mut state = lock(&self.inner.state);
            state.in_flight.remove(socket);
            match result {
                Ok(plugin) => {
                    state
                        .registered
                        .insert(socket.to_path_buf(), (stamp, plugin));
                    RegistrationStatus {
                        plugin_registered: true,
                        error: String::new(),
                    }
                }
                Err(message) => {
                    tracing::warn!(socket = %socket.display(), error = message, "plugin registration failed");
                    state
                        .failed
                        .insert(socket.to_path_buf(), (stamp, message.clone()));
                    RegistrationStatus {
                        plugin_registered: false,
                        error: message,
                    }
                }
            }
        };
        // Without a client the plugin never answered; there is nobody to notify.
        let Some(mut client) = client else { return };
        if let Err(e) = timed(
            "NotifyRegistrationStatus",
            socket,
            self.inner.options.notify_timeout,
            client.notify_registration_status(status),
        )
        .await
        {
            tracing::warn!(socket = %socket.display(), error = %error_chain(&e), "NotifyRegistrationStatus failed");
        }
    }

    /// Dial, `GetInfo`, validate and hand to the type's handler. Returns the client when the
    /// plugin answered `GetInfo`, so the caller can notify it.
    async fn register_with_handler(
        &self,
        socket: &Path,
    ) -> (
        std::result::Result<RegisteredPlugin, String>,
        Option<RegistrationClient<tonic::transport::Channel>>,
    ) {
        let o = &self.inner.options;
        let channel = match crate::uds::connect(socket, o.dial_timeout).await {
            Ok(channel) => channel,
            Err(e) => return (Err(error_chain(&e)), None),
        };
        let mut client = RegistrationClient::new(channel);
        let info = match timed(
            "GetInfo",
            socket,
            o.get_info_timeout,
            client.get_info(InfoRequest {}),
        )
        .await
        {
            Ok(info) => info,
            Err(e) => return (Err(error_chain(&e)), None),
        };
        let endpoint = if info.endpoint.is_empty() {
            socket.to_path_buf()
        } else {
            PathBuf::from(&info.endpoint)
        };
        (self.handle(&info, &endpoint, socket).await, Some(client))
    }

    async fn handle(
        &self,
        info: &PluginInfo,
        endpoint: &Path,
        socket: &Path,
    ) -> std::result::Result<RegisteredPlugin, String> {
        let plugin = RegisteredPlugin {
            kind: info.r#type.clone(),
            name: info.name.clone(),
            endpoint: endpoint.to_path_buf(),
            versions: info.supported_versions.clone(),
            socket: socket.to_path_buf(),
        };
        match info.r#type.as_str() {
            DEVICE_PLUGIN_TYPE => {
                if !info
                    .supported_versions
                    .iter()
                    .any(|v| v == DEVICE_PLUGIN_VERSION)
                {
                    return Err(format!(
                        "RegisterPlugin error -- plugin validation failed with err: manager version, {DEVICE_PLUGIN_VERSION}, is not among plugin supported versions {}",
                        go_list(&info.supported_versions)
                    ));
                }
                if !is_extended_resource_name(&info.name) {
                    return Err(format!(
                        "RegisterPlugin error -- plugin validation failed with err: invalid name of device plugin socket: the ResourceName {:?} is invalid",
                        info.name
                    ));
                }
                self.inner
                    .devices
                    .connect_plugin(&info.name, endpoint)
                    .await
                    .map_err(|e| {
                        format!(
                            "RegisterPlugin error -- plugin registration failed with err: {}",
                            error_chain(&e)
                        )
                    })?;
                Ok(plugin)
            }
            CSI_PLUGIN_TYPE | DRA_PLUGIN_TYPE => {
                if info.name.is_empty() {
                    return Err(
                        "RegisterPlugin error -- plugin validation failed with err: empty plugin name"
                            .to_owned(),
                    );
                }
                Ok(plugin)
            }
            other => Err(format!(
                "RegisterPlugin error -- no handler registered for plugin type: {other} at socket {}",
                socket.display()
            )),
        }
    }
}

/// Go's `%v` of a string slice: `[a b]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

async fn timed<T>(
    rpc: &'static str,
    socket: &Path,
    timeout: Duration,
    fut: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(source)) => Err(PluginError::Rpc {
            rpc,
            target: socket.display().to_string(),
            source,
        }),
        Err(_) => Err(PluginError::Timeout {
            rpc,
            target: socket.display().to_string(),
            timeout,
        }),
    }
}

/// Every socket under `dir` (recursively, dot-names skipped) with its inode.
fn scan(dir: &Path) -> BTreeMap<PathBuf, Stamp> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            let kind = meta.file_type();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_socket() {
                out.insert(entry.path(), meta.ino());
            }
        }
    }
    out
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
