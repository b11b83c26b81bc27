//! The kubelet's Summary API (`/stats/summary`) and resource metrics (`/metrics/resource`)
//! from the CRI and the node's own cgroups, `/proc` and filesystems.
//!
//! * [`types`]: the `stats/v1alpha1` types with the kubelet's JSON names.
//! * [`compute`]: the decisions (CPU rates from two cumulative samples, which sandboxes and
//!   containers count, container and pod figures, ephemeral storage, the reduced form), pure.
//! * [`host`]: parsers of cgroup v1/v2 and `/proc` files, `statvfs`, a bounded `du`.
//! * [`metrics`]: the `/metrics/resource` text, as the kubelet's registry writes it.
//! * [`StatsSource`]: the thin layer that asks the runtime and the node and hands the answers
//!   to the pure functions.
//!
//! Where the figures come from. The node: the root cgroup (v1 `cpuacct.usage`,
//! `memory.usage_in_bytes` and `memory.stat`; v2 `cpu.stat`, `memory.stat` and `/proc/meminfo`,
//! pressure from the root's `*.pressure`), `/proc/net/dev`, `/proc/meminfo` (swap),
//! `/proc/loadavg` and `kernel.pid_max` (rlimit), `statvfs` of the root dir and of the
//! runtime's image filesystem (`ImageFsInfo`). Pods and containers: the runtime's
//! `ListPodSandboxStats` when it answers, else `ListContainerStats` summed per pod (containerd
//! 1.6 refuses the former for sandboxes without a cgroup parent); writable layers from the
//! runtime, logs and volumes walked on disk. Only sandboxes and containers labelled for this
//! node are listed and measured (the label selector goes to the runtime), so several agents
//! can share one runtime.
//!
//! ```no_run
//! # async fn demo(cri: node_runtime::CriClient, registry: node_runtime::PodRegistry) -> Result<(), node_runtime::Error> {
//! use node_runtime::NodePaths;
//! use node_runtime::stats::{StatsSource, metrics};
//! let paths = NodePaths { root_dir: "/var/lib/kubelet".into(), pod_logs_dir: "/var/log/pods".into() };
//! let source = StatsSource::new("node-1", paths);
//! let summary = source.summary(&cri, &registry, false).await?;
//! println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
//! let cpu_and_memory = source.summary(&cri, &registry, true).await;
//! print!("{}", metrics::render_resource_metrics(cpu_and_memory.as_ref().ok()));
//! # Ok(()) }
//! ```

pub mod compute;
pub mod host;
pub mod metrics;
pub mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use node_kernel::{CgroupVersion, HostRoot};

use crate::error::RuntimeError;
use crate::{CriClient, LABEL_MANAGED_BY, NodePaths, PodRegistry, cri};
use compute::{ContainerDisk, CpuRateCache, CpuSample};
use host::WalkLimits;
pub use types::*;

/// Where a node's Summary comes from: its name, the kubelet root and pod log directories,
/// the host root to read cgroups and `/proc` below, and the previous CPU samples.
pub struct StatsSource {
    node_name: String,
    paths: NodePaths,
    host: HostRoot,
    cgroup_version: OnceLock<Option<CgroupVersion>>,
    cache: Mutex<CpuRateCache>,
    sandbox_stats_unimplemented: AtomicBool,
    sandbox_stats_retry: Mutex<Option<std::time::Instant>>,
    walk: WalkLimits,
}

/// After `ListPodSandboxStats` failed (other than unimplemented), how long container stats
/// are used without asking it again: containerd 1.6 fails it on every call for sandboxes
/// without a cgroup parent, and the container figures say the same.
const SANDBOX_STATS_RETRY: std::time::Duration = std::time::Duration::from_secs(300);

impl std::fmt::Debug for StatsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsSource")
            .field("node_name", &self.node_name)
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

/// What the blocking part read from the node.
struct NodeReading {
    version: Option<CgroupVersion>,
    root: host::RootCgroupReading,
    meminfo_swap: Option<SwapStats>,
    psi: [Option<PSIStats>; 3],
    interfaces: Vec<InterfaceStats>,
    boot_time: Option<i64>,
    pid_max: Option<i64>,
    tasks: Option<i64>,
    root_fs: Option<FsStats>,
}

/// Disk lookups for one pod.
#[derive(Default)]
struct PodDiskRequest {
    log_dirs: Vec<Option<PathBuf>>,
    volumes: Vec<(String, PathBuf, bool)>,
    etc_hosts: Option<PathBuf>,
    /// The sandbox's process, whose network namespace is the pod's (pod-network pods only).
    net_pid: Option<u32>,
}

