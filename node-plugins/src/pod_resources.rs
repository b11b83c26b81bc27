//! The Pod Resources API server (`<root-dir>/pod-resources/kubelet.sock`): `v1` `List`,
//! `GetAllocatableResources` and `Get` (behind `KubeletPodResourcesGet`), and `v1alpha1`
//! `List`, on one gRPC server behind the kubelet's token bucket (100 QPS, burst 10).

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use prost::Message;
use prost::bytes::{BufMut, Bytes};

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
///
/// The server keeps its last `List` and `GetAllocatableResources` answers while nothing they
/// are built from has changed. For this provider it knows that only through
/// [`CpuMemoryProvider::generation`]: without one (the default) every call asks the provider
/// again.
pub trait CpuMemoryProvider: Send + Sync + 'static {
    /// A number that changes whenever any answer of this provider may have changed, or
    /// `None` (the default) when the provider cannot tell, which makes the server build
    /// every answer afresh. The server reads it *before* asking the other methods, so a
    /// provider must change the number after (or atomically with) changing its answers.
    fn generation(&self) -> Option<u64> {
        None
    }
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

/// No CPU or memory manager: nothing to report, and that never changes.
impl CpuMemoryProvider for () {
    fn generation(&self) -> Option<u64> {
        Some(0)
    }
}

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
    list: Mutex<Option<Cached<ListPodResourcesResponse>>>,
    allocatable: Mutex<Option<Cached<AllocatableResourcesResponse>>>,
}

/// The generations an answer was built at: the pod registry's version, the device manager's
/// generation and the CPU/memory provider's.
type Generations = (u64, u64, u64);

/// An answer, the generations it was built at, and its protobuf encoding once asked for.
struct Cached<T> {
    at: Generations,
    entry: Arc<Answer<T>>,
}

/// One built answer. Served over gRPC as its encoding, made once per answer: a kept answer
/// costs neither a copy nor an encoding per call.
struct Answer<T> {
    message: Arc<T>,
    encoded: OnceLock<Bytes>,
}

impl<T: Message> Answer<T> {
    fn new(message: T) -> Self {
        Self {
            message: Arc::new(message),
            encoded: OnceLock::new(),
        }
    }

    /// The message's protobuf encoding: exactly what tonic's prost codec would write.
    fn encoded(&self) -> Bytes {
        self.encoded
            .get_or_init(|| Bytes::from(self.message.encode_to_vec()))
            .clone()
    }
}

/// The cached answer if it was built at `at`; otherwise builds one, keeps it, and returns it.
/// `at` must be read before `build` reads anything, so a change made while building moves a
/// generation past `at` and the next call builds again. Two calls that build at once each
/// return their own answer; the one stored last wins, and if it is the older one the next
/// call sees that its generations are not current and rebuilds. `at == None` (a CPU/memory
/// provider without a generation): built every time, nothing kept.
fn cached<T: Message>(
    slot: &Mutex<Option<Cached<T>>>,
    at: Option<Generations>,
    build: impl FnOnce() -> T,
) -> Arc<Answer<T>> {
    let Some(at) = at else {
        return Arc::new(Answer::new(build()));
    };
    if let Some(c) = lock(slot).as_ref()
        && c.at == at
    {
        return Arc::clone(&c.entry);
    }
    // Built outside the lock: other calls keep being served from the slot meanwhile.
    let entry = Arc::new(Answer::new(build()));
    *lock(slot) = Some(Cached {
        at,
        entry: Arc::clone(&entry),
    });
    entry
}

