//! `embedder`: a node agent of its own, built on the node-* crates the way a user's agent (an
//! edge agent, a virtual kubelet) would be: outside the workspace, on public APIs only, with its
//! own flags and its own main loop.
//!
//! It runs the static pods of a directory on a CRI runtime (node-runtime) and keeps a Node and
//! its Lease up to date on an API server (node-heartbeat). On SIGTERM or SIGINT the Node turns
//! NotReady ("node is shutting down"), every pod is stopped (each container with its grace
//! period) and removed, the heartbeat stops, and the process exits 0.
//!
//! ```text
//! embedder --kubeconfig /etc/kubernetes/kubelet.conf \
//!     --cri-endpoint unix:///run/containerd/containerd.sock \
//!     --manifest-dir /etc/kubernetes/manifests --root-dir /var/lib/embedder
//! ```
//! `--api-server URL` replaces `--kubeconfig` for a server that needs no credentials (a local
//! test server, `kubectl proxy`). Logs go to stderr; `RUST_LOG` sets the level (default info).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use node_heartbeat::{
    AddressInputs, Heartbeat, KubeBackend, LeaseConfig, RuntimeHealth, RuntimeVersion,
    SharedInputs, StatusConfig, dns_lookup, inputs_for_root, node_addresses, normalize_hostname,
};
use node_runtime::{
    ClientOptions, CriClient, DirWatch, NodePaths, PodManager, PodRegistry, RuntimeWatch,
    StaticPodSource, SyncOptions, SyncReport,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::time::Instant;

/// Pod sync passes while a pod has work to do, or when the runtime reports no events.
const BUSY_PERIOD: Duration = Duration::from_secs(1);
/// Pod sync passes while everything is settled and the runtime's events are followed.
const SETTLED_PERIOD: Duration = Duration::from_secs(10);
/// Manifests are re-read at least this often even when the directory watch is quiet (the
/// kubelet's `fileCheckFrequency`).
const FILE_CHECK_PERIOD: Duration = Duration::from_secs(20);
/// After a runtime event, passes stay [`BUSY_PERIOD`] apart for this long: containerd reports a
/// task's exit before its CRI plugin shows the container exited.
const EVENT_FOLLOW_UP: Duration = Duration::from_secs(3);
/// How long the runtime's events are left to settle before the pass they trigger.
const EVENT_SETTLE: Duration = Duration::from_millis(100);
/// How often the runtime's `Status` feeds the Node's Ready condition.
const RUNTIME_STATUS_PERIOD: Duration = Duration::from_secs(5);
/// The API server client's timeout (the kubelet's heartbeat client: 10 s).
const API_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest the pods may take to stop and be removed on shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// A node agent built on the node-* crates: static pods on a CRI runtime, Node status and
/// Lease on an API server.
#[derive(Debug, Parser)]
#[command(name = "embedder", version)]
struct Args {
    /// Kubeconfig of the API server to register with.
    #[arg(
        long,
        required_unless_present = "api_server",
        conflicts_with = "api_server"
    )]
    kubeconfig: Option<PathBuf>,
    /// URL of an API server that needs no credentials (instead of --kubeconfig).
    #[arg(long)]
    api_server: Option<String>,
    /// The CRI runtime's endpoint.
    #[arg(long, default_value = node_config::DEFAULT_CONTAINER_RUNTIME_ENDPOINT)]
    cri_endpoint: String,
    /// Directory of static pod manifests.
    #[arg(long)]
    manifest_dir: PathBuf,
    /// The agent's root directory (pod volumes; created if missing).
    #[arg(long)]
    root_dir: PathBuf,
    /// Container logs directory (created if missing).
    #[arg(long, default_value = node_config::DEFAULT_POD_LOGS_DIR)]
    pod_logs_dir: PathBuf,
    /// The node name (default: the host name, lower-cased).
    #[arg(long)]
    node_name: Option<String>,
    /// The Lease's duration; it is renewed every quarter of it.
    #[arg(long, default_value_t = 40)]
    node_lease_duration_seconds: i32,
    /// How often the Node's status is computed and sent when it changed (Go duration).
    #[arg(long, default_value = "10s")]
    node_status_update_frequency: node_config::Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // The API server client speaks TLS through rustls: one provider for the process (an error
    // only means one is installed already).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("embedder: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embedder: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let hostname = node_heartbeat::hostname(None)?;
    let node = match &args.node_name {
        Some(n) => normalize_hostname(n),
        None => hostname.clone(),
    };
    anyhow::ensure!(!node.is_empty(), "empty node name: set --node-name");
    for dir in [&args.root_dir, &args.pod_logs_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }

    // The container runtime and its change events.
    let cri = CriClient::connect(&args.cri_endpoint, &ClientOptions::default())
        .await
        .with_context(|| format!("container runtime at {}", args.cri_endpoint))?;
    let version = cri.version().clone();
    tracing::info!(
        runtime = %version.runtime_name,
        version = %version.runtime_version,
        node = %node,
        "container runtime connected"
    );
    let events = RuntimeWatch::start(&cri);

    // The API server.
    let backend = Arc::new(match (&args.kubeconfig, &args.api_server) {
        (Some(path), _) => KubeBackend::from_kubeconfig(path, API_TIMEOUT)
            .await
            .with_context(|| format!("kubeconfig {}", path.display()))?,
        (None, Some(url)) => {
            KubeBackend::for_url(url, API_TIMEOUT).with_context(|| format!("API server {url}"))?
        }
        (None, None) => anyhow::bail!("--kubeconfig or --api-server is required"),
    });

    // Pods: the static pod directory, synced onto the runtime by this loop.
    let paths = NodePaths {
        root_dir: args.root_dir.clone(),
        pod_logs_dir: args.pod_logs_dir.clone(),
    };
    let mut manager = PodManager::new(
        cri.clone(),
        StaticPodSource::new(&args.manifest_dir, &node),
        SyncOptions::new(&node, paths),
    );
    let registry = manager.registry();
    let mut manifests = DirWatch::new(&args.manifest_dir);

    // Heartbeat: this machine's status (the kubelet's defaults for capacity and eviction
    // thresholds), the runtime's version and health, registered and renewed by two tasks.
    let status = node_inputs(&node, &hostname, &args.root_dir, &version)?;
    let shared = SharedInputs::new(status, hostname.clone());
    let (heartbeat_stop, heartbeat_stopped) = watch::channel(false);
    let heartbeat = Heartbeat::start(
        backend,
        shared.clone(),
        StatusConfig::new(&node).with_update_frequency(args.node_status_update_frequency.to_std()),
        LeaseConfig::new(&node, args.node_lease_duration_seconds),
        &heartbeat_stopped,
    );

    // The main loop: a pod sync pass when it is due (sooner after a runtime event or a
    // manifest change), the runtime's health every few seconds, until a signal.
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut runtime_tick = tokio::time::interval(RUNTIME_STATUS_PERIOD);
    runtime_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_pass = Instant::now();
    let mut rescan = true;
    let mut last_rescan = Instant::now();
    let mut last_event: Option<Instant> = None;
    let mut pods = PodLog::default();
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = runtime_tick.tick() => runtime_health(&cri, &shared).await,
            () = events.changed() => {
                last_event = Some(Instant::now());
                next_pass = next_pass.min(Instant::now() + EVENT_SETTLE);
            }
            () = manifests.changed() => {
                rescan = true;
                next_pass = next_pass.min(Instant::now() + EVENT_SETTLE);
            }
            () = tokio::time::sleep_until(next_pass) => {
                if rescan || !manifests.is_active() || last_rescan.elapsed() >= FILE_CHECK_PERIOD {
                    rescan = true;
                    last_rescan = Instant::now();
                }
                let report = manager.sync(rescan).await;
                rescan = false;
                pods.log(&report, &registry);
                let following = last_event.is_some_and(|t| t.elapsed() < EVENT_FOLLOW_UP);
                let period = if report.settled && events.is_live() && !following {
                    SETTLED_PERIOD
                } else {
                    BUSY_PERIOD
                };
                next_pass = Instant::now() + period;
            }
        }
    }

    // Shutdown: NotReady first, then the pods, then the heartbeat (the Lease is renewed while
    // the pods stop).
    tracing::info!("stopping: removing the pods");
    shared.update(|i| {
        i.runtime_health
            .shutdown_errors
            .push("node is shutting down".to_owned());
    });
    let removed = tokio::time::timeout(SHUTDOWN_TIMEOUT, manager.remove_all()).await;
    let _ = heartbeat_stop.send(true);
    heartbeat.wait().await;
    match removed {
        Ok(Ok(())) => {
            tracing::info!("pods removed; stopped");
            Ok(())
        }
        Ok(Err(e)) => Err(anyhow::Error::new(e).context("removing the pods")),
        Err(_) => anyhow::bail!("the pods did not stop within {SHUTDOWN_TIMEOUT:?}"),
    }
}