/// Their answers.
#[derive(Default)]
struct PodDiskAnswer {
    logs: Vec<Option<(u64, u64)>>,
    volumes: Vec<(String, bool, Option<FsStats>)>,
    etc_hosts: Option<(u64, u64)>,
    /// The interfaces of the pod's network namespace.
    interfaces: Vec<InterfaceStats>,
}

/// A pod to report: its sandbox, the runtime's pod-level figures if any, its running
/// containers with their figures.
struct PodPlan<'a> {
    sandbox: &'a cri::PodSandbox,
    sandbox_stats: Option<&'a cri::LinuxPodSandboxStats>,
    containers: Vec<(&'a cri::Container, &'a cri::ContainerStats)>,
}

const NODE_KEY: &str = "node";

impl StatsSource {
    /// A source for the node `node_name` whose kubelet directories are `paths`, reading the
    /// live host.
    pub fn new(node_name: impl Into<String>, paths: NodePaths) -> Self {
        Self {
            node_name: node_name.into(),
            paths,
            host: HostRoot::live(),
            cgroup_version: OnceLock::new(),
            cache: Mutex::new(CpuRateCache::default()),
            sandbox_stats_unimplemented: AtomicBool::new(false),
            sandbox_stats_retry: Mutex::new(None),
            walk: WalkLimits::default(),
        }
    }

    /// Reads cgroups and `/proc` below `root` instead of `/` (a fixture tree).
    #[must_use]
    pub fn with_host_root(mut self, root: HostRoot) -> Self {
        self.host = root;
        self.cgroup_version = OnceLock::new();
        self
    }

    /// The node name.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The kubelet directories.
    pub fn paths(&self) -> &NodePaths {
        &self.paths
    }

