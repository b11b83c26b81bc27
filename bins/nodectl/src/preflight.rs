//! `nodectl preflight`: will this node run a kubelet, and which kernel features does it really
//! have? Probes the live system (or `--root DIR`, a tree laid out like `/`) and prints the
//! system-validators lines, the feature table and the verdict. Exits non-zero when a required
//! check fails.

use std::path::PathBuf;

use anyhow::bail;
use node_kernel::{EvalOptions, HostRoot, PreflightOptions, ProbeOptions, preflight};

use crate::output::{Format, print_structured, print_text};

/// Arguments of `nodectl preflight`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Probe this directory instead of `/` (a chroot, a mounted image, a fixture tree). Probes
    /// that need the live kernel (syscalls, test mounts, `nft --version`) only run on `/`.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Format,
    /// The kubelet's failSwapOn: swap on fails preflight.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    fail_swap_on: bool,
    /// The kubelet's failCgroupV1 (default true since 1.35): a cgroup v1 host fails preflight.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    fail_cgroup_v1: bool,
    /// Do not run `nft --version`.
    #[arg(long)]
    no_nft: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.root.is_dir() {
        bail!("--root {}: not a directory", args.root.display());
    }
    let root = HostRoot::new(&args.root);
    let opts = PreflightOptions::default()
        .with_fail_swap_on(args.fail_swap_on)
        .with_fail_cgroup_v1(args.fail_cgroup_v1)
        .with_eval(EvalOptions::from_env())
        .with_probe(
            ProbeOptions::default()
                .with_run_nft(!args.no_nft)
                .with_live_probes(true),
        );
    let report = preflight(&root, opts);
    match args.output {
        Format::Text => print_text(&report.to_text())?,
        other => print_structured(&report, other)?,
    }
    if !report.passed {
        bail!(
            "preflight failed on {}: {}",
            args.root.display(),
            report.errors.join("; ")
        );
    }
    Ok(())
}
