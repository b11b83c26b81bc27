//! A complete example device plugin advertising N fake devices (`fake-0` ... `fake-<N-1>`),
//! meant to be read and copied: it serves `DevicePlugin` on its own socket, registers with
//! the kubelet socket, streams the full device list whenever health changes, and registers
//! again whenever the kubelet (or our agent) re-creates `kubelet.sock` or removes the
//! plugin's socket.
//!
//! Health is toggled by a file: every line of `--health-file` names an unhealthy device ID
//! (`all` marks every device unhealthy); a missing file means all devices are healthy. The
//! number of devices can follow a file too (`--devices-file`).
//!
//! [`FakeBehaviour`] adds misbehaviours for testing agents against plugins that are slow,
//! hang, never answer or send malformed messages; they are all off by default.
//!
//! Run it as the `fake-device-plugin` binary of this crate or as
//! `cargo run -p examples --example fake_device_plugin -- --kubelet-socket PATH ...`.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::device_manager::{DEVICE_PLUGIN_VERSION, HEALTHY, UNHEALTHY};
use crate::error::{PluginError, Result};
use crate::proto::deviceplugin::device_plugin_server::{DevicePlugin, DevicePluginServer};
use crate::proto::deviceplugin::registration_client::RegistrationClient;
use crate::proto::deviceplugin::{
    AllocateRequest, AllocateResponse, CdiDevice, ContainerAllocateResponse,
    ContainerPreferredAllocationResponse, Device, DevicePluginOptions, DeviceSpec, Empty,
    ListAndWatchResponse, Mount, NumaNode, PreStartContainerRequest, PreStartContainerResponse,
    PreferredAllocationRequest, PreferredAllocationResponse, RegisterRequest, TopologyInfo,
};
use crate::proto::pluginregistration::registration_server::{
    Registration as PluginRegistration, RegistrationServer as PluginRegistrationServer,
};
use crate::proto::pluginregistration::{
    InfoRequest, PluginInfo, RegistrationStatus, RegistrationStatusResponse,
};
use node_util::error_chain;

/// How often the plugin polls its health file and the kubelet socket.
const POLL: Duration = Duration::from_millis(100);

/// The fake plugin's settings (all paths configurable for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePluginConfig {
    /// The kubelet registration socket; the plugin's own socket goes next to it.
    pub kubelet_socket: PathBuf,
    /// Extended resource name, default `example.com/fake`.
    pub resource_name: String,
    /// Number of devices.
    pub devices: usize,
    /// Socket file name of the plugin, default `fake.sock`.
    pub socket_name: String,
    /// Unhealthy device IDs, one a line; missing file = all healthy.
    pub health_file: Option<PathBuf>,
    /// API version sent in `Register` (only `v1beta1` is accepted; other values are for tests).
    pub version: String,
    /// Ask for `PreStartContainer` before each container start.
    pub pre_start_required: bool,
    /// Offer `GetPreferredAllocation` (prefers the highest-numbered devices, so the choice is
    /// visible).
    pub preferred_allocation: bool,
    /// Append every `PreStartContainer` call (`<device ids>\n`) to this file.
    pub pre_start_log: Option<PathBuf>,
    /// Register through `plugins_registry` instead of `kubelet.sock`: serve
    /// `pluginregistration.Registration` and `DevicePlugin` on `<dir>/<socket_name>`.
    pub registry_dir: Option<PathBuf>,
    /// The number of devices, read again on every poll when set (a missing or unreadable file
    /// means `devices`).
    pub devices_file: Option<PathBuf>,
    /// Misbehaviours for testing agents.
    pub behaviour: FakeBehaviour,
}

/// Ways the fake plugin can misbehave, for testing how an agent copes (all off by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeBehaviour {
    /// Wait this long before answering `Allocate` (`--allocate-delay-ms N`).
    pub allocate_delay: Duration,
    /// Wait this long before answering `GetPreferredAllocation` (`--preferred-delay-ms N`).
    pub preferred_delay: Duration,
    /// Wait this long before answering `ListAndWatch` with the first list
    /// (`--list-delay-ms N`).
    pub list_delay: Duration,
    /// Do not answer `Allocate` while this file exists (`--allocate-hang-file PATH`).
    pub allocate_hang_file: Option<PathBuf>,
    /// Accept connections on the plugin socket and never answer anything, then register
    /// (`--silent`): `Register` must come back with an error.
    pub silent: bool,
    /// Send a fixed list of malformed devices ([`HOSTILE_DEVICES`]) instead of `fake-N`
    /// (`--hostile-devices`).
    pub hostile_devices: bool,
    /// Answer `Allocate` with a malformed response (`--bad-allocate KIND`).
    pub bad_allocate: Option<BadAllocate>,
}