    /// The Summary of the node and its pods (the reduced form with `only_cpu_and_memory`).
    /// Every call records the CPU samples `usageNanoCores` is computed from.
    ///
    /// # Errors
    /// A failed CRI listing ([`RuntimeError::Call`]) or disk work that did not finish
    /// ([`RuntimeError::Blocking`]). Node files that cannot be read leave their fields out.
    pub async fn summary(
        &self,
        cri_client: &CriClient,
        registry: &PodRegistry,
        only_cpu_and_memory: bool,
    ) -> Result<Summary, RuntimeError> {
        let mine: HashMap<String, String> =
            [(LABEL_MANAGED_BY.to_owned(), self.node_name.clone())].into();
        let sandboxes = cri_client.list_pod_sandboxes(mine.clone()).await?;
        let containers = cri_client.list_containers(None, mine.clone()).await?;
        let selected = compute::select_sandboxes(&sandboxes);

        // Pod-level figures from the runtime when it gives them, else container figures;
        // both asked for this node's labels only (the runtime may be shared).
        let mut sandbox_stats: Vec<cri::PodSandboxStats> = Vec::new();
        let mut container_stats: Vec<cri::ContainerStats> = Vec::new();
        let mut from_sandboxes = false;
        if !selected.is_empty() {
            if self.ask_sandbox_stats() {
                match list_sandbox_stats(cri_client, mine.clone()).await {
                    Ok(list) => {
                        sandbox_stats = list;
                        from_sandboxes = true;
                    }
                    Err(e) if e.grpc_code() == Some(tonic::Code::Unimplemented) => {
                        self.sandbox_stats_unimplemented
                            .store(true, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::debug!(
                            error = %e.with_cause(),
                            "stats: ListPodSandboxStats failed, using ListContainerStats"
                        );
                        *self
                            .sandbox_stats_retry
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) =
                            std::time::Instant::now().checked_add(SANDBOX_STATS_RETRY);
                    }
                }
            }
            if !from_sandboxes {
                container_stats = list_container_stats(cri_client, mine).await?;
            }
        }
        let plans = plan_pods(
            &selected,
            &containers,
            from_sandboxes.then_some(sandbox_stats.as_slice()),
            &container_stats,
        );

        let image_fs = if only_cpu_and_memory {
            None
        } else {
            match cri_client.image_fs_info().await {
                Ok(info) => info.image_filesystems.into_iter().next(),
                Err(e) => {
                    tracing::debug!(error = %e.with_cause(), "stats: ImageFsInfo failed");
                    None
                }
            }
        };

        // Everything on disk, off the executor.
        let mut disk_requests: Vec<PodDiskRequest> = if only_cpu_and_memory {
            Vec::new()
        } else {
            plans
                .iter()
                .map(|p| self.disk_request(p, registry))
                .collect()
        };
        // The pod's network, from its sandbox's network namespace, for pods on the pod network
        // whose runtime did not report it (a host-network pod's would be the node's).
        for (req, plan) in disk_requests.iter_mut().zip(&plans) {
            let has_network = plan.sandbox_stats.is_some_and(|s| s.network.is_some());
            let pod_network = plan
                .sandbox
                .metadata
                .as_ref()
                .and_then(|m| registry.get_by_uid(&m.uid))
                .and_then(|info| info.pod)
                .and_then(|pod| pod.spec.as_ref().map(|s| s.host_network != Some(true)));
            if pod_network == Some(true) && !has_network {
                req.net_pid = sandbox_pid(cri_client, &plan.sandbox.id).await;
            }
        }
        let mountpoints: BTreeSet<String> = if only_cpu_and_memory {
            BTreeSet::new()
        } else {
            plans
                .iter()
                .flat_map(|p| p.containers.iter())
                .filter_map(|(_, s)| s.writable_layer.as_ref()?.fs_id.as_ref())
                .map(|id| id.mountpoint.clone())
                .chain(
                    image_fs
                        .as_ref()
                        .and_then(|f| f.fs_id.as_ref())
                        .map(|id| id.mountpoint.clone()),
                )
                .filter(|m| !m.is_empty())
                .collect()
        };
        let host_root = self.host.clone();
        let version_cell = self.cgroup_version.get().copied();
        let root_dir = self.paths.root_dir.clone();
        let walk = self.walk;
        let with_fs = !only_cpu_and_memory;
        let (node, mount_fs, disk) = crate::blocking::run("reading node stats", move || {
            let now = Time::now();
            let version =
                version_cell.unwrap_or_else(|| node_kernel::probe_cgroups(&host_root).version);
            let node = read_node(
                &host_root,
                version,
                with_fs.then_some(root_dir.as_path()),
                now,
            );
            let mount_fs: HashMap<String, FsStats> = mountpoints
                .into_iter()
                .filter_map(|m| {
                    let fs = host::statvfs(std::path::Path::new(&m))?;
                    Some((m, host::fs_from_statvfs(fs, now)))
                })
                .collect();
            let disk: Vec<PodDiskAnswer> = disk_requests
                .iter()
                .map(|r| answer_disk(&host_root, r, walk, now))
                .collect();
            Ok((node, mount_fs, disk))
        })
        .await?;
        if let Some(v) = node.version {
            let _ = self.cgroup_version.set(Some(v));
        }

        let now = Time::now();
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut live: HashSet<String> = HashSet::new();

        // The node.
        let node_rate = node.root.cpu_usage_ns.and_then(|usage_ns| {
            live.insert(NODE_KEY.to_owned());
            cache.update(
                NODE_KEY,
                CpuSample {
                    time_ns: now.nanos(),
                    usage_ns,
                },
            )
        });
        let mut node_stats = self.node_stats(&node, node_rate, now);
        if let Some(fs) = image_fs {
            let capacity = fs
                .fs_id
                .as_ref()
                .and_then(|id| mount_fs.get(&id.mountpoint));
            let image = FsStats {
                time: compute::runtime_time(fs.timestamp, now),
                used_bytes: fs.used_bytes.as_ref().map(|v| v.value),
                inodes_used: fs.inodes_used.as_ref().map(|v| v.value),
                ..compute::capacity_of(capacity)
            };
            node_stats.runtime = Some(RuntimeStats {
                image_fs: Some(image.clone()),
                // The kubelet reports the same filesystem for both without a split image fs.
                container_fs: Some(image),
            });
        }

        // The pods.
        let mut pods = Vec::with_capacity(plans.len());
        for (i, plan) in plans.iter().enumerate() {
            let answer = disk.get(i);
            let mut pod = compute::pod_base(plan.sandbox);
            for (j, (container, stats)) in plan.containers.iter().enumerate() {
                let rate = container_rate(&mut cache, &mut live, container, stats, now);
                let disk = answer.map(|a| ContainerDisk {
                    layer_fs: stats
                        .writable_layer
                        .as_ref()
                        .and_then(|l| l.fs_id.as_ref())
                        .and_then(|id| mount_fs.get(&id.mountpoint))
                        .cloned(),
                    logs: a
                        .logs
                        .get(j)
                        .copied()
                        .flatten()
                        .map(|used| compute::usage_on(node.root_fs.as_ref(), used, now)),
                });
                pod.containers.push(compute::container_stats(
                    container,
                    stats,
                    rate,
                    disk.as_ref(),
                    now,
                ));
            }
            pod.containers.sort_by(|a, b| a.name.cmp(&b.name));
            let (cpu, memory, swap) = compute::sum_containers(&pod.containers);
            match plan.sandbox_stats {
                Some(linux) => {
                    let rate = linux.cpu.as_ref().and_then(|c| {
                        let usage = c.usage_core_nano_seconds.as_ref()?.value;
                        let key = format!("pod/{}", plan.sandbox.id);
                        live.insert(key.clone());
                        let computed = cache.update(
                            &key,
                            CpuSample {
                                time_ns: compute::runtime_time(c.timestamp, now).nanos(),
                                usage_ns: usage,
                            },
                        );
                        compute::pick_nano_cores(
                            c.usage_nano_cores.as_ref().map(|v| v.value),
                            computed,
                        )
                    });
                    compute::apply_sandbox_stats(&mut pod, linux, rate, now);
                }
                None => {
                    pod.cpu = cpu;
                    pod.memory = memory;
                }
            }
            if let Some(answer) = answer {
                pod.swap = swap;
                if pod.network.is_none() {
                    pod.network = compute::network_stats(answer.interfaces.clone(), now);
                }
                let mut ephemeral = Vec::new();
                for (name, is_ephemeral, fs) in &answer.volumes {
                    let Some(fs) = fs else { continue };
                    let v = VolumeStats {
                        fs: fs.clone(),
                        name: name.clone(),
                        ..VolumeStats::default()
                    };
                    if *is_ephemeral {
                        ephemeral.push(v.clone());
                    }
                    pod.volume_stats.push(v);
                }
                pod.ephemeral_storage = Some(compute::ephemeral_storage(
                    &pod.containers,
                    &ephemeral,
                    answer.etc_hosts,
                    node.root_fs.as_ref(),
                    now,
                ));
            }
            pods.push(pod);
        }
        cache.prune(&live, now);
        drop(cache);
        pods.sort_by(|a, b| {
            (&a.pod_ref.namespace, &a.pod_ref.name).cmp(&(&b.pod_ref.namespace, &b.pod_ref.name))
        });
        let summary = Summary {
            node: node_stats,
            pods,
        };
        Ok(if only_cpu_and_memory {
            compute::only_cpu_and_memory(summary)
        } else {
            summary
        })
    }

