//! The device manager against plugins that race, hang, never answer or lie: the example plugin
//! (`fake-device-plugin`) runs as separate processes with its misbehaviour flags, over real
//! Unix sockets in temporary directories. Deadlines are shortened through
//! `DeviceManagerOptions`; every wait is for a condition, with a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use node_plugins::fake_plugin::BadAllocate;
use node_plugins::proto::deviceplugin::RegisterRequest;
use node_plugins::proto::deviceplugin::registration_client::RegistrationClient;
use node_plugins::{DeviceManager, DeviceManagerOptions, PluginError};

const WAIT: Duration = Duration::from_secs(20);

/// A plugin process, killed when dropped.
struct Plugin(Child);

impl Plugin {
    fn spawn(dir: &Path, resource: &str, socket: &str, extra: &[&str]) -> Plugin {
        let child = Command::new(env!("CARGO_BIN_EXE_fake-device-plugin"))
            .arg("--kubelet-socket")
            .arg(dir.join("kubelet.sock"))
            .args(["--resource", resource, "--socket-name", socket])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Plugin(child)
    }

    /// Waits for the process to exit (at most `limit`) and returns its status and stderr.
    fn wait_exit(mut self, limit: Duration) -> Option<(std::process::ExitStatus, String)> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut stderr = String::new();
                use std::io::Read;
                self.0
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                return Some((status, stderr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn counts(m: &DeviceManager, resource: &str) -> (Option<i64>, Option<i64>) {
    let c = m.capacity();
    (
        c.capacity.get(resource).copied(),
        c.allocatable.get(resource).copied(),
    )
}

async fn wait_counts(m: &DeviceManager, resource: &str, want: (i64, i64)) {
    let want = (Some(want.0), Some(want.1));
    assert!(
        m.wait_until(WAIT, |m| counts(m, resource) == want).await,
        "{resource}: {:?}, want {want:?}",
        counts(m, resource)
    );
}

/// 8 pods × 1 device against 4 devices, all at once, with `Allocate` slowed down so the calls
/// overlap: exactly 4 get a device, all different, and 4 get the kubelet's "unavailable"
/// error. Run for a plugin without and one with `GetPreferredAllocation`, several rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_allocations_never_share_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let m = DeviceManager::new(DeviceManagerOptions::new(dir.path()));
    let server = m.start().unwrap();
    let plain = "example.com/plain";
    let preferring = "example.com/preferring";
    let _a = Plugin::spawn(
        dir.path(),
        plain,
        "plain.sock",
        &["--devices", "4", "--allocate-delay-ms", "300"],
    );
    let _b = Plugin::spawn(
        dir.path(),
        preferring,
        "preferring.sock",
        &[
            "--devices",
            "4",
            "--allocate-delay-ms",
            "300",
            "--preferred-allocation",
            "--preferred-delay-ms",
            "20",
        ],
    );
    wait_counts(&m, plain, (4, 4)).await;
    wait_counts(&m, preferring, (4, 4)).await;

    for round in 0..5 {
        for resource in [plain, preferring] {
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let m = m.clone();
                    let pod = format!("round{round}-pod{i}");
                    tokio::spawn(async move { m.allocate(&pod, "app", resource, 1).await })
                })
                .collect();
            let mut granted = Vec::new();
            let mut refused = 0;
            for task in tasks {
                match task.await.unwrap() {
                    Ok(a) => {
                        assert_eq!(a.device_ids.len(), 1);
                        granted.push(a.device_ids[0].clone());
                    }
                    Err(PluginError::DevicesUnavailable {
                        requested: 1,
                        available: 0,
                        ..
                    }) => refused += 1,
                    Err(other) => panic!("round {round} {resource}: unexpected error {other}"),
                }
            }
            let distinct: BTreeSet<&String> = granted.iter().collect();
            assert_eq!(
                granted.len(),
                4,
                "round {round} {resource}: granted {granted:?}"
            );
            assert_eq!(
                distinct.len(),
                4,
                "round {round} {resource}: a device was given twice: {granted:?}"
            );
            assert_eq!(refused, 4);
            assert!(m.reserved_devices(resource).is_empty());
            // The checkpoint records each device once.
            let entries = m.checkpoint_state().pod_device_entries.unwrap();
            let recorded: Vec<&String> = entries
                .iter()
                .filter(|e| e.resource_name == resource)
                .flat_map(|e| e.device_ids.as_ref().unwrap().values())
                .flat_map(|ids| ids.as_ref().unwrap())
                .collect();
            assert_eq!(recorded.len(), 4);
            for i in 0..8 {
                m.release_pod(&format!("round{round}-pod{i}"));
            }
        }
    }
    server.stop().await.unwrap();
}

