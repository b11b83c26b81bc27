//! clap integration (feature `clap`): every kubelet flag in [`KUBELET_FLAGS`] as a clap
//! argument, so binaries accept the kubelet's exact flag names and `--help` lists them.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::error::ConfigError;
use crate::flags::{FlagKind, FlagOverrides, KUBELET_FLAGS};

/// The kubelet flags given on a command line, in the order clap saw them per flag.
/// Flatten it into a clap `Parser` with `#[command(flatten)]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeletFlagArgs {
    /// `(name, value)` pairs of flags given on the command line (not defaults).
    pub given: Vec<(String, String)>,
}

impl KubeletFlagArgs {
    /// Validates the values and turns them into [`FlagOverrides`].
    pub fn to_overrides(&self) -> Result<FlagOverrides, ConfigError> {
        let mut overrides = FlagOverrides::new();
        for (name, value) in &self.given {
            overrides.set(name, value)?;
        }
        Ok(overrides)
    }
}

fn value_name(kind: FlagKind) -> &'static str {
    match kind {
        FlagKind::Bool => "BOOL",
        FlagKind::Int => "INT",
        FlagKind::String => "STRING",
        FlagKind::Duration => "DURATION",
        FlagKind::List => "LIST",
        FlagKind::Map => "KEY=VALUE,...",
        FlagKind::LessThanMap => "SIGNAL<QUANTITY,...",
        FlagKind::FeatureGates => "NAME=BOOL,...",
        FlagKind::Taints => "KEY[=VALUE]:EFFECT,...",
    }
}

impl clap::FromArgMatches for KubeletFlagArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = Vec::new();
        for spec in KUBELET_FLAGS {
            if matches.value_source(spec.name) != Some(ValueSource::CommandLine) {
                continue;
            }
            for value in matches.get_many::<String>(spec.name).into_iter().flatten() {
                given.push((spec.name.to_owned(), value.clone()));
            }
        }
        Ok(Self { given })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for KubeletFlagArgs {
    fn augment_args(cmd: Command) -> Command {
        KUBELET_FLAGS.iter().fold(cmd, |cmd, spec| {
            let mut arg = Arg::new(spec.name)
                .long(spec.name)
                .value_name(value_name(spec.kind))
                .action(ArgAction::Append)
                .help_heading("Kubelet flags (override --config and --config-dir)")
                .hide_short_help(true);
            if spec.kind == FlagKind::Bool {
                // `--fail-swap-on` alone means true; `--fail-swap-on=false` turns it off.
                arg = arg
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true");
            }
            cmd.arg(arg)
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}
