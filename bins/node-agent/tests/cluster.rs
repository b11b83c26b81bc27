//! The agent in a cluster, end to end: the real `node-agent` on the test run's containerd with
//! node-heartbeat's test API server (real HTTP and watch protocol) as its API server. A pod
//! created on the API server for this node runs and its status (Running, Ready, container IDs,
//! restart counts, IPs) appears there; a static pod gets a mirror pod that comes back after
//! being deleted; a pod refused at admission is Failed with the kubelet's reason; the agent
//! killed and restarted adopts what runs; a watch the server breaks (a disconnect, then 410
//! Gone after a compaction) recovers without losing or duplicating pods; deleting a pod stops it
//! within its grace period and removes it from the API server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{AgentSpec, OPEN_AUTH, api_pod, remove_pods, sandboxes, sleep_pod};
use k8s_openapi::api::core::v1::Pod;
use nix::sys::signal::Signal;
use node_heartbeat::testserver::TestApiServer;

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(60);

/// Polls `f` every 100 ms until it gives a value, for at most `timeout`.
async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn running_status(p: &Pod) -> Option<(String, String)> {
    let st = p.status.as_ref()?;
    let ready = st
        .conditions
        .as_ref()?
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let c = st.container_statuses.as_ref()?.first()?;
    (st.phase.as_deref() == Some("Running") && ready && c.ready)
        .then(|| Some((c.container_id.clone()?, st.host_ip.clone()?)))
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_pods_run_report_status_survive_a_restart_and_are_deleted() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("cluster") else {
        return;
    };
    let server = TestApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = common::write_kubeconfig(dir.path(), &server.url());
    let spec = AgentSpec::new(dir.path(), "cluster", &endpoint)
        .config(&format!(
            "{OPEN_AUTH}{}nodeStatusUpdateFrequency: 2s\n",
            common::NO_PRESSURE
        ))
        .args(&["--kubeconfig", kubeconfig.to_str().unwrap()])
        .manifest("static.yaml", &sleep_pod("static", ""));
    let (node, config, args, port, healthz_port) = (
        spec.node.clone(),
        spec.config.clone(),
        spec.args.clone(),
        spec.port,
        spec.healthz_port,
    );
    let mut agent = spec.spawn();
    agent.wait_healthy(START);

    // A pod the scheduler bound to this node, one bound elsewhere, and one the kubelet's
    // admission refuses (an unsafe sysctl not in allowedUnsafeSysctls).
    // web has a preStop hook that leaves a file in a hostPath volume.
    let hook_dir = dir.path().join("hook");
    std::fs::create_dir(&hook_dir).unwrap();
    let mut web = api_pod("web", &node, "");
    let spec = web.spec.as_mut().unwrap();
    spec.volumes = Some(vec![
        serde_json::from_value(serde_json::json!({
            "name": "hook", "hostPath": {"path": hook_dir.to_str().unwrap(), "type": "Directory"}
        }))
        .unwrap(),
    ]);
    spec.containers[0] = serde_json::from_value({
        let mut c = serde_json::to_value(&spec.containers[0]).unwrap();
        c["volumeMounts"] = serde_json::json!([{"name": "hook", "mountPath": "/hook"}]);
        c["lifecycle"] = serde_json::json!({
            "preStop": {"exec": {"command": ["/bin/sh", "-c", "echo ran > /hook/prestop"]}}
        });
        c
    })
    .unwrap();
    server.create_pod(web).unwrap();
    server
        .create_pod(api_pod("elsewhere", "another-node", ""))
        .unwrap();
    server
        .create_pod(api_pod(
            "sysctl",
            &node,
            r#"{"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}"#,
        ))
        .unwrap();
    let (container_id, host_ip) = wait_for("web Running on the API server", POD_UP, || {
        running_status(&server.pod("default", "web")?)
    })
    .await;
    assert!(container_id.starts_with("containerd://"), "{container_id}");
    let web = server.pod("default", "web").unwrap();
    let st = web.status.clone().unwrap();
    assert_eq!(st.pod_ip.as_deref(), Some(host_ip.as_str()));
    assert_eq!(st.container_statuses.as_ref().unwrap()[0].restart_count, 0);
    assert!(st.start_time.is_some());
    assert_eq!(st.qos_class.as_deref(), Some("BestEffort"));
    let refused = wait_for("the sysctl pod Failed", POD_UP, || {
        let st = server.pod("default", "sysctl")?.status?;
        (st.phase.as_deref() == Some("Failed")).then_some(st)
    })
    .await;
    assert_eq!(refused.reason.as_deref(), Some("SysctlForbidden"));
    // Pods that do not fit the node: too much CPU, a node selector it does not match.
    server
        .create_pod(api_pod(
            "huge",
            &node,
            r#"{"containers": [{"name": "app", "image": "busybox", "resources": {"requests": {"cpu": "1000"}}}]}"#,
        ))
        .unwrap();
    server
        .create_pod(api_pod(
            "elsewhere-zone",
            &node,
            r#"{"nodeSelector": {"zone": "nowhere"}}"#,
        ))
        .unwrap();
    for (name, reason, message) in [
        (
            "huge",
            "OutOfcpu",
            "Pod was rejected: Node didn't have enough resource: cpu, requested: 1000000",
        ),
        (
            "elsewhere-zone",
            "NodeAffinity",
            "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector",
        ),
    ] {
        let st = wait_for(name, POD_UP, || {
            let st = server.pod("default", name)?.status?;
            (st.phase.as_deref() == Some("Failed")).then_some(st)
        })
        .await;
        assert_eq!(st.reason.as_deref(), Some(reason));
        assert!(
            st.message.as_deref().unwrap().starts_with(message),
            "{st:?}"
        );
    }
    assert!(
        server
            .pod("default", "elsewhere")
            .unwrap()
            .status
            .is_none_or(|s| s.container_statuses.is_none())
    );

    // The static pod's mirror: created with the static pod's hash, Running, and back after a
    // user deletes it.
    let mirror_name = format!("static-{node}");
    let mirror = wait_for("the mirror pod", POD_UP, || {
        let p = server.pod("default", &mirror_name)?;
        running_status(&p)?;
        Some(p)
    })
    .await;
    assert!(
        mirror.metadata.annotations.as_ref().unwrap()["kubernetes.io/config.mirror"].len() > 10
    );
    server.delete_pod("default", &mirror_name, Some(0)).unwrap();
    wait_for("the mirror pod back", POD_UP, || {
        let p = server.pod("default", &mirror_name)?;
        (p.metadata.uid != mirror.metadata.uid).then_some(())
    })
    .await;

    // Killed and started again: the pod is adopted (same container, no restart) and its status
    // stays.
    agent.signal(Signal::SIGKILL);
    agent.wait_exit(Duration::from_secs(10));
    drop(agent);
    let restarted = tokio::time::Instant::now();
    let mut agent = AgentSpec {
        config,
        args,
        port,
        healthz_port,
        node: node.clone(),
        ..AgentSpec::new(dir.path(), "cluster", &endpoint)
    }
    .spawn();
    agent.wait_healthy(START);
    // The new process sends the pod's status once (its cache is empty): wait for that.
    wait_for("the restarted agent's status patch", POD_UP, || {
        server
            .requests()
            .iter()
            .any(|r| {
                r.method == "PATCH"
                    && r.path == "/api/v1/namespaces/default/pods/web/status"
                    && r.at > restarted
            })
            .then_some(())
    })
    .await;
    let after = server.pod("default", "web").unwrap();
    let (id_after, _) = running_status(&after).expect("still running");
    assert_eq!(id_after, container_id);
    assert_eq!(
        after.status.unwrap().container_statuses.unwrap()[0].restart_count,
        0
    );

    // The server drops the watch: a pod created meanwhile still arrives. Then the server goes
    // away, a pod is created and the history compacted while it is down: the agent's watch
    // gets 410 Gone, it lists again, and that pod runs too. Each pod has one sandbox.
    server.break_watches();
    server.create_pod(api_pod("web2", &node, "")).unwrap();
    wait_for("web2 Running", POD_UP, || {
        running_status(&server.pod("default", "web2")?)
    })
    .await;
    server.stop();
    server.create_pod(api_pod("web3", &node, "")).unwrap();
    server.compact();
    server.restart().await.unwrap();
    wait_for("web3 Running", POD_UP, || {
        running_status(&server.pod("default", "web3")?)
    })
    .await;
    assert_eq!(
        sandboxes(&endpoint, &node).await.len(),
        4,
        "static, web, web2, web3"
    );

    // Deleted with a 10 s grace period: the container (which exits on SIGTERM) stops, the
    // terminal status and the final DELETE follow well within it.
    let deleted_at = Instant::now();
    server.delete_pod("default", "web", Some(10)).unwrap();
    wait_for(
        "web gone from the API server",
        Duration::from_secs(10),
        || server.pod("default", "web").is_none().then_some(()),
    )
    .await;
    assert!(deleted_at.elapsed() < Duration::from_secs(10));
    // The preStop hook ran in the container (through containerd's ExecSync) before it stopped.
    assert_eq!(
        std::fs::read_to_string(hook_dir.join("prestop")).unwrap(),
        "ran\n"
    );
    // Its last status: the container exited 0 on SIGTERM, so the pod Succeeded.
    let last = server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH" && r.path == "/api/v1/namespaces/default/pods/web/status")
        .and_then(|r| r.body)
        .unwrap();
    assert_eq!(last["status"]["phase"], "Succeeded", "{last}");
    assert_eq!(
        last["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        0
    );
    let left = sandboxes(&endpoint, &node).await;
    assert_eq!(
        left.len(),
        3,
        "the static pod's, web2's and web3's sandboxes are left: {left:?}"
    );

    // Events from the kubelet source for what happened.
    let events = wait_for("the events", POD_UP, || {
        let events = server.events();
        let has = |pod: &str, reason: &str| {
            events.iter().any(|e| {
                e.involved_object.name.as_deref() == Some(pod)
                    && e.reason.as_deref() == Some(reason)
            })
        };
        (has("web", "Created")
            && has("web", "Started")
            && has("web", "Killing")
            && has("huge", "OutOfcpu"))
        .then_some(events)
    })
    .await;
    let started = events
        .iter()
        .find(|e| {
            e.involved_object.name.as_deref() == Some("web")
                && e.reason.as_deref() == Some("Started")
        })
        .unwrap();
    assert_eq!(started.message.as_deref(), Some("Container started"));
    assert_eq!(
        started.involved_object.field_path.as_deref(),
        Some("spec.containers{app}")
    );
    assert_eq!(
        started.source.as_ref().unwrap().component.as_deref(),
        Some("kubelet")
    );
    assert_eq!(started.type_.as_deref(), Some("Normal"));

    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(60));
    remove_pods(&endpoint, &node).await;
}