    /// Whether to ask `ListPodSandboxStats` now: not once the runtime said it does not
    /// implement it, not for a while after it failed.
    fn ask_sandbox_stats(&self) -> bool {
        if self.sandbox_stats_unimplemented.load(Ordering::Relaxed) {
            return false;
        }
        let retry = *self
            .sandbox_stats_retry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        retry.is_none_or(|at| std::time::Instant::now() >= at)
    }

    fn node_stats(&self, node: &NodeReading, rate: Option<u64>, now: Time) -> NodeStats {
        let mut cpu = compute::node_cpu(node.root.cpu_usage_ns, rate, now);
        let mut memory = node
            .version
            .and_then(|v| host::node_memory(v, &node.root, now));
        let [cpu_psi, mem_psi, io_psi] = node.psi.clone();
        if let Some(c) = cpu.as_mut() {
            c.psi = cpu_psi;
        }
        if let Some(m) = memory.as_mut() {
            m.psi = mem_psi;
        }
        NodeStats {
            node_name: self.node_name.clone(),
            system_containers: Vec::new(),
            start_time: Time(
                node.boot_time
                    .and_then(|s| s.checked_mul(1_000_000_000))
                    .unwrap_or(0),
            ),
            cpu,
            memory,
            io: io_psi.map(|psi| IOStats {
                time: now,
                psi: Some(psi),
            }),
            network: compute::network_stats(node.interfaces.clone(), now),
            fs: node.root_fs.clone(),
            runtime: None,
            rlimit: (node.pid_max.is_some() || node.tasks.is_some()).then_some(RlimitStats {
                time: now,
                max_pid: node.pid_max,
                num_of_running_processes: node.tasks,
            }),
            swap: node.meminfo_swap.clone(),
        }
    }