/// A plugin that never answers `Allocate` costs that allocation the deadline, and only that:
/// meanwhile another resource allocates and a third plugin registers; after the timeout the
/// device is free again. A dropped allocation future releases its devices too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_plugin_costs_only_its_own_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let hang = dir.path().join("hang");
    std::fs::write(&hang, "").unwrap();
    let deadline = Duration::from_secs(5);
    let mut options = DeviceManagerOptions::new(dir.path());
    options.allocate_timeout = deadline;
    let m = DeviceManager::new(options);
    let server = m.start().unwrap();
    let hanging = "example.com/hanging";
    let fast = "example.com/fast";
    let third = "example.com/third";
    let _h = Plugin::spawn(
        dir.path(),
        hanging,
        "hanging.sock",
        &[
            "--devices",
            "1",
            "--allocate-hang-file",
            hang.to_str().unwrap(),
        ],
    );
    let _f = Plugin::spawn(dir.path(), fast, "fast.sock", &["--devices", "2"]);
    wait_counts(&m, hanging, (1, 1)).await;
    wait_counts(&m, fast, (2, 2)).await;

    let started = Instant::now();
    let stuck = {
        let m = m.clone();
        tokio::spawn(async move {
            let result = m.allocate("pod-h", "app", hanging, 1).await;
            (result, started.elapsed())
        })
    };
    // The device is reserved while Allocate is outstanding.
    assert!(
        m.wait_until(WAIT, |m| m.reserved_devices(hanging) == ["fake-0"])
            .await
    );
    let err = m.allocate("pod-x", "app", hanging, 1).await.unwrap_err();
    assert!(
        matches!(err, PluginError::DevicesUnavailable { available: 0, .. }),
        "{err}"
    );

    // Another resource allocates normally ...
    let a = m.allocate("pod-f", "app", fast, 1).await.unwrap();
    assert_eq!(a.device_ids, ["fake-0"]);
    assert!(
        !stuck.is_finished(),
        "the fast allocation waited for the hang"
    );
    // ... and a third plugin registers.
    let _t = Plugin::spawn(dir.path(), third, "third.sock", &["--devices", "3"]);
    wait_counts(&m, third, (3, 3)).await;
    assert!(m.is_connected(third));
    assert!(!stuck.is_finished(), "the registration waited for the hang");

    let (result, elapsed) = stuck.await.unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::Timeout {
                rpc: "Allocate",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "Allocate on example.com/hanging timed out after 5s"
    );
    assert!(elapsed >= deadline, "{elapsed:?}");
    assert!(elapsed < deadline + Duration::from_secs(3), "{elapsed:?}");
    assert!(m.reserved_devices(hanging).is_empty());
    assert!(m.container_allocations("pod-h", "app").is_empty());
    assert_eq!(counts(&m, hanging), (Some(1), Some(1)));

    // The plugin recovers: the released device is allocatable again.
    std::fs::remove_file(&hang).unwrap();
    let b = m.allocate("pod-h2", "app", hanging, 1).await.unwrap();
    assert_eq!(b.device_ids, ["fake-0"]);
    m.release_pod("pod-h2");

    // A caller that gives up (its future dropped) releases the devices as well.
    std::fs::write(&hang, "").unwrap();
    let abandoned = {
        let m = m.clone();
        tokio::spawn(async move { m.allocate("pod-gone", "app", hanging, 1).await })
    };
    assert!(
        m.wait_until(WAIT, |m| m.reserved_devices(hanging) == ["fake-0"])
            .await
    );
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());
    assert!(
        m.wait_until(WAIT, |m| m.reserved_devices(hanging).is_empty())
            .await
    );
    std::fs::remove_file(&hang).unwrap();
    let c = m.allocate("pod-h3", "app", hanging, 1).await.unwrap();
    assert_eq!(c.device_ids, ["fake-0"]);

    // Releasing a pod whose Allocate is outstanding cancels that allocation.
    m.release_pod("pod-h3");
    std::fs::write(&hang, "").unwrap();
    let released = {
        let m = m.clone();
        tokio::spawn(async move { m.allocate("pod-r", "app", hanging, 1).await })
    };
    assert!(
        m.wait_until(WAIT, |m| m.reserved_devices(hanging) == ["fake-0"])
            .await
    );
    m.release_pod("pod-r");
    assert!(m.reserved_devices(hanging).is_empty());
    std::fs::remove_file(&hang).unwrap();
    let err = released.await.unwrap().unwrap_err();
    assert!(
        matches!(err, PluginError::AllocationCancelled { .. }),
        "{err}"
    );
    assert!(m.container_allocations("pod-r", "app").is_empty());
    server.stop().await.unwrap();
}

