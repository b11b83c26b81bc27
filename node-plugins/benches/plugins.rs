//! node-plugins benches.
//!
//! * `listandwatch_10k/to_allocatable`: a `ListAndWatch` message with 10,000 devices (health
//!   alternating between two patterns) from an in-process plugin over a real Unix socket, until
//!   the device manager reports the new allocatable (includes the checkpoint write, as in the
//!   kubelet). Reference: the same message received by a bare gRPC client (transport + decode).
//! * `pod_resources_list_110/grpc`: `List` over the pod-resources socket with 110 pods (2
//!   containers each, one device per pod, from a device manager holding 10,000 devices); the
//!   server keeps its answer (encoded) between changes. `grpc_uncached`: the same server built
//!   with a CPU/memory provider without a generation, so it builds and encodes every answer
//!   (what every call did before the cache). Reference: building the answer in-process.
//!
//! Besides criterion's output, p50/p99 are printed to stderr: 200 `ListAndWatch` updates, and
//! 1,000 rounds of an interleaved loop (every contender once per round, so each sees the same
//! machine): the two gRPC `List`s, the in-process build, a copy of the kept answer, prost
//! encode and decode of the answer, and a gRPC `Get` of one pod (a small call over the same
//! connection: the transport and scheduling floor). Then the process RSS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use node_plugins::proto::deviceplugin::device_plugin_client::DevicePluginClient;
use node_plugins::proto::deviceplugin::device_plugin_server::{DevicePlugin, DevicePluginServer};
use node_plugins::proto::deviceplugin::registration_client::RegistrationClient;
use node_plugins::proto::deviceplugin::{
    AllocateRequest, AllocateResponse, ContainerAllocateResponse, Device, DevicePluginOptions,
    Empty, ListAndWatchResponse, PreStartContainerRequest, PreStartContainerResponse,
    PreferredAllocationRequest, PreferredAllocationResponse, RegisterRequest,
};
use node_plugins::proto::podresources::pod_resources_lister_client::PodResourcesListerClient;
use node_plugins::proto::podresources::{
    GetPodResourcesRequest, ListPodResourcesRequest, ListPodResourcesResponse,
};
use node_plugins::{
    DeviceManager, DeviceManagerOptions, PodResourcesOptions, PodResourcesServer,
    pod_resources_socket,
};
use node_runtime::{ContainerInfo, ContainerKind, ContainerState, PodInfo, PodPhase, PodRegistry};
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{BroadcastStream, UnixListenerStream};
use tonic::{Request, Response, Status};

const RESOURCE: &str = "example.com/bench";
const DEVICES: usize = 10_000;

/// A plugin whose device list is pushed by the bench.
struct Pushed(
    broadcast::Sender<ListAndWatchResponse>,
    ListAndWatchResponse,
);

type Stream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<ListAndWatchResponse, Status>> + Send>,
>;

