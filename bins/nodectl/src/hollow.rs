//! `nodectl hollow-nodes`: N simulated nodes against an API server, for control-plane scale
//! tests (the library is `node_heartbeat::hollow`). Each node registers, renews its lease and
//! reports its status at the kubelet's intervals with the agent's own loops; all of them share
//! one API client whose requests in flight are bounded. A progress line goes to stderr every
//! `--report-interval`; the final counters go to stdout when the run ends (`--duration`,
//! SIGINT or SIGTERM).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use node_config::{FlagOverrides, Quantity};
use node_heartbeat::KubeBackend;
use node_heartbeat::hollow::{Fleet, FleetConfig, FleetReport};

use crate::output::{Format, print_structured, print_text};

/// Arguments of `nodectl hollow-nodes`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kubeconfig of an identity allowed to create and patch nodes (and `nodes/status`) and to
    /// create and update leases in `kube-node-lease`.
    #[arg(long, value_name = "FILE", conflicts_with = "server")]
    kubeconfig: Option<PathBuf>,
    /// API server URL without credentials (an insecure local API server, or a test API server).
    #[arg(long, value_name = "URL", required_unless_present = "kubeconfig")]
    server: Option<String>,
    /// How many nodes to run.
    #[arg(long, value_name = "N")]
    count: u32,
    /// Node names are `<prefix><index>`, the index zero-padded to 5 digits.
    #[arg(long, value_name = "PREFIX", default_value = "hollow-node-")]
    name_prefix: String,
    /// The first index (several runs against one cluster use disjoint ranges).
    #[arg(long, value_name = "N", default_value_t = 0)]
    first_index: u32,
    /// CPUs each node reports.
    #[arg(long, value_name = "N", default_value_t = 4)]
    cpu: u32,
    /// Memory each node reports (a Kubernetes quantity).
    #[arg(long, value_name = "QUANTITY", default_value = "16Gi")]
    memory: String,
    /// `ephemeral-storage` each node reports (a Kubernetes quantity).
    #[arg(long, value_name = "QUANTITY", default_value = "100Gi")]
    ephemeral_storage: String,
    /// `maxPods`.
    #[arg(long, value_name = "N", default_value_t = 110)]
    max_pods: i64,
    /// Labels added to every node, as the kubelet's `--node-labels` (`k=v,k2=v2`).
    #[arg(long, value_name = "LABELS")]
    node_labels: Option<String>,
    /// `nodeLeaseDurationSeconds`: the lease is renewed every quarter of it.
    #[arg(long, value_name = "SECONDS", default_value_t = 40)]
    node_lease_duration_seconds: i32,
    /// `nodeStatusUpdateFrequency` (a Go duration).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    node_status_update_frequency: String,
    /// `nodeStatusReportFrequency` (a Go duration).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    node_status_report_frequency: String,
    /// Nodes started per second.
    #[arg(long, value_name = "N", default_value_t = 500)]
    start_rate: u32,
    /// API requests in flight at most, for the whole fleet (so at most this many connections).
    #[arg(long, value_name = "N", default_value_t = 32)]
    max_in_flight: u32,
    /// Timeout of each API request (a Go duration).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    request_timeout: String,
    /// Stop after this long (a Go duration); without it, run until SIGINT or SIGTERM.
    #[arg(long, value_name = "DURATION")]
    duration: Option<String>,
    /// How often to print a progress line to stderr (a Go duration; `0s`: never).
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    report_interval: String,
    /// Output format of the final counters.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Format,
}

fn go_duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let d: node_config::Duration = text
        .parse()
        .with_context(|| format!("--{flag}={text:?}: not a duration (e.g. 10s, 5m)"))?;
    Ok(d.to_std())
}