/// `Register` for a plugin whose socket accepts but never answers comes back with an error
/// after `options_timeout`, and another plugin registers in the meantime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_answers_in_bounds_when_the_plugin_never_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = DeviceManagerOptions::new(dir.path());
    options.options_timeout = Duration::from_secs(4);
    let m = DeviceManager::new(options);
    let server = m.start().unwrap();
    let started = Instant::now();
    let mut silent = Plugin::spawn(
        dir.path(),
        "example.com/silent",
        "silent.sock",
        &["--silent"],
    );
    let _normal = Plugin::spawn(dir.path(), "example.com/normal", "normal.sock", &[]);
    wait_counts(&m, "example.com/normal", (2, 2)).await;
    assert!(
        silent.running(),
        "the normal registration waited for the silent one"
    );

    let (status, stderr) = tokio::task::spawn_blocking(move || {
        silent.wait_exit(Duration::from_secs(4) + Duration::from_secs(6))
    })
    .await
    .unwrap()
    .expect("Register did not answer in time");
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("GetDevicePluginOptions on example.com/silent timed out after 4s"),
        "{stderr}"
    );
    assert!(elapsed >= Duration::from_secs(4), "{elapsed:?}");
    assert!(!m.is_connected("example.com/silent"));
    assert!(!m.capacity().capacity.contains_key("example.com/silent"));
    server.stop().await.unwrap();
}

async fn register(socket: &Path, endpoint: &str) -> Result<(), tonic::Status> {
    let channel = node_plugins::connect(socket, Duration::from_secs(5))
        .await
        .unwrap();
    RegistrationClient::new(channel)
        .register(RegisterRequest {
            version: "v1beta1".to_owned(),
            endpoint: endpoint.to_owned(),
            resource_name: "example.com/odd".to_owned(),
            options: None,
        })
        .await
        .map(drop)
}

/// Endpoints that are not sockets (a FIFO, a regular file, a directory) are refused at once:
/// nothing is opened, so nothing blocks; our own socket and paths outside the directory are
/// refused before any dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_that_are_not_plugin_sockets_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = DeviceManager::new(DeviceManagerOptions::new(dir.path()));
    let server = m.start().unwrap();
    let socket = m.socket_path();
    let fifo = dir.path().join("fifo.sock");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    std::fs::write(dir.path().join("file.sock"), "").unwrap();
    std::fs::create_dir(dir.path().join("dir.sock")).unwrap();
    for (endpoint, want) in [
        ("fifo.sock", "is not a socket but a FIFO"),
        ("file.sock", "is not a socket but a regular file"),
        ("dir.sock", "is not a socket but a directory"),
        ("kubelet.sock", "invalid endpoint \"kubelet.sock\""),
        ("../x.sock", "invalid endpoint \"../x.sock\""),
        ("a\0b.sock", "invalid endpoint \"a\\0b.sock\""),
    ] {
        let started = Instant::now();
        let status = register(&socket, endpoint).await.unwrap_err();
        // Far below the 10 s dial timeout: no retrying, no blocking open.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{endpoint}: {:?}",
            started.elapsed()
        );
        assert!(
            status.message().contains(want),
            "{endpoint}: {}",
            status.message()
        );
    }
    assert!(m.capacity().capacity.is_empty());
    server.stop().await.unwrap();
}

