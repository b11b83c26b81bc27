//! `nodectl config`: load a KubeletConfiguration with drop-ins and kubelet flags, print the
//! effective configuration (every field, defaults applied) as the kubelet would run with it;
//! with `--explain`, the fields node-agent accepts but does not act on, whether this
//! configuration sets them, and what the agent does instead.

use std::path::PathBuf;

use anyhow::Context;
use node_config::{KubeletFlagArgs, Loader, Strictness};

use crate::output::{Format, print_structured, print_text};

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
    /// List the fields node-agent accepts but does not act on (`set` when this configuration
    /// sets them, as the agent's startup warning does) instead of the configuration.
    #[arg(long)]
    explain: bool,
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
    if args.explain {
        return explain(&loaded.config, args.output);
    }
    print_structured(&loaded.config, args.output)
}

#[derive(serde::Serialize)]
struct Explained {
    field: &'static str,
    set: bool,
    note: &'static str,
}

fn explain(config: &node_config::KubeletConfiguration, format: Format) -> anyhow::Result<()> {
    let set = node_config::support::set_fields(config)
        .context("comparing the configuration with the defaults")?;
    let rows: Vec<Explained> = node_config::support::NOT_ACTED_ON
        .iter()
        .map(|f| Explained {
            field: f.name,
            set: set.iter().any(|s| s == f.name),
            note: f.note,
        })
        .collect();
    if format != Format::Text {
        return print_structured(&rows, format);
    }
    let width = rows.iter().map(|r| r.field.len()).max().unwrap_or(0);
    let mut text = String::from("fields node-agent accepts but does not act on:\n");
    for r in &rows {
        let mark = if r.set { "set    " } else { "default" };
        text.push_str(&format!("{:width$}  {mark}  {}\n", r.field, r.note));
    }
    print_text(&text)
}