/// The Node's status inputs read from this machine: `/proc`, `/sys`, `/etc`, the root dir's
/// filesystem, the network interfaces.
fn node_inputs(
    node: &str,
    hostname: &str,
    root_dir: &Path,
    version: &node_runtime::RuntimeVersion,
) -> anyhow::Result<node_heartbeat::NodeStatusInputs> {
    // The kubelet's defaults (maxPods 110, evictionHard, no reservations): a zero-valued
    // configuration, defaulted.
    let mut config = node_config::KubeletConfiguration::default();
    node_config::set_defaults(&mut config, &node_config::FeatureGates::default());
    let mut inputs = inputs_for_root(Path::new("/"), root_dir, node, &config)
        .context("reading the node's facts")?;
    let addresses = AddressInputs::probe(Path::new("/"), node, hostname, false, Vec::new());
    inputs.addresses = node_addresses(&addresses, &dns_lookup).context("the node's addresses")?;
    inputs.runtime_version = Some(RuntimeVersion {
        name: version.runtime_name.clone(),
        version: version.runtime_version.clone(),
    });
    // This agent serves no kubelet API.
    inputs.kubelet_port = 0;
    inputs.runtime_health = RuntimeHealth::healthy(std::time::Instant::now());
    Ok(inputs)
}

/// Feeds the runtime's `Status` into the Ready condition (the kubelet's `updateRuntimeUp`): a
/// runtime that stops answering turns the node NotReady after the kubelet's 30 s.
async fn runtime_health(cri: &CriClient, shared: &SharedInputs) {
    let conditions = match cri.status().await {
        Ok(c) => c,
        Err(e) => {
            let e = anyhow::Error::new(e);
            tracing::warn!(error = %format!("{e:#}"), "container runtime status check failed");
            return;
        }
    };
    shared.runtime_answered(
        std::time::Instant::now(),
        node_runtime::runtime_not_ready(&conditions),
    );
}