/// A plugin listing malformed devices: bad IDs are dropped, a duplicate counts once (and is
/// unhealthy when one copy says so), out-of-range NUMA nodes are dropped; an ID with `/` is
/// kept and reaches the checkpoint as data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_device_lists_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let m = DeviceManager::new(DeviceManagerOptions::new(dir.path()));
    let server = m.start().unwrap();
    let resource = "example.com/hostile";
    let _p = Plugin::spawn(dir.path(), resource, "hostile.sock", &["--hostile-devices"]);
    wait_counts(&m, resource, (4, 3)).await;
    let devices = m.devices(resource);
    let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["MIG-GPU-fake/1/0", "dup", "ok-0", "ok-1"]);
    let by_id = |id: &str| devices.iter().find(|d| d.id == id).unwrap().clone();
    assert!(!by_id("dup").healthy);
    assert_eq!(by_id("ok-0").numa_nodes, [0]);
    assert_eq!(by_id("ok-1").numa_nodes, [1]);

    let a = m.allocate("pod", "app", resource, 3).await.unwrap();
    assert_eq!(a.device_ids, ["MIG-GPU-fake/1/0", "ok-0", "ok-1"]);
    assert_eq!(
        a.response.envs["FAKE_DEVICES"],
        "MIG-GPU-fake/1/0,ok-0,ok-1"
    );
    let err = m.allocate("pod2", "app", resource, 1).await.unwrap_err();
    assert!(
        matches!(err, PluginError::DevicesUnavailable { available: 0, .. }),
        "{err}"
    );
    // The checkpoint verifies with the kubelet's checksum and holds the IDs as data.
    let state: node_state::DeviceManagerState = node_state::store::FileStore::open(dir.path())
        .unwrap()
        .load("kubelet_internal_checkpoint")
        .unwrap();
    let registered = state.registered_devices.unwrap()[resource].clone().unwrap();
    assert_eq!(registered, ["MIG-GPU-fake/1/0", "ok-0", "ok-1"]);
    let entry = &state.pod_device_entries.unwrap()[0];
    let mut recorded: Vec<String> = entry
        .device_ids
        .as_ref()
        .unwrap()
        .values()
        .flat_map(|ids| ids.clone().unwrap())
        .collect();
    recorded.sort();
    assert_eq!(recorded, ["MIG-GPU-fake/1/0", "ok-0", "ok-1"]);
    // Only the socket dir's own files exist: no ID became a path.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "hostile.sock",
            "kubelet.sock",
            "kubelet_internal_checkpoint"
        ]
    );
    server.stop().await.unwrap();
}

/// A list over the limit is refused (devices unhealthy, capacity kept) and an acceptable list
/// afterwards is taken again; a message over the 4 MiB limit ends the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_device_lists_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    std::fs::write(&count, "3").unwrap();
    let m = DeviceManager::new(DeviceManagerOptions::new(dir.path()));
    let server = m.start().unwrap();
    let resource = "example.com/many";
    let _p = Plugin::spawn(
        dir.path(),
        resource,
        "many.sock",
        &["--devices-file", count.to_str().unwrap()],
    );
    wait_counts(&m, resource, (3, 3)).await;

    let over = node_plugins::limits::MAX_DEVICES_PER_RESOURCE + 1;
    std::fs::write(&count, over.to_string()).unwrap();
    wait_counts(&m, resource, (3, 0)).await;
    assert!(m.is_connected(resource));
    assert_eq!(m.devices(resource).len(), 3);

    std::fs::write(&count, "2").unwrap();
    wait_counts(&m, resource, (2, 2)).await;

    // About 24 bytes a device: 200000 devices are over 4 MiB.
    std::fs::write(&count, "200000").unwrap();
    assert!(m.wait_until(WAIT, |m| !m.is_connected(resource)).await);
    assert_eq!(counts(&m, resource), (Some(2), Some(0)));
    server.stop().await.unwrap();
}