    /// The disk lookups for a pod: its containers' log directories, its volumes (from the
    /// pod spec in `registry`), its `etc-hosts`. Every path component from the runtime or the
    /// pod is checked to be one plain component below the configured directories.
    fn disk_request(&self, plan: &PodPlan<'_>, registry: &PodRegistry) -> PodDiskRequest {
        let meta = plan.sandbox.metadata.clone().unwrap_or_default();
        let pod_log_dir = format!("{}_{}_{}", meta.namespace, meta.name, meta.uid);
        let log_dirs = plan
            .containers
            .iter()
            .map(|(c, _)| {
                let name = c.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("");
                crate::safe_fs::join_under(
                    &self.paths.pod_logs_dir,
                    &[
                        ("pod log directory", &pod_log_dir),
                        ("container name", name),
                    ],
                )
                .ok()
            })
            .collect();
        let pods_dir = self.paths.root_dir.join("pods");
        let volumes = registry
            .get_by_uid(&meta.uid)
            .and_then(|info| info.pod)
            .and_then(|pod| pod.spec.as_ref()?.volumes.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| {
                let (plugin, ephemeral) = volume_plugin(&v)?;
                let path = crate::safe_fs::join_under(
                    &pods_dir,
                    &[
                        ("metadata.uid", &meta.uid),
                        ("dir", "volumes"),
                        ("plugin", plugin),
                        ("volume name", &v.name),
                    ],
                )
                .ok()?;
                Some((v.name, path, ephemeral))
            })
            .collect();
        let etc_hosts = crate::safe_fs::join_under(
            &pods_dir,
            &[("metadata.uid", &meta.uid), ("file", "etc-hosts")],
        )
        .ok();
        PodDiskRequest {
            log_dirs,
            volumes,
            etc_hosts,
            net_pid: None,
        }
    }
}

/// The volume plugin directory of a pod volume this module measures, and whether it counts as
/// local ephemeral storage (the kubelet's `IsLocalEphemeralVolume`: an emptyDir on disk, a
/// configMap). hostPath and persistent volumes are not measured.
fn volume_plugin(v: &k8s_openapi::api::core::v1::Volume) -> Option<(&'static str, bool)> {
    if let Some(e) = &v.empty_dir {
        let on_disk = e.medium.as_deref().unwrap_or("").is_empty();
        return Some((crate::volumes::EMPTY_DIR_PLUGIN, on_disk));
    }
    if v.config_map.is_some() {
        return Some((crate::api_volumes::CONFIG_MAP_PLUGIN, true));
    }
    if v.secret.is_some() {
        return Some((crate::api_volumes::SECRET_PLUGIN, false));
    }
    if v.projected.is_some() {
        return Some((crate::api_volumes::PROJECTED_PLUGIN, false));
    }
    if v.downward_api.is_some() {
        return Some((crate::api_volumes::DOWNWARD_API_PLUGIN, false));
    }
    None
}

/// Runs one CRI call with the kubelet's deadline for it ([`crate::call_deadline`]), sent as
/// the request's `grpc-timeout` and enforced here.
async fn bounded_call<Req, Resp, Fut>(
    cri_client: &CriClient,
    name: &'static str,
    message: Req,
    send: impl FnOnce(tonic::Request<Req>) -> Fut,
) -> Result<Resp, RuntimeError>
where
    Fut: std::future::Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    let deadline = crate::call_deadline(name, cri_client.request_timeout(), 0);
    let mut request = tonic::Request::new(message);
    if let Some(d) = deadline {
        request.set_timeout(d);
    }
    let answer = match deadline {
        Some(d) => tokio::time::timeout(d, send(request))
            .await
            .unwrap_or_else(|_| {
                Err(tonic::Status::deadline_exceeded(format!(
                    "context deadline exceeded (no answer within {d:?})"
                )))
            }),
        None => send(request).await,
    };
    answer
        .map(tonic::Response::into_inner)
        .map_err(|status| RuntimeError::call(name, status))
}

/// The PID of a sandbox's process from the runtime's verbose `PodSandboxStatus` (`None`
/// when the runtime does not say).
async fn sandbox_pid(cri_client: &CriClient, sandbox_id: &str) -> Option<u32> {
    let mut stub = cri_client.runtime();
    let req = cri::PodSandboxStatusRequest {
        pod_sandbox_id: sandbox_id.to_owned(),
        verbose: true,
    };
    match bounded_call(cri_client, "PodSandboxStatus", req, |r| async move {
        stub.pod_sandbox_status(r).await
    })
    .await
    {
        Ok(resp) => compute::pid_from_verbose_info(&resp.info),
        Err(e) => {
            tracing::debug!(error = %e.with_cause(), "stats: PodSandboxStatus failed");
            None
        }
    }
}

