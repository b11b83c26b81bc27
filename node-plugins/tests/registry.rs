//! The `plugins_registry` watcher with the example plugin in watcher mode as a separate
//! process, a CSI-type registration server, a plugin that never answers, and ignored files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use node_plugins::proto::pluginregistration::registration_server::{
    Registration, RegistrationServer,
};
use node_plugins::proto::pluginregistration::{
    InfoRequest, PluginInfo, RegistrationStatus, RegistrationStatusResponse,
};
use node_plugins::{DeviceManager, DeviceManagerOptions, PluginWatcher, RegistryOptions};
use tokio::sync::mpsc;

const RESOURCE: &str = "example.com/fake";
const WAIT: Duration = Duration::from_secs(20);

struct Plugin(Child);

impl Plugin {
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

fn spawn(registry: &Path, extra: &[&str]) -> Plugin {
    Plugin(
        Command::new(env!("CARGO_BIN_EXE_fake-device-plugin"))
            .arg("--registry-dir")
            .arg(registry)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn counts(m: &DeviceManager) -> (Option<i64>, Option<i64>) {
    let c = m.capacity();
    (
        c.capacity.get(RESOURCE).copied(),
        c.allocatable.get(RESOURCE).copied(),
    )
}

async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f()
}

/// A CSI driver's registration socket: answers GetInfo and reports the status it gets.
struct Csi(mpsc::UnboundedSender<RegistrationStatus>);

#[tonic::async_trait]
impl Registration for Csi {
    async fn get_info(
        &self,
        _: tonic::Request<InfoRequest>,
    ) -> Result<tonic::Response<PluginInfo>, tonic::Status> {
        Ok(tonic::Response::new(PluginInfo {
            r#type: "CSIPlugin".into(),
            name: "csi.example.com".into(),
            endpoint: "/var/lib/kubelet/plugins/csi.example.com/csi.sock".into(),
            supported_versions: vec!["1.0.0".into()],
        }))
    }

    async fn notify_registration_status(
        &self,
        request: tonic::Request<RegistrationStatus>,
    ) -> Result<tonic::Response<RegistrationStatusResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(RegistrationStatusResponse {}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_plugins_register_through_plugins_registry() {
    let root = tempfile::tempdir().unwrap();
    let devices = DeviceManager::new(DeviceManagerOptions::new(
        root.path().join("device-plugins"),
    ));
    let _server = devices.start().unwrap();
    let mut options = RegistryOptions::new(root.path());
    options.interval = Duration::from_millis(100);
    options.get_info_timeout = Duration::from_millis(300);
    let watcher = PluginWatcher::new(options, devices.clone());
    let task = watcher.start().unwrap();
    let registry = root.path().join("plugins_registry");
    assert!(root.path().join("device-plugins/DEPRECATION").is_file());

    // Ignored: a dot-named socket, a regular file. A socket that never answers only fails.
    let _hidden = std::os::unix::net::UnixListener::bind(registry.join(".hidden.sock")).unwrap();
    std::fs::write(registry.join("notes.sock"), "not a socket").unwrap();
    let _silent = std::os::unix::net::UnixListener::bind(registry.join("silent.sock")).unwrap();

    // The plugin serves in a subdirectory: the watch is recursive.
    let health = root.path().join("health");
    let sub = registry.join("vendor");
    let mut plugin = spawn(
        &sub,
        &["--devices", "3", "--health-file", health.to_str().unwrap()],
    );
    assert!(
        devices
            .wait_until(WAIT, |m| counts(m) == (Some(3), Some(3)))
            .await
    );
    let plugins = watcher.plugins();
    assert_eq!(plugins.len(), 1);
    assert_eq!(plugins[0].kind, "DevicePlugin");
    assert_eq!(plugins[0].name, RESOURCE);
    assert_eq!(plugins[0].versions, ["v1beta1"]);
    assert_eq!(plugins[0].endpoint, sub.join("fake.sock"));
    assert_eq!(devices.endpoint(RESOURCE).unwrap(), sub.join("fake.sock"));

    // The same health model as the kubelet.sock route.
    std::fs::write(&health, "fake-0\n").unwrap();
    assert!(
        devices
            .wait_until(WAIT, |m| counts(m) == (Some(3), Some(2)))
            .await
    );

    // The silent socket timed out on GetInfo without blocking the others.
    assert!(
        eventually(|| watcher
            .failures()
            .contains_key(&registry.join("silent.sock")))
        .await
    );
    let failures = watcher.failures();
    assert!(
        failures[&registry.join("silent.sock")].contains("timed out"),
        "{failures:?}"
    );
    assert_eq!(
        failures.len(),
        1,
        "dot-files and regular files are ignored: {failures:?}"
    );

    // A bad resource name is refused with the kubelet's validation message.
    let _bad = spawn(
        &registry,
        &["--resource", "fake", "--socket-name", "bad.sock"],
    );
    assert!(eventually(|| watcher.failures().contains_key(&registry.join("bad.sock"))).await);
    assert_eq!(
        watcher.failures()[&registry.join("bad.sock")],
        "RegisterPlugin error -- plugin validation failed with err: invalid name of device plugin socket: the ResourceName \"fake\" is invalid"
    );

    // A CSI driver is recorded with its name, endpoint and versions, and told it registered.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let csi_socket = registry.join("csi.example.com-reg.sock");
    let listener = tokio::net::UnixListener::bind(&csi_socket).unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RegistrationServer::new(Csi(tx)))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    let status = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(status.plugin_registered, "{status:?}");
    assert!(eventually(|| watcher.plugins().iter().any(|p| p.kind == "CSIPlugin")).await);
    let csi = watcher
        .plugins()
        .into_iter()
        .find(|p| p.kind == "CSIPlugin")
        .unwrap();
    assert_eq!(csi.name, "csi.example.com");
    assert_eq!(
        csi.endpoint,
        Path::new("/var/lib/kubelet/plugins/csi.example.com/csi.sock")
    );
    assert_eq!(csi.versions, ["1.0.0"]);

    // Killing the plugin: stream ends, devices unhealthy; removing its socket deregisters.
    plugin.kill();
    assert!(
        devices
            .wait_until(WAIT, |m| counts(m) == (Some(3), Some(0)))
            .await
    );
    std::fs::remove_file(sub.join("fake.sock")).unwrap();
    assert!(eventually(|| watcher.plugins().iter().all(|p| p.kind != "DevicePlugin")).await);

    // Started again (a re-created socket): registered again.
    std::fs::remove_file(&health).unwrap();
    let _plugin = spawn(&sub, &["--devices", "3"]);
    assert!(
        devices
            .wait_until(WAIT, |m| counts(m) == (Some(3), Some(3)))
            .await
    );
    task.abort();
}
