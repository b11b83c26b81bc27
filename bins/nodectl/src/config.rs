//! `nodectl config`: load a KubeletConfiguration with drop-ins and kubelet flags, print the
//! effective configuration (every field, defaults applied) as the kubelet would run with it.

use std::path::PathBuf;

use anyhow::Context;
use node_config::{KubeletFlagArgs, Loader, Strictness};

use crate::output::{Format, print_structured};

/// Arguments of `nodectl config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// KubeletConfiguration file (the kubelet's `--config`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Drop-in directory of `*.conf` files (the kubelet's `--config-dir`).
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Reject unknown fields instead of warning about them.
    #[arg(long)]
    strict: bool,
    /// Output format (`text` is YAML here).
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    output: Format,
    /// Kubelet flags (`--port`, `--feature-gates`, `--root-dir`, ...); `--help` lists them.
    #[command(flatten)]
    kubelet: KubeletFlagArgs,
}

/// Runs `nodectl config`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let flags = args.kubelet.to_overrides()?;
    let mut loader = Loader::new().flags(flags);
    if let Some(path) = &args.config {
        loader = loader.config_file(path);
    }
    if let Some(dir) = &args.config_dir {
        loader = loader.config_dir(dir);
    }
    if args.strict {
        loader = loader.strictness(Strictness::Strict);
    }
    let loaded = loader.load().context("loading the kubelet configuration")?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    print_structured(&loaded.config, args.output)
}