/// `ListPodSandboxStats` of the sandboxes carrying `labels`.
async fn list_sandbox_stats(
    cri_client: &CriClient,
    labels: HashMap<String, String>,
) -> Result<Vec<cri::PodSandboxStats>, RuntimeError> {
    let mut stub = cri_client.runtime();
    let req = cri::ListPodSandboxStatsRequest {
        filter: Some(cri::PodSandboxStatsFilter {
            id: String::new(),
            label_selector: labels,
        }),
    };
    let resp = bounded_call(cri_client, "ListPodSandboxStats", req, |r| async move {
        stub.list_pod_sandbox_stats(r).await
    })
    .await?;
    Ok(resp.stats)
}

/// `ListContainerStats` of the containers carrying `labels`.
async fn list_container_stats(
    cri_client: &CriClient,
    labels: HashMap<String, String>,
) -> Result<Vec<cri::ContainerStats>, RuntimeError> {
    let mut stub = cri_client.runtime();
    let req = cri::ListContainerStatsRequest {
        filter: Some(cri::ContainerStatsFilter {
            id: String::new(),
            pod_sandbox_id: String::new(),
            label_selector: labels,
        }),
    };
    let resp = bounded_call(cri_client, "ListContainerStats", req, |r| async move {
        stub.list_container_stats(r).await
    })
    .await?;
    Ok(resp.stats)
}

/// Which pods to report and with which container figures: from the runtime's sandbox stats
/// (`sandbox_stats`), each selected sandbox it reports with its running containers; else each
/// selected sandbox with at least one running container that has stats.
fn plan_pods<'a>(
    selected: &[&'a cri::PodSandbox],
    containers: &'a [cri::Container],
    sandbox_stats: Option<&'a [cri::PodSandboxStats]>,
    container_stats: &'a [cri::ContainerStats],
) -> Vec<PodPlan<'a>> {
    let running: BTreeMap<&str, &cri::Container> = containers
        .iter()
        .filter(|c| compute::is_running(c))
        .map(|c| (c.id.as_str(), c))
        .collect();
    let with_stats = |stats: &'a [cri::ContainerStats], sandbox_id: &str| {
        stats
            .iter()
            .filter_map(|s| {
                let id = s.attributes.as_ref()?.id.as_str();
                let c = running.get(id).copied()?;
                (c.pod_sandbox_id == sandbox_id).then_some((c, s))
            })
            .collect::<Vec<_>>()
    };
    let mut plans = Vec::new();
    for sandbox in selected {
        match sandbox_stats {
            Some(all) => {
                let Some(linux) = all
                    .iter()
                    .find(|s| s.attributes.as_ref().is_some_and(|a| a.id == sandbox.id))
                    .and_then(|s| s.linux.as_ref())
                else {
                    continue;
                };
                plans.push(PodPlan {
                    sandbox,
                    sandbox_stats: Some(linux),
                    containers: with_stats(&linux.containers, &sandbox.id),
                });
            }
            None => {
                let found = with_stats(container_stats, &sandbox.id);
                if !found.is_empty() {
                    plans.push(PodPlan {
                        sandbox,
                        sandbox_stats: None,
                        containers: found,
                    });
                }
            }
        }
    }
    plans
}

/// The rate of a container: the runtime's, or computed from our previous sample.
fn container_rate(
    cache: &mut CpuRateCache,
    live: &mut HashSet<String>,
    container: &cri::Container,
    stats: &cri::ContainerStats,
    now: Time,
) -> Option<u64> {
    let cpu = stats.cpu.as_ref()?;
    let computed = cpu.usage_core_nano_seconds.as_ref().and_then(|u| {
        live.insert(container.id.clone());
        cache.update(
            &container.id,
            CpuSample {
                time_ns: compute::runtime_time(cpu.timestamp, now).nanos(),
                usage_ns: u.value,
            },
        )
    });
    compute::pick_nano_cores(cpu.usage_nano_cores.as_ref().map(|v| v.value), computed)
}

