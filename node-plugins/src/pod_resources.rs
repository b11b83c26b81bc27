//! The Pod Resources API server (`<root-dir>/pod-resources/kubelet.sock`): `v1` `List`,
//! `GetAllocatableResources` and `Get` (behind `KubeletPodResourcesGet`), and `v1alpha1`
//! `List`, on one gRPC server behind the kubelet's token bucket (100 QPS, burst 10).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use node_runtime::{ContainerKind, PodInfo, PodRegistry};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use crate::device_manager::{DeviceManager, create_dir};
use crate::error::{PluginError, Result};
use crate::proto::podresources::pod_resources_lister_server::{
    PodResourcesLister, PodResourcesListerServer,
};
use crate::proto::podresources::{
    AllocatableResourcesRequest, AllocatableResourcesResponse, ContainerDevices, ContainerMemory,
    ContainerResources, GetPodResourcesRequest, GetPodResourcesResponse, ListPodResourcesRequest,
    ListPodResourcesResponse, NumaNode, PodResources, TopologyInfo,
};
use crate::proto::podresources_v1alpha1 as alpha;

/// Directory name under the root dir.
pub const POD_RESOURCES_DIR: &str = "pod-resources";
/// Socket name inside it.
pub const POD_RESOURCES_SOCKET_NAME: &str = "kubelet.sock";
/// `DefaultQPS` of the kubelet's limiter.
pub const DEFAULT_QPS: f64 = 100.0;
/// `DefaultBurstTokens` of the kubelet's limiter.
pub const DEFAULT_BURST: u32 = 10;
/// The message of a rejected call (code `ResourceExhausted`).
pub const RATE_LIMIT_MESSAGE: &str = "rejected by rate limit";
/// The message of `Get` while `KubeletPodResourcesGet` is off (code `Unknown`).
pub const GET_DISABLED_MESSAGE: &str = "PodResources API Get method disabled";

/// `<root_dir>/pod-resources/kubelet.sock`.
pub fn pod_resources_socket(root_dir: &Path) -> PathBuf {
    root_dir
        .join(POD_RESOURCES_DIR)
        .join(POD_RESOURCES_SOCKET_NAME)
}

/// CPU and memory assignments (the CPU and memory managers' answers). The default methods
/// report nothing, which is what the kubelet reports with the `none` policies.
pub trait CpuMemoryProvider: Send + Sync + 'static {
    /// Exclusive CPUs of a container.
    fn container_cpus(&self, _pod_uid: &str, _container: &str) -> Vec<i64> {
        Vec::new()
    }
    /// Memory blocks of a container.
    fn container_memory(&self, _pod_uid: &str, _container: &str) -> Vec<ContainerMemory> {
        Vec::new()
    }
    /// CPUs the node can hand out.
    fn allocatable_cpus(&self) -> Vec<i64> {
        Vec::new()
    }
    /// Memory the node can hand out.
    fn allocatable_memory(&self) -> Vec<ContainerMemory> {
        Vec::new()
    }
}

/// No CPU or memory manager.
impl CpuMemoryProvider for () {}

/// Server settings.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct PodResourcesOptions {
    /// `KubeletPodResourcesGet` (beta, on by default since 1.34).
    pub get_enabled: bool,
    /// Token refill rate.
    pub qps: f64,
    /// Bucket size.
    pub burst: u32,
}

impl Default for PodResourcesOptions {
    fn default() -> Self {
        Self {
            get_enabled: true,
            qps: DEFAULT_QPS,
            burst: DEFAULT_BURST,
        }
    }
}

impl PodResourcesOptions {
    /// Sets [`get_enabled`](Self::get_enabled).
    #[must_use]
    pub fn with_get_enabled(mut self, get_enabled: bool) -> Self {
        self.get_enabled = get_enabled;
        self
    }

    /// Sets [`qps`](Self::qps).
    #[must_use]
    pub fn with_qps(mut self, qps: f64) -> Self {
        self.qps = qps;
        self
    }

    /// Sets [`burst`](Self::burst).
    #[must_use]
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }
}

