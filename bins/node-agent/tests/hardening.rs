//! Hostile pod content against the real `node-agent` on the test run's containerd: names that
//! climb out of the root dir and the pod log dir, a runtime label that does the same, unsafe
//! sysctls at admission, static pod listing errors, a subPath swapped for a symlink to `/`
//! between container restarts, an emptyDir written by a non-root user, a hostPath type mismatch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{AgentSpec, OPEN_AUTH, curl, remove_pods, running, sandboxes, sleep_pod};

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(90);

/// Every path under `dir` (relative), without descending into `skip`.
fn tree(dir: &Path, skip: &[&str]) -> BTreeSet<PathBuf> {
    fn walk(base: &Path, dir: &Path, skip: &[&str], out: &mut BTreeSet<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let rel = entry.path().strip_prefix(base).unwrap().to_path_buf();
            if skip.iter().any(|s| rel == Path::new(s)) {
                continue;
            }
            let is_dir = entry.file_type().unwrap().is_dir();
            out.insert(rel);
            if is_dir {
                walk(base, &entry.path(), skip, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, skip, &mut out);
    out
}

fn names(list: &serde_json::Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `pred` holds on the agent's stderr.
fn wait_log(agent: &common::Agent, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = agent.stderr();
        if pred(&log) {
            return log;
        }
        assert!(Instant::now() < deadline, "log never matched:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A pod spec with a container command and extra pod-level YAML (indented two spaces).
fn pod(name: &str, metadata: &str, spec: &str, command: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
{metadata}spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
{spec}  containers:
  - name: app
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", {command:?}]
",
        image = node_runtime::test_support::test_image(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn climbing_names_are_refused_and_nothing_outside_is_touched() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("climbing_names") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // What the climbing names point at: <root>/pods/../../victim and <logs>/../x_...
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep"), "host data").unwrap();
    let sleep = "trap 'exit 0' TERM; while true; do sleep 1; done";
    let spec = AgentSpec::new(dir.path(), "climb", &endpoint)
        .config(OPEN_AUTH)
        .manifest("good.yaml", &sleep_pod("good", ""))
        .manifest("uid.yaml", &pod("uid", "  uid: ../../victim\n", "", sleep))
        .manifest("ns.yaml", &pod("ns", "  namespace: ../x\n", "", sleep))
        .manifest(
            "dotdot.yaml",
            &pod("dotdot", "  uid: ..\n  namespace: kube-system\n", "", sleep),
        )
        .manifest(
            "volume.yaml",
            &pod(
                "volume",
                "",
                "  volumes:\n  - name: ../../../v\n    emptyDir: {}\n",
                sleep,
            ),
        );
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let before = tree(dir.path(), &["root", "logs"]);

    let good = format!("good-{node}");
    let list = agent.wait_pods(&[], POD_UP, |l| running(l, &good).is_some());
    assert_eq!(
        names(&list),
        std::slice::from_ref(&good),
        "only the good pod runs"
    );
    // Each refused manifest is named with its field and value, once.
    let log = wait_log(&agent, Duration::from_secs(10), |l| {
        l.contains("volume.yaml") && l.contains("dotdot.yaml")
    });
    for (file, field) in [
        (
            "uid.yaml",
            "metadata.uid: Invalid value: \"../../victim\": must not contain '/'",
        ),
        (
            "ns.yaml",
            "metadata.namespace: Invalid value: \"../x\": a lowercase RFC 1123 label",
        ),
        (
            "dotdot.yaml",
            "metadata.uid: Invalid value: \"..\": must not be '.' or '..'",
        ),
        (
            "volume.yaml",
            "spec.volumes[0].name: Invalid value: \"../../../v\"",
        ),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(file) && l.contains("static pod manifest rejected"))
            .unwrap_or_else(|| panic!("no rejection for {file}:\n{log}"));
        assert!(line.contains(field), "{file}: {line}");
    }

    // A manifest that copies the good pod's UID is refused: it never takes the pod's sandbox
    // over, and no container of its own appears there.
    let good_item = running(&list, &good).unwrap();
    let good_uid = good_item["metadata"]["uid"].as_str().unwrap().to_owned();
    let good_container = good_item["status"]["containerStatuses"][0]["containerID"].clone();
    std::fs::write(
        // Sorted before good.yaml: the running pod keeps its UID whatever the file order.
        dir.path().join("manifests/aa-hijack.yaml"),
        pod("hijack", &format!("  uid: {good_uid}\n"), "", sleep)
            .replace("- name: app", "- name: intruder"),
    )
    .unwrap();
    wait_log(&agent, Duration::from_secs(30), |l| {
        l.contains("aa-hijack.yaml") && l.contains(&format!("duplicate pod UID {good_uid}"))
    });
    let cri = node_runtime::CriClient::connect(&endpoint, &Default::default())
        .await
        .unwrap();
    let by_uid = [(node_runtime::LABEL_POD_UID.to_owned(), good_uid.clone())].into();
    let names_in_pod: Vec<String> = cri
        .list_containers(None, by_uid)
        .await
        .unwrap()
        .iter()
        .map(|c| c.labels[node_runtime::LABEL_CONTAINER_NAME].clone())
        .collect();
    assert_eq!(names_in_pod, ["app"]);
    let list = agent.wait_pods(&[], Duration::from_secs(5), |l| running(l, &good).is_some());
    assert_eq!(names(&list), std::slice::from_ref(&good));
    assert_eq!(
        running(&list, &good).unwrap()["status"]["containerStatuses"][0]["containerID"],
        good_container
    );

    // A container planted in the good pod's sandbox with the pod's labels (not in its spec)
    // is stopped and removed; the pod's own container is untouched.
    let sandbox_labels = [(node_runtime::LABEL_POD_UID.to_owned(), good_uid.clone())].into();
    let sandbox_id = cri.list_pod_sandboxes(sandbox_labels).await.unwrap()[0]
        .id
        .clone();
    let planted_labels: std::collections::HashMap<String, String> = [
        (node_runtime::LABEL_MANAGED_BY, node.as_str()),
        (node_runtime::LABEL_POD_UID, good_uid.as_str()),
        (node_runtime::LABEL_CONTAINER_NAME, "planted"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let planted_container = cri
        .create_container(
            &sandbox_id,
            node_runtime::cri::ContainerConfig {
                metadata: Some(node_runtime::cri::ContainerMetadata {
                    name: "planted".into(),
                    attempt: 0,
                }),
                image: Some(node_runtime::image_spec(
                    &node_runtime::test_support::test_image(),
                )),
                command: vec!["/bin/sh".into(), "-c".into(), "sleep 1000".into()],
                labels: planted_labels,
                log_path: "planted.log".into(),
                ..Default::default()
            },
            node_runtime::cri::PodSandboxConfig {
                metadata: Some(node_runtime::cri::PodSandboxMetadata {
                    name: good.clone(),
                    uid: good_uid.clone(),
                    namespace: "default".into(),
                    attempt: 0,
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    cri.start_container(&planted_container).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let by_uid = [(node_runtime::LABEL_POD_UID.to_owned(), good_uid.clone())].into();
        let ids: Vec<String> = cri
            .list_containers(None, by_uid)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        if !ids.contains(&planted_container) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "planted container kept:\n{}",
            agent.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list = agent.wait_pods(&[], Duration::from_secs(5), |l| running(l, &good).is_some());
    assert_eq!(
        running(&list, &good).unwrap()["status"]["containerStatuses"][0]["containerID"],
        good_container
    );

    // A runtime object that claims a climbing UID (the runtime's labels are not trusted
    // either): the agent tears it down as an orphan but refuses to build a path from it.
    let labels: std::collections::HashMap<String, String> = [
        (node_runtime::LABEL_MANAGED_BY, node.as_str()),
        (node_runtime::LABEL_POD_UID, "../../victim"),
        (node_runtime::LABEL_POD_NAME, "planted"),
        (node_runtime::LABEL_POD_NAMESPACE, "default"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let planted = node_runtime::cri::PodSandboxConfig {
        metadata: Some(node_runtime::cri::PodSandboxMetadata {
            name: "planted".into(),
            uid: "../../victim".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        labels,
        log_directory: dir.path().join("logs/planted").display().to_string(),
        linux: Some(node_runtime::cri::LinuxPodSandboxConfig {
            security_context: Some(node_runtime::cri::LinuxSandboxSecurityContext {
                namespace_options: Some(node_runtime::cri::NamespaceOption {
                    network: node_runtime::cri::NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let planted_id = cri.run_pod_sandbox(planted).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sandboxes(&endpoint, &node).await.contains(&planted_id) {
        assert!(Instant::now() < deadline, "planted sandbox never removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = wait_log(&agent, Duration::from_secs(10), |l| {
        l.contains("metadata.uid \"../../victim\" must not contain '/'")
    });
    assert!(log.contains("refusing"), "{log}");

    // Every manifest removed: the good pod goes, and nothing outside was created or removed.
    for f in std::fs::read_dir(dir.path().join("manifests")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    agent.wait_pods(&[], POD_UP, |l| names(l).is_empty());
    assert_eq!(
        std::fs::read_to_string(victim.join("keep")).unwrap(),
        "host data"
    );
    let after = tree(dir.path(), &["root", "logs"]);
    let new: Vec<_> = after
        .difference(&before)
        .filter(|p| !p.to_string_lossy().starts_with("agent-"))
        .collect();
    let gone: Vec<_> = before
        .difference(&after)
        .filter(|p| !p.starts_with("manifests"))
        .collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "new {new:?}, gone {gone:?}"
    );
    // Nothing under the log dir but the good pod's directory (now removed or empty of others).
    for entry in std::fs::read_dir(dir.path().join("logs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name.starts_with("default_good-"),
            "unexpected log dir {name}"
        );
    }
    assert!(agent.try_exit().is_none(), "{}", agent.stderr());
    drop(agent);
    remove_pods(&endpoint, &node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_sysctls_are_rejected_with_the_kubelets_status() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("unsafe_sysctls") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let print = |path: &str| {
        format!("cat /proc/sys/{path}; trap 'exit 0' TERM; while true; do sleep 1; done")
    };
    // No hostIPC: the IPC sysctls are set in the pod's own IPC namespace.
    let sysctls = |list: &str| format!("  securityContext:\n    sysctls: {list}\n");
    let spec = AgentSpec::new(dir.path(), "sysctl", &endpoint)
        .config(OPEN_AUTH)
        .config("allowedUnsafeSysctls: [\"kernel.msgmnb\"]\n")
        .manifest(
            "unsafe.yaml",
            &pod(
                "unsafe",
                "",
                &sysctls("[{name: kernel.msgmax, value: '4096'}]"),
                &print("kernel/msgmax"),
            ),
        )
        .manifest(
            "hostnet.yaml",
            &pod(
                "hostnet",
                "",
                &sysctls("[{name: net.ipv4.tcp_syncookies, value: '1'}]"),
                &print("net/ipv4/tcp_syncookies"),
            ),
        )
        .manifest(
            "safe.yaml",
            &pod(
                "safe",
                "",
                &sysctls("[{name: kernel.shm_rmid_forced, value: '1'}]"),
                &print("kernel/shm_rmid_forced"),
            ),
        )
        .manifest(
            "allowed.yaml",
            &pod(
                "allowed",
                "",
                &sysctls("[{name: kernel.msgmnb, value: '12345'}]"),
                &print("kernel/msgmnb"),
            ),
        );
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let (safe, allowed) = (format!("safe-{node}"), format!("allowed-{node}"));
    let list = agent.wait_pods(&[], POD_UP, |l| {
        running(l, &safe).is_some() && running(l, &allowed).is_some()
    });
    let item = |name: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["metadata"]["name"] == format!("{name}-{node}"))
            .unwrap_or_else(|| panic!("{name} not listed: {list:#}"))
            .clone()
    };
    let unsafe_pod = item("unsafe");
    assert_eq!(unsafe_pod["status"]["phase"], "Failed");
    assert_eq!(unsafe_pod["status"]["reason"], "SysctlForbidden");
    assert_eq!(
        unsafe_pod["status"]["message"],
        "Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted"
    );
    assert!(
        unsafe_pod["status"]["containerStatuses"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
    let hostnet = item("hostnet");
    assert_eq!(hostnet["status"]["phase"], "Failed");
    assert_eq!(
        hostnet["status"]["message"],
        "Pod was rejected: forbidden sysctl: \"net.ipv4.tcp_syncookies\" not allowed with host Net enabled"
    );
    // The refused pods never got a sandbox: two sandboxes, for the admitted pods.
    assert_eq!(sandboxes(&endpoint, &node).await.len(), 2);
    // The admitted ones run with their values in their own IPC namespace.
    for (name, value) in [("safe", "1"), ("allowed", "12345")] {
        let uid = item(name)["metadata"]["uid"].as_str().unwrap().to_owned();
        let log = dir
            .path()
            .join(format!("logs/default_{name}-{node}_{uid}/app/0.log"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().any(|l| l.ends_with(&format!(" {value}"))) {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: {text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A rejection is logged once, not every pass.
    let log = agent.stderr();
    assert_eq!(log.matches("pod rejected at admission").count(), 2, "{log}");
    drop(agent);
    remove_pods(&endpoint, &node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_error_keeps_the_pods_and_only_a_missing_path_empties_them() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("listing_error") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    let spec = AgentSpec::new(dir.path(), "listing", &endpoint)
        .config(OPEN_AUTH)
        .config("fileCheckFrequency: 1s\n")
        .manifest("web.yaml", &sleep_pod("web", ""));
    let node = spec.node.clone();
    // The agent that starts later, while the path cannot be listed (same node, new ports).
    let mut restarted = AgentSpec::new(dir.path(), "listing", &endpoint)
        .config(OPEN_AUTH)
        .config("fileCheckFrequency: 1s\n");
    restarted.node = node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let web = format!("web-{node}");
    let list = agent.wait_pods(&[], POD_UP, |l| running(l, &web).is_some());
    let container =
        running(&list, &web).unwrap()["status"]["containerStatuses"][0]["containerID"].clone();

    // The static pod path now fails with ELOOP (a symlink to itself), not ENOENT.
    let real = dir.path().join("manifests.real");
    std::fs::rename(&manifests, &real).unwrap();
    std::os::unix::fs::symlink(&manifests, &manifests).unwrap();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a counter: a small non-negative whole number"
    )]
    let metric = |agent: &common::Agent| -> u64 {
        let body = curl(&[&agent.url("/metrics")]).body;
        body.lines()
            .find_map(|l| l.strip_prefix("node_agent_static_pod_listing_errors_total "))
            .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&agent) < 3 {
        assert!(Instant::now() < deadline, "{}", agent.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list = agent.wait_pods(&[], Duration::from_secs(5), |l| running(l, &web).is_some());
    assert_eq!(
        running(&list, &web).unwrap()["status"]["containerStatuses"][0]["containerID"],
        container,
        "the pod kept running, untouched"
    );
    let log = agent.stderr();
    assert_eq!(
        log.matches("cannot list static pods").count(),
        1,
        "logged once: {log}"
    );

    // staticPodPath naming a single file that cannot be used is no update either (the
    // kubelet's listConfig returns the file's error): the pod keeps running.
    std::fs::remove_file(&manifests).unwrap();
    std::fs::write(&manifests, ":::garbage: [").unwrap();
    let before = metric(&agent);
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&agent) < before + 2 {
        assert!(Instant::now() < deadline, "{}", agent.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list = agent.wait_pods(&[], Duration::from_secs(5), |l| running(l, &web).is_some());
    assert_eq!(
        running(&list, &web).unwrap()["status"]["containerStatuses"][0]["containerID"],
        container
    );
    assert!(
        agent.stderr().contains("invalid YAML"),
        "{}",
        agent.stderr()
    );
    std::fs::remove_file(&manifests).unwrap();
    std::os::unix::fs::symlink(&manifests, &manifests).unwrap();

    // An agent that starts while the path cannot be listed removes nothing either, and adopts
    // the pod once the path is back.
    drop(agent);
    let mut agent = restarted.spawn();
    agent.wait_healthy(START);
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&agent) < 3 {
        assert!(Instant::now() < deadline, "{}", agent.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        sandboxes(&endpoint, &node).await.len(),
        1,
        "{}",
        agent.stderr()
    );
    std::fs::remove_file(&manifests).unwrap();
    std::fs::rename(&real, &manifests).unwrap();
    let list = agent.wait_pods(&[], POD_UP, |l| running(l, &web).is_some());
    assert_eq!(
        running(&list, &web).unwrap()["status"]["containerStatuses"][0]["containerID"],
        container,
        "adopted, not restarted"
    );

    // A missing path is the one listing result that empties the pod list.
    std::fs::rename(&manifests, &real).unwrap();
    agent.wait_pods(&[], POD_UP, |l| names(l).is_empty());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sandboxes(&endpoint, &node).await.is_empty() {
        assert!(Instant::now() < deadline, "{}", agent.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(agent);
    remove_pods(&endpoint, &node).await;
}

/// The pod in `list` named `<name>-<node>`.
fn find<'a>(list: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    list["items"]
        .as_array()?
        .iter()
        .find(|p| p["metadata"]["name"] == name)
}

/// Mount points below `dir` in this (the agent's) mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subpath_swapped_for_a_symlink_to_root_never_reaches_the_host() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("subpath_swap") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // First run: note it, swap the subPath directory for a symlink to the host's `/`, exit 1
    // (the agent restarts the container at once). A later run that finds anything under /sub
    // (the subPath was an empty directory) would be looking at the host.
    let script = "if [ -n \"$(ls -A /sub)\" ]; then echo ESCAPED; ls /sub; fi; \
        if [ -e /data/swapped ]; then echo SECOND-RUN; while true; do sleep 1; done; fi; \
        echo FIRST-RUN; touch /data/swapped; rm -rf /data/sub; ln -s / /data/sub; exit 1";
    let manifest = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: swap
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  volumes:
  - name: data
    emptyDir: {{}}
  containers:
  - name: app
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", {script:?}]
    volumeMounts:
    - {{name: data, mountPath: /data}}
    - {{name: data, mountPath: /sub, subPath: sub}}
",
        image = node_runtime::test_support::test_image(),
    );
    let spec = AgentSpec::new(dir.path(), "subpath", &endpoint)
        .config(OPEN_AUTH)
        .manifest("swap.yaml", &manifest);
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let name = format!("swap-{node}");
    let expected = "failed to prepare subPath for volumeMount \"data\" of container \"app\"";
    // The restart is refused: the pass that tries shows CreateContainerConfigError with the
    // kubelet's message (details only in the log); later passes wait in back-off before
    // trying again, as the kubelet's do.
    wait_log(&agent, POD_UP, |l| {
        l.contains(&format!("container app: {expected}"))
    });
    let list = agent.wait_pods(&[], Duration::from_secs(5), |l| find(l, &name).is_some());
    let pod = find(&list, &name).unwrap();
    let status = &pod["status"]["containerStatuses"][0];
    let reason = status["state"]["waiting"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        ["CreateContainerConfigError", "CrashLoopBackOff"].contains(&reason),
        "{pod:#}"
    );
    if reason == "CreateContainerConfigError" {
        assert_eq!(status["state"]["waiting"]["message"], expected);
    }
    assert_eq!(
        status["restartCount"], 0,
        "the first instance stays the last one"
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    let logs = dir.path().join(format!("logs/default_{name}_{uid}/app"));
    let first = std::fs::read_to_string(logs.join("0.log")).unwrap();
    assert!(
        first.contains("FIRST-RUN") && !first.contains("ESCAPED"),
        "{first}"
    );
    assert!(
        !logs.join("1.log").exists(),
        "no second instance was created"
    );
    // The agent keeps refusing on later passes and stays healthy.
    let volume = agent
        .root()
        .join(format!("pods/{uid}/volumes/kubernetes.io~empty-dir/data"));
    assert!(
        std::fs::symlink_metadata(volume.join("sub"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let log = wait_log(&agent, Duration::from_secs(30), |l| {
        l.matches("failed to prepare subPath for volumeMount")
            .count()
            >= 2
    });
    // The log has the node's detail; the status does not.
    assert!(
        log.contains("it is a symlink to /, outside the volume"),
        "{log}"
    );
    assert!(agent.try_exit().is_none(), "{}", agent.stderr());

    // Removing the pod unmounts the first run's subPath mount and removes the pod directory;
    // the host's `/` (the symlink's target) is of course untouched.
    std::fs::remove_file(dir.path().join("manifests/swap.yaml")).unwrap();
    agent.wait_pods(&[], POD_UP, |l| names(l).is_empty());
    let pod_dir = agent.root().join(format!("pods/{uid}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while pod_dir.exists() {
        assert!(Instant::now() < deadline, "{}", agent.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mounts_under(&agent.root()), Vec::<String>::new());
    assert!(Path::new("/etc/hostname").exists() || Path::new("/etc/os-release").exists());
    drop(agent);
    remove_pods(&endpoint, &node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_dir_is_writable_by_a_non_root_container() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("empty_dir_uid") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = "echo hello > /scratch/out && echo WROTE; \
        trap 'exit 0' TERM; while true; do sleep 1; done";
    let manifest = pod(
        "writer",
        "",
        "  securityContext:\n    runAsUser: 1000\n    runAsGroup: 1000\n  volumes:\n  - name: scratch\n    emptyDir: {}\n",
        script,
    )
    .replace(
        "    imagePullPolicy: Never\n",
        "    imagePullPolicy: Never\n    volumeMounts:\n    - {name: scratch, mountPath: /scratch}\n",
    );
    let spec = AgentSpec::new(dir.path(), "emptydir", &endpoint)
        .config(OPEN_AUTH)
        .manifest("writer.yaml", &manifest);
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let name = format!("writer-{node}");
    let list = agent.wait_pods(&[], POD_UP, |l| running(l, &name).is_some());
    let uid = find(&list, &name).unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let volume = agent.root().join(format!(
        "pods/{uid}/volumes/kubernetes.io~empty-dir/scratch"
    ));
    let out = volume.join("out");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !out.exists() {
        let log = std::fs::read_to_string(
            dir.path()
                .join(format!("logs/default_{name}_{uid}/app/0.log")),
        )
        .unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "never written; container log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&out).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello\n");
    assert_eq!(std::fs::metadata(&volume).unwrap().mode() & 0o7777, 0o777);
    drop(agent);
    remove_pods(&endpoint, &node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_path_type_mismatch_waits_and_leaves_nothing_behind() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("host_path_type") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let manifest = pod(
        "hostpath",
        "",
        &format!(
            "  volumes:\n  - name: h\n    hostPath: {{path: {}, type: Directory}}\n",
            file.display()
        ),
        "sleep 1000",
    );
    let spec = AgentSpec::new(dir.path(), "hostpath", &endpoint)
        .config(OPEN_AUTH)
        .config("fileCheckFrequency: 1s\n")
        .manifest("hostpath.yaml", &manifest);
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let name = format!("hostpath-{node}");
    let expected = format!(
        "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: {} is not a directory",
        file.display()
    );
    let list = agent.wait_pods(&[], POD_UP, |l| {
        find(l, &name).is_some_and(|p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["message"] == expected.as_str()
        })
    });
    let pod = find(&list, &name).unwrap();
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    assert!(
        sandboxes(&endpoint, &node).await.is_empty(),
        "no sandbox before volumes"
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    let pod_dir = agent.root().join(format!("pods/{uid}"));
    assert!(pod_dir.is_dir());
    // The manifest goes: the directory of the pod that never started goes too.
    std::fs::remove_file(dir.path().join("manifests/hostpath.yaml")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pod_dir.exists() {
        assert!(Instant::now() < deadline, "{}", agent.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    drop(agent);
    remove_pods(&endpoint, &node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_with_a_fixed_uid_follows_edits_and_keeps_its_uid_across_restarts() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("fixed_uid") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sleep = "trap 'exit 0' TERM; while true; do sleep 1; done";
    let two = |first: &str| {
        pod("fixed", "  uid: fixed-uid-1\n", "", first).replace(
            "  containers:\n",
            &format!(
                "  containers:\n  - name: side\n    image: {}\n    imagePullPolicy: Never\n    command: [\"/bin/sh\", \"-c\", {sleep:?}]\n",
                node_runtime::test_support::test_image()
            ),
        )
    };
    let spec = AgentSpec::new(dir.path(), "fixed", &endpoint)
        .config(OPEN_AUTH)
        .config("fileCheckFrequency: 1s\n")
        .manifest("fixed.yaml", &two(sleep));
    let node = spec.node.clone();
    let mut restarted = AgentSpec::new(dir.path(), "fixed", &endpoint)
        .config(OPEN_AUTH)
        .config("fileCheckFrequency: 1s\n");
    restarted.node = node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let name = format!("fixed-{node}");
    let ids = |l: &serde_json::Value| -> Vec<(String, String)> {
        find(l, &name)
            .and_then(|p| p["status"]["containerStatuses"].as_array())
            .map(|a| {
                a.iter()
                    .filter(|c| c["state"]["running"].is_object())
                    .map(|c| {
                        (
                            c["name"].as_str().unwrap_or_default().to_owned(),
                            c["containerID"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let list = agent.wait_pods(&[], POD_UP, |l| ids(l).len() == 2);
    let before = ids(&list);
    let side = before.iter().find(|(n, _)| n == "side").unwrap().1.clone();
    let app = before.iter().find(|(n, _)| n == "app").unwrap().1.clone();

    // The app container's command changes (same UID): it is restarted, the side one is not.
    std::fs::write(
        dir.path().join("manifests/fixed.yaml"),
        two(&format!("echo edited; {sleep}")),
    )
    .unwrap();
    let list = agent.wait_pods(&[], POD_UP, |l| {
        let now = ids(l);
        now.len() == 2 && now.iter().any(|(n, id)| n == "app" && *id != app)
    });
    assert!(ids(&list).contains(&("side".to_owned(), side.clone())));
    // The side container leaves the spec: it is stopped and removed.
    std::fs::write(
        dir.path().join("manifests/fixed.yaml"),
        pod(
            "fixed",
            "  uid: fixed-uid-1\n",
            "",
            &format!("echo edited; {sleep}"),
        ),
    )
    .unwrap();
    let cri = node_runtime::CriClient::connect(&endpoint, &Default::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let by_uid = [(
            node_runtime::LABEL_POD_UID.to_owned(),
            "fixed-uid-1".to_owned(),
        )]
        .into();
        let names: Vec<String> = cri
            .list_containers(None, by_uid)
            .await
            .unwrap()
            .iter()
            .map(|c| c.labels[node_runtime::LABEL_CONTAINER_NAME].clone())
            .collect();
        if !names.contains(&"side".to_owned()) {
            break;
        }
        assert!(Instant::now() < deadline, "{}", agent.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Another manifest, sorted first, claims the UID while the agent is down: after the
    // restart the running pod keeps it and the newcomer is refused.
    let list = agent.wait_pods(&[], POD_UP, |l| ids(l).len() == 1);
    let app = ids(&list)[0].1.clone();
    drop(agent);
    std::fs::write(
        dir.path().join("manifests/0-claim.yaml"),
        pod("claim", "  uid: fixed-uid-1\n", "", sleep).replace("- name: app", "- name: intruder"),
    )
    .unwrap();
    let mut agent = restarted.spawn();
    agent.wait_healthy(START);
    wait_log(&agent, Duration::from_secs(30), |l| {
        l.contains("0-claim.yaml") && l.contains("duplicate pod UID fixed-uid-1")
    });
    let list = agent.wait_pods(&[], POD_UP, |l| ids(l).len() == 1);
    assert_eq!(ids(&list), [("app".to_owned(), app)], "adopted, untouched");
    drop(agent);
    remove_pods(&endpoint, &node).await;
}