/// Reads the node's figures (blocking).
fn read_node(
    root: &HostRoot,
    version: Option<CgroupVersion>,
    root_dir: Option<&std::path::Path>,
    now: Time,
) -> NodeReading {
    let cgroup = version
        .map(|v| host::read_root_cgroup(root, v))
        .unwrap_or_default();
    let meminfo = host::read(root, "/proc/meminfo").unwrap_or_default();
    let psi = match version {
        Some(CgroupVersion::V2) => ["cpu", "memory", "io"].map(|r| {
            host::read(root, &format!("/sys/fs/cgroup/{r}.pressure"))
                .and_then(|t| host::parse_psi(&t))
        }),
        _ => [None, None, None],
    };
    NodeReading {
        version,
        root: cgroup,
        meminfo_swap: host::node_swap(&host::parse_meminfo(&meminfo), now),
        psi,
        interfaces: host::read(root, "/proc/net/dev")
            .map(|t| host::parse_net_dev(&t))
            .unwrap_or_default(),
        boot_time: host::read(root, "/proc/stat").and_then(|t| host::parse_btime(&t)),
        pid_max: host::read(root, "/proc/sys/kernel/pid_max")
            .and_then(|t| host::parse_single(&t))
            .and_then(|v| i64::try_from(v).ok()),
        tasks: host::read(root, "/proc/loadavg").and_then(|t| host::parse_loadavg_tasks(&t)),
        root_fs: root_dir
            .and_then(host::statvfs)
            .map(|s| host::fs_from_statvfs(s, now)),
    }
}

