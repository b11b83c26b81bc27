//! Pod networking with the real `node-agent` and the test run's containerd with its CNI plugins
//! (bridge + host-local + portmap, written by `scripts/containerd.sh`): pods in their own
//! network namespace get an IP from the pod network, reported as `podIP`/`podIPs`; one pod
//! reaches another by that IP; a `hostPort` answers on the node; the sandbox gets the
//! kubelet's hostname, `resolv.conf` (clusterDNS, search path, `ndots:5`, the pod's
//! `dnsConfig`) and managed `/etc/hosts` (pod IP with FQDN, `hostAliases`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{AgentSpec, OPEN_AUTH, curl, free_port, remove_pods, running};

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(90);

/// Whether `ip` is inside `subnet` (an IPv4 CIDR).
fn in_subnet(ip: &str, subnet: &str) -> bool {
    let (net, bits) = subnet.split_once('/').unwrap();
    let (net, bits): (Ipv4Addr, u32) = (net.parse().unwrap(), bits.parse().unwrap());
    let Ok(ip) = ip.parse::<Ipv4Addr>() else {
        return false;
    };
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

/// The container's log lines (the CRI format's message part) under the agent's log dir.
fn log_lines(logs: &Path, pod: &str, container: &str) -> Vec<String> {
    let Ok(dirs) = std::fs::read_dir(logs) else {
        return Vec::new();
    };
    for d in dirs.flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        if name.contains(&format!("_{pod}_")) {
            let file = d.path().join(container).join("0.log");
            let text = std::fs::read_to_string(file).unwrap_or_default();
            return text
                .lines()
                .filter_map(|l| l.splitn(4, ' ').nth(3).map(str::to_owned))
                .collect();
        }
    }
    Vec::new()
}

