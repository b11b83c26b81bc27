//! The device manager against the example plugin running as a separate process
//! (`fake-device-plugin`), over real Unix sockets in temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use node_plugins::{DeviceManager, DeviceManagerOptions, PluginError};

const RESOURCE: &str = "example.com/fake";
const WAIT: Duration = Duration::from_secs(20);

/// A plugin process, killed when dropped.
struct Plugin(Child);

impl Plugin {
    fn spawn(dir: &Path, extra: &[&str]) -> Plugin {
        let child = Command::new(env!("CARGO_BIN_EXE_fake-device-plugin"))
            .arg("--kubelet-socket")
            .arg(dir.join("kubelet.sock"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Plugin(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.kill();
    }
}

fn manager(dir: &Path, grace: Duration) -> DeviceManager {
    let mut options = DeviceManagerOptions::new(dir);
    options.grace_period = grace;
    DeviceManager::new(options)
}

fn counts(m: &DeviceManager, resource: &str) -> (Option<i64>, Option<i64>) {
    let c = m.capacity();
    (
        c.capacity.get(resource).copied(),
        c.allocatable.get(resource).copied(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_makes_capacity_appear_and_health_flips_change_allocatable() {
    let dir = tempfile::tempdir().unwrap();
    let health = dir.path().join("health");
    let m = manager(dir.path(), Duration::from_secs(300));
    let server = m.start().unwrap();
    let _plugin = Plugin::spawn(
        dir.path(),
        &["--devices", "3", "--health-file", health.to_str().unwrap()],
    );

    assert!(
        m.wait_until(WAIT, |m| counts(m, RESOURCE) == (Some(3), Some(3)))
            .await
    );
    assert!(m.is_connected(RESOURCE));
    assert_eq!(m.endpoint(RESOURCE).unwrap(), dir.path().join("fake.sock"));
    let ids: Vec<String> = m.devices(RESOURCE).into_iter().map(|d| d.id).collect();
    assert_eq!(ids, ["fake-0", "fake-1", "fake-2"]);

    std::fs::write(&health, "fake-1\n").unwrap();
    assert!(
        m.wait_until(WAIT, |m| counts(m, RESOURCE) == (Some(3), Some(2)))
            .await
    );
    let unhealthy: Vec<String> = m
        .devices(RESOURCE)
        .into_iter()
        .filter(|d| !d.healthy)
        .map(|d| d.id)
        .collect();
    assert_eq!(unhealthy, ["fake-1"]);

    std::fs::write(&health, "all\n").unwrap();
    assert!(
        m.wait_until(WAIT, |m| counts(m, RESOURCE) == (Some(3), Some(0)))
            .await
    );
    std::fs::remove_file(&health).unwrap();
    assert!(
        m.wait_until(WAIT, |m| counts(m, RESOURCE) == (Some(3), Some(3)))
            .await
    );

    // The checkpoint records the healthy devices in the kubelet's format.
    let want = "\"RegisteredDevices\":{\"example.com/fake\":[\"fake-0\",\"fake-1\",\"fake-2\"]}";
    let path = dir.path().join("kubelet_internal_checkpoint");
    let mut raw = String::new();
    for _ in 0..50 {
        raw = std::fs::read_to_string(&path).unwrap();
        if raw.contains(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(raw.contains(want), "{raw}");
    // node-state verifies it with the kubelet's checksum.
    let verified: node_state::DeviceManagerState = node_state::store::FileStore::open(dir.path())
        .unwrap()
        .load("kubelet_internal_checkpoint")
        .unwrap();
    assert_eq!(
        verified.registered_devices.unwrap()[RESOURCE]
            .as_ref()
            .unwrap()
            .len(),
        3
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_plugin_marks_devices_unhealthy_then_removes_the_resource() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), Duration::from_secs(2));
    let server = m.start().unwrap();
    let mut plugin = Plugin::spawn(dir.path(), &["--devices", "2"]);
    assert!(
        m.wait_until(WAIT, |m| counts(m, RESOURCE) == (Some(2), Some(2)))
            .await
    );

    plugin.kill();
    // Capacity stays, allocatable drops to 0 ...
    assert!(m.wait_until(WAIT, |m| !m.is_connected(RESOURCE)).await);
    assert_eq!(counts(&m, RESOURCE), (Some(2), Some(0)));
    assert!(m.devices(RESOURCE).iter().all(|d| !d.healthy));
    // ... until the grace period has passed; then the resource is reported deleted once.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let c = m.capacity();
    assert_eq!(c.deleted, [RESOURCE]);
    assert!(!c.capacity.contains_key(RESOURCE));
    assert!(m.capacity().deleted.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_device_manager_makes_the_plugin_register_again() {
    let dir = tempfile::tempdir().unwrap();
    let first = manager(dir.path(), Duration::from_secs(300));
    let server = first.start().unwrap();
    let _plugin = Plugin::spawn(dir.path(), &["--devices", "4"]);
    assert!(
        first
            .wait_until(WAIT, |m| counts(m, RESOURCE) == (Some(4), Some(4)))
            .await
    );
    let allocation = first.allocate("pod-a", "app", RESOURCE, 2).await.unwrap();

    // The agent stops; a stale socket of a dead plugin is left behind.
    server.stop().await.unwrap();
    first.shutdown();
    drop(first);
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());

    let second = manager(dir.path(), Duration::from_secs(300));
    let server = second.start().unwrap();
    assert!(!stale.exists(), "stale sockets are removed at start");
    assert!(dir.path().join("kubelet_internal_checkpoint").exists());
    // Restored from the checkpoint: the running container keeps its devices and answer.
    assert_eq!(
        second.container_allocations("pod-a", "app"),
        std::slice::from_ref(&allocation)
    );
    // The plugin notices the new kubelet.sock and registers again.
    assert!(
        second
            .wait_until(WAIT, |m| m.is_connected(RESOURCE)
                && counts(m, RESOURCE) == (Some(4), Some(4)))
            .await
    );
    // The restored allocation still holds its devices: only 2 are left.
    let next = second.allocate("pod-b", "app", RESOURCE, 2).await.unwrap();
    assert!(
        next.device_ids
            .iter()
            .all(|id| !allocation.device_ids.contains(id))
    );
    let err = second
        .allocate("pod-c", "app", RESOURCE, 1)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "requested number of devices unavailable for example.com/fake. Requested: 1, Available: 0"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_registration_for_the_same_resource_replaces_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), Duration::from_secs(300));
    let server = m.start().unwrap();
    let mut old = Plugin::spawn(dir.path(), &["--devices", "2", "--socket-name", "old.sock"]);
    assert!(
        m.wait_until(WAIT, |m| counts(m, RESOURCE) == (Some(2), Some(2)))
            .await
    );
    let _new = Plugin::spawn(dir.path(), &["--devices", "5", "--socket-name", "new.sock"]);
    assert!(
        m.wait_until(WAIT, |m| counts(m, RESOURCE) == (Some(5), Some(5)))
            .await
    );
    assert_eq!(m.endpoint(RESOURCE).unwrap(), dir.path().join("new.sock"));
    // The replaced plugin going away does not touch the new one's devices.
    old.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counts(&m, RESOURCE), (Some(5), Some(5)));
    assert!(m.is_connected(RESOURCE));
    server.stop().await.unwrap();
}

fn refused(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let m = manager(dir.path(), Duration::from_secs(300));
    let _server = m.start().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fake-device-plugin"))
        .arg("--kubelet-socket")
        .arg(dir.path().join("kubelet.sock"))
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the plugin exits with an error");
    assert!(m.capacity().capacity.is_empty());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_v1alpha1_registration_is_refused_with_the_kubelets_message() {
    let stderr = refused(&["--api-version", "v1alpha1"]);
    assert!(
        stderr.contains(
            "code: 'Unknown error', message: \"requested API version \\\"v1alpha1\\\" is not supported by kubelet. Supported version is [\\\"v1beta1\\\"]\""
        ),
        "{stderr}"
    );
}

#[test]
fn a_bad_resource_name_is_refused_with_the_kubelets_message() {
    let stderr = refused(&["--resource", "fake"]);
    assert!(
        stderr.contains("message: \"the ResourceName \\\"fake\\\" is invalid\""),
        "{stderr}"
    );
    let stderr = refused(&["--resource", "kubernetes.io/fake"]);
    assert!(
        stderr.contains("the ResourceName \\\"kubernetes.io/fake\\\" is invalid"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_uses_the_preferred_choice_and_pre_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("prestart.log");
    let m = manager(dir.path(), Duration::from_secs(300));
    let server = m.start().unwrap();
    let _plugin = Plugin::spawn(
        dir.path(),
        &[
            "--devices",
            "4",
            "--preferred-allocation",
            "--pre-start-required",
            "--pre-start-log",
            log.to_str().unwrap(),
        ],
    );
    assert!(
        m.wait_until(WAIT, |m| counts(m, RESOURCE) == (Some(4), Some(4)))
            .await
    );

    // The plugin prefers the highest-numbered devices.
    let a = m.allocate("pod-uid", "app", RESOURCE, 2).await.unwrap();
    assert_eq!(a.device_ids, ["fake-2", "fake-3"]);
    assert_eq!(a.response.envs["FAKE_DEVICES"], "fake-2,fake-3");
    // Asking again returns the same allocation without a second Allocate.
    assert_eq!(m.allocate("pod-uid", "app", RESOURCE, 2).await.unwrap(), a);
    assert!(
        !log.exists(),
        "PreStartContainer runs only before the container starts"
    );

    let opts = m.run_container_options("pod-uid", "app").await.unwrap();
    assert_eq!(opts.envs["FAKE_DEVICES"], "fake-2,fake-3");
    assert_eq!(
        opts.annotations["example.com/fake-devices"],
        "fake-2,fake-3"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "fake-2,fake-3\n");

    // The checkpoint carries the allocation with the protobuf-encoded response.
    let state = m.checkpoint_state();
    let entries = state.pod_device_entries.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].pod_uid, "pod-uid");
    assert_eq!(entries[0].resource_name, RESOURCE);
    assert_eq!(
        entries[0].device_ids.as_ref().unwrap()[&-1]
            .as_deref()
            .unwrap(),
        ["fake-2", "fake-3"]
    );

    let err = m
        .allocate("pod-uid", "app", "example.com/other", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::UnregisteredResource { .. }));
    assert_eq!(
        err.to_string(),
        "cannot allocate unregistered device example.com/other"
    );

    m.release_pod("pod-uid");
    assert!(m.container_allocations("pod-uid", "app").is_empty());
    server.stop().await.unwrap();
}