/// Walks what a pod's request names (blocking).
fn answer_disk(
    root: &HostRoot,
    req: &PodDiskRequest,
    walk: WalkLimits,
    now: Time,
) -> PodDiskAnswer {
    PodDiskAnswer {
        interfaces: req
            .net_pid
            .and_then(|pid| host::read(root, &format!("/proc/{pid}/net/dev")))
            .map(|t| host::parse_net_dev(&t))
            .unwrap_or_default(),
        logs: req
            .log_dirs
            .iter()
            .map(|d| d.as_deref().and_then(|d| host::disk_usage(d, walk)))
            .collect(),
        volumes: req
            .volumes
            .iter()
            .map(|(name, path, ephemeral)| {
                let fs = host::disk_usage(path, walk).map(|used| {
                    let capacity = host::statvfs(path).map(|s| host::fs_from_statvfs(s, now));
                    compute::usage_on(capacity.as_ref(), used, now)
                });
                (name.clone(), *ephemeral, fs)
            })
            .collect(),
        etc_hosts: req
            .etc_hosts
            .as_deref()
            .and_then(|p| host::disk_usage(p, walk)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(id: &str) -> cri::PodSandbox {
        cri::PodSandbox {
            id: id.into(),
            metadata: Some(cri::PodSandboxMetadata {
                name: format!("pod-{id}"),
                uid: format!("uid-{id}"),
                namespace: "ns".into(),
                attempt: 0,
            }),
            ..cri::PodSandbox::default()
        }
    }

    fn container(id: &str, sandbox: &str, running: bool) -> cri::Container {
        cri::Container {
            id: id.into(),
            pod_sandbox_id: sandbox.into(),
            metadata: Some(cri::ContainerMetadata {
                name: format!("c-{id}"),
                attempt: 0,
            }),
            state: if running {
                cri::ContainerState::ContainerRunning as i32
            } else {
                cri::ContainerState::ContainerExited as i32
            },
            ..cri::Container::default()
        }
    }

    fn stats(id: &str) -> cri::ContainerStats {
        cri::ContainerStats {
            attributes: Some(cri::ContainerAttributes {
                id: id.into(),
                ..cri::ContainerAttributes::default()
            }),
            ..cri::ContainerStats::default()
        }
    }

    #[test]
    fn pods_from_container_stats_need_a_running_container() {
        let sandboxes = [sandbox("a"), sandbox("b"), sandbox("c")];
        let selected: Vec<&cri::PodSandbox> = sandboxes.iter().collect();
        let containers = [
            container("a1", "a", true),
            container("a2", "a", false),
            container("b1", "b", false),
            // Someone else's container (another node's) is never listed, its stats ignored.
        ];
        let all_stats = [stats("a1"), stats("a2"), stats("b1"), stats("zz")];
        let plans = plan_pods(&selected, &containers, None, &all_stats);
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].sandbox.id, "a");
        assert_eq!(plans[0].containers.len(), 1);
        assert_eq!(plans[0].containers[0].0.id, "a1");
    }

    #[test]
    fn pods_from_sandbox_stats() {
        let sandboxes = [sandbox("a"), sandbox("b")];
        let selected: Vec<&cri::PodSandbox> = sandboxes.iter().collect();
        let containers = [container("a1", "a", true)];
        let sb = [cri::PodSandboxStats {
            attributes: Some(cri::PodSandboxAttributes {
                id: "b".into(),
                ..cri::PodSandboxAttributes::default()
            }),
            linux: Some(cri::LinuxPodSandboxStats {
                containers: vec![stats("a1")],
                ..cri::LinuxPodSandboxStats::default()
            }),
        }];
        let plans = plan_pods(&selected, &containers, Some(&sb), &[]);
        assert_eq!(plans.len(), 1, "only sandboxes the runtime reports");
        assert_eq!(plans[0].sandbox.id, "b");
        assert!(plans[0].containers.is_empty(), "a1 belongs to sandbox a");
    }

    #[test]
    fn volume_kinds() {
        use k8s_openapi::api::core::v1::{ConfigMapVolumeSource, EmptyDirVolumeSource, Volume};
        let v = |f: &dyn Fn(&mut Volume)| {
            let mut v = Volume {
                name: "v".into(),
                ..Volume::default()
            };
            f(&mut v);
            volume_plugin(&v)
        };
        assert_eq!(
            v(&|v| v.empty_dir = Some(EmptyDirVolumeSource::default())),
            Some(("kubernetes.io~empty-dir", true))
        );
        assert_eq!(
            v(&|v| {
                v.empty_dir = Some(EmptyDirVolumeSource {
                    medium: Some("Memory".into()),
                    ..EmptyDirVolumeSource::default()
                })
            }),
            Some(("kubernetes.io~empty-dir", false))
        );
        assert_eq!(
            v(&|v| v.config_map = Some(ConfigMapVolumeSource::default())),
            Some(("kubernetes.io~configmap", true))
        );
        assert_eq!(v(&|_| {}), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn node_figures_from_a_fixture_tree() {
        let dir = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w(
            "proc/meminfo",
            "MemTotal: 1000 kB\nMemFree: 400 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
        );
        w("proc/stat", "cpu 1 1 1 1\nbtime 1796290000\n");
        w("proc/loadavg", "0.1 0.2 0.3 2/345 99\n");
        w("proc/sys/kernel/pid_max", "4194304\n");
        w(
            "proc/net/dev",
            "h\nh\n  eth0: 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0\n",
        );
        w("sys/fs/cgroup/cpu.stat", "usage_usec 1000\n");
        w(
            "sys/fs/cgroup/memory.stat",
            "inactive_file 1024\nanon 2048\n",
        );
        w(
            "sys/fs/cgroup/cpu.pressure",
            "some avg10=1.00 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n",
        );
        let now = Time(1_796_292_000_000_000_000);
        let reading = read_node(
            &HostRoot::new(dir.path()),
            Some(CgroupVersion::V2),
            Some(dir.path()),
            now,
        );
        let source = StatsSource::new(
            "n1",
            NodePaths {
                root_dir: dir.path().into(),
                pod_logs_dir: dir.path().into(),
            },
        );
        let node = source.node_stats(&reading, Some(7), now);
        let v = serde_json::to_value(&node).unwrap();
        assert_eq!(v["nodeName"], "n1");
        assert_eq!(v["startTime"], "2026-12-03T09:26:40Z");
        assert_eq!(v["cpu"]["usageCoreNanoSeconds"], 1_000_000);
        assert_eq!(v["cpu"]["usageNanoCores"], 7);
        assert_eq!(v["cpu"]["psi"]["some"]["total"], 5);
        assert_eq!(v["memory"]["usageBytes"], 600 * 1024);
        assert_eq!(v["memory"]["workingSetBytes"], 600 * 1024 - 1024);
        assert_eq!(
            v["memory"]["availableBytes"],
            1000 * 1024 - (600 * 1024 - 1024)
        );
        assert_eq!(v["memory"]["rssBytes"], 2048);
        assert!(
            v["memory"].get("psi").is_none(),
            "no memory.pressure in the fixture"
        );
        assert_eq!(v["network"]["name"], "eth0");
        assert_eq!(v["network"]["txBytes"], 2);
        assert_eq!(v["rlimit"]["maxpid"], 4_194_304);
        assert_eq!(v["rlimit"]["curproc"], 345);
        assert_eq!(v["swap"]["swapUsageBytes"], 0);
        assert!(v["fs"]["capacityBytes"].as_u64().unwrap() > 0);
        assert!(v.get("systemContainers").is_none());
        assert!(v.get("runtime").is_none());
    }
}