/// Malformed `Allocate` answers the fake plugin can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAllocate {
    /// No container response (`zero`).
    Zero,
    /// Two container responses for one request (`two`).
    Two,
    /// A mount with a relative host path (`relative-mount`).
    RelativeMount,
    /// An env value with a NUL byte (`nul-env`).
    NulEnv,
    /// A device node with permissions `rwx` (`bad-permissions`).
    BadPermissions,
    /// 2000 device nodes (`too-many-devices`).
    TooManyDevices,
    /// A CDI device name without `=` (`bad-cdi`).
    BadCdi,
    /// A 100 KiB env value (`huge-env`).
    HugeEnv,
}

impl BadAllocate {
    /// Every kind with its command-line name.
    pub const ALL: [(&'static str, BadAllocate); 8] = [
        ("zero", BadAllocate::Zero),
        ("two", BadAllocate::Two),
        ("relative-mount", BadAllocate::RelativeMount),
        ("nul-env", BadAllocate::NulEnv),
        ("bad-permissions", BadAllocate::BadPermissions),
        ("too-many-devices", BadAllocate::TooManyDevices),
        ("bad-cdi", BadAllocate::BadCdi),
        ("huge-env", BadAllocate::HugeEnv),
    ];

    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, kind)| *kind)
    }
}

/// The device list of `--hostile-devices`: `(ID, health, NUMA nodes)`. Only `ok-0`, `ok-1`
/// (NUMA node 1 kept, -5 and 99999 dropped), `MIG-GPU-fake/1/0` and `dup` (unhealthy: one of
/// its two reports says so) are acceptable.
pub const HOSTILE_DEVICES: &[(&str, &str, &[i64])] = &[
    ("ok-0", HEALTHY, &[0]),
    ("MIG-GPU-fake/1/0", HEALTHY, &[]),
    ("", HEALTHY, &[]),
    ("nul\0id", HEALTHY, &[]),
    ("esc\u{1b}[31m", HEALTHY, &[]),
    ("ok-1", HEALTHY, &[-5, 1, 99_999]),
    ("dup", HEALTHY, &[]),
    ("dup", UNHEALTHY, &[]),
    (LONG_ID, HEALTHY, &[]),
];

/// A 300-byte device ID (over the agent's limit of 256).
const LONG_ID: &str = concat!(
    "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
    "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
    "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
);

impl FakePluginConfig {
    /// Defaults for `kubelet_socket`: 2 devices of `example.com/fake` on `fake.sock`.
    pub fn new(kubelet_socket: impl Into<PathBuf>) -> Self {
        Self {
            kubelet_socket: kubelet_socket.into(),
            resource_name: "example.com/fake".to_owned(),
            devices: 2,
            socket_name: "fake.sock".to_owned(),
            health_file: None,
            version: DEVICE_PLUGIN_VERSION.to_owned(),
            pre_start_required: false,
            preferred_allocation: false,
            pre_start_log: None,
            registry_dir: None,
            devices_file: None,
            behaviour: FakeBehaviour::default(),
        }
    }

