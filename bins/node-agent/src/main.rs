//! `node-agent`: a Kubernetes node agent compatible with the kubelet. The node-* crates do the
//! work; this binary parses the kubelet's flags, sets up logging and runs [`agent::run`].
//!
//! ```text
//! node-agent --config /etc/node-agent/config.yaml --kubeconfig /etc/kubernetes/kubelet.conf
//! ```
//! A fatal startup error is printed on stderr with the step that failed, and the process exits
//! with status 1.

mod agent;
mod api;
mod cli;
mod error;
mod metrics;
mod stop;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logging(&cli);
    // One TLS provider for the whole process (the HTTPS server and the API server client):
    // ring, as everywhere in this workspace. An error only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // One thread runs every loop and server: the agent's work is I/O bound, and a single
    // scheduler thread saves the cross-thread wake-ups that dominate an idle multi-threaded
    // runtime's CPU time. Blocking work (the lock file) goes to tokio's blocking pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("node-agent: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(agent::run(cli));
    // Threads blocked in a system call (the lock file watch) must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let message = node_util::error_chain(&e);
            tracing::error!(error = %message, "command failed");
            eprintln!("node-agent: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr. `RUST_LOG` wins; otherwise the kubelet's `--v` picks the level
/// (0-3 info, 4-5 debug, 6+ trace).
fn init_logging(cli: &cli::Cli) {
    let verbosity = cli
        .kubelet
        .given
        .iter()
        .rev()
        .find(|(name, _)| name == "v")
        .and_then(|(_, v)| v.parse::<u32>().ok())
        .unwrap_or(0);
    let level = match verbosity {
        0..=3 => "info",
        4..=5 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