/// The deletion grace period is the API server's `deletionGracePeriodSeconds`, not the spec's
/// (a DELETE may ask for longer), and a second DELETE with a shorter one takes effect at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_uses_the_api_servers_grace_period_and_a_shortened_one() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("cluster_grace") else {
        return;
    };
    let server = TestApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = common::write_kubeconfig(dir.path(), &server.url());
    let spec = AgentSpec::new(dir.path(), "cluster_grace", &endpoint)
        .config(&format!("{OPEN_AUTH}{}", common::NO_PRESSURE))
        .args(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    // Containers that ignore SIGTERM: only the grace period's end (SIGKILL) stops them.
    let stubborn = |name: &str, grace: i64| {
        let mut p = api_pod(
            name,
            &node,
            &format!(r#"{{"terminationGracePeriodSeconds": {grace}}}"#),
        );
        p.spec.as_mut().unwrap().containers[0].command = Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "trap '' TERM; while true; do sleep 1; done".into(),
        ]);
        p
    };
    server.create_pod(stubborn("longer", 1)).unwrap();
    server.create_pod(stubborn("shorter", 120)).unwrap();
    for name in ["longer", "shorter"] {
        wait_for(name, POD_UP, || {
            running_status(&server.pod("default", name)?)
        })
        .await;
    }
    // 120 s, then shortened to 2 s while the agent is stopping it: gone long before 120 s.
    server.delete_pod("default", "shorter", Some(120)).unwrap();
    wait_for(
        "the agent stopping shorter",
        Duration::from_secs(30),
        || {
            agent
                .stderr()
                .contains("stopping the containers of a pod being deleted")
                .then_some(())
        },
    )
    .await;
    let t1 = Instant::now();
    server.delete_pod("default", "shorter", Some(2)).unwrap();
    wait_for("shorter deleted", Duration::from_secs(60), || {
        server.pod("default", "shorter").is_none().then_some(())
    })
    .await;
    assert!(
        t1.elapsed() < Duration::from_secs(30),
        "the shortened grace period was not applied: {:?}",
        t1.elapsed()
    );
    assert!(
        agent
            .stderr()
            .contains("the deletion grace period was shortened"),
        "{}",
        agent.stderr()
    );
    // A DELETE asking for 6 s on a pod whose spec says 1 s: still there after 3 s.
    let t0 = Instant::now();
    server.delete_pod("default", "longer", Some(6)).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        server.pod("default", "longer").is_some(),
        "stopped before its deletion grace period"
    );
    wait_for("longer deleted", Duration::from_secs(60), || {
        server.pod("default", "longer").is_none().then_some(())
    })
    .await;
    assert!(t0.elapsed() >= Duration::from_secs(6), "{:?}", t0.elapsed());
    drop(agent);
    remove_pods(&endpoint, &node).await;
}