fn wait_log(logs: &Path, pod: &str, container: &str, want: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines = log_lines(logs, pod, container);
        if lines.iter().any(|l| l.contains(want)) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{pod}/{container} never logged {want:?}; log: {lines:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_ips_reach_each_other_and_publish_host_ports() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("pod_network") else {
        return;
    };
    let Some(subnet) = node_runtime::test_support::pod_subnet("pod_network") else {
        return;
    };
    let image = node_runtime::test_support::test_image();
    let dir = tempfile::tempdir().unwrap();
    let host_port = free_port();
    let web = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 2
  hostname: www
  subdomain: shop
  hostAliases:
  - ip: 10.1.2.3
    hostnames: [foo.local, bar.local]
  dnsConfig:
    options:
    - name: edns0
  containers:
  - name: app
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"mkdir -p /www && echo hello-from-web > /www/index.html && cat /etc/resolv.conf && echo hostname=$(hostname) && cat /etc/hosts && echo ready && exec httpd -f -p 8080 -h /www\"]
    ports:
    - containerPort: 8080
      hostPort: {host_port}
"
    );
    let spec = AgentSpec::new(dir.path(), "pod_network", &endpoint);
    let node = spec.node.clone();
    let config = format!("{OPEN_AUTH}clusterDNS: [10.96.0.10]\nclusterDomain: cluster.local\n");
    let mut agent = spec.config(&config).manifest("web.yaml", &web).spawn();
    agent.wait_healthy(START);
    let web_name = format!("web-{node}");
    let list = agent.wait_pods(&[], POD_UP, |v| {
        running(v, &web_name).is_some_and(|p| p["status"]["podIP"].is_string())
    });
    let pod = running(&list, &web_name).unwrap();
    let ip = pod["status"]["podIP"].as_str().unwrap().to_owned();
    assert!(
        in_subnet(&ip, &subnet),
        "podIP {ip} is not in {subnet}: {pod:#}"
    );
    assert_eq!(pod["status"]["podIPs"], serde_json::json!([{ "ip": ip }]));
    assert_ne!(pod["status"]["podIP"], pod["status"]["hostIP"]);

    // The sandbox as the kubelet builds it.
    let logs = dir.path().join("logs");
    let lines = wait_log(&logs, &web_name, "app", "ready", POD_UP);
    let text = lines.join("\n");
    assert!(
        text.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{text}"
    );
    assert!(text.contains("nameserver 10.96.0.10"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("options") && l.contains("ndots:5") && l.contains("edns0")),
        "{text}"
    );
    assert!(lines.iter().any(|l| l == "hostname=www"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l == "# Kubernetes-managed hosts file."),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| *l == format!("{ip}\twww.shop.default.svc.cluster.local\twww")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l == "10.1.2.3\tfoo.local\tbar.local"),
        "{text}"
    );

    // From the node: the pod's IP, and the hostPort on the node's loopback.
    let deadline = Instant::now() + POD_UP;
    loop {
        let direct = curl(&["-m", "5", &format!("http://{ip}:8080/")]);
        let published = curl(&["-m", "5", &format!("http://127.0.0.1:{host_port}/")]);
        if direct.body.trim() == "hello-from-web" && published.body.trim() == "hello-from-web" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "web not reachable: direct {direct:?}, hostPort {published:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Another pod reaches the first by its pod IP.
    let client = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"ip -4 -o addr show eth0; while true; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 8080 && echo got-it; sleep 1; done\"]
"
    );
    std::fs::write(dir.path().join("manifests/client.yaml"), client).unwrap();
    let client_name = format!("client-{node}");
    let list = agent.wait_pods(&[], POD_UP, |v| {
        running(v, &client_name).is_some_and(|p| p["status"]["podIP"].is_string())
    });
    let client_ip = running(&list, &client_name).unwrap()["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(in_subnet(&client_ip, &subnet));
    assert_ne!(client_ip, ip);
    let lines = wait_log(&logs, &client_name, "app", "got-it", POD_UP);
    assert!(lines.iter().any(|l| l == "hello-from-web"), "{lines:#?}");
    assert!(
        lines[0].contains(&format!("inet {client_ip}/")),
        "the client's eth0 has its reported IP: {lines:#?}"
    );

    drop(agent);
    remove_pods(&endpoint, &node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_pods_report_their_ip_and_the_nodes_pod_cidr_reaches_the_runtime() {
    use node_heartbeat::testserver::TestApiServer;
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("pod_network_api") else {
        return;
    };
    let Some(subnet) = node_runtime::test_support::pod_subnet("pod_network_api") else {
        return;
    };
    let server = TestApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = common::write_kubeconfig(dir.path(), &server.url());
    let spec = AgentSpec::new(dir.path(), "pod_network_api", &endpoint)
        .config(&format!(
            "{OPEN_AUTH}{}nodeStatusUpdateFrequency: 1s\nnodeStatusReportFrequency: 1s\n",
            common::NO_PRESSURE
        ))
        .args(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    server
        .create_pod(common::api_pod("net", &node, r#"{"hostNetwork": false}"#))
        .unwrap();
    let deadline = Instant::now() + POD_UP;
    let status = loop {
        let st = server.pod("default", "net").and_then(|p| p.status);
        if let Some(st) = st.filter(|s| s.phase.as_deref() == Some("Running") && s.pod_ip.is_some())
        {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "net never Running with an IP:\n{}",
            agent.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ip = status.pod_ip.clone().unwrap();
    assert!(in_subnet(&ip, &subnet), "{ip} not in {subnet}");
    assert_eq!(
        status.pod_ips.unwrap()[0].ip,
        ip,
        "podIPs starts with podIP"
    );
    assert_ne!(status.host_ip, Some(ip));

    // The IPAM controller's CIDR on the Node goes to the runtime (UpdateRuntimeConfig).
    assert!(server.modify_node(&node, |n| {
        let spec = n.spec.get_or_insert_with(Default::default);
        spec.pod_cidr = Some("10.99.7.0/24".into());
        spec.pod_cidrs = Some(vec!["10.99.7.0/24".into()]);
    }));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !agent
        .stderr()
        .contains("updated the runtime's pod CIDR pod_cidr=10.99.7.0/24")
    {
        assert!(
            Instant::now() < deadline,
            "pod CIDR never sent:\n{}",
            agent.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(agent);
    remove_pods(&endpoint, &node).await;
}