/// The answer's message: moved out when nobody else holds it (an answer that was not kept),
/// copied otherwise.
fn into_message<T: Clone>(answer: Arc<Answer<T>>) -> T {
    match Arc::try_unwrap(answer) {
        Ok(answer) => Arc::unwrap_or_clone(answer.message),
        Err(shared) => T::clone(&shared.message),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
                list: Mutex::new(None),
                allocatable: Mutex::new(None),
            }),
        }
    }

    /// `List`: the active pods with their regular containers, each with its devices, CPUs
    /// and memory.
    pub fn list(&self) -> ListPodResourcesResponse {
        into_message(self.list_answer())
    }

    /// [`list`](Self::list) without the copy: the answer kept since the last change of the
    /// pods, the device manager or the CPU/memory provider, built afresh when one of them
    /// changed (or when the provider has no [`generation`](CpuMemoryProvider::generation)).
    pub fn list_shared(&self) -> Arc<ListPodResourcesResponse> {
        Arc::clone(&self.list_answer().message)
    }

    /// [`allocatable`](Self::allocatable) without the copy, kept like
    /// [`list_shared`](Self::list_shared).
    pub fn allocatable_shared(&self) -> Arc<AllocatableResourcesResponse> {
        Arc::clone(&self.allocatable_answer().message)
    }

    fn list_answer(&self) -> Arc<Answer<ListPodResourcesResponse>> {
        let at = self.generations(true);
        cached(&self.inner.list, at, || self.build_list())
    }

    fn allocatable_answer(&self) -> Arc<Answer<AllocatableResourcesResponse>> {
        let at = self.generations(false);
        cached(&self.inner.allocatable, at, || self.build_allocatable())
    }

    /// The generations an answer built now stands for (`None`: cannot tell). The pod
    /// registry's only for `List`: allocatable resources do not depend on pods.
    fn generations(&self, with_pods: bool) -> Option<Generations> {
        let cpu_memory = self.inner.cpu_memory.generation()?;
        let pods = if with_pods {
            self.inner.pods.version()
        } else {
            0
        };
        Some((pods, self.inner.devices.generation(), cpu_memory))
    }

    fn build_list(&self) -> ListPodResourcesResponse {
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
        into_message(self.allocatable_answer())
    }

    fn build_allocatable(&self) -> AllocatableResourcesResponse {
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
        let v1 = PreEncodedV1 {
            generated: PodResourcesListerServer::new(self.clone()),
            server: self.clone(),
        };
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

/// gRPC paths of the two v1 methods served from their kept encoding.
const V1_LIST_PATH: &str = "/v1.PodResourcesLister/List";
const V1_ALLOCATABLE_PATH: &str = "/v1.PodResourcesLister/GetAllocatableResources";

/// The v1 service: `List` and `GetAllocatableResources` answer with the kept answer's
/// encoding (the same bytes the generated service's prost codec writes for that answer);
/// every other method, and anything else, goes to the generated service.
#[derive(Clone)]
struct PreEncodedV1 {
    generated: PodResourcesListerServer<PodResourcesServer>,
    server: PodResourcesServer,
}

impl tonic::server::NamedService for PreEncodedV1 {
    const NAME: &'static str =
        <PodResourcesListerServer<PodResourcesServer> as tonic::server::NamedService>::NAME;
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

impl<B> tower::Service<tonic::codegen::http::Request<B>> for PreEncodedV1
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<std::result::Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::result::Result<(), Self::Error>> {
        <PodResourcesListerServer<PodResourcesServer> as tower::Service<
            tonic::codegen::http::Request<B>,
        >>::poll_ready(&mut self.generated, cx)
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        let server = self.server.clone();
        match request.uri().path() {
            V1_LIST_PATH => Box::pin(async move {
                let method = PreEncodedMethod::<ListPodResourcesRequest>::new(server, |s| {
                    s.list_answer().encoded()
                });
                Ok(tonic::server::Grpc::new(PreEncodedCodec::default())
                    .unary(method, request)
                    .await)
            }),
            V1_ALLOCATABLE_PATH => Box::pin(async move {
                let method = PreEncodedMethod::<AllocatableResourcesRequest>::new(server, |s| {
                    s.allocatable_answer().encoded()
                });
                Ok(tonic::server::Grpc::new(PreEncodedCodec::default())
                    .unary(method, request)
                    .await)
            }),
            _ => self.generated.call(request),
        }
    }
}

/// A unary method whose answer is already encoded: the rate limit first, as in every method.
struct PreEncodedMethod<Req> {
    server: PodResourcesServer,
    answer: fn(&PodResourcesServer) -> Bytes,
    request: PhantomData<fn(Req)>,
}

impl<Req> PreEncodedMethod<Req> {
    fn new(server: PodResourcesServer, answer: fn(&PodResourcesServer) -> Bytes) -> Self {
        Self {
            server,
            answer,
            request: PhantomData,
        }
    }
}

impl<Req: Send + 'static> tonic::server::UnaryService<Req> for PreEncodedMethod<Req> {
    type Response = Bytes;
    type Future = BoxFuture<std::result::Result<Response<Bytes>, Status>>;

    fn call(&mut self, _: Request<Req>) -> Self::Future {
        let result = self
            .server
            .check_rate()
            .map(|()| Response::new((self.answer)(&self.server)));
        Box::pin(std::future::ready(result))
    }
}

/// Decodes requests with prost; writes answers that are protobuf bytes already.
struct PreEncodedCodec<Req>(PhantomData<fn() -> Req>);

impl<Req> Default for PreEncodedCodec<Req> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<Req: Message + Default + Send + 'static> tonic::codec::Codec for PreEncodedCodec<Req> {
    type Encode = Bytes;
    type Decode = Req;
    type Encoder = BytesEncoder;
    type Decoder = tonic_prost::ProstDecoder<Req>;

    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

/// Copies an encoded message into the frame.
struct BytesEncoder;

impl tonic::codec::Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(
        &mut self,
        item: Bytes,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> std::result::Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
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