    /// Parses `--kubelet-socket PATH [--resource NAME] [--devices N] [--socket-name NAME]
    /// [--health-file PATH] [--api-version V] [--pre-start-required] [--preferred-allocation]
    /// [--pre-start-log PATH] [--registry-dir DIR] [--devices-file PATH]`, and the
    /// misbehaviours of [`FakeBehaviour`]: `[--allocate-delay-ms N] [--preferred-delay-ms N]
    /// [--list-delay-ms N] [--allocate-hang-file PATH] [--silent] [--hostile-devices]
    /// [--bad-allocate KIND]`.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> std::result::Result<Self, String> {
        let mut config = Self::new(PathBuf::new());
        let mut args = args.into_iter();
        let mut socket_given = false;
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--kubelet-socket" => {
                    config.kubelet_socket = value()?.into();
                    socket_given = true;
                }
                "--resource" => config.resource_name = value()?,
                "--devices" => {
                    let v = value()?;
                    config.devices = v
                        .parse()
                        .map_err(|_| format!("--devices: expected a number, got {v:?}"))?;
                }
                "--socket-name" => config.socket_name = value()?,
                "--health-file" => config.health_file = Some(value()?.into()),
                "--api-version" => config.version = value()?,
                "--pre-start-log" => config.pre_start_log = Some(value()?.into()),
                "--registry-dir" => config.registry_dir = Some(value()?.into()),
                "--pre-start-required" => config.pre_start_required = true,
                "--preferred-allocation" => config.preferred_allocation = true,
                "--devices-file" => config.devices_file = Some(value()?.into()),
                "--allocate-delay-ms" => config.behaviour.allocate_delay = millis(&value()?)?,
                "--preferred-delay-ms" => config.behaviour.preferred_delay = millis(&value()?)?,
                "--list-delay-ms" => config.behaviour.list_delay = millis(&value()?)?,
                "--allocate-hang-file" => {
                    config.behaviour.allocate_hang_file = Some(value()?.into());
                }
                "--silent" => config.behaviour.silent = true,
                "--hostile-devices" => config.behaviour.hostile_devices = true,
                "--bad-allocate" => {
                    let v = value()?;
                    config.behaviour.bad_allocate = Some(
                        BadAllocate::parse(&v)
                            .ok_or_else(|| format!("--bad-allocate: unknown kind {v:?}"))?,
                    );
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if !socket_given && config.registry_dir.is_none() {
            return Err("--kubelet-socket PATH or --registry-dir DIR is required".to_owned());
        }
        Ok(config)
    }

    /// The plugin's own socket (`<dir of kubelet socket>/<socket_name>`).
    pub fn socket_path(&self) -> PathBuf {
        if let Some(dir) = &self.registry_dir {
            return dir.join(&self.socket_name);
        }
        self.kubelet_socket
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.socket_name)
    }

    fn device_ids(&self) -> Vec<String> {
        let count = self
            .devices_file
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(self.devices);
        (0..count).map(|i| format!("fake-{i}")).collect()
    }
}

fn millis(value: &str) -> std::result::Result<Duration, String> {
    value
        .parse()
        .map(Duration::from_millis)
        .map_err(|_| format!("expected milliseconds, got {value:?}"))
}

/// Runs the plugin until `Register` is refused (the refusal is returned) or the process is
/// killed. Each round serves the plugin socket, registers, and waits until `kubelet.sock` is
/// re-created or the plugin socket is removed, then starts over.
pub async fn run(config: FakePluginConfig) -> Result<()> {
    let (health_tx, health_rx) = watch::channel(read_health(&config));
    let watcher_config = config.clone();
    tokio::spawn(async move {
        if watcher_config.health_file.is_none() && watcher_config.devices_file.is_none() {
            // Nothing can change; the sender stays alive so streams stay open.
            let _sender = health_tx;
            return std::future::pending::<()>().await;
        }
        loop {
            tokio::time::sleep(POLL).await;
            let now = read_health(&watcher_config);
            health_tx.send_if_modified(|old| {
                let changed = *old != now;
                if changed {
                    old.clone_from(&now);
                }
                changed
            });
        }
    });
    if config.behaviour.silent {
        return run_silent(config).await;
    }
    if config.registry_dir.is_some() {
        return serve_for_registry(config, health_rx).await;
    }
    loop {
        let socket = config.socket_path();
        let listener = crate::uds::bind(&socket, 0o600)?;
        let plugin_inode = inode(&socket);
        let service = FakeService {
            config: config.clone(),
            health: health_rx.clone(),
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(DevicePluginServer::new(service))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                    let _ = stop_rx.await;
                }),
        );
        let kubelet_inode = register_when_possible(&config).await?;
        eprintln!(
            "fake-device-plugin: registered {} ({} devices) on {}",
            config.resource_name,
            config.devices,
            socket.display()
        );
        // Re-register when the agent restarts: it re-creates kubelet.sock and removes our socket.
        loop {
            tokio::time::sleep(POLL).await;
            if inode(&config.kubelet_socket) != kubelet_inode || inode(&socket) != plugin_inode {
                break;
            }
        }
        eprintln!("fake-device-plugin: kubelet socket re-created; registering again");
        let _ = stop_tx.send(());
        let _ = server.await;
    }
}

/// `--silent`: the plugin socket accepts connections and never reads or writes; then
/// `Register` is called, and its answer (an error, from an agent with deadlines) returned.
async fn run_silent(config: FakePluginConfig) -> Result<()> {
    let socket = config.socket_path();
    let listener = crate::uds::bind(&socket, 0o600)?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    register_when_possible(&config).await?;
    eprintln!("fake-device-plugin: registered although the plugin socket never answers");
    std::future::pending::<()>().await;
    Ok(())
}

