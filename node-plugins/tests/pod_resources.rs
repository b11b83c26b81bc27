//! The Pod Resources server over its Unix socket, with devices allocated through the example
//! plugin running as a separate process; answers checked field by field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use node_plugins::proto::podresources::pod_resources_lister_client::PodResourcesListerClient;
use node_plugins::proto::podresources::{
    AllocatableResourcesRequest, ContainerDevices, ContainerMemory, GetPodResourcesRequest,
    ListPodResourcesRequest, NumaNode, TopologyInfo,
};
use node_plugins::proto::podresources_v1alpha1 as alpha;
use node_plugins::{
    CpuMemoryProvider, DeviceManager, DeviceManagerOptions, PodResourcesOptions,
    PodResourcesServer, pod_resources_socket,
};
use node_runtime::{ContainerInfo, ContainerKind, ContainerState, PodInfo, PodPhase, PodRegistry};

const RESOURCE: &str = "example.com/fake";

struct Plugin(Child);

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_plugin(dir: &Path, devices: &str, health: &Path) -> Plugin {
    Plugin(
        Command::new(env!("CARGO_BIN_EXE_fake-device-plugin"))
            .arg("--kubelet-socket")
            .arg(dir.join("kubelet.sock"))
            .args(["--devices", devices, "--health-file"])
            .arg(health)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn container(name: &str, kind: ContainerKind) -> ContainerInfo {
    ContainerInfo {
        name: name.to_owned(),
        kind,
        container_id: Some(format!("cid-{name}")),
        image: "busybox".to_owned(),
        state: ContainerState::Running { started_at: 1 },
        restart_count: 0,
        ready: true,
        log_path: None,
        image_id: None,
        last_state: None,
        started: None,
    }
}

fn pod(
    namespace: &str,
    name: &str,
    uid: &str,
    phase: PodPhase,
    containers: Vec<ContainerInfo>,
) -> PodInfo {
    PodInfo {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        source: node_runtime::PodSource::File(
            format!("/etc/kubernetes/manifests/{name}.yaml").into(),
        ),
        pod: None,
        sandbox_id: Some(format!("sandbox-{uid}")),
        pod_ips: Vec::new(),
        phase,
        reason: None,
        message: None,
        conditions: Vec::new(),
        containers,
    }
}

/// Fixed CPU and memory assignments standing in for the CPU and memory managers.
struct Assignments;

impl CpuMemoryProvider for Assignments {
    fn container_cpus(&self, pod_uid: &str, container: &str) -> Vec<i64> {
        if (pod_uid, container) == ("uid-gpu", "app") {
            vec![2, 3]
        } else {
            Vec::new()
        }
    }
    fn container_memory(&self, pod_uid: &str, container: &str) -> Vec<ContainerMemory> {
        if (pod_uid, container) == ("uid-gpu", "app") {
            vec![ContainerMemory {
                memory_type: "memory".to_owned(),
                size: 1 << 30,
                topology: Some(TopologyInfo {
                    nodes: vec![NumaNode { id: 0 }],
                }),
            }]
        } else {
            Vec::new()
        }
    }
    fn allocatable_cpus(&self) -> Vec<i64> {
        vec![1, 2, 3]
    }
    fn allocatable_memory(&self) -> Vec<ContainerMemory> {
        vec![ContainerMemory {
            memory_type: "memory".to_owned(),
            size: 8 << 30,
            topology: Some(TopologyInfo {
                nodes: vec![NumaNode { id: 0 }],
            }),
        }]
    }
}

fn device(id: &str) -> ContainerDevices {
    ContainerDevices {
        resource_name: RESOURCE.to_owned(),
        device_ids: vec![id.to_owned()],
        topology: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_resources_answers_field_by_field_and_rate_limits() {
    let dir = tempfile::tempdir().unwrap();
    let plugins_dir = dir.path().join("device-plugins");
    let health = dir.path().join("health");
    let devices = DeviceManager::new(DeviceManagerOptions::new(&plugins_dir));
    let _registration = devices.start().unwrap();
    let _plugin = spawn_plugin(&plugins_dir, "3", &health);
    assert!(
        devices
            .wait_until(Duration::from_secs(20), |m| m
                .capacity()
                .allocatable
                .get(RESOURCE)
                == Some(&3))
            .await
    );
    let allocation = devices
        .allocate("uid-gpu", "app", RESOURCE, 2)
        .await
        .unwrap();
    assert_eq!(allocation.device_ids, ["fake-0", "fake-1"]);
    // fake-2 is unhealthy: not allocatable.
    std::fs::write(&health, "fake-2\n").unwrap();
    assert!(
        devices
            .wait_until(Duration::from_secs(20), |m| m
                .capacity()
                .allocatable
                .get(RESOURCE)
                == Some(&2))
            .await
    );

    let pods = PodRegistry::new();
    pods.upsert(pod(
        "default",
        "gpu",
        "uid-gpu",
        PodPhase::Running,
        vec![
            container("setup", ContainerKind::Init),
            container("app", ContainerKind::Regular),
            container("log", ContainerKind::Regular),
        ],
    ));
    pods.upsert(pod(
        "kube-system",
        "plain",
        "uid-plain",
        PodPhase::Pending,
        vec![container("c", ContainerKind::Regular)],
    ));
    pods.upsert(pod(
        "default",
        "done",
        "uid-done",
        PodPhase::Succeeded,
        vec![container("c", ContainerKind::Regular)],
    ));

    let server = PodResourcesServer::with_cpu_memory(
        pods,
        devices.clone(),
        PodResourcesOptions::default(),
        Arc::new(Assignments),
    );
    let socket = pod_resources_socket(dir.path());
    let handle = server.serve(&socket).unwrap();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o750);

    let channel = node_plugins::connect(&socket, Duration::from_secs(5))
        .await
        .unwrap();
    let mut client = PodResourcesListerClient::new(channel.clone());

    // List: active pods only (the Succeeded one is left out), sorted; regular containers only.
    let list = client
        .list(ListPodResourcesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.pod_resources.len(), 2);
    let gpu = &list.pod_resources[0];
    assert_eq!(
        (gpu.namespace.as_str(), gpu.name.as_str()),
        ("default", "gpu")
    );
    let names: Vec<&str> = gpu.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["app", "log"]);
    let app = &gpu.containers[0];
    assert_eq!(app.devices, [device("fake-0"), device("fake-1")]);
    assert_eq!(app.cpu_ids, [2, 3]);
    assert_eq!(app.memory.len(), 1);
    assert_eq!(app.memory[0].memory_type, "memory");
    assert_eq!(app.memory[0].size, 1 << 30);
    assert_eq!(app.memory[0].topology.as_ref().unwrap().nodes[0].id, 0);
    assert!(app.dynamic_resources.is_empty());
    let log = &gpu.containers[1];
    assert!(log.devices.is_empty() && log.cpu_ids.is_empty() && log.memory.is_empty());
    let plain = &list.pod_resources[1];
    assert_eq!(
        (plain.namespace.as_str(), plain.name.as_str()),
        ("kube-system", "plain")
    );
    assert_eq!(plain.containers.len(), 1);
    assert_eq!(plain.containers[0].name, "c");
    assert!(plain.containers[0].devices.is_empty());

    // GetAllocatableResources: healthy devices only, the node's CPUs and memory.
    let alloc = client
        .get_allocatable_resources(AllocatableResourcesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alloc.devices, [device("fake-0"), device("fake-1")]);
    assert_eq!(alloc.cpu_ids, [1, 2, 3]);
    assert_eq!(alloc.memory[0].size, 8 << 30);

    // Get: the pod, and the kubelet's error for an unknown one.
    let got = client
        .get(GetPodResourcesRequest {
            pod_name: "gpu".into(),
            pod_namespace: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_resources
        .unwrap();
    assert_eq!(&got, gpu);
    let err = client
        .get(GetPodResourcesRequest {
            pod_name: "nope".into(),
            pod_namespace: "default".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unknown);
    assert_eq!(err.message(), "pod nope in namespace default not found");

    // v1alpha1 List on the same socket.
    let mut alpha_client =
        alpha::pod_resources_lister_client::PodResourcesListerClient::new(channel);
    let old = alpha_client
        .list(alpha::ListPodResourcesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old.pod_resources.len(), 2);
    assert_eq!(old.pod_resources[0].name, "gpu");
    assert_eq!(old.pod_resources[0].containers[0].name, "app");
    let ids: Vec<&str> = old.pod_resources[0].containers[0]
        .devices
        .iter()
        .map(|d| {
            assert_eq!(d.resource_name, RESOURCE);
            d.device_ids[0].as_str()
        })
        .collect();
    assert_eq!(ids, ["fake-0", "fake-1"]);

    // 6 calls so far; the burst of 10 is shared by both versions. Hammer until rejected.
    let mut rejected = None;
    for _ in 0..200 {
        match client.list(ListPodResourcesRequest {}).await {
            Ok(_) => {}
            Err(status) => {
                rejected = Some(status);
                break;
            }
        }
    }
    let status = rejected.expect("the limiter rejects after the burst");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_eq!(status.message(), "rejected by rate limit");
    // Tokens come back at 100 per second.
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.list(ListPodResourcesRequest {}).await.unwrap();
    handle.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_is_refused_when_its_gate_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let devices = DeviceManager::new(DeviceManagerOptions::new(dir.path().join("dp")));
    let pods = PodRegistry::new();
    pods.upsert(pod(
        "default",
        "a",
        "uid-a",
        PodPhase::Running,
        vec![container("c", ContainerKind::Regular)],
    ));
    let options = PodResourcesOptions::default().with_get_enabled(false);
    let server = PodResourcesServer::new(pods, devices, options);
    let socket = pod_resources_socket(dir.path());
    let handle = server.serve(&socket).unwrap();
    let channel = node_plugins::connect(&socket, Duration::from_secs(5))
        .await
        .unwrap();
    let mut client = PodResourcesListerClient::new(channel);
    let err = client
        .get(GetPodResourcesRequest {
            pod_name: "a".into(),
            pod_namespace: "default".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unknown);
    assert_eq!(err.message(), "PodResources API Get method disabled");
    // List still works.
    let list = client
        .list(ListPodResourcesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.pod_resources[0].containers[0].name, "c");
    handle.stop().await.unwrap();
}

/// CPU and memory assignments that change, with a generation that says so.
#[derive(Default)]
struct Changing {
    generation: std::sync::atomic::AtomicU64,
    cpus: std::sync::Mutex<Vec<i64>>,
}

impl Changing {
    fn set_cpus(&self, cpus: Vec<i64>) {
        *self.cpus.lock().unwrap() = cpus;
        // After the change, as the trait asks.
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl CpuMemoryProvider for Changing {
    fn generation(&self) -> Option<u64> {
        Some(self.generation.load(std::sync::atomic::Ordering::SeqCst))
    }
    fn container_cpus(&self, _pod_uid: &str, container: &str) -> Vec<i64> {
        if container == "app" {
            self.cpus.lock().unwrap().clone()
        } else {
            Vec::new()
        }
    }
    fn allocatable_cpus(&self) -> Vec<i64> {
        self.cpus.lock().unwrap().clone()
    }
}

/// The server keeps its `List` and `GetAllocatableResources` answers between changes; every
/// kind of change they are built from shows in the next answer, over the socket and in
/// process, and answers are reused (the same allocation) while nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_answers_follow_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let plugins_dir = dir.path().join("device-plugins");
    let health = dir.path().join("health");
    let devices = DeviceManager::new(DeviceManagerOptions::new(&plugins_dir));
    let _registration = devices.start().unwrap();
    let mut plugin = spawn_plugin(&plugins_dir, "3", &health);
    let allocatable_is = |n: i64| {
        let devices = devices.clone();
        async move {
            assert!(
                devices
                    .wait_until(Duration::from_secs(20), |m| m
                        .capacity()
                        .allocatable
                        .get(RESOURCE)
                        == Some(&n))
                    .await
            );
        }
    };
    allocatable_is(3).await;

    let pods = PodRegistry::new();
    pods.upsert(pod(
        "default",
        "gpu",
        "uid-gpu",
        PodPhase::Running,
        vec![container("app", ContainerKind::Regular)],
    ));
    let cpu_memory = Arc::new(Changing::default());
    let server = PodResourcesServer::with_cpu_memory(
        pods.clone(),
        devices.clone(),
        PodResourcesOptions::default()
            .with_qps(1e6)
            .with_burst(1000),
        cpu_memory.clone(),
    );
    let socket = pod_resources_socket(dir.path());
    let _handle = server.serve(&socket).unwrap();
    let client = PodResourcesListerClient::new(
        node_plugins::connect(&socket, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let client = move || {
        let mut c = client.clone();
        async move {
            let list = c
                .list(ListPodResourcesRequest {})
                .await
                .unwrap()
                .into_inner();
            let alloc = c
                .get_allocatable_resources(AllocatableResourcesRequest {})
                .await
                .unwrap()
                .into_inner();
            (list, alloc)
        }
    };
    let app_devices = |l: &node_plugins::proto::podresources::ListPodResourcesResponse| {
        l.pod_resources[0].containers[0]
            .devices
            .iter()
            .map(|d| d.device_ids[0].clone())
            .collect::<Vec<_>>()
    };
    let names = |l: &node_plugins::proto::podresources::ListPodResourcesResponse| {
        l.pod_resources
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    let ids = |a: &node_plugins::proto::podresources::AllocatableResourcesResponse| {
        a.devices
            .iter()
            .map(|d| d.device_ids[0].clone())
            .collect::<Vec<_>>()
    };

    let (list, alloc) = client().await;
    assert!(app_devices(&list).is_empty());
    assert_eq!(ids(&alloc), ["fake-0", "fake-1", "fake-2"]);
    // Nothing changed: the kept answers are handed out again.
    assert!(Arc::ptr_eq(&server.list_shared(), &server.list_shared()));
    assert!(Arc::ptr_eq(
        &server.allocatable_shared(),
        &server.allocatable_shared()
    ));
    assert_eq!(client().await, (list.clone(), alloc.clone()));

    // An allocation.
    devices
        .allocate("uid-gpu", "app", RESOURCE, 2)
        .await
        .unwrap();
    let (list, _) = client().await;
    assert_eq!(app_devices(&list), ["fake-0", "fake-1"]);

    // Device health (a ListAndWatch update).
    std::fs::write(&health, "fake-2\n").unwrap();
    allocatable_is(2).await;
    let (_, alloc) = client().await;
    assert_eq!(ids(&alloc), ["fake-0", "fake-1"]);

    // A pod added, one finished (its phase), one removed.
    pods.upsert(pod(
        "default",
        "other",
        "uid-other",
        PodPhase::Pending,
        vec![container("c", ContainerKind::Regular)],
    ));
    let (list, _) = client().await;
    assert_eq!(names(&list), ["gpu", "other"]);
    pods.upsert(pod(
        "default",
        "other",
        "uid-other",
        PodPhase::Succeeded,
        vec![container("c", ContainerKind::Regular)],
    ));
    let (list, _) = client().await;
    assert_eq!(names(&list), ["gpu"]);
    pods.upsert(pod(
        "default",
        "other",
        "uid-other",
        PodPhase::Running,
        vec![container("c", ContainerKind::Regular)],
    ));
    assert_eq!(names(&client().await.0), ["gpu", "other"]);
    pods.remove("uid-other");
    assert_eq!(names(&client().await.0), ["gpu"]);

    // A container added to a pod.
    pods.upsert(pod(
        "default",
        "gpu",
        "uid-gpu",
        PodPhase::Running,
        vec![
            container("app", ContainerKind::Regular),
            container("log", ContainerKind::Regular),
        ],
    ));
    let (list, _) = client().await;
    assert_eq!(list.pod_resources[0].containers.len(), 2);
    assert_eq!(app_devices(&list), ["fake-0", "fake-1"]);

    // CPU assignments (the provider's generation).
    cpu_memory.set_cpus(vec![4, 5]);
    let (list, alloc) = client().await;
    assert_eq!(list.pod_resources[0].containers[0].cpu_ids, [4, 5]);
    assert_eq!(alloc.cpu_ids, [4, 5]);

    // The pod's devices released.
    let released = devices.clone();
    tokio::task::spawn_blocking(move || released.release_pod("uid-gpu"))
        .await
        .unwrap();
    assert!(app_devices(&client().await.0).is_empty());

    // The plugin gone: its devices turn unhealthy.
    let _ = plugin.0.kill();
    let _ = plugin.0.wait();
    allocatable_is(0).await;
    let (_, alloc) = client().await;
    assert!(alloc.devices.is_empty());

    // Every kept answer equals one built from scratch by a server that keeps none.
    let fresh = PodResourcesServer::with_cpu_memory(
        pods,
        devices,
        PodResourcesOptions::default(),
        Arc::new(Fresh(cpu_memory)),
    );
    assert_eq!(server.list(), fresh.list());
    assert_eq!(server.allocatable(), fresh.allocatable());
    assert!(!Arc::ptr_eq(&fresh.list_shared(), &fresh.list_shared()));
}

/// The same assignments without a generation: the server must build every answer.
struct Fresh(Arc<Changing>);

impl CpuMemoryProvider for Fresh {
    fn container_cpus(&self, pod_uid: &str, container: &str) -> Vec<i64> {
        self.0.container_cpus(pod_uid, container)
    }
    fn allocatable_cpus(&self) -> Vec<i64> {
        self.0.allocatable_cpus()
    }
}