/// Every malformed `Allocate` answer is refused with the field named, and its devices are
/// released: nothing reaches the allocations or the checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_allocate_answers_are_refused_and_release_devices() {
    let dir = tempfile::tempdir().unwrap();
    let m = DeviceManager::new(DeviceManagerOptions::new(dir.path()));
    let server = m.start().unwrap();
    let mut plugins = Vec::new();
    for (kind, _) in BadAllocate::ALL {
        plugins.push(Plugin::spawn(
            dir.path(),
            &format!("example.com/bad-{kind}"),
            &format!("bad-{kind}.sock"),
            &["--devices", "1", "--bad-allocate", kind],
        ));
    }
    for (kind, _) in BadAllocate::ALL {
        wait_counts(&m, &format!("example.com/bad-{kind}"), (1, 1)).await;
    }
    let plugin = |kind: &str| -> PathBuf { dir.path().join(format!("bad-{kind}.sock")) };
    for (kind, want) in [
        (
            "zero",
            format!(
                "no containers return in allocation response from {} for example.com/bad-zero",
                plugin("zero").display()
            ),
        ),
        (
            "two",
            format!(
                "Allocate response from {} for example.com/bad-two has 2 container responses, expected 1",
                plugin("two").display()
            ),
        ),
        (
            "relative-mount",
            "mounts[0].host_path \"relative/dir\": expected an absolute path".to_owned(),
        ),
        ("nul-env", "envs[BAD] \"a\\0b\": contains NUL".to_owned()),
        (
            "bad-permissions",
            "devices[0].permissions \"rwx\": expected a combination of r, w and m".to_owned(),
        ),
        (
            "too-many-devices",
            "devices \"2000\": more than 1024 entries".to_owned(),
        ),
        (
            "bad-cdi",
            "cdi_devices[0].name \"example.com/fake\": expected vendor/class=name".to_owned(),
        ),
        ("huge-env", "envs[HUGE]".to_owned()),
    ] {
        let resource = format!("example.com/bad-{kind}");
        let err = m.allocate("pod", "app", &resource, 1).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&want), "{kind}: {message}");
        if !matches!(kind, "zero" | "two") {
            assert!(
                message.starts_with(&format!(
                    "Allocate response from {} for {resource} refused: ",
                    plugin(kind).display()
                )),
                "{kind}: {message}"
            );
        }
        assert!(m.reserved_devices(&resource).is_empty(), "{kind}");
        // The device is free again (the plugin would refuse it again, but it is offered).
        assert_eq!(counts(&m, &resource), (Some(1), Some(1)));
    }
    assert!(m.container_allocations("pod", "app").is_empty());
    assert!(m.checkpoint_state().pod_device_entries.unwrap().is_empty());
    server.stop().await.unwrap();
}