/// Watcher mode: one socket serving both `pluginregistration.Registration` (the agent's
/// `plugins_registry` watcher calls `GetInfo`, then `NotifyRegistrationStatus`) and
/// `DevicePlugin` (the endpoint is left empty, so the agent dials this same socket).
async fn serve_for_registry(
    config: FakePluginConfig,
    health: watch::Receiver<BTreeMap<String, &'static str>>,
) -> Result<()> {
    let socket = config.socket_path();
    if let Some(dir) = socket.parent() {
        crate::device_manager::create_dir(dir, 0o755)?;
    }
    let listener = crate::uds::bind(&socket, 0o600)?;
    let info = RegistrationInfo {
        config: config.clone(),
    };
    let service = FakeService { config, health };
    eprintln!(
        "fake-device-plugin: serving {} for plugins_registry",
        socket.display()
    );
    tonic::transport::Server::builder()
        .add_service(PluginRegistrationServer::new(info))
        .add_service(DevicePluginServer::new(service))
        .serve_with_incoming(UnixListenerStream::new(listener))
        .await
        .map_err(|source| PluginError::Serve {
            path: socket,
            source,
        })
}

struct RegistrationInfo {
    config: FakePluginConfig,
}

#[tonic::async_trait]
impl PluginRegistration for RegistrationInfo {
    async fn get_info(
        &self,
        _: Request<InfoRequest>,
    ) -> std::result::Result<Response<PluginInfo>, Status> {
        Ok(Response::new(PluginInfo {
            r#type: crate::registry::DEVICE_PLUGIN_TYPE.to_owned(),
            name: self.config.resource_name.clone(),
            endpoint: String::new(),
            supported_versions: vec![self.config.version.clone()],
        }))
    }

    async fn notify_registration_status(
        &self,
        request: Request<RegistrationStatus>,
    ) -> std::result::Result<Response<RegistrationStatusResponse>, Status> {
        let status = request.into_inner();
        if status.plugin_registered {
            eprintln!(
                "fake-device-plugin: registered {}",
                self.config.resource_name
            );
        } else {
            eprintln!("fake-device-plugin: registration failed: {}", status.error);
        }
        Ok(Response::new(RegistrationStatusResponse {}))
    }
}