/// A token bucket like `golang.org/x/time/rate.Limiter.Allow`: starts full, refills at `qps`.
#[derive(Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(qps: f64, burst: u32, now: Instant) -> Self {
        Self {
            qps,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes a token if one is there at `now`.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.last = now.max(self.last);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Inner {
    pods: PodRegistry,
    devices: DeviceManager,
    cpu_memory: Arc<dyn CpuMemoryProvider>,
    options: PodResourcesOptions,
    limiter: Mutex<TokenBucket>,
}

/// The Pod Resources service (both versions). Cheap to clone.
#[derive(Clone)]
pub struct PodResourcesServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PodResourcesServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodResourcesServer")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl PodResourcesServer {
    /// A server answering from the pod registry and the device manager.
    pub fn new(pods: PodRegistry, devices: DeviceManager, options: PodResourcesOptions) -> Self {
        Self::with_cpu_memory(pods, devices, options, Arc::new(()))
    }

    /// Same, with CPU and memory assignments.
    pub fn with_cpu_memory(
        pods: PodRegistry,
        devices: DeviceManager,
        options: PodResourcesOptions,
        cpu_memory: Arc<dyn CpuMemoryProvider>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pods,
                devices,
                cpu_memory,
                options,
                limiter: Mutex::new(TokenBucket::new(options.qps, options.burst, Instant::now())),
            }),
        }
    }

    /// `List`: the active pods with their regular containers, each with its devices, CPUs
    /// and memory.
    pub fn list(&self) -> ListPodResourcesResponse {
        ListPodResourcesResponse {
            pod_resources: self
                .inner
                .pods
                .list_active()
                .iter()
                .map(|p| self.pod_resources(p))
                .collect(),
        }
    }

    /// `GetAllocatableResources`: every healthy device, the allocatable CPUs and memory
    /// (capacity, not what is free).
    pub fn allocatable(&self) -> AllocatableResourcesResponse {
        let mut devices = Vec::new();
        for (resource, list) in self.inner.devices.all_devices() {
            for d in list.iter().filter(|d| d.healthy) {
                push_device(&mut devices, &resource, &d.id, &d.numa_nodes);
            }
        }
        AllocatableResourcesResponse {
            devices,
            cpu_ids: self.inner.cpu_memory.allocatable_cpus(),
            memory: self.inner.cpu_memory.allocatable_memory(),
        }
    }

    /// `Get`: one pod, with the kubelet's errors.
    pub fn get(&self, namespace: &str, name: &str) -> std::result::Result<PodResources, Status> {
        if !self.inner.options.get_enabled {
            return Err(Status::unknown(GET_DISABLED_MESSAGE));
        }
        match self.inner.pods.get(namespace, name) {
            Some(pod) => Ok(self.pod_resources(&pod)),
            None => Err(Status::unknown(format!(
                "pod {name} in namespace {namespace} not found"
            ))),
        }
    }

    /// Serves both API versions on `socket` (directory 0750, stale socket replaced, socket
    /// 0600) until the handle is stopped.
    pub fn serve(&self, socket: &Path) -> Result<PodResourcesHandle> {
        if let Some(dir) = socket.parent() {
            create_dir(dir, 0o750)?;
        }
        let listener = crate::uds::bind(socket, 0o600)?;
        let (tx, rx) = oneshot::channel::<()>();
        let v1 = PodResourcesListerServer::new(self.clone());
        let v1alpha1 =
            alpha::pod_resources_lister_server::PodResourcesListerServer::new(self.clone());
        let path = socket.to_path_buf();
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(v1)
                .add_service(v1alpha1)
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await
                .map_err(|source| PluginError::Serve { path, source })
        });
        Ok(PodResourcesHandle {
            shutdown: Some(tx),
            task,
        })
    }

    fn check_rate(&self) -> std::result::Result<(), Status> {
        let allowed = self
            .inner
            .limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .allow(Instant::now());
        if allowed {
            Ok(())
        } else {
            Err(Status::resource_exhausted(RATE_LIMIT_MESSAGE))
        }
    }

    fn pod_resources(&self, pod: &PodInfo) -> PodResources {
        let containers = pod
            .containers
            .iter()
            .filter(|c| c.kind == ContainerKind::Regular)
            .map(|c| {
                let mut devices = Vec::new();
                for (resource, id, nodes) in self
                    .inner
                    .devices
                    .container_device_topology(&pod.uid, &c.name)
                {
                    push_device(&mut devices, &resource, &id, &nodes);
                }
                ContainerResources {
                    name: c.name.clone(),
                    devices,
                    cpu_ids: self.inner.cpu_memory.container_cpus(&pod.uid, &c.name),
                    memory: self.inner.cpu_memory.container_memory(&pod.uid, &c.name),
                    dynamic_resources: Vec::new(),
                }
            })
            .collect();
        PodResources {
            name: pod.name.clone(),
            namespace: pod.namespace.clone(),
            containers,
        }
    }
}

