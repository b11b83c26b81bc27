//! The test harness's convention (feature `test-support`), shared by every crate whose tests
//! need a real container runtime: `scripts/test.sh` starts a private containerd and exports
//! `NODE_TEST_CRI_ENDPOINT` and `NODE_TEST_IMAGE`. For tests that need no real runtime,
//! [`FakeCri`] is an in-memory CRI server the real client talks to over a Unix socket.

mod fake_cri;

pub use fake_cri::{CriCall, FakeContainer, FakeCri, FakeSandbox};

/// Runs a sandbox `ns/p` (UID `uid`) with one running container `app` whose CRI log path is
/// `log_path`, through `cri` (a [`FakeCri`] or a real runtime); returns (sandbox ID,
/// container ID).
pub async fn run_logging_container(
    cri: &crate::CriClient,
    log_path: &std::path::Path,
) -> crate::Result<(String, String)> {
    use crate::cri;
    let sandbox_config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "p".into(),
            uid: "uid".into(),
            namespace: "ns".into(),
            attempt: 0,
        }),
        ..cri::PodSandboxConfig::default()
    };
    let sandbox = cri.run_pod_sandbox(sandbox_config.clone()).await?;
    let config = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: "app".into(),
            attempt: 0,
        }),
        log_path: log_path.display().to_string(),
        ..cri::ContainerConfig::default()
    };
    let id = cri
        .create_container(&sandbox, config, sandbox_config)
        .await?;
    cri.start_container(&id).await?;
    Ok((sandbox, id))
}

/// The harness's CRI endpoint. Without `NODE_TEST_CRI_ENDPOINT` it prints a `SKIP <test>` line
/// and returns `None`; with `CI` set, a missing endpoint fails the test instead, so CI can never
/// pass by skipping.
#[allow(clippy::panic)] // failing the calling test is the point under CI
pub fn cri_endpoint(test: &str) -> Option<String> {
    match std::env::var("NODE_TEST_CRI_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{test}: NODE_TEST_CRI_ENDPOINT is not set (CI must run scripts/test.sh)")
        }
        _ => {
            eprintln!("SKIP {test}: NODE_TEST_CRI_ENDPOINT is not set (run scripts/test.sh)");
            None
        }
    }
}

/// The harness containerd's pod network (`NODE_TEST_POD_SUBNET`, set by `scripts/containerd.sh
/// env` when the CNI plugins are installed): `None` (the test skips) when absent outside CI; in
/// CI (`CI` set) a missing pod network is a failure.
#[allow(clippy::panic)] // failing the calling test is the point under CI
pub fn pod_subnet(test: &str) -> Option<String> {
    match std::env::var("NODE_TEST_POD_SUBNET") {
        Ok(s) if !s.is_empty() => Some(s),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "{test}: NODE_TEST_POD_SUBNET is not set (scripts/containerd.sh installs the CNI plugins and writes the pod network)"
            )
        }
        _ => {
            eprintln!(
                "SKIP {test}: NODE_TEST_POD_SUBNET is not set (no pod network on this containerd)"
            );
            None
        }
    }
}

/// The local image the harness imports (`NODE_TEST_IMAGE`, default
/// `docker.io/library/busybox:local`).
pub fn test_image() -> String {
    std::env::var("NODE_TEST_IMAGE")
        .unwrap_or_else(|_| "docker.io/library/busybox:local".to_owned())
}
