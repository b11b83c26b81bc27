//! Allocation reaching a real container: the example plugin (a separate process) advertises
//! `example.com/fake`, a static pod asks for one device, and the container started on the test
//! harness's containerd sees the plugin's `FAKE_DEVICES` variable. Needs `NODE_TEST_CRI_ENDPOINT`
//! (skip line without it; a failure when `CI` is set).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use node_plugins::{DeviceAllocator, DeviceManager, DeviceManagerOptions};
use node_runtime::test_support::{cri_endpoint, test_image};
use node_runtime::{
    ClientOptions, CriClient, NodePaths, PodManager, PodPhase, StaticPodSource, SyncOptions,
};

struct Plugin(Child);

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocated_device_reaches_the_container_environment() {
    let Some(endpoint) = cri_endpoint("allocated_device_reaches_the_container_environment") else {
        return;
    };
    let image = test_image();
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("device-plugins");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();

    let devices = DeviceManager::new(DeviceManagerOptions::new(&plugin_dir));
    let _registration = devices.start().unwrap();
    let _plugin = Plugin(
        Command::new(env!("CARGO_BIN_EXE_fake-device-plugin"))
            .arg("--kubelet-socket")
            .arg(plugin_dir.join("kubelet.sock"))
            .args(["--devices", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        devices
            .wait_until(Duration::from_secs(20), |m| m
                .capacity()
                .allocatable
                .get("example.com/fake")
                == Some(&2))
            .await,
        "plugin registered"
    );

    std::fs::write(
        manifests.join("gpu.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: fake-user\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: app\n    image: {image}\n    imagePullPolicy: IfNotPresent\n    command: [\"/bin/sh\", \"-c\", \"echo devices=$FAKE_DEVICES; sleep 3600\"]\n    resources:\n      limits:\n        example.com/fake: 1\n"
        ),
    )
    .unwrap();
    let node = "node-devices";
    let paths = NodePaths {
        root_dir: dir.path().join("root"),
        pod_logs_dir: dir.path().join("logs"),
    };
    let client = CriClient::connect(&endpoint, &ClientOptions::default())
        .await
        .unwrap();
    let mut manager = PodManager::new(
        client,
        StaticPodSource::new(&manifests, node),
        SyncOptions::new(node, paths),
    )
    .with_container_hook(Arc::new(DeviceAllocator::new(devices.clone())));

    let start = Instant::now();
    let pod = loop {
        let report = manager.sync_once().await;
        if let Some(p) = manager
            .registry()
            .get("default", "fake-user-node-devices")
            .filter(|p| p.phase == PodPhase::Running)
        {
            break p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "pod never ran: {report:?} {:?}",
            manager.registry().list()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let allocated = devices.container_allocations(&pod.uid, "app");
    assert_eq!(allocated.len(), 1);
    let ids = allocated[0].device_ids.join(",");
    assert!(ids == "fake-0" || ids == "fake-1", "{ids}");

    let log = pod.container("app").unwrap().log_path.clone().unwrap();
    let wanted = format!("devices={ids}");
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&wanted) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{} has {text:?}, wanted {wanted}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Removing the pod releases its devices.
    manager.remove_all().await.unwrap();
    assert!(devices.container_allocations(&pod.uid, "app").is_empty());
}
