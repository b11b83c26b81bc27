//! Whole-system figures against a real containerd (needs `NODE_TEST_CRI_ENDPOINT`, as set by
//! `scripts/test.sh` or `scripts/containerd.sh env DIR`):
//! 1. time from a manifest written to its container running, median over 20 pods, against the
//!    same CRI calls issued directly (ImageStatus, RunPodSandbox, CreateContainer,
//!    StartContainer, ContainerStatus) in the same run;
//! 2. CPU used by the sync loop (1 s period) with 50 running pods and nothing to do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use node_runtime::{
    ClientOptions, CriClient, NodePaths, PodManager, PodPhase, StaticPodSource, SyncOptions, cri,
};

fn cpu_time() -> Duration {
    // utime + stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn manifest(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: app\n    image: {image}\n    imagePullPolicy: IfNotPresent\n    command: [\"/bin/sh\", \"-c\", \"sleep 3600\"]\n"
    )
}

async fn direct_pod(
    client: &CriClient,
    i: usize,
    image: &str,
    logs: &std::path::Path,
) -> (Duration, String) {
    let start = Instant::now();
    let uid = format!("direct-{i}");
    let log_dir = logs.join(&uid);
    std::fs::create_dir_all(&log_dir).unwrap();
    let labels = std::collections::HashMap::from([("bench".to_owned(), "direct".to_owned())]);
    let sandbox = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: uid.clone(),
            uid: uid.clone(),
            namespace: "bench".into(),
            attempt: 0,
        }),
        log_directory: log_dir.display().to_string(),
        labels: labels.clone(),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(client.image_present(image).await.unwrap());
    let sid = client.run_pod_sandbox(sandbox.clone()).await.unwrap();
    let container = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: "app".into(),
            attempt: 0,
        }),
        image: Some(node_runtime::image_spec(image)),
        command: vec!["/bin/sh".into(), "-c".into(), "sleep 3600".into()],
        log_path: "app/0.log".into(),
        labels,
        linux: Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let cid = client
        .create_container(&sid, container, sandbox)
        .await
        .unwrap();
    client.start_container(&cid).await.unwrap();
    let status = client.container_status(&cid).await.unwrap();
    assert_eq!(status.state, cri::ContainerState::ContainerRunning as i32);
    (start.elapsed(), sid)
}

#[tokio::main]
async fn main() {
    let Ok(endpoint) = std::env::var("NODE_TEST_CRI_ENDPOINT") else {
        println!(
            "SKIP pod_start bench: NODE_TEST_CRI_ENDPOINT is not set (see scripts/containerd.sh)"
        );
        return;
    };
    let image = std::env::var("NODE_TEST_IMAGE")
        .unwrap_or_else(|_| "docker.io/library/busybox:local".into());
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let paths = NodePaths {
        root_dir: dir.path().join("root"),
        pod_logs_dir: dir.path().join("logs"),
    };
    let client = CriClient::connect(&endpoint, &ClientOptions::default())
        .await
        .unwrap();
    let mut manager = PodManager::new(
        client.clone(),
        StaticPodSource::new(&manifests, "bench-node"),
        SyncOptions::new("bench-node", paths.clone()),
    );
    const PODS: usize = 20;

    // 1a. Through the agent: write a manifest, sync until its container runs.
    let mut agent = Vec::new();
    for i in 0..PODS {
        let start = Instant::now();
        std::fs::write(
            manifests.join(format!("p{i}.yaml")),
            manifest(&format!("p{i}"), &image),
        )
        .unwrap();
        let name = format!("p{i}-bench-node");
        loop {
            manager.sync_once().await;
            if manager
                .registry()
                .get("default", &name)
                .is_some_and(|p| p.phase == PodPhase::Running)
            {
                break;
            }
        }
        agent.push(start.elapsed());
    }
    // 1b. The same CRI calls, issued directly.
    let mut direct = Vec::new();
    let mut direct_sandboxes = Vec::new();
    for i in 0..PODS {
        let (t, sid) = direct_pod(&client, i, &image, &paths.pod_logs_dir).await;
        direct.push(t);
        direct_sandboxes.push(sid);
    }
    let (ma, md) = (median(agent), median(direct));
    println!(
        "manifest written -> container running, median of {PODS}: agent {ma:?}, direct CRI calls {md:?}, ratio {:.2}",
        ma.as_secs_f64() / md.as_secs_f64()
    );
    for sid in direct_sandboxes {
        client.stop_pod_sandbox(&sid).await.unwrap();
        client.remove_pod_sandbox(&sid).await.unwrap();
    }

    // 2. 50 running pods, the loop idle for 20 s at its 1 s period.
    for i in PODS..50 {
        std::fs::write(
            manifests.join(format!("p{i}.yaml")),
            manifest(&format!("p{i}"), &image),
        )
        .unwrap();
    }
    while manager
        .registry()
        .list_active()
        .iter()
        .filter(|p| p.phase == PodPhase::Running)
        .count()
        < 50
    {
        manager.sync_once().await;
    }
    let mut passes = Vec::new();
    let cpu_passes = cpu_time();
    for _ in 0..20 {
        let t = Instant::now();
        manager.sync_once().await;
        passes.push(t.elapsed());
    }
    let cpu_passes = cpu_time() - cpu_passes;
    println!(
        "one idle pass over 50 running pods: median wall {:?}, CPU {:?} per pass",
        median(passes),
        cpu_passes / 20
    );
    let base = cpu_time();
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!(
        "baseline: process idle without the loop: {:?} CPU over 5 s",
        cpu_time() - base
    );

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let cpu_before = cpu_time();
    let wall = Instant::now();
    let handle = tokio::spawn(manager.run(async move {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_secs(20)).await;
    let _ = tx.send(());
    let mut manager = handle.await.unwrap();
    let cpu = cpu_time() - cpu_before;
    let elapsed = wall.elapsed();
    println!(
        "sync loop with 50 running pods, idle: {cpu:?} CPU over {elapsed:?} = {:.2}% of one core ({:.1} ms CPU per pass)",
        100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1000.0 / elapsed.as_secs_f64()
    );
    manager.remove_all().await.unwrap();
}
