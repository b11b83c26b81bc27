//! `nodectl node-status`: the Node a kubelet would register for this machine (or a root tree):
//! labels (with `--node-labels` validated by the kubelet's prefix rules), registration taints,
//! addresses, capacity and allocatable (config reservations and hard eviction applied), nodeInfo
//! and the conditions with the kubelet's reasons. nodectl does not talk to the container
//! runtime, so unless `--assume-runtime-ready` is given Ready is False with the kubelet's
//! start-up message, as on a kubelet whose runtime has not answered yet.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use node_config::{KubeletFlagArgs, Loader};
use node_heartbeat::k8s_openapi::api::core::v1::Node;
use node_heartbeat::{
    AddressInputs, RuntimeHealth, dns_lookup, inputs_for_root, node_addresses, normalize_hostname,
    parse_node_ips, probe_network, registration_taints, validate_node_labels,
};

use crate::output::{Format, print_structured, print_text};

/// Arguments of `nodectl node-status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read node facts from this directory instead of `/` (a fixture tree laid out like `/`).
    /// Network interfaces are only probed on `/`.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// KubeletConfiguration file (the kubelet's `--config`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Drop-in directory (the kubelet's `--config-dir`).
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Report the runtime and network as ready (nodectl does not query CRI).
    #[arg(long)]
    assume_runtime_ready: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Format,
    /// Kubelet flags (`--hostname-override`, `--node-ip`, `--node-labels`, `--root-dir`, ...).
    #[command(flatten)]
    kubelet: KubeletFlagArgs,
}

fn hostname(root: &Path, flag: Option<&str>) -> anyhow::Result<String> {
    if let Some(h) = flag {
        return Ok(normalize_hostname(h));
    }
    let path = root.join("proc/sys/kernel/hostname");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(normalize_hostname(&text))
}

/// Runs `nodectl node-status`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.root.is_dir() {
        anyhow::bail!("--root {}: not a directory", args.root.display());
    }
    let flags = args.kubelet.to_overrides()?;
    let mut loader = Loader::new().flags(flags);
    if let Some(path) = &args.config {
        loader = loader.config_file(path);
    }
    if let Some(dir) = &args.config_dir {
        loader = loader.config_dir(dir);
    }
    let loaded = loader.load().context("loading the kubelet configuration")?;
    let kf = &loaded.flags;
    validate_node_labels(&kf.node_labels)?;
    let host = hostname(&args.root, kf.hostname_override.as_deref())?;
    let node_ips = parse_node_ips(kf.node_ip.as_deref().unwrap_or(""))?;
    let mut inputs = inputs_for_root(&args.root, &kf.root_dir, &host, &loaded.config)?;
    let live = args.root == Path::new("/");
    let (interface_ips, default_route_ips) = if live {
        probe_network(&args.root)
    } else {
        (Vec::new(), Vec::new())
    };
    let addr_inputs = AddressInputs {
        node_name: host.clone(),
        hostname: host.clone(),
        hostname_overridden: kf.hostname_override.is_some(),
        node_ips,
        interface_ips,
        default_route_ips,
    };
    let no_dns = |_: &str| Vec::new();
    let resolve: &dyn Fn(&str) -> Vec<std::net::IpAddr> = if live { &dns_lookup } else { &no_dns };
    inputs.addresses = match node_addresses(&addr_inputs, resolve) {
        Ok(a) => a,
        // Without an IP the kubelet still publishes the Hostname address.
        Err(e) if !live || kf.node_ip.is_none() => {
            eprintln!("warning: {e}");
            vec![node_heartbeat::k8s_openapi::api::core::v1::NodeAddress {
                type_: "Hostname".into(),
                address: host.clone(),
            }]
        }
        Err(e) => return Err(e.into()),
    };
    if args.assume_runtime_ready {
        inputs.runtime_health = RuntimeHealth::healthy(Instant::now());
    }
    let taints = registration_taints(&loaded.config.register_with_taints, true);
    let node: Node = inputs.initial_node(
        &host,
        &kf.node_labels,
        taints,
        node_heartbeat::k8s_openapi::jiff::Timestamp::now(),
        Instant::now(),
    )?;
    match args.output {
        Format::Text => print_text(&to_text(&node)),
        other => print_structured(&node, other),
    }
}

fn to_text(node: &Node) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let name = node.metadata.name.clone().unwrap_or_default();
    let _ = writeln!(s, "Node {name}");
    for (k, v) in node.metadata.labels.clone().unwrap_or_default() {
        let _ = writeln!(s, "  label {k}={v}");
    }
    for t in node
        .spec
        .as_ref()
        .and_then(|sp| sp.taints.clone())
        .unwrap_or_default()
    {
        let _ = writeln!(
            s,
            "  taint {}={}:{}",
            t.key,
            t.value.unwrap_or_default(),
            t.effect
        );
    }
    let st = node.status.clone().unwrap_or_default();
    for a in st.addresses.unwrap_or_default() {
        let _ = writeln!(s, "  address {} {}", a.type_, a.address);
    }
    let _ = writeln!(s, "  {:<22} {:<16} ALLOCATABLE", "RESOURCE", "CAPACITY");
    let alloc = st.allocatable.unwrap_or_default();
    for (k, v) in st.capacity.unwrap_or_default() {
        let a = alloc.get(&k).map_or("-", |q| q.0.as_str());
        let _ = writeln!(s, "  {k:<22} {:<16} {a}", v.0);
    }
    if let Some(i) = st.node_info {
        let _ = writeln!(
            s,
            "  machineID {}  systemUUID {}  bootID {}",
            i.machine_id, i.system_uuid, i.boot_id
        );
        let _ = writeln!(
            s,
            "  kernel {}  osImage {}  {}/{}",
            i.kernel_version, i.os_image, i.operating_system, i.architecture
        );
    }
    for c in st.conditions.unwrap_or_default() {
        let _ = writeln!(
            s,
            "  {:<15} {:<6} {:<30} {}",
            c.type_,
            c.status,
            c.reason.unwrap_or_default(),
            c.message.unwrap_or_default()
        );
    }
    s
}