/// An allocation restored from the checkpoint is checked again on its first reuse, with the
/// kubelet's errors: no healthy device while the plugin is away, then its own device
/// unhealthy, then fine; a changed device count is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_allocations_are_checked_on_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let health = dir.path().join("health");
    let resource = "example.com/fake";
    let args = ["--devices", "3", "--health-file", health.to_str().unwrap()];
    let first = DeviceManager::new(DeviceManagerOptions::new(dir.path()));
    let server = first.start().unwrap();
    let plugin = Plugin::spawn(dir.path(), resource, "fake.sock", &args);
    wait_counts(&first, resource, (3, 3)).await;
    let a = first.allocate("pod-a", "app", resource, 2).await.unwrap();
    assert_eq!(a.device_ids, ["fake-0", "fake-1"]);
    // Reused as is while this process made it.
    assert_eq!(
        first.allocate("pod-a", "app", resource, 2).await.unwrap(),
        a
    );
    server.stop().await.unwrap();
    first.shutdown();
    drop(first);
    // The plugin goes too (a node reboot): nothing re-registers until it is started again.
    drop(plugin);

    let second = DeviceManager::new(DeviceManagerOptions::new(dir.path()));
    let server = second.start().unwrap();
    let err = second
        .allocate("pod-a", "app", resource, 2)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no healthy devices present; cannot allocate unhealthy devices example.com/fake"
    );
    std::fs::write(&health, "fake-1\n").unwrap();
    let _plugin = Plugin::spawn(dir.path(), resource, "fake.sock", &args);
    wait_counts(&second, resource, (3, 2)).await;
    let err = second
        .allocate("pod-a", "app", resource, 2)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "previously allocated devices are no longer healthy; cannot allocate unhealthy devices example.com/fake"
    );
    std::fs::remove_file(&health).unwrap();
    wait_counts(&second, resource, (3, 3)).await;
    assert_eq!(
        second.allocate("pod-a", "app", resource, 2).await.unwrap(),
        a
    );
    let err = second
        .allocate("pod-a", "app", resource, 3)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "pod \"pod-a\" container \"app\" changed request for resource \"example.com/fake\" from 2 to 3"
    );
    // The restored devices are still held.
    let b = second.allocate("pod-b", "app", resource, 1).await.unwrap();
    assert_eq!(b.device_ids, ["fake-2"]);
    server.stop().await.unwrap();
}

/// A plugin that takes over a resource but sends no list within `list_and_watch_timeout`:
/// the devices carried over from its predecessor turn unhealthy at the deadline, and its list
/// is still taken when it finally comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_slow_to_list_loses_carried_over_devices_until_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = DeviceManagerOptions::new(dir.path());
    options.list_and_watch_timeout = Duration::from_secs(2);
    let m = DeviceManager::new(options);
    let server = m.start().unwrap();
    let resource = "example.com/fake";
    let _old = Plugin::spawn(dir.path(), resource, "old.sock", &["--devices", "2"]);
    wait_counts(&m, resource, (2, 2)).await;
    let _new = Plugin::spawn(
        dir.path(),
        resource,
        "new.sock",
        &["--devices", "3", "--list-delay-ms", "6000"],
    );
    let new_socket = dir.path().join("new.sock");
    assert!(
        m.wait_until(WAIT, |m| m.endpoint(resource).as_ref() == Some(&new_socket))
            .await
    );
    let switched = Instant::now();
    wait_counts(&m, resource, (2, 0)).await;
    assert!(m.is_connected(resource), "the stream keeps waiting");
    let late = switched.elapsed();
    assert!(late < Duration::from_secs(5), "{late:?}");
    wait_counts(&m, resource, (3, 3)).await;
    assert!(switched.elapsed() >= Duration::from_secs(3));
    server.stop().await.unwrap();
}

/// `GetPreferredAllocation` that never comes back in time fails the allocation with a
/// timeout; a second allocation queued behind it is bounded too; nothing stays reserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_preferred_allocation_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let wait = Duration::from_secs(1);
    let mut options = DeviceManagerOptions::new(dir.path());
    options.preferred_allocation_timeout = wait;
    let m = DeviceManager::new(options);
    let server = m.start().unwrap();
    let resource = "example.com/slow";
    let _p = Plugin::spawn(
        dir.path(),
        resource,
        "slow.sock",
        &[
            "--devices",
            "2",
            "--preferred-allocation",
            "--preferred-delay-ms",
            "30000",
        ],
    );
    wait_counts(&m, resource, (2, 2)).await;
    let started = Instant::now();
    let (a, b) = tokio::join!(
        m.allocate("pod-a", "app", resource, 1),
        m.allocate("pod-b", "app", resource, 1)
    );
    let elapsed = started.elapsed();
    for err in [a.unwrap_err(), b.unwrap_err()] {
        assert!(matches!(err, PluginError::Timeout { .. }), "{err}");
    }
    // At most the wait for the turn plus the call, with a margin.
    assert!(elapsed < 2 * wait + Duration::from_secs(3), "{elapsed:?}");
    assert!(m.reserved_devices(resource).is_empty());
    assert_eq!(counts(&m, resource), (Some(2), Some(2)));
    server.stop().await.unwrap();
}
