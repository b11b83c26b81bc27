//! `nodectl checkpoint inspect ARCHIVE [-o json] [--files] [--memory] [--search STRING]`: what
//! a container checkpoint archive holds, read in constant memory.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use node_checkpoint::{InspectOptions, Inspection, inspect_file};

use crate::output::{Format, print_structured, print_text};

/// `nodectl checkpoint`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Show a checkpoint archive: container, image, ID, runtime, created, engine, sizes; with
    /// flags its files, per-process memory and a search of the memory pages.
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// The archive (`/var/lib/kubelet/checkpoints/checkpoint-<pod>_<ns>-<ctr>-<time>.tar`).
    archive: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Format,
    /// List every file in the archive.
    #[arg(long)]
    files: bool,
    /// Show each process's memory image size.
    #[arg(long)]
    memory: bool,
    /// Search the memory pages for STRING (shows what secrets the archive carries).
    #[arg(long, value_name = "STRING")]
    search: Option<String>,
}

/// Runs `nodectl checkpoint`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Inspect(a) => inspect(a),
    }
}

fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    if a.search.as_deref() == Some("") {
        anyhow::bail!("--search: expected a non-empty string");
    }
    let mut options = InspectOptions::default()
        .with_files(a.files)
        .with_memory(a.memory);
    options.search = a.search.map(String::into_bytes);
    let report = inspect_file(&a.archive, &options)
        .with_context(|| format!("inspecting {}", a.archive.display()))?;
    match a.output {
        Format::Text => print_text(&text(&report)),
        f => print_structured(&report, f),
    }
}

/// Bytes as checkpointctl prints them (`12.3 MiB`).
fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn text(r: &Inspection) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    let id: String = dash(&r.id).chars().take(12).collect();
    let headers = [
        "CONTAINER",
        "IMAGE",
        "ID",
        "RUNTIME",
        "CREATED",
        "ENGINE",
        "CHKPT SIZE",
        "ROOT FS DIFF SIZE",
    ];
    let row = [
        dash(&r.container),
        dash(&r.image),
        id,
        dash(&r.runtime),
        dash(&r.created),
        r.engine.clone(),
        size(r.checkpoint_size),
        r.rootfs_diff_size.map_or_else(|| "-".to_owned(), size),
    ];
    let widths: Vec<usize> = headers
        .iter()
        .zip(&row)
        .map(|(h, v)| h.len().max(v.chars().count()))
        .collect();
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(s, "{c:<w$}", w = widths[i]);
            if i + 1 < cells.len() {
                s.push_str("  ");
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(&headers.map(str::to_owned));
    out.push_str(&line(&row));
    let _ = writeln!(
        out,
        "\nArchive: {} ({})\nPod: {}/{}\nCheckpointed: {}\nMemory pages: {}",
        r.archive.display(),
        size(r.archive_size),
        dash(&r.namespace),
        dash(&r.pod),
        dash(&r.checkpointed),
        size(r.memory_pages_size)
    );
    if let Some(files) = &r.files {
        let _ = writeln!(out, "\nFiles ({}):", files.len());
        for f in files {
            let _ = writeln!(out, "  {:04o} {:>12}  {}", f.mode, f.size, f.path);
        }
    }
    if let Some(procs) = &r.processes {
        let _ = writeln!(out, "\nProcess memory:");
        let _ = writeln!(
            out,
            "  {:>8}  {:>12}  {:>8}  PAGES FILE",
            "PID", "MEMORY", "PAGES"
        );
        for p in procs {
            let _ = writeln!(
                out,
                "  {:>8}  {:>12}  {:>8}  {}",
                p.pid,
                size(p.memory_bytes),
                p.mapped_pages,
                p.pages_file.as_deref().unwrap_or("-")
            );
        }
    }
    if let Some(s) = &r.search {
        let _ = writeln!(
            out,
            "\nSearch for {:?} in {} of memory pages: {} match(es)",
            s.needle,
            size(s.bytes_scanned),
            s.total_matches
        );
        for m in &s.matches {
            let pid = m.pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
            let _ = writeln!(
                out,
                "  {} offset {} (pid {pid}): {:?}",
                m.file, m.offset, m.context
            );
        }
        if s.total_matches > s.matches.len() as u64 {
            let _ = writeln!(
                out,
                "  ... {} more",
                s.total_matches - s.matches.len() as u64
            );
        }
    }
    out
}
