//! Probes with the real `node-agent` and the test run's containerd (pod network through its
//! CNI plugins): a container whose readiness probe (httpGet to the pod IP) fails is Running but
//! not Ready, then Ready once it passes, and not Ready again when it fails; a container whose
//! liveness probe (exec through CRI ExecSync) fails is killed and restarted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{AgentSpec, OPEN_AUTH, remove_pods, running};

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(90);

fn container<'a>(pod: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

fn condition(pod: &serde_json::Value, kind: &str) -> String {
    pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| c["status"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_gates_ready_and_liveness_restarts() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("probes") else {
        return;
    };
    if node_runtime::test_support::pod_subnet("probes").is_none() {
        return;
    }
    let image = node_runtime::test_support::test_image();
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let live = dir.path().join("live");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("ok"), "").unwrap();
    let pod = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: probed
spec:
  terminationGracePeriodSeconds: 2
  volumes:
  - name: www
    hostPath: {{path: {www}, type: Directory}}
  - name: live
    hostPath: {{path: {live}, type: Directory}}
  containers:
  - name: web
    image: {image}
    imagePullPolicy: Never
    command: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]
    volumeMounts: [{{name: www, mountPath: /www}}]
    ports: [{{name: http, containerPort: 8080}}]
    readinessProbe:
      httpGet: {{path: /ready, port: http}}
      periodSeconds: 1
      failureThreshold: 1
  - name: worker
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]
    volumeMounts: [{{name: live, mountPath: /live}}]
    livenessProbe:
      exec: {{command: [\"test\", \"-f\", \"/live/ok\"]}}
      periodSeconds: 1
      failureThreshold: 2
      terminationGracePeriodSeconds: 1
",
        www = www.display(),
        live = live.display(),
    );
    let spec = AgentSpec::new(dir.path(), "probes", &endpoint);
    let node = spec.node.clone();
    let mut agent = spec.config(OPEN_AUTH).manifest("probed.yaml", &pod).spawn();
    agent.wait_healthy(START);
    let name = format!("probed-{node}");

    // Running, the worker ready (no readiness probe), the web container not: /ready is 404.
    let list = agent.wait_pods(&[], POD_UP, |v| {
        running(v, &name).is_some_and(|p| {
            p["status"]["phase"] == "Running"
                && container(p, "worker")["ready"] == true
                && container(p, "web")["state"]["running"].is_object()
        })
    });
    let p = running(&list, &name).unwrap();
    assert_eq!(container(p, "web")["ready"], false, "{p:#}");
    assert_eq!(condition(p, "Ready"), "False");
    assert_eq!(condition(p, "ContainersReady"), "False");

    // The probe passes: Ready.
    std::fs::write(www.join("ready"), "ok").unwrap();
    agent.wait_pods(&[], POD_UP, |v| {
        running(v, &name).is_some_and(|p| {
            container(p, "web")["ready"] == true && condition(p, "Ready") == "True"
        })
    });
    // It fails again: not Ready, still running (readiness never restarts).
    std::fs::remove_file(www.join("ready")).unwrap();
    let list = agent.wait_pods(&[], POD_UP, |v| {
        running(v, &name).is_some_and(|p| condition(p, "Ready") == "False")
    });
    let web = container(running(&list, &name).unwrap(), "web");
    assert_eq!(web["restartCount"], 0);
    assert!(web["state"]["running"].is_object());

    // /metrics/probes counts each run by result and times the successful ones.
    let metrics = common::curl(&[&agent.url("/metrics/probes")]);
    assert_eq!(metrics.status, 200);
    let readiness = format!(
        "container=\"web\",namespace=\"default\",pod=\"{name}\",pod_uid=\"{}\",probe_type=\"Readiness\"",
        running(&list, &name).unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
    );
    for result in ["failed", "successful"] {
        let series = format!("prober_probe_total{{{readiness},result=\"{result}\"}} ");
        assert!(
            metrics.body.lines().any(|l| l.starts_with(&series)),
            "{series}\n{}",
            metrics.body
        );
    }
    assert!(
        metrics.body.contains(&format!(
            "prober_probe_duration_seconds_count{{container=\"web\",namespace=\"default\",pod=\"{name}\",probe_type=\"Readiness\"}} "
        )),
        "{}",
        metrics.body
    );

    // Liveness: the exec probe fails twice, the worker is killed and started again.
    let before = container(running(&list, &name).unwrap(), "worker")["containerID"].clone();
    std::fs::remove_file(live.join("ok")).unwrap();
    let list = agent.wait_pods(&[], POD_UP, |v| {
        running(v, &name).is_some_and(|p| container(p, "worker")["restartCount"] == 1)
    });
    let worker = container(running(&list, &name).unwrap(), "worker");
    assert_ne!(worker["containerID"], before);
    std::fs::write(live.join("ok"), "").unwrap();
    assert!(
        agent
            .stderr()
            .contains("Container worker failed liveness probe, will be restarted"),
        "{}",
        agent.stderr()
    );

    drop(agent);
    remove_pods(&endpoint, &node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_start_hooks_run_and_termination_messages_are_reported() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("hooks") else {
        return;
    };
    let image = node_runtime::test_support::test_image();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let pod = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: hooked
spec:
  hostNetwork: true
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  volumes:
  - name: out
    hostPath: {{path: {out}, type: Directory}}
  containers:
  - name: starter
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]
    volumeMounts: [{{name: out, mountPath: /out}}]
    lifecycle:
      postStart:
        exec: {{command: [\"/bin/sh\", \"-c\", \"echo started > /out/poststart\"]}}
  - name: writer
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"echo 'all done' > /dev/termination-log; exit 3\"]
  - name: crasher
    image: {image}
    imagePullPolicy: Never
    terminationMessagePolicy: FallbackToLogsOnError
    command: [\"/bin/sh\", \"-c\", \"echo 'panic: out of cheese'; exit 1\"]
",
        out = out.display(),
    );
    let spec = AgentSpec::new(dir.path(), "hooks", &endpoint);
    let node = spec.node.clone();
    let mut agent = spec.config(OPEN_AUTH).manifest("hooked.yaml", &pod).spawn();
    agent.wait_healthy(START);
    let name = format!("hooked-{node}");
    let list = agent.wait_pods(&[], POD_UP, |v| {
        running(v, &name).is_some_and(|p| {
            container(p, "writer")["state"]["terminated"].is_object()
                && container(p, "crasher")["state"]["terminated"].is_object()
        })
    });
    let p = running(&list, &name).unwrap();
    let writer = &container(p, "writer")["state"]["terminated"];
    assert_eq!(writer["exitCode"], 3);
    assert_eq!(writer["message"], "all done\n", "{p:#}");
    let crasher = &container(p, "crasher")["state"]["terminated"];
    assert_eq!(crasher["message"], "panic: out of cheese\n", "{p:#}");
    assert_eq!(
        std::fs::read_to_string(out.join("poststart")).unwrap(),
        "started\n"
    );
    drop(agent);
    remove_pods(&endpoint, &node).await;
}