/// Registers, retrying while the kubelet socket is missing or refuses connections. A refusal
/// of the request itself is final. Returns the inode of the kubelet socket registered with.
async fn register_when_possible(config: &FakePluginConfig) -> Result<Option<u64>> {
    loop {
        let inode_before = inode(&config.kubelet_socket);
        if inode_before.is_some() {
            match crate::uds::connect(&config.kubelet_socket, Duration::from_secs(5)).await {
                Ok(channel) => {
                    let request = RegisterRequest {
                        version: config.version.clone(),
                        endpoint: config.socket_name.clone(),
                        resource_name: config.resource_name.clone(),
                        options: Some(options(config)),
                    };
                    return match RegistrationClient::new(channel).register(request).await {
                        Ok(_) => Ok(inode_before),
                        Err(source) => Err(PluginError::Rpc {
                            rpc: "Register",
                            target: config.kubelet_socket.display().to_string(),
                            source,
                        }),
                    };
                }
                Err(err) => eprintln!(
                    "fake-device-plugin: waiting for kubelet: {}",
                    error_chain(&err)
                ),
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

fn options(config: &FakePluginConfig) -> DevicePluginOptions {
    DevicePluginOptions {
        pre_start_required: config.pre_start_required,
        get_preferred_allocation_available: config.preferred_allocation,
    }
}

fn inode(path: &Path) -> Option<u64> {
    std::fs::symlink_metadata(path).ok().map(|m| m.ino())
}

/// Device ID to health string, from the health file.
fn read_health(config: &FakePluginConfig) -> BTreeMap<String, &'static str> {
    let unhealthy: Vec<String> = config
        .health_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.lines().map(|l| l.trim().to_owned()).collect())
        .unwrap_or_default();
    let all = unhealthy.iter().any(|l| l == "all");
    config
        .device_ids()
        .into_iter()
        .map(|id| {
            let health = if all || unhealthy.contains(&id) {
                UNHEALTHY
            } else {
                HEALTHY
            };
            (id, health)
        })
        .collect()
}

struct FakeService {
    config: FakePluginConfig,
    health: watch::Receiver<BTreeMap<String, &'static str>>,
}

type DeviceStream =
    Pin<Box<dyn Stream<Item = std::result::Result<ListAndWatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DevicePlugin for FakeService {
    async fn get_device_plugin_options(
        &self,
        _: Request<Empty>,
    ) -> std::result::Result<Response<DevicePluginOptions>, Status> {
        Ok(Response::new(options(&self.config)))
    }

    type ListAndWatchStream = DeviceStream;

    async fn list_and_watch(
        &self,
        _: Request<Empty>,
    ) -> std::result::Result<Response<Self::ListAndWatchStream>, Status> {
        tokio::time::sleep(self.config.behaviour.list_delay).await;
        // The full list first, then again on every health change.
        let hostile = self.config.behaviour.hostile_devices;
        let stream =
            tokio_stream::wrappers::WatchStream::new(self.health.clone()).map(move |health| {
                if hostile {
                    return Ok(ListAndWatchResponse {
                        devices: hostile_list(),
                    });
                }
                Ok(ListAndWatchResponse {
                    devices: health
                        .into_iter()
                        .map(|(id, h)| Device {
                            id,
                            health: h.to_owned(),
                            topology: None,
                        })
                        .collect(),
                })
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_preferred_allocation(
        &self,
        request: Request<PreferredAllocationRequest>,
    ) -> std::result::Result<Response<PreferredAllocationResponse>, Status> {
        tokio::time::sleep(self.config.behaviour.preferred_delay).await;
        let container_responses = request
            .into_inner()
            .container_requests
            .into_iter()
            .map(|r| {
                let size = usize::try_from(r.allocation_size).unwrap_or(0);
                let mut ids = r.must_include_device_i_ds.clone();
                let mut rest: Vec<String> = r
                    .available_device_i_ds
                    .into_iter()
                    .filter(|id| !ids.contains(id))
                    .collect();
                // Highest-numbered first, so tests can tell the preference was used.
                rest.sort_by_key(|id| std::cmp::Reverse(device_number(id)));
                ids.extend(rest);
                ids.truncate(size);
                ContainerPreferredAllocationResponse { device_i_ds: ids }
            })
            .collect();
        Ok(Response::new(PreferredAllocationResponse {
            container_responses,
        }))
    }

    async fn allocate(
        &self,
        request: Request<AllocateRequest>,
    ) -> std::result::Result<Response<AllocateResponse>, Status> {
        let behaviour = &self.config.behaviour;
        tokio::time::sleep(behaviour.allocate_delay).await;
        if let Some(hang) = &behaviour.allocate_hang_file {
            while hang.exists() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let health = if behaviour.hostile_devices {
            hostile_list()
                .into_iter()
                .map(|d| {
                    (
                        d.id,
                        if d.health == HEALTHY {
                            HEALTHY
                        } else {
                            UNHEALTHY
                        },
                    )
                })
                .collect()
        } else {
            self.health.borrow().clone()
        };
        let mut container_responses = Vec::new();
        for r in request.into_inner().container_requests {
            for id in &r.devices_ids {
                match health.get(id) {
                    None => return Err(Status::invalid_argument(format!("unknown device {id}"))),
                    Some(h) if *h != HEALTHY => {
                        return Err(Status::failed_precondition(format!(
                            "device {id} is unhealthy"
                        )));
                    }
                    Some(_) => {}
                }
            }
            let joined = r.devices_ids.join(",");
            let mut response = ContainerAllocateResponse::default();
            response
                .envs
                .insert("FAKE_DEVICES".to_owned(), joined.clone());
            response
                .annotations
                .insert("example.com/fake-devices".to_owned(), joined);
            container_responses.push(response);
        }
        if let Some(kind) = behaviour.bad_allocate {
            spoil(kind, &mut container_responses);
        }
        Ok(Response::new(AllocateResponse {
            container_responses,
        }))
    }

    async fn pre_start_container(
        &self,
        request: Request<PreStartContainerRequest>,
    ) -> std::result::Result<Response<PreStartContainerResponse>, Status> {
        if let Some(log) = &self.config.pre_start_log {
            use std::io::Write;
            let line = format!("{}\n", request.into_inner().devices_ids.join(","));
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .map_err(|e| Status::internal(format!("writing {}: {e}", log.display())))?;
        }
        Ok(Response::new(PreStartContainerResponse {}))
    }
}

/// [`HOSTILE_DEVICES`] as protobuf devices.
fn hostile_list() -> Vec<Device> {
    HOSTILE_DEVICES
        .iter()
        .map(|(id, health, nodes)| Device {
            id: (*id).to_owned(),
            health: (*health).to_owned(),
            topology: (!nodes.is_empty()).then(|| TopologyInfo {
                nodes: nodes.iter().map(|&id| NumaNode { id }).collect(),
            }),
        })
        .collect()
}

/// Turns a good `Allocate` answer into a malformed one.
fn spoil(kind: BadAllocate, responses: &mut Vec<ContainerAllocateResponse>) {
    let first = responses.first().cloned().unwrap_or_default();
    let Some(r) = responses.first_mut() else {
        return;
    };
    match kind {
        BadAllocate::Zero => responses.clear(),
        BadAllocate::Two => responses.push(first),
        BadAllocate::RelativeMount => r.mounts.push(Mount {
            container_path: "/data".to_owned(),
            host_path: "relative/dir".to_owned(),
            read_only: false,
        }),
        BadAllocate::NulEnv => {
            r.envs.insert("BAD".to_owned(), "a\0b".to_owned());
        }
        BadAllocate::BadPermissions => r.devices.push(DeviceSpec {
            container_path: "/dev/fake".to_owned(),
            host_path: "/dev/null".to_owned(),
            permissions: "rwx".to_owned(),
        }),
        BadAllocate::TooManyDevices => {
            for i in 0..2000 {
                r.devices.push(DeviceSpec {
                    container_path: format!("/dev/fake{i}"),
                    host_path: "/dev/null".to_owned(),
                    permissions: "rw".to_owned(),
                });
            }
        }
        BadAllocate::BadCdi => r.cdi_devices.push(CdiDevice {
            name: "example.com/fake".to_owned(),
        }),
        BadAllocate::HugeEnv => {
            r.envs.insert("HUGE".to_owned(), "x".repeat(100 * 1024));
        }
    }
}

fn device_number(id: &str) -> u64 {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_arguments() {
        let c = FakePluginConfig::from_args(args(&[
            "--kubelet-socket",
            "/tmp/x/kubelet.sock",
            "--devices",
            "4",
            "--health-file",
            "/tmp/h",
            "--preferred-allocation",
        ]))
        .unwrap();
        assert_eq!(c.devices, 4);
        assert_eq!(c.resource_name, "example.com/fake");
        assert_eq!(c.socket_path(), PathBuf::from("/tmp/x/fake.sock"));
        assert!(c.preferred_allocation);
        assert!(FakePluginConfig::from_args(args(&["--devices", "x"])).is_err());
        assert!(FakePluginConfig::from_args(args(&["--devices", "3"])).is_err());
        assert!(FakePluginConfig::from_args(args(&["--bogus"])).is_err());
        let c = FakePluginConfig::from_args(args(&[
            "--kubelet-socket",
            "/tmp/x/kubelet.sock",
            "--allocate-delay-ms",
            "250",
            "--list-delay-ms",
            "7",
            "--allocate-hang-file",
            "/tmp/hang",
            "--bad-allocate",
            "relative-mount",
            "--silent",
            "--hostile-devices",
        ]))
        .unwrap();
        assert_eq!(c.behaviour.allocate_delay, Duration::from_millis(250));
        assert_eq!(c.behaviour.list_delay, Duration::from_millis(7));
        assert_eq!(
            c.behaviour.allocate_hang_file,
            Some(PathBuf::from("/tmp/hang"))
        );
        assert_eq!(c.behaviour.bad_allocate, Some(BadAllocate::RelativeMount));
        assert!(c.behaviour.silent && c.behaviour.hostile_devices);
        assert!(
            FakePluginConfig::from_args(args(&[
                "--kubelet-socket",
                "/k",
                "--bad-allocate",
                "nope"
            ]))
            .is_err()
        );
        assert!(
            FakePluginConfig::from_args(args(&["--kubelet-socket", "/k", "--list-delay-ms", "x"]))
                .is_err()
        );
    }

    #[test]
    fn health_file_marks_devices() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = FakePluginConfig::new(dir.path().join("kubelet.sock"));
        c.devices = 3;
        c.health_file = Some(dir.path().join("health"));
        assert!(read_health(&c).values().all(|h| *h == HEALTHY));
        std::fs::write(dir.path().join("health"), "fake-1\n").unwrap();
        let h = read_health(&c);
        assert_eq!(h["fake-0"], HEALTHY);
        assert_eq!(h["fake-1"], UNHEALTHY);
        std::fs::write(dir.path().join("health"), "all\n").unwrap();
        assert!(read_health(&c).values().all(|h| *h == UNHEALTHY));
    }
}