fn bytes(flag: &str, text: &str) -> anyhow::Result<u64> {
    let q = Quantity::parse(text).with_context(|| format!("--{flag}={text:?}"))?;
    let v = q.value();
    // f64 holds every quantity a node can report (up to 2^53 bytes) exactly.
    if !(1.0..=9.007_199_254_740_992e15).contains(&v) || v.fract() != 0.0 {
        anyhow::bail!("--{flag}={text:?}: must be a whole number of bytes between 1 and 8Pi");
    }
    // The range check above keeps the cast exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(v as u64)
}

fn config(args: &Args) -> anyhow::Result<FleetConfig> {
    let mut cfg = FleetConfig::new(args.name_prefix.clone(), args.count);
    cfg.first_index = args.first_index;
    cfg.num_cores = args.cpu;
    cfg.memory_bytes = bytes("memory", &args.memory)?;
    cfg.ephemeral_storage_bytes = bytes("ephemeral-storage", &args.ephemeral_storage)?;
    cfg.max_pods = args.max_pods;
    if let Some(labels) = &args.node_labels {
        let mut flags = FlagOverrides::new();
        flags
            .set("node-labels", labels)
            .with_context(|| format!("--node-labels={labels:?}"))?;
        cfg.labels = flags.kubelet_flags().node_labels;
    }
    cfg.lease_duration_seconds = args.node_lease_duration_seconds;
    cfg.update_frequency = go_duration(
        "node-status-update-frequency",
        &args.node_status_update_frequency,
    )?;
    cfg.report_frequency = go_duration(
        "node-status-report-frequency",
        &args.node_status_report_frequency,
    )?;
    cfg.start_rate = args.start_rate;
    cfg.max_in_flight = args.max_in_flight;
    cfg.validate()?;
    Ok(cfg)
}

fn progress_line(r: &FleetReport, elapsed: Duration) -> String {
    format!(
        "{:>6.0}s started {}/{} registered {} leases held {} renewals {} status patches {} requests {} failed {} longest lease gap {:.1}s overdue {}",
        elapsed.as_secs_f64(),
        r.started,
        r.nodes,
        r.registered,
        r.leases_held,
        r.lease_renewals,
        r.status_patches,
        r.requests,
        r.request_errors,
        r.max_renewal_gap_ms as f64 / 1000.0,
        r.overdue
    )
}

/// Runs `nodectl hollow-nodes`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = config(&args)?;
    let timeout = go_duration("request-timeout", &args.request_timeout)?;
    if timeout.is_zero() {
        anyhow::bail!("--request-timeout must be positive");
    }
    let duration = args
        .duration
        .as_deref()
        .map(|d| go_duration("duration", d))
        .transpose()?;
    let report_every = go_duration("report-interval", &args.report_interval)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (report, elapsed) = rt.block_on(async {
        let backend = match (&args.kubeconfig, &args.server) {
            (Some(path), _) => KubeBackend::from_kubeconfig(path, timeout).await?,
            (None, Some(url)) => {
                KubeBackend::for_url(url, timeout).with_context(|| format!("--server={url:?}"))?
            }
            (None, None) => anyhow::bail!("one of --kubeconfig or --server is required"),
        };
        let fleet = Fleet::new(backend, cfg)?;
        let handle = fleet.stats();
        let start = tokio::time::Instant::now();
        let stop = async move {
            match duration {
                Some(d) => {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        () = node_util::terminated() => {}
                    }
                }
                None => node_util::terminated().await,
            }
        };
        let progress = {
            let handle = handle.clone();
            async move {
                if report_every.is_zero() {
                    return std::future::pending().await;
                }
                let mut tick = tokio::time::interval_at(start + report_every, report_every);
                loop {
                    tick.tick().await;
                    eprintln!("{}", progress_line(&handle.snapshot(), start.elapsed()));
                }
            }
        };
        let report = tokio::select! {
            report = fleet.run(stop) => report,
            () = progress => handle.snapshot(),
        };
        Ok((report, start.elapsed()))
    })?;
    match args.output {
        Format::Text => print_text(&format!("{}\n", progress_line(&report, elapsed))),
        other => print_structured(&report, other),
    }
}
