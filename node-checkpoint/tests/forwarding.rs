//! `CriTestServer::start_forwarding` in front of the test harness's real containerd
//! (`NODE_TEST_CRI_ENDPOINT`, started by `scripts/test.sh`): runtime and image calls are
//! answered by containerd, errors keep containerd's code and message, and only
//! `CheckpointContainer` is answered by the test server. Without the variable the containerd
//! tests print a skip line; with `CI` set, its absence is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use node_checkpoint::test_support::{Behaviour, CriTestServer, SeenRequest};
use node_checkpoint::{InspectOptions, inspect_file};
use node_runtime::cri;
use node_runtime::cri::runtime_service_client::RuntimeServiceClient;
use node_runtime::test_support::{cri_endpoint, test_image};
use node_runtime::{ClientOptions, CriClient, RuntimeWatch, WatchState};
use tonic::transport::Channel;

async fn client(endpoint: &str) -> CriClient {
    CriClient::connect(endpoint, &ClientOptions::default())
        .await
        .unwrap()
}

/// A raw runtime stub, for calls `CriClient` does not wrap (filters, status codes).
async fn raw(endpoint: &str) -> RuntimeServiceClient<Channel> {
    client(endpoint).await.runtime()
}

/// A host-network sandbox config (no CNI here), logging under `log_dir`.
fn sandbox_config(name: &str, log_dir: &std::path::Path) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.to_owned(),
            uid: format!("uid-{name}"),
            namespace: "forwarding".to_owned(),
            attempt: 0,
        }),
        log_directory: log_dir.display().to_string(),
        labels: HashMap::from([("test".to_owned(), name.to_owned())]),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Node as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ipc: cri::NamespaceMode::Pod as i32,
                    target_id: String::new(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn sandbox_filter(id: &str) -> cri::ListPodSandboxRequest {
    cri::ListPodSandboxRequest {
        filter: Some(cri::PodSandboxFilter {
            id: id.to_owned(),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn version_status_and_images_come_from_containerd() {
    let Some(upstream) = cri_endpoint("version_status_and_images_come_from_containerd") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let proxy = CriTestServer::start_forwarding(dir.path(), &upstream)
        .await
        .unwrap();
    let direct = client(&upstream).await;
    let through = client(&proxy.endpoint()).await;

    // Version: containerd's own answer, not the test server's.
    assert_eq!(through.version().runtime_name, "containerd");
    assert_eq!(through.version(), direct.version());

    // Status: containerd's conditions.
    let conditions = through.status().await.unwrap();
    let ready = conditions
        .iter()
        .find(|c| c.r#type == "RuntimeReady")
        .expect("RuntimeReady condition from containerd");
    assert!(
        ready.status,
        "containerd reports RuntimeReady=false: {ready:?}"
    );

    // ImageService is forwarded too: the harness's image is there, an unknown one is not.
    assert!(through.image_present(&test_image()).await.unwrap());
    assert!(
        !through
            .image_present("docker.io/library/forwarding-test-absent:none")
            .await
            .unwrap()
    );

    // Nothing here was a checkpoint.
    assert!(proxy.seen().is_empty());
}

#[tokio::test]
async fn sandbox_lifecycle_goes_through_to_containerd() {
    let Some(upstream) = cri_endpoint("sandbox_lifecycle_goes_through_to_containerd") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let proxy = CriTestServer::start_forwarding(dir.path(), &upstream)
        .await
        .unwrap();
    let mut direct = raw(&upstream).await;
    let mut through = raw(&proxy.endpoint()).await;

    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let id = through
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(sandbox_config("fwd-sandbox", &logs)),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    assert!(!id.is_empty());

    // ListPodSandbox through the proxy and straight from containerd see the same sandbox.
    let listed = through
        .list_pod_sandbox(sandbox_filter(&id))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, id);
    assert_eq!(
        listed[0].metadata.as_ref().unwrap().name,
        "fwd-sandbox",
        "{listed:?}"
    );
    assert_eq!(listed[0].state, cri::PodSandboxState::SandboxReady as i32);
    let seen_directly = direct
        .list_pod_sandbox(sandbox_filter(&id))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(seen_directly, listed);

    // Stop and remove through the proxy; containerd no longer knows the sandbox.
    through
        .stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .unwrap();
    through
        .remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .unwrap();
    let gone = direct
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.clone(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone:?}");
    assert!(
        through
            .list_pod_sandbox(sandbox_filter(&id))
            .await
            .unwrap()
            .into_inner()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn upstream_errors_keep_containerds_code_and_message() {
    let Some(upstream) = cri_endpoint("upstream_errors_keep_containerds_code_and_message") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let proxy = CriTestServer::start_forwarding(dir.path(), &upstream)
        .await
        .unwrap();
    let mut direct = raw(&upstream).await;
    let mut through = raw(&proxy.endpoint()).await;

    let req = cri::ContainerStatusRequest {
        container_id: "forwarding-test-no-such-container".to_owned(),
        verbose: false,
    };
    let want = direct.container_status(req.clone()).await.unwrap_err();
    let got = through.container_status(req).await.unwrap_err();
    assert_eq!(want.code(), tonic::Code::NotFound, "{want:?}");
    assert_eq!(got.code(), want.code());
    assert_eq!(got.message(), want.message());
    assert!(
        got.message().contains("forwarding-test-no-such-container"),
        "{got:?}"
    );

    // Through CriClient, the agent sees containerd's code as well.
    let err = client(&proxy.endpoint())
        .await
        .container_status("forwarding-test-no-such-container")
        .await
        .unwrap_err();
    assert_eq!(err.grpc_code(), Some(tonic::Code::NotFound), "{err}");
}

#[tokio::test]
async fn checkpoint_is_answered_by_the_test_server_not_containerd() {
    let Some(upstream) = cri_endpoint("checkpoint_is_answered_by_the_test_server_not_containerd")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let proxy = CriTestServer::start_forwarding(dir.path(), &upstream)
        .await
        .unwrap();
    let through = client(&proxy.endpoint()).await;

    // containerd 1.6 itself cannot checkpoint: that is why the proxy exists.
    let location = dir.path().join("direct.tar");
    let direct_err = client(&upstream)
        .await
        .checkpoint_container("ctr-1", &location.display().to_string(), 0)
        .await
        .unwrap_err();
    assert_eq!(
        direct_err.grpc_code(),
        Some(tonic::Code::Unimplemented),
        "{direct_err}"
    );
    assert!(!location.exists());

    // Through the proxy: the archive is written where asked and the request recorded.
    let location = dir.path().join("checkpoint.tar");
    through
        .checkpoint_container("ctr-1", &location.display().to_string(), 30)
        .await
        .unwrap();
    assert_eq!(
        proxy.seen(),
        vec![SeenRequest {
            container_id: "ctr-1".to_owned(),
            location: location.display().to_string(),
            timeout: 30,
        }]
    );
    assert_eq!(
        std::fs::metadata(&location).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let inspection = inspect_file(&location, &InspectOptions::default()).unwrap();
    assert_eq!(inspection.id.as_deref(), Some("ctr-1"));
    assert_eq!(inspection.container.as_deref(), Some("app"));
    assert!(inspection.memory_pages_size > 0, "{inspection:?}");

    // Behaviour is honoured: a delay, then the configured error.
    proxy.set_behaviour(Behaviour {
        delay: Duration::from_millis(200),
        error: Some((tonic::Code::ResourceExhausted, "disk full".to_owned())),
        memory_bytes: None,
    });
    let started = Instant::now();
    let err = through
        .checkpoint_container(
            "ctr-2",
            &dir.path().join("two.tar").display().to_string(),
            0,
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        err.grpc_code(),
        Some(tonic::Code::ResourceExhausted),
        "{err}"
    );
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(!dir.path().join("two.tar").exists());
    assert_eq!(proxy.seen().len(), 2);
    assert_eq!(proxy.in_flight(), 0);
}

#[tokio::test]
async fn unreachable_or_invalid_upstream_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();

    let err = CriTestServer::start_forwarding(dir.path(), "relative/containerd.sock")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string().contains("relative/containerd.sock"),
        "{err}"
    );

    // A socket that never appears: the server gives up after its wait, naming the socket.
    let missing = dir.path().join("no-runtime.sock");
    let started = Instant::now();
    let err = CriTestServer::start_forwarding(dir.path(), &format!("unix://{}", missing.display()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "gave up too early"
    );
    // Nothing was bound.
    assert!(!dir.path().join("cri.sock").exists());
}

#[tokio::test]
async fn plain_start_still_serves_no_runtime_calls() {
    let dir = tempfile::tempdir().unwrap();
    let server = CriTestServer::start(dir.path()).unwrap();
    let through = client(&server.endpoint()).await;
    assert_eq!(through.version().runtime_name, "cri-test-server");
    let mut raw = through.runtime();
    let err = raw
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");
    // No image service without an upstream.
    let err = through.image_present(&test_image()).await.unwrap_err();
    assert_eq!(err.grpc_code(), Some(tonic::Code::Unimplemented), "{err}");
}

#[tokio::test]
async fn a_runtime_without_containerd_events_is_reported_unsupported() {
    // The plain test server speaks the CRI only, like a runtime other than containerd: the
    // agent's sync loop then relists every second.
    let dir = tempfile::tempdir().unwrap();
    let server = CriTestServer::start(dir.path()).unwrap();
    let watch = RuntimeWatch::start(&client(&server.endpoint()).await);
    let start = Instant::now();
    loop {
        let state = watch.state();
        assert_ne!(state, WatchState::Live, "no events API, so never live");
        if state == WatchState::Unsupported {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still {state:?} after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(3), watch.changed())
            .await
            .is_err(),
        "an unsupported watch never wakes its owner"
    );
}