#[tonic::async_trait]
impl DevicePlugin for Pushed {
    async fn get_device_plugin_options(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<DevicePluginOptions>, Status> {
        Ok(Response::new(DevicePluginOptions::default()))
    }
    type ListAndWatchStream = Stream;
    async fn list_and_watch(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<Self::ListAndWatchStream>, Status> {
        let first = tokio_stream::once(Ok(self.1.clone()));
        let rest = BroadcastStream::new(self.0.subscribe())
            .filter_map(|m| m.ok())
            .map(Ok);
        Ok(Response::new(Box::pin(first.chain(rest))))
    }
    async fn get_preferred_allocation(
        &self,
        _: Request<PreferredAllocationRequest>,
    ) -> Result<Response<PreferredAllocationResponse>, Status> {
        Ok(Response::new(PreferredAllocationResponse::default()))
    }
    async fn allocate(
        &self,
        r: Request<AllocateRequest>,
    ) -> Result<Response<AllocateResponse>, Status> {
        let container_responses = r
            .into_inner()
            .container_requests
            .into_iter()
            .map(|c| {
                let mut resp = ContainerAllocateResponse::default();
                resp.envs.insert("DEVS".into(), c.devices_ids.join(","));
                resp
            })
            .collect();
        Ok(Response::new(AllocateResponse {
            container_responses,
        }))
    }
    async fn pre_start_container(
        &self,
        _: Request<PreStartContainerRequest>,
    ) -> Result<Response<PreStartContainerResponse>, Status> {
        Ok(Response::new(PreStartContainerResponse {}))
    }
}

fn devices(unhealthy_every: usize) -> ListAndWatchResponse {
    ListAndWatchResponse {
        devices: (0..DEVICES)
            .map(|i| Device {
                id: format!("dev-{i:05}"),
                health: if i.is_multiple_of(unhealthy_every) {
                    "Unhealthy"
                } else {
                    "Healthy"
                }
                .into(),
                topology: None,
            })
            .collect(),
    }
}

fn expected_allocatable(unhealthy_every: usize) -> i64 {
    i64::try_from(DEVICES - DEVICES.div_ceil(unhealthy_every)).unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    manager: DeviceManager,
    tx: broadcast::Sender<ListAndWatchResponse>,
    plugin_socket: std::path::PathBuf,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let manager = DeviceManager::new(DeviceManagerOptions::new(dir.path()));
    let server = manager.start().unwrap();
    std::mem::forget(server); // serve for the whole bench
    let (tx, _) = broadcast::channel(4);
    let plugin_socket = dir.path().join("bench.sock");
    let listener = tokio::net::UnixListener::bind(&plugin_socket).unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(DevicePluginServer::new(Pushed(tx.clone(), devices(2))))
            .serve_with_incoming(UnixListenerStream::new(listener)),
    );
    let channel = node_plugins::connect(&manager.socket_path(), Duration::from_secs(5))
        .await
        .unwrap();
    RegistrationClient::new(channel)
        .register(RegisterRequest {
            version: "v1beta1".into(),
            endpoint: "bench.sock".into(),
            resource_name: RESOURCE.into(),
            options: None,
        })
        .await
        .unwrap();
    assert!(
        manager
            .wait_until(Duration::from_secs(10), |m| m
                .capacity()
                .allocatable
                .get(RESOURCE)
                == Some(&expected_allocatable(2)))
            .await
    );
    Setup {
        dir,
        manager,
        tx,
        plugin_socket,
    }
}

/// One update: push the other health pattern, wait for the matching allocatable.
async fn one_update(s: &Setup, round: usize) -> Duration {
    let every = if round.is_multiple_of(2) { 3 } else { 2 };
    let message = devices(every);
    let want = expected_allocatable(every);
    let mut rx = s.manager.subscribe();
    let start = Instant::now();
    s.tx.send(message).unwrap();
    loop {
        if s.manager.capacity().allocatable.get(RESOURCE) == Some(&want) {
            break;
        }
        rx.changed().await.unwrap();
    }
    start.elapsed()
}

/// Reference: the same update received and decoded by a bare client.
async fn one_bare(
    tx: &broadcast::Sender<ListAndWatchResponse>,
    stream: &mut tonic::Streaming<ListAndWatchResponse>,
    round: usize,
) -> Duration {
    let every = if round.is_multiple_of(2) { 3 } else { 2 };
    let message = devices(every);
    let start = Instant::now();
    tx.send(message).unwrap();
    let got = stream.message().await.unwrap().unwrap();
    assert_eq!(got.devices.len(), DEVICES);
    start.elapsed()
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an index into `v`: `q` is in 0..=1"
    )]
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (p(0.5), p(0.99))
}

fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

fn bench_listandwatch(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(setup());
    let mut bare = rt.block_on(async {
        let channel = node_plugins::connect(&s.plugin_socket, Duration::from_secs(5))
            .await
            .unwrap();
        let mut stream = DevicePluginClient::new(channel)
            .list_and_watch(Empty {})
            .await
            .unwrap()
            .into_inner();
        stream.message().await.unwrap().unwrap(); // the initial list
        stream
    });
    let mut round = 0usize;
    let mut group = c.benchmark_group("listandwatch_10k");
    group.sample_size(30);
    group.bench_function("to_allocatable", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    total += one_update(&s, round).await;
                }
                total
            })
        })
    });
    // The bare stream also receives every message above: drain them first.
    rt.block_on(async {
        while let Ok(Ok(Some(_))) =
            tokio::time::timeout(Duration::from_millis(200), bare.message()).await
        {}
    });
    // The manager's stream also receives the reference messages; let it keep up.
    group.bench_function("reference_bare_client", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    total += one_bare(&s.tx, &mut bare, round).await;
                    let want = expected_allocatable(if round.is_multiple_of(2) { 3 } else { 2 });
                    s.manager
                        .wait_until(Duration::from_secs(10), |m| {
                            m.capacity().allocatable.get(RESOURCE) == Some(&want)
                        })
                        .await;
                }
                total
            })
        })
    });
    group.finish();
    let samples: Vec<Duration> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..200 {
            round += 1;
            v.push(one_update(&s, round).await);
        }
        v
    });
    let (p50, p99) = percentiles(samples);
    eprintln!("listandwatch_10k to_allocatable: p50 {p50:?} p99 {p99:?} (200 samples)");
}

fn pods() -> PodRegistry {
    let registry = PodRegistry::new();
    for i in 0..110 {
        let containers = ["app", "sidecar"]
            .iter()
            .map(|name| ContainerInfo {
                name: (*name).to_owned(),
                kind: ContainerKind::Regular,
                container_id: Some(format!("cid-{i}-{name}")),
                image: "registry.k8s.io/pause:3.10".to_owned(),
                state: ContainerState::Running { started_at: 1 },
                restart_count: 0,
                ready: true,
                log_path: None,
                image_id: None,
                last_state: None,
                started: None,
            })
            .collect();
        registry.upsert(PodInfo {
            namespace: format!("ns-{}", i % 10),
            name: format!("pod-{i:03}"),
            uid: format!("uid-{i:03}"),
            source: node_runtime::PodSource::File("/etc/kubernetes/manifests/x.yaml".into()),
            pod: None,
            sandbox_id: Some(format!("sb-{i}")),
            pod_ips: Vec::new(),
            phase: PodPhase::Running,
            reason: None,
            message: None,
            conditions: Vec::new(),
            containers,
        });
    }
    registry
}