/// Logs what each pass did and each pod's state when it changes.
#[derive(Default)]
struct PodLog {
    last: BTreeMap<String, String>,
    errors: Vec<String>,
}

impl PodLog {
    fn log(&mut self, report: &SyncReport, registry: &PodRegistry) {
        for pod in &report.sandboxes_created {
            tracing::info!(pod = %pod, "pod sandbox started");
        }
        for c in &report.containers_started {
            tracing::info!(container = %c, "container started");
        }
        for pod in &report.pods_removed {
            tracing::info!(pod = %pod, "pod removed");
        }
        // An error is logged when it appears, not on every pass while it lasts.
        for e in report.errors.iter().filter(|e| !self.errors.contains(e)) {
            tracing::warn!(error = %e, "pod sync");
        }
        self.errors.clone_from(&report.errors);
        let now: BTreeMap<String, String> = registry
            .list()
            .into_iter()
            .map(|p| {
                let containers: Vec<String> = p
                    .containers
                    .iter()
                    .map(|c| format!("{}={:?}", c.name, c.state))
                    .collect();
                (
                    format!("{}/{}", p.namespace, p.name),
                    format!("{:?} {}", p.phase, containers.join(" ")),
                )
            })
            .collect();
        for (pod, state) in &now {
            if self.last.get(pod) != Some(state) {
                tracing::info!(pod = %pod, state = %state, "pod");
            }
        }
        self.last = now;
    }
}
