//! `nodectl state verify|show|checksum FILE [--kind KIND]`: kubelet state files checked with
//! the kubelet's own checksums.
//!
//! The kind is taken from the file name (`cpu_manager_state`, `kubelet_internal_checkpoint`,
//! `image_manager/pulled/sha256-...`, ...) unless `--kind` names it.

use std::path::{Path, PathBuf};

use node_state::{StateDocument, StateKind, checksum_of_file};
use serde::Serialize;

use crate::output::{Format, print_structured, print_text};

/// `nodectl state`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Verify a state file: exit 0 when the kubelet would accept it, else print why
    /// (`checkpoint is corrupted: expected N, actual M`, or the parse error) and exit 1.
    Verify(FileArgs),
    /// Print a state file's decoded content.
    Show(FileArgs),
    /// Print, as a bare decimal number, the checksum this tool would store for the file's data
    /// (also for a file whose stored checksum is wrong).
    Checksum(FileArgs),
}

#[derive(Debug, clap::Args)]
struct FileArgs {
    /// The state file (e.g. `/var/lib/kubelet/cpu_manager_state`).
    file: PathBuf,
    /// The file kind, when the name does not tell it: cpu-manager, memory-manager, dra-manager,
    /// device-manager, allocated-pods, actuated-pods, graceful-shutdown, image-pull-intent,
    /// image-pulled-record (the kubelet's file names are accepted too).
    #[arg(long, value_parser = parse_kind)]
    kind: Option<StateKind>,
    /// Output format (`checksum` always prints a bare number).
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Format,
}

fn parse_kind(s: &str) -> Result<StateKind, String> {
    s.parse::<StateKind>().map_err(|e| e.to_string())
}

/// Runs `nodectl state`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Verify(a) => verify(&a),
        Command::Show(a) => show(&a),
        Command::Checksum(a) => checksum(&a),
    }
}

#[derive(Serialize)]
struct Verdict<'a> {
    file: &'a Path,
    kind: StateKind,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<u64>,
}

fn format_of(doc: &StateDocument) -> Option<String> {
    match doc {
        StateDocument::CpuManager(s) => Some(format!("{:?}", s.format)),
        StateDocument::MemoryManager(s) => Some(format!("{:?}", s.format)),
        StateDocument::AllocatedPods(s) | StateDocument::ActuatedPods(s)
            if !s.version.is_empty() =>
        {
            Some(s.version.clone())
        }
        StateDocument::ImagePullIntent(r) => Some(r.api_version.clone()),
        StateDocument::ImagePulledRecord(r) => Some(r.api_version.clone()),
        _ => None,
    }
}

fn verify(a: &FileArgs) -> anyhow::Result<()> {
    let doc = StateDocument::read(&a.file, a.kind)?;
    let verdict = Verdict {
        file: &a.file,
        kind: doc.kind(),
        valid: true,
        format: format_of(&doc),
        checksum: doc.stored_checksum(),
    };
    match a.output {
        Format::Text => {
            let mut line = format!("{}: valid {}", a.file.display(), verdict.kind);
            if let Some(f) = &verdict.format {
                line.push_str(&format!(" ({f})"));
            }
            match verdict.checksum {
                Some(c) => line.push_str(&format!(", checksum {c}\n")),
                None => line.push_str(", no checksum\n"),
            }
            print_text(&line)
        }
        f => print_structured(&verdict, f),
    }
}

#[derive(Serialize)]
struct Shown<'a> {
    file: &'a Path,
    #[serde(flatten)]
    document: &'a StateDocument,
}

fn show(a: &FileArgs) -> anyhow::Result<()> {
    let doc = StateDocument::read(&a.file, a.kind)?;
    print_structured(
        &Shown {
            file: &a.file,
            document: &doc,
        },
        a.output,
    )
}

fn checksum(a: &FileArgs) -> anyhow::Result<()> {
    let (_, sum) = checksum_of_file(&a.file, a.kind)?;
    print_text(&format!("{sum}\n"))
}
