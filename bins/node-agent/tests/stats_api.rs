//! `/stats/summary` and `/metrics/resource` with the real `node-agent` and the test run's
//! containerd: two static pods (one burning CPU, one with an emptyDir and two containers),
//! the Summary fetched with `curl` and decoded strictly into structs transcribed from the
//! kubelet's `stats/v1alpha1` types, the resource metrics parsed by the Python Prometheus
//! client's parser (what a scraper runs), with a CPU counter that grows between scrapes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{AgentSpec, OPEN_AUTH, curl, remove_pods, running};
use serde::Deserialize;

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(120);
const STATS_UP: Duration = Duration::from_secs(90);

/// The kubelet's `stats/v1alpha1` types, field for field (`,inline` members spelled out:
/// serde cannot refuse unknown fields across a flatten), refusing anything else. Not every
/// field is asserted on; each is there so that decoding is strict.
#[allow(dead_code)]
mod v1alpha1 {
    use super::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Summary {
        pub node: NodeStats,
        pub pods: Vec<PodStats>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NodeStats {
        #[serde(rename = "nodeName")]
        pub node_name: String,
        #[serde(rename = "systemContainers")]
        pub system_containers: Option<Vec<ContainerStats>>,
        #[serde(rename = "startTime")]
        pub start_time: Option<String>,
        pub cpu: Option<CPUStats>,
        pub memory: Option<MemoryStats>,
        pub io: Option<IOStats>,
        pub network: Option<NetworkStats>,
        pub fs: Option<FsStats>,
        pub runtime: Option<RuntimeStats>,
        pub rlimit: Option<RlimitStats>,
        pub swap: Option<SwapStats>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RlimitStats {
        pub time: Option<String>,
        pub maxpid: Option<i64>,
        pub curproc: Option<i64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RuntimeStats {
        #[serde(rename = "imageFs")]
        pub image_fs: Option<FsStats>,
        #[serde(rename = "containerFs")]
        pub container_fs: Option<FsStats>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ProcessStats {
        pub process_count: Option<u64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PodStats {
        #[serde(rename = "podRef")]
        pub pod_ref: PodReference,
        #[serde(rename = "startTime")]
        pub start_time: Option<String>,
        pub containers: Vec<ContainerStats>,
        pub cpu: Option<CPUStats>,
        pub memory: Option<MemoryStats>,
        pub io: Option<IOStats>,
        pub network: Option<NetworkStats>,
        pub volume: Option<Vec<VolumeStats>>,
        #[serde(rename = "ephemeral-storage")]
        pub ephemeral_storage: Option<FsStats>,
        pub process_stats: Option<ProcessStats>,
        pub swap: Option<SwapStats>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ContainerStats {
        pub name: String,
        #[serde(rename = "startTime")]
        pub start_time: Option<String>,
        pub cpu: Option<CPUStats>,
        pub memory: Option<MemoryStats>,
        pub io: Option<IOStats>,
        pub accelerators: Option<Vec<AcceleratorStats>>,
        pub rootfs: Option<FsStats>,
        pub logs: Option<FsStats>,
        #[serde(rename = "userDefinedMetrics")]
        pub user_defined_metrics: Option<Vec<UserDefinedMetric>>,
        pub swap: Option<SwapStats>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PodReference {
        pub name: String,
        pub namespace: String,
        pub uid: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct InterfaceStats {
        pub name: String,
        #[serde(rename = "rxBytes")]
        pub rx_bytes: Option<u64>,
        #[serde(rename = "rxErrors")]
        pub rx_errors: Option<u64>,
        #[serde(rename = "txBytes")]
        pub tx_bytes: Option<u64>,
        #[serde(rename = "txErrors")]
        pub tx_errors: Option<u64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NetworkStats {
        pub time: Option<String>,
        // InterfaceStats, inline.
        pub name: String,
        #[serde(rename = "rxBytes")]
        pub rx_bytes: Option<u64>,
        #[serde(rename = "rxErrors")]
        pub rx_errors: Option<u64>,
        #[serde(rename = "txBytes")]
        pub tx_bytes: Option<u64>,
        #[serde(rename = "txErrors")]
        pub tx_errors: Option<u64>,
        pub interfaces: Option<Vec<InterfaceStats>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CPUStats {
        pub time: Option<String>,
        #[serde(rename = "usageNanoCores")]
        pub usage_nano_cores: Option<u64>,
        #[serde(rename = "usageCoreNanoSeconds")]
        pub usage_core_nano_seconds: Option<u64>,
        pub psi: Option<PSIStats>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MemoryStats {
        pub time: Option<String>,
        #[serde(rename = "availableBytes")]
        pub available_bytes: Option<u64>,
        #[serde(rename = "usageBytes")]
        pub usage_bytes: Option<u64>,
        #[serde(rename = "workingSetBytes")]
        pub working_set_bytes: Option<u64>,
        #[serde(rename = "rssBytes")]
        pub rss_bytes: Option<u64>,
        #[serde(rename = "pageFaults")]
        pub page_faults: Option<u64>,
        #[serde(rename = "majorPageFaults")]
        pub major_page_faults: Option<u64>,
        pub psi: Option<PSIStats>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct IOStats {
        pub time: Option<String>,
        pub psi: Option<PSIStats>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PSIStats {
        pub full: PSIData,
        pub some: PSIData,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PSIData {
        pub total: u64,
        pub avg10: f64,
        pub avg60: f64,
        pub avg300: f64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SwapStats {
        pub time: Option<String>,
        #[serde(rename = "swapAvailableBytes")]
        pub swap_available_bytes: Option<u64>,
        #[serde(rename = "swapUsageBytes")]
        pub swap_usage_bytes: Option<u64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AcceleratorStats {
        pub make: String,
        pub model: String,
        pub id: String,
        #[serde(rename = "memoryTotal")]
        pub memory_total: u64,
        #[serde(rename = "memoryUsed")]
        pub memory_used: u64,
        #[serde(rename = "dutyCycle")]
        pub duty_cycle: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct VolumeStats {
        // FsStats, inline.
        pub time: Option<String>,
        #[serde(rename = "availableBytes")]
        pub available_bytes: Option<u64>,
        #[serde(rename = "capacityBytes")]
        pub capacity_bytes: Option<u64>,
        #[serde(rename = "usedBytes")]
        pub used_bytes: Option<u64>,
        #[serde(rename = "inodesFree")]
        pub inodes_free: Option<u64>,
        pub inodes: Option<u64>,
        #[serde(rename = "inodesUsed")]
        pub inodes_used: Option<u64>,
        pub name: Option<String>,
        #[serde(rename = "pvcRef")]
        pub pvc_ref: Option<PVCReference>,
        #[serde(rename = "volumeHealthStats")]
        pub volume_health_stats: Option<VolumeHealthStats>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct VolumeHealthStats {
        pub abnormal: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PVCReference {
        pub name: String,
        pub namespace: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FsStats {
        pub time: Option<String>,
        #[serde(rename = "availableBytes")]
        pub available_bytes: Option<u64>,
        #[serde(rename = "capacityBytes")]
        pub capacity_bytes: Option<u64>,
        #[serde(rename = "usedBytes")]
        pub used_bytes: Option<u64>,
        #[serde(rename = "inodesFree")]
        pub inodes_free: Option<u64>,
        pub inodes: Option<u64>,
        #[serde(rename = "inodesUsed")]
        pub inodes_used: Option<u64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UserDefinedMetric {
        pub name: String,
        #[serde(rename = "type")]
        pub type_: String,
        pub units: String,
        pub labels: Option<std::collections::BTreeMap<String, String>>,
        pub time: Option<String>,
        pub value: f64,
    }
}

use v1alpha1::{ContainerStats, PodStats, Summary};

/// `metav1.Time` on the wire: RFC 3339, UTC, whole seconds.
fn assert_time(t: Option<&String>, what: &str) {
    let t = t.unwrap_or_else(|| panic!("{what}: no time"));
    let ok = t.len() == 20
        && t.ends_with('Z')
        && t.as_bytes()[10] == b'T'
        && t.parse::<jiff::Timestamp>().is_ok();
    assert!(ok, "{what}: {t:?} is not an RFC 3339 second");
    let ts: jiff::Timestamp = t.parse().unwrap();
    assert!(
        ts.as_second() > 1_600_000_000
            && ts <= jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5),
        "{what}: {t} is not plausible"
    );
}

fn get_summary(agent: &common::Agent, query: &str) -> (String, Summary) {
    let r = curl(&[&agent.url(&format!("/stats/summary{query}"))]);
    assert_eq!(r.status, 200, "{}\n{}", r.body, agent.stderr());
    let summary: Summary = serde_json::from_str(&r.body)
        .unwrap_or_else(|e| panic!("Summary does not decode strictly: {e}\n{}", r.body));
    (r.body, summary)
}

fn pod<'a>(s: &'a Summary, name: &str) -> Option<&'a PodStats> {
    s.pods.iter().find(|p| p.pod_ref.name == name)
}

fn container<'a>(p: &'a PodStats, name: &str) -> Option<&'a ContainerStats> {
    p.containers.iter().find(|c| c.name == name)
}

fn cpu_ns(c: &ContainerStats) -> u64 {
    c.cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds)
        .unwrap_or(0)
}

fn working_set(c: &ContainerStats) -> u64 {
    c.memory
        .as_ref()
        .and_then(|m| m.working_set_bytes)
        .unwrap_or(0)
}

/// One sample as the Python parser reads it.
#[derive(Debug, Deserialize)]
struct PySample {
    family: String,
    family_type: String,
    help: String,
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    timestamp: Option<f64>,
}

const PARSE_PY: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        ts = None if s.timestamp is None else float(s.timestamp)
        out.append({"family": fam.name, "family_type": fam.type, "help": fam.documentation,
                    "name": s.name, "labels": s.labels, "value": s.value, "timestamp": ts})
print(json.dumps(out))
"#;

/// Parses exposition text with `prometheus_client.parser` in the test venv.
fn parse_metrics(text: &str) -> Vec<PySample> {
    let Ok(python) = std::env::var("NODE_TEST_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "NODE_TEST_PYTHON is not set (the test venv with prometheus_client)"
        );
        eprintln!("skip: NODE_TEST_PYTHON not set, metrics parsed by the assertions only");
        return Vec::new();
    };
    use std::io::Write as _;
    let mut child = Command::new(python)
        .args(["-c", PARSE_PY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sample<'a>(
    samples: &'a [PySample],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a PySample> {
    samples.iter().find(|s| {
        s.name == name
            && s.labels.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// `GET /metrics/resource`: the body and the Content-Type.
fn get_metrics(agent: &common::Agent) -> (String, String) {
    let url = agent.url("/metrics/resource");
    let headers = Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{content_type}",
        ])
        .arg(&url)
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&headers.stdout).into_owned();
    let (code, content_type) = headers.split_once(' ').unwrap_or(("0", ""));
    assert_eq!(code, "200", "{}", agent.stderr());
    let r = curl(&[&url]);
    assert_eq!(r.status, 200);
    (r.body, content_type.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_and_resource_metrics_report_running_pods() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("stats_api") else {
        return;
    };
    let image = node_runtime::test_support::test_image();
    let dir = tempfile::tempdir().unwrap();
    let burner = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: burner
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  containers:
  - name: burn
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while true; do :; done\"]
"
    );
    let quiet = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: quiet
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  volumes:
  - name: scratch
    emptyDir: {{}}
  containers:
  - name: writer
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; dd if=/dev/zero of=/scratch/blob bs=1024 count=512; echo written; while true; do sleep 1; done\"]
    volumeMounts: [{{name: scratch, mountPath: /scratch}}]
  - name: idle
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]
"
    );
    // A pod on the pod network (when the test run's containerd has its CNI plugins): its
    // network figures come from its sandbox's network namespace.
    let pod_network = node_runtime::test_support::pod_subnet("stats_api").is_some();
    let netpod = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: netpod
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]
"
    );
    let spec = AgentSpec::new(dir.path(), "stats_api", &endpoint);
    let node = spec.node.clone();
    let mut spec = spec
        .config(OPEN_AUTH)
        .manifest("burner.yaml", &burner)
        .manifest("quiet.yaml", &quiet);
    if pod_network {
        spec = spec.manifest("netpod.yaml", &netpod);
    }
    let mut agent = spec.spawn();
    let netpod_name = format!("netpod-{node}");
    agent.wait_healthy(START);
    let burner_name = format!("burner-{node}");
    let quiet_name = format!("quiet-{node}");
    let list = agent.wait_pods(&[], POD_UP, |v| {
        (!pod_network || running(v, &netpod_name).is_some())
            && running(v, &burner_name).is_some()
            && running(v, &quiet_name).is_some_and(|p| {
                p["status"]["containerStatuses"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().all(|c| c["state"]["running"].is_object()))
            })
    });
    let uid_of = |name: &str| {
        running(&list, name).unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (burner_uid, quiet_uid) = (uid_of(&burner_name), uid_of(&quiet_name));

    // The Summary: both pods with their containers, CPU used, memory in use, and (after two
    // samples at least a second apart) a usage rate for the burner.
    let deadline = Instant::now() + STATS_UP;
    let (body, summary) = loop {
        let (body, s) = get_summary(&agent, "");
        let ready = pod(&s, &burner_name)
            .and_then(|p| container(p, "burn"))
            .is_some_and(|c| {
                cpu_ns(c) > 0
                    && working_set(c) > 0
                    && c.cpu.as_ref().unwrap().usage_nano_cores.unwrap_or(0) > 0
            })
            && pod(&s, &quiet_name).is_some_and(|p| {
                p.containers.len() == 2
                    && container(p, "writer")
                        .and_then(|c| c.logs.as_ref())
                        .and_then(|l| l.used_bytes)
                        .unwrap_or(0)
                        > 0
            });
        if ready {
            break (body, s);
        }
        assert!(
            Instant::now() < deadline,
            "summary never showed both pods with usage:\n{body}\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(1500));
    };

    // The node.
    let n = &summary.node;
    assert_eq!(n.node_name, node);
    assert_time(n.start_time.as_ref(), "node.startTime");
    let cpu = n.cpu.as_ref().expect("node.cpu");
    assert_time(cpu.time.as_ref(), "node.cpu.time");
    assert!(cpu.usage_core_nano_seconds.unwrap() > 0, "{body}");
    let mem = n.memory.as_ref().expect("node.memory");
    let ws = mem.working_set_bytes.unwrap();
    assert!(ws > 0 && ws <= mem.usage_bytes.unwrap(), "{body}");
    assert!(mem.available_bytes.is_some(), "{body}");
    let fs = n.fs.as_ref().expect("node.fs");
    assert!(fs.capacity_bytes.unwrap() >= fs.available_bytes.unwrap());
    assert!(fs.inodes.unwrap() > 0);
    let image_fs = n
        .runtime
        .as_ref()
        .and_then(|r| r.image_fs.as_ref())
        .expect("node.runtime.imageFs");
    assert!(image_fs.used_bytes.unwrap() > 0, "{body}");
    assert!(image_fs.capacity_bytes.unwrap() > 0, "{body}");
    let rlimit = n.rlimit.as_ref().expect("node.rlimit");
    assert!(rlimit.maxpid.unwrap() > 0 && rlimit.curproc.unwrap() > 0);
    let net = n.network.as_ref().expect("node.network");
    assert!(
        net.interfaces.as_ref().is_some_and(|i| !i.is_empty()),
        "{body}"
    );
    assert!(n.swap.is_some());

    // The burner: its pod reference, CPU and memory, its writable layer and logs.
    let bp = pod(&summary, &burner_name).unwrap();
    assert_eq!(bp.pod_ref.namespace, "default");
    assert_eq!(bp.pod_ref.uid, burner_uid);
    assert_time(bp.start_time.as_ref(), "pod.startTime");
    let burn = container(bp, "burn").unwrap();
    assert_time(burn.start_time.as_ref(), "container.startTime");
    assert!(
        burn.rootfs
            .as_ref()
            .is_some_and(|r| r.capacity_bytes.is_some()),
        "{body}"
    );
    assert!(burn.logs.is_some(), "{body}");
    let pod_cpu = bp.cpu.as_ref().expect("pod cpu");
    assert!(pod_cpu.usage_core_nano_seconds.unwrap() >= cpu_ns(burn));
    assert!(bp.memory.as_ref().unwrap().working_set_bytes.unwrap() >= working_set(burn));
    assert!(bp.ephemeral_storage.is_some(), "{body}");

    // The quiet pod: two containers, its emptyDir measured.
    let qp = pod(&summary, &quiet_name).unwrap();
    assert_eq!(qp.pod_ref.uid, quiet_uid);
    let mut names: Vec<&str> = qp.containers.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["idle", "writer"]);
    let scratch = qp
        .volume
        .as_ref()
        .and_then(|v| v.iter().find(|v| v.name.as_deref() == Some("scratch")))
        .unwrap_or_else(|| panic!("no scratch volume: {body}"));
    assert!(scratch.used_bytes.unwrap() >= 512 * 1024, "{body}");
    let eph = qp.ephemeral_storage.as_ref().unwrap();
    assert!(
        eph.used_bytes.unwrap() >= 512 * 1024,
        "emptyDir counted: {body}"
    );
    // The pod-network pod: its own interfaces, eth0 inlined; host-network pods have none.
    if pod_network {
        let np = pod(&summary, &netpod_name).unwrap_or_else(|| panic!("{body}"));
        let net = np
            .network
            .as_ref()
            .unwrap_or_else(|| panic!("no pod network: {body}"));
        assert_eq!(net.name, "eth0", "{body}");
        assert!(net.rx_bytes.is_some() && net.tx_bytes.is_some(), "{body}");
        assert_time(net.time.as_ref(), "pod.network.time");
        let names: Vec<&str> = net
            .interfaces
            .iter()
            .flatten()
            .map(|i| i.name.as_str())
            .collect();
        assert!(!names.contains(&"lo"), "{body}");
    }
    assert!(bp.network.is_none(), "host network: {body}");
    // Only this node's pods.
    assert!(
        summary.pods.iter().all(|p| p.pod_ref.name.ends_with(&node)),
        "{body}"
    );

    // The reduced form: CPU and memory only.
    let (body, reduced) = get_summary(&agent, "?only_cpu_and_memory=true");
    assert!(
        reduced.node.fs.is_none() && reduced.node.runtime.is_none(),
        "{body}"
    );
    assert!(reduced.node.cpu.is_some() && reduced.node.memory.is_some());
    let rb = pod(&reduced, &burner_name).unwrap();
    let burn = container(rb, "burn").unwrap();
    assert!(burn.rootfs.is_none() && burn.logs.is_none(), "{body}");
    assert!(cpu_ns(burn) > 0 && rb.ephemeral_storage.is_none());

    // /metrics/resource, through the Prometheus parser.
    let (text, content_type) = get_metrics(&agent);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        !text.lines().any(|l| l.starts_with("scrape_error")),
        "the deprecated scrape_error is hidden:\n{text}"
    );
    assert!(text.contains(
        "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n"
    ));
    let samples = parse_metrics(&text);
    if !samples.is_empty() {
        let burn_labels = [
            ("container", "burn"),
            ("pod", burner_name.as_str()),
            ("namespace", "default"),
        ];
        let pod_labels = [("pod", burner_name.as_str()), ("namespace", "default")];
        for (name, labels, kind) in [
            ("node_cpu_usage_seconds_total", &[][..], "counter"),
            ("node_memory_working_set_bytes", &[][..], "gauge"),
            (
                "container_cpu_usage_seconds_total",
                &burn_labels[..],
                "counter",
            ),
            (
                "container_memory_working_set_bytes",
                &burn_labels[..],
                "gauge",
            ),
            ("container_start_time_seconds", &burn_labels[..], "gauge"),
            ("pod_cpu_usage_seconds_total", &pod_labels[..], "counter"),
            ("pod_memory_working_set_bytes", &pod_labels[..], "gauge"),
            ("resource_scrape_error", &[][..], "gauge"),
        ] {
            let s = sample(&samples, name, labels)
                .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"));
            assert_eq!(s.family_type, kind, "{name}");
            assert!(s.help.starts_with("[STABLE] "), "{name}: {}", s.help);
            assert!(s.family.len() <= name.len());
            if name == "resource_scrape_error" {
                assert_eq!(s.value, 0.0);
                assert!(s.timestamp.is_none());
            } else if name == "container_start_time_seconds" {
                assert!(s.value > 1.6e9 && s.timestamp.is_none(), "{text}");
            } else {
                assert!(s.value > 0.0, "{name}: {text}");
                let ts = s
                    .timestamp
                    .unwrap_or_else(|| panic!("{name} has no timestamp"));
                let now = jiff::Timestamp::now().as_second() as f64;
                assert!((now - ts).abs() < 300.0, "{name}: timestamp {ts}");
            }
        }
        for c in ["writer", "idle"] {
            assert!(
                sample(
                    &samples,
                    "container_memory_working_set_bytes",
                    &[
                        ("container", c),
                        ("pod", quiet_name.as_str()),
                        ("namespace", "default")
                    ]
                )
                .is_some(),
                "{c}: {text}"
            );
        }

        // A counter that grows between two scrapes.
        let first = sample(&samples, "container_cpu_usage_seconds_total", &burn_labels)
            .unwrap()
            .value;
        let deadline = Instant::now() + STATS_UP;
        loop {
            std::thread::sleep(Duration::from_millis(1000));
            let (text, _) = get_metrics(&agent);
            let samples = parse_metrics(&text);
            let now = sample(&samples, "container_cpu_usage_seconds_total", &burn_labels)
                .map(|s| s.value)
                .unwrap_or(0.0);
            if now > first {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the CPU counter never grew:\n{text}"
            );
        }
    }

    drop(agent);
    remove_pods(&endpoint, &node).await;
}