/// One entry per device and NUMA node, as the kubelet reports them; no topology when the
/// plugin reported none.
fn push_device(out: &mut Vec<ContainerDevices>, resource: &str, id: &str, nodes: &[i64]) {
    if nodes.is_empty() {
        out.push(ContainerDevices {
            resource_name: resource.to_owned(),
            device_ids: vec![id.to_owned()],
            topology: None,
        });
    }
    for node in nodes {
        out.push(ContainerDevices {
            resource_name: resource.to_owned(),
            device_ids: vec![id.to_owned()],
            topology: Some(TopologyInfo {
                nodes: vec![NumaNode { id: *node }],
            }),
        });
    }
}

#[tonic::async_trait]
impl PodResourcesLister for PodResourcesServer {
    async fn list(
        &self,
        _: Request<ListPodResourcesRequest>,
    ) -> std::result::Result<Response<ListPodResourcesResponse>, Status> {
        self.check_rate()?;
        Ok(Response::new(PodResourcesServer::list(self)))
    }

    async fn get_allocatable_resources(
        &self,
        _: Request<AllocatableResourcesRequest>,
    ) -> std::result::Result<Response<AllocatableResourcesResponse>, Status> {
        self.check_rate()?;
        Ok(Response::new(self.allocatable()))
    }

    async fn get(
        &self,
        request: Request<GetPodResourcesRequest>,
    ) -> std::result::Result<Response<GetPodResourcesResponse>, Status> {
        self.check_rate()?;
        let r = request.into_inner();
        let pod = PodResourcesServer::get(self, &r.pod_namespace, &r.pod_name)?;
        Ok(Response::new(GetPodResourcesResponse {
            pod_resources: Some(pod),
        }))
    }
}

#[tonic::async_trait]
impl alpha::pod_resources_lister_server::PodResourcesLister for PodResourcesServer {
    async fn list(
        &self,
        _: Request<alpha::ListPodResourcesRequest>,
    ) -> std::result::Result<Response<alpha::ListPodResourcesResponse>, Status> {
        self.check_rate()?;
        let v1 = PodResourcesServer::list(self);
        Ok(Response::new(alpha::ListPodResourcesResponse {
            pod_resources: v1
                .pod_resources
                .into_iter()
                .map(|p| alpha::PodResources {
                    name: p.name,
                    namespace: p.namespace,
                    containers: p
                        .containers
                        .into_iter()
                        .map(|c| alpha::ContainerResources {
                            name: c.name,
                            devices: c
                                .devices
                                .into_iter()
                                .map(|d| alpha::ContainerDevices {
                                    resource_name: d.resource_name,
                                    device_ids: d.device_ids,
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        }))
    }
}

/// The running pod-resources server.
#[derive(Debug)]
pub struct PodResourcesHandle {
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl PodResourcesHandle {
    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap_or(Ok(()))
    }
}

impl Drop for PodResourcesHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_bucket_allows_the_burst_then_refills_at_qps() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, 10, t0);
        for _ in 0..10 {
            assert!(b.allow(t0));
        }
        assert!(!b.allow(t0));
        // 100 QPS: one token every 10 ms.
        assert!(!b.allow(t0 + Duration::from_millis(9)));
        assert!(b.allow(t0 + Duration::from_millis(11)));
        assert!(!b.allow(t0 + Duration::from_millis(11)));
        // Never more than the burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| b.allow(later)).count(), 10);
    }
}
