//! `nodectl pod-resources list|allocatable|get`: query the Pod Resources API of a kubelet (or
//! of node-agent) on its Unix socket, like a monitoring agent does. JSON output uses the
//! protobuf JSON field names (`podResources`, `resourceName`, `deviceIds`, `cpuIds`, ...).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use node_plugins::proto::podresources as api;
use node_plugins::proto::podresources::pod_resources_lister_client::PodResourcesListerClient;
use serde::Serialize;

use crate::output::{Format, print_structured, print_text};

/// The kubelet's default socket (`<root-dir>/pod-resources/kubelet.sock`).
const DEFAULT_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";

/// Arguments of `nodectl pod-resources`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Query,
    /// The pod-resources socket.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        default_value = "text"
    )]
    output: Format,
}

#[derive(Debug, clap::Subcommand)]
enum Query {
    /// Devices, CPUs and memory of every active pod's containers (`List`).
    List,
    /// Devices, CPUs and memory the node can hand out (`GetAllocatableResources`).
    Allocatable,
    /// One pod (`Get`).
    Get {
        /// Pod name.
        name: String,
        /// Pod namespace.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Pod {
    name: String,
    namespace: String,
    containers: Vec<Container>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    devices: Vec<Devices>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cpu_ids: Vec<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    memory: Vec<Memory>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Devices {
    resource_name: String,
    device_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    numa_nodes: Vec<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Memory {
    memory_type: String,
    size: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    numa_nodes: Vec<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Allocatable {
    devices: Vec<Devices>,
    cpu_ids: Vec<i64>,
    memory: Vec<Memory>,
}

fn nodes(t: Option<&api::TopologyInfo>) -> Vec<i64> {
    t.map(|t| t.nodes.iter().map(|n| n.id).collect())
        .unwrap_or_default()
}

fn devices(d: Vec<api::ContainerDevices>) -> Vec<Devices> {
    d.into_iter()
        .map(|d| Devices {
            numa_nodes: nodes(d.topology.as_ref()),
            resource_name: d.resource_name,
            device_ids: d.device_ids,
        })
        .collect()
}

fn memory(m: Vec<api::ContainerMemory>) -> Vec<Memory> {
    m.into_iter()
        .map(|m| Memory {
            numa_nodes: nodes(m.topology.as_ref()),
            memory_type: m.memory_type,
            size: m.size,
        })
        .collect()
}

fn pod(p: api::PodResources) -> Pod {
    Pod {
        name: p.name,
        namespace: p.namespace,
        containers: p
            .containers
            .into_iter()
            .map(|c| Container {
                name: c.name,
                devices: devices(c.devices),
                cpu_ids: c.cpu_ids,
                memory: memory(c.memory),
            })
            .collect(),
    }
}

fn join<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        return "-".to_owned();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn pods_text(pods: &[Pod]) -> String {
    let mut out = String::from("NAMESPACE\tPOD\tCONTAINER\tDEVICES\tCPUS\tMEMORY\n");
    for p in pods {
        for c in &p.containers {
            let devs: Vec<String> = c
                .devices
                .iter()
                .flat_map(|d| {
                    d.device_ids
                        .iter()
                        .map(move |id| format!("{}={id}", d.resource_name))
                })
                .collect();
            let mem: Vec<String> = c
                .memory
                .iter()
                .map(|m| format!("{}:{}", m.memory_type, m.size))
                .collect();
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\n",
                p.namespace,
                p.name,
                c.name,
                join(&devs),
                join(&c.cpu_ids),
                join(&mem)
            ));
        }
    }
    out
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(query(args))
}

async fn query(args: Args) -> anyhow::Result<()> {
    let socket = args.socket.display().to_string();
    // A missing socket fails at once instead of after the dial timeout.
    std::fs::symlink_metadata(&args.socket)
        .with_context(|| format!("connecting to the pod-resources socket {socket}"))?;
    let channel = node_plugins::connect(&args.socket, Duration::from_secs(10))
        .await
        .with_context(|| format!("connecting to the pod-resources socket {socket}"))?;
    let mut client = PodResourcesListerClient::new(channel).max_decoding_message_size(16 << 20);
    match args.command {
        Query::List => {
            let response = client
                .list(api::ListPodResourcesRequest {})
                .await
                .with_context(|| format!("List on {socket}"))?
                .into_inner();
            let pods: Vec<Pod> = response.pod_resources.into_iter().map(pod).collect();
            match args.output {
                Format::Text => print_text(&pods_text(&pods)),
                other => print_structured(&serde_json::json!({ "podResources": pods }), other),
            }
        }
        Query::Allocatable => {
            let r = client
                .get_allocatable_resources(api::AllocatableResourcesRequest {})
                .await
                .with_context(|| format!("GetAllocatableResources on {socket}"))?
                .into_inner();
            let a = Allocatable {
                devices: devices(r.devices),
                cpu_ids: r.cpu_ids,
                memory: memory(r.memory),
            };
            match args.output {
                Format::Text => {
                    let mut out = String::from("RESOURCE\tDEVICE\tNUMA\n");
                    for d in &a.devices {
                        for id in &d.device_ids {
                            out.push_str(&format!(
                                "{}\t{id}\t{}\n",
                                d.resource_name,
                                join(&d.numa_nodes)
                            ));
                        }
                    }
                    out.push_str(&format!("cpus: {}\n", join(&a.cpu_ids)));
                    for m in &a.memory {
                        out.push_str(&format!(
                            "memory: {} {} numa {}\n",
                            m.memory_type,
                            m.size,
                            join(&m.numa_nodes)
                        ));
                    }
                    print_text(&out)
                }
                other => print_structured(&a, other),
            }
        }
        Query::Get { name, namespace } => {
            let r = client
                .get(api::GetPodResourcesRequest {
                    pod_name: name.clone(),
                    pod_namespace: namespace.clone(),
                })
                .await
                .map_err(|status| anyhow::anyhow!("{}", status.message()))
                .with_context(|| format!("Get {namespace}/{name} on {socket}"))?
                .into_inner();
            let p = r
                .pod_resources
                .map(pod)
                .with_context(|| format!("Get {namespace}/{name} on {socket}: empty answer"))?;
            match args.output {
                Format::Text => print_text(&pods_text(std::slice::from_ref(&p))),
                other => print_structured(&serde_json::json!({ "podResources": p }), other),
            }
        }
    }
}
