//! `nodectl`: the node operator's tool box.
//!
//! Each subcommand lives in its own module and exposes `Args` (clap) and `run(args) -> Result<()>`.
//! Subcommands print human text (or YAML) by default and JSON with `-o json`; on bad input they
//! print one line naming the file and exit non-zero.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `--version`: the project version and the Kubernetes version the toolkit implements.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (Kubernetes ",
    node_config::kubernetes_version!(),
    ")"
);

mod checkpoint;
mod config;
mod hollow;
mod node_status;
mod output;
mod pod_resources;
mod preflight;
mod seccomp;
mod state;

/// The node operator's tool box.
#[derive(Debug, Parser)]
#[command(name = "nodectl", version = VERSION, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a KubeletConfiguration with drop-ins and flags and print the effective configuration.
    Config(config::Args),
    /// Check the kernel, cgroups, PSI, swap and kernel features before joining a cluster.
    Preflight(preflight::Args),
    /// Validate, compile, explain and measure OCI seccomp profiles.
    Seccomp(seccomp::Args),
    /// Inspect container checkpoint archives (`/var/lib/kubelet/checkpoints/*.tar`).
    Checkpoint(checkpoint::Args),
    /// Verify, show and checksum kubelet state files with the kubelet's own checksums.
    State(state::Args),
    /// Query the Pod Resources API socket (devices, CPUs and memory per pod).
    #[command(name = "pod-resources")]
    PodResources(pod_resources::Args),
    /// Show the Node (labels, taints, addresses, capacity, allocatable, info, conditions) a
    /// kubelet would register for this machine.
    #[command(name = "node-status")]
    NodeStatus(node_status::Args),
    /// Run N simulated nodes against an API server (registration, leases, status at the
    /// kubelet's intervals over one shared client), for control-plane scale tests.
    #[command(name = "hollow-nodes")]
    HollowNodes(hollow::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Config(args) => config::run(args),
        Command::Preflight(args) => preflight::run(args),
        Command::Seccomp(args) => seccomp::run(args),
        Command::Checkpoint(args) => checkpoint::run(args),
        Command::NodeStatus(args) => node_status::run(args),
        Command::State(args) => state::run(args),
        Command::PodResources(args) => pod_resources::run(args),
        Command::HollowNodes(args) => hollow::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the whole cause chain, outermost first.
            eprintln!("nodectl: {err:#}");
            ExitCode::FAILURE
        }
    }
}
