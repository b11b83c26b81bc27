//! Output formats shared by every subcommand (`-o text|yaml|json`).

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

/// The `-o` flag of every subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text (the subcommand decides the layout).
    Text,
    /// YAML.
    Yaml,
    /// JSON, pretty-printed, for scripts.
    Json,
}

/// Writes `value` to stdout as YAML or JSON. `Format::Text` is the caller's job and is
/// treated as YAML here.
pub fn print_structured<T: Serialize>(value: &T, format: Format) -> anyhow::Result<()> {
    let text = match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(value).context("encoding JSON output")?;
            s.push('\n');
            s
        }
        Format::Yaml | Format::Text => {
            serde_saphyr::to_string(value).context("encoding YAML output")?
        }
    };
    print_text(&text)
}

/// Writes already-formatted text to stdout; a closed pipe (`| head`) is not an error.
pub fn print_text(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("writing to stdout"),
    }
}