/// SIGTERM with graceful node shutdown in a cluster: the Node turns NotReady ("node is shutting
/// down") at once, and each pod stopped is reported Failed, reason `Terminated`, with the
/// kubelet's message and a DisruptionTarget condition, before the agent exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_the_node_not_ready_and_the_pods_terminated() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("cluster_shutdown") else {
        return;
    };
    let server = TestApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = common::write_kubeconfig(dir.path(), &server.url());
    let spec = AgentSpec::new(dir.path(), "cluster_shutdown", &endpoint)
        .config(&format!(
            "{OPEN_AUTH}{}shutdownGracePeriod: 10s\nshutdownGracePeriodCriticalPods: 2s\n",
            common::NO_PRESSURE
        ))
        .args(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let (node, config, args, port, healthz_port) = (
        spec.node.clone(),
        spec.config.clone(),
        spec.args.clone(),
        spec.port,
        spec.healthz_port,
    );
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    server.create_pod(api_pod("web", &node, "")).unwrap();
    wait_for("web running", POD_UP, || {
        running_status(&server.pod("default", "web")?)
    })
    .await;
    agent.signal(Signal::SIGTERM);
    let status = agent.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{status}\n{}", agent.stderr());

    let web = server.pod("default", "web").unwrap();
    let st = web.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some("Failed"));
    assert_eq!(st.reason.as_deref(), Some("Terminated"));
    assert_eq!(
        st.message.as_deref(),
        Some("Pod was terminated in response to imminent node shutdown.")
    );
    let conditions = st.conditions.unwrap();
    let disruption = conditions
        .iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("a DisruptionTarget condition");
    assert_eq!(disruption.status, "True");
    assert_eq!(disruption.reason.as_deref(), Some("TerminationByKubelet"));
    let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "False");
    let node_obj = server.node(&node).unwrap();
    let node_ready = node_obj
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(node_ready.status, "False", "{node_ready:?}");
    assert!(
        node_ready
            .message
            .as_deref()
            .is_some_and(|m| m.contains("node is shutting down")),
        "{node_ready:?}"
    );

    // Started again: the pod the shutdown finished is not run again (the kubelet skips pods
    // that are terminal on the API server); a new pod runs.
    drop(agent);
    let agent = AgentSpec {
        config,
        args,
        port,
        healthz_port,
        node: node.clone(),
        ..AgentSpec::new(dir.path(), "cluster_shutdown", &endpoint)
    };
    let mut agent = agent.spawn();
    agent.wait_healthy(START);
    server.create_pod(api_pod("later", &node, "")).unwrap();
    wait_for("later running", POD_UP, || {
        running_status(&server.pod("default", "later")?)
    })
    .await;
    let web = server.pod("default", "web").unwrap();
    assert_eq!(
        web.status.unwrap().phase.as_deref(),
        Some("Failed"),
        "a finished pod was brought back"
    );
    let uid = web.metadata.uid.unwrap();
    let client =
        node_runtime::CriClient::connect(&endpoint, &node_runtime::ClientOptions::default())
            .await
            .unwrap();
    let web_sandboxes = client
        .list_pod_sandboxes([(node_runtime::LABEL_POD_UID.to_owned(), uid)].into())
        .await
        .unwrap();
    assert!(web_sandboxes.is_empty(), "{web_sandboxes:?}");
    drop(agent);
    remove_pods(&endpoint, &node).await;
}