/// A CPU/memory provider without a generation: the server cannot keep its answers.
struct Uncacheable;

impl node_plugins::CpuMemoryProvider for Uncacheable {}

fn bench_pod_resources(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rss_before, _) = rss_kib();
    let s = rt.block_on(setup());
    let registry = pods();
    rt.block_on(async {
        for i in 0..110 {
            s.manager
                .allocate(&format!("uid-{i:03}"), "app", RESOURCE, 1)
                .await
                .unwrap();
        }
    });
    // The bench measures the server, not the limiter: lift the limit.
    let options = PodResourcesOptions::default()
        .with_qps(1e9)
        .with_burst(1_000_000);
    let server = PodResourcesServer::new(registry.clone(), s.manager.clone(), options);
    let socket = pod_resources_socket(s.dir.path());
    let handle = rt.block_on(async { server.serve(&socket).unwrap() });
    let mut client = rt.block_on(async {
        PodResourcesListerClient::new(
            node_plugins::connect(&socket, Duration::from_secs(5))
                .await
                .unwrap(),
        )
    });
    // The same server without its cache (a CPU/memory provider that cannot say when it
    // changes makes it build every answer): what every `List` cost before, in the same run.
    let uncached = PodResourcesServer::with_cpu_memory(
        registry,
        s.manager.clone(),
        options,
        std::sync::Arc::new(Uncacheable),
    );
    let uncached_socket = s.dir.path().join("uncached.sock");
    let uncached_handle = rt.block_on(async { uncached.serve(&uncached_socket).unwrap() });
    let mut uncached_client = rt.block_on(async {
        PodResourcesListerClient::new(
            node_plugins::connect(&uncached_socket, Duration::from_secs(5))
                .await
                .unwrap(),
        )
    });
    let first = rt
        .block_on(client.list(ListPodResourcesRequest {}))
        .unwrap()
        .into_inner();
    assert_eq!(first.pod_resources.len(), 110);
    assert_eq!(first.pod_resources[0].containers[0].devices.len(), 1);
    let mut group = c.benchmark_group("pod_resources_list_110");
    group.bench_function("grpc", |b| {
        b.iter(|| {
            rt.block_on(client.list(ListPodResourcesRequest {}))
                .unwrap()
        })
    });
    group.bench_function("grpc_uncached", |b| {
        b.iter(|| {
            rt.block_on(uncached_client.list(ListPodResourcesRequest {}))
                .unwrap()
        })
    });
    group.bench_function("reference_in_process_build", |b| b.iter(|| uncached.list()));
    group.finish();
    // One loop, the contenders interleaved call by call, so each sees the same machine.
    let mut grpc = Vec::new();
    let mut grpc_uncached = Vec::new();
    let mut build = Vec::new();
    let mut copy = Vec::new();
    let mut encode = Vec::new();
    let mut decode = Vec::new();
    let mut small = Vec::new();
    let answer = server.list();
    let encoded = prost::Message::encode_to_vec(&answer);
    assert_eq!(answer, uncached.list());
    rt.block_on(async {
        for _ in 0..1000 {
            let t = Instant::now();
            client.list(ListPodResourcesRequest {}).await.unwrap();
            grpc.push(t.elapsed());
            let t = Instant::now();
            uncached_client
                .list(ListPodResourcesRequest {})
                .await
                .unwrap();
            grpc_uncached.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(uncached.list());
            build.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(server.list());
            copy.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(prost::Message::encode_to_vec(&answer));
            encode.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(
                <ListPodResourcesResponse as prost::Message>::decode(encoded.as_slice()).unwrap(),
            );
            decode.push(t.elapsed());
            let t = Instant::now();
            client
                .get(GetPodResourcesRequest {
                    pod_name: "pod-000".into(),
                    pod_namespace: "ns-0".into(),
                })
                .await
                .unwrap();
            small.push(t.elapsed());
        }
    });
    let (rss, hwm) = rss_kib();
    for (name, v) in [
        ("grpc List", grpc),
        ("grpc List, uncached server", grpc_uncached),
        ("in-process build (uncached list())", build),
        ("in-process copy of the kept answer (list())", copy),
        ("prost encode of the answer (no longer per call)", encode),
        ("prost decode of the answer (the client's share)", decode),
        ("grpc Get of one pod", small),
    ] {
        let (p50, p99) = percentiles(v);
        eprintln!("pod_resources_list_110 {name}: p50 {p50:?} p99 {p99:?} (1000 samples)");
    }
    eprintln!(
        "pod_resources_list_110: answer {} bytes encoded; process RSS {rss} KiB (peak {hwm} KiB, {rss_before} KiB before the device manager and server started)",
        prost::Message::encoded_len(&answer)
    );
    drop(handle);
    drop(uncached_handle);
}

criterion_group!(benches, bench_listandwatch, bench_pod_resources);
criterion_main!(benches);
