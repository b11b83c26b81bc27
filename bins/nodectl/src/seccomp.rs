//! `nodectl seccomp validate|compile|explain|stats PROFILE`: check an OCI seccomp profile as
//! runc/crun would, compile it to BPF (optionally shaped for a workload's syscall mix,
//! `--weights`), explain one syscall's decision, and measure the filter.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use node_seccomp::{
    Arch, CompileOptions, DockerContext, DockerProfile, Profile, Program, SyscallMix,
};
use serde::Serialize;

use crate::output::{Format, print_structured, print_text};

/// `nodectl seccomp`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

/// How a profile is read.
#[derive(Debug, clap::Args)]
struct Source {
    /// The profile (OCI `LinuxSeccomp` JSON).
    profile: PathBuf,
    /// Read a Docker/containers-common profile (`archMap`, `includes`/`excludes`) and resolve
    /// it for the first --arch (or the native one), the --cap set and --kernel.
    #[arg(long)]
    docker: bool,
    /// Capability the container holds (repeatable; with --docker). Default: Docker's set.
    #[arg(long = "cap", value_name = "CAP_NAME")]
    caps: Vec<String>,
    /// Kernel version for `minKernel` conditions (with --docker), e.g. 6.1.
    #[arg(long, value_name = "MAJOR.MINOR")]
    kernel: Option<String>,
    /// Architecture(s) to compile for: x86_64, x86, x32, aarch64 or SCMP_ARCH_* (repeatable).
    /// Default: the profile's supported architectures, else the native one.
    #[arg(long = "arch", value_name = "ARCH")]
    arches: Vec<String>,
}

/// `--weights`: shape the filter's search tree for a workload's syscall mix.
#[derive(Debug, clap::Args)]
struct Weights {
    /// Build the search tree for this syscall mix (hot syscalls nearest the root; the same
    /// decisions): an `strace -c` summary table or a JSON `{"syscall": count}` map, names of
    /// the first architecture compiled.
    #[arg(long = "weights", value_name = "FILE")]
    file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Validate a profile as runc/crun would; list unknown syscalls.
    Validate {
        #[command(flatten)]
        source: Source,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Format,
    },
    /// Compile a profile to a BPF program.
    Compile {
        #[command(flatten)]
        source: Source,
        /// raw: the `struct sock_filter` array (8 bytes per instruction, little-endian) on
        /// stdout; disasm: a listing.
        #[arg(long, value_enum, default_value = "disasm")]
        format: CompileFormat,
        #[command(flatten)]
        weights: Weights,
        /// Output format for the disasm listing (json: the instructions as objects).
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Format,
    },
    /// Run the compiled filter for one syscall: the action and the instructions executed.
    Explain {
        #[command(flatten)]
        source: Source,
        /// Syscall name or number.
        #[arg(long)]
        syscall: String,
        /// Argument value, `INDEX=VALUE` (decimal or 0x hex; repeatable).
        #[arg(long = "arg", value_name = "I=V")]
        args: Vec<String>,
        #[command(flatten)]
        weights: Weights,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Format,
    },
    /// Program length and mean/max executed instructions over all syscall numbers; with
    /// --weights, also the mean per call under that mix.
    Stats {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        weights: Weights,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Format,
    },
}

/// `--format` of `compile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompileFormat {
    Raw,
    Disasm,
}

fn parse_arch(s: &str) -> anyhow::Result<Arch> {
    let a = Arch::from_name(s).with_context(|| format!("unknown architecture {s:?}"))?;
    let a = a
        .resolve_native()
        .with_context(|| "no native architecture on this platform".to_string())?;
    if !a.is_supported() {
        bail!("architecture {s} is not supported by the compiler (x86_64, x86, x32, aarch64)");
    }
    Ok(a)
}

/// The loaded profile and the architectures to compile for.
struct Loaded {
    profile: Profile,
    arches: Vec<Arch>,
    skipped: Vec<Arch>,
}

fn load(source: &Source) -> anyhow::Result<Loaded> {
    let explicit: Vec<Arch> = source
        .arches
        .iter()
        .map(|a| parse_arch(a))
        .collect::<anyhow::Result<_>>()?;
    let profile = if source.docker {
        let arch = match explicit.first() {
            Some(a) => *a,
            None => Arch::native().context("no native architecture on this platform")?,
        };
        let mut ctx = DockerContext::docker_defaults(arch);
        if !source.caps.is_empty() {
            ctx.capabilities = source.caps.clone();
        }
        if let Some(k) = &source.kernel {
            ctx.kernel = Some(
                node_seccomp::parse_kernel(k)
                    .with_context(|| format!("--kernel {k:?}: expected MAJOR.MINOR"))?,
            );
        }
        let docker = DockerProfile::from_file(&source.profile)?;
        docker
            .resolve(&ctx)
            .with_context(|| source.profile.display().to_string())?
    } else {
        Profile::from_file(&source.profile)?
    };
    node_seccomp::validate(&profile).with_context(|| source.profile.display().to_string())?;
    let (options, skipped) = CompileOptions::for_profile(&profile)?;
    let arches = if explicit.is_empty() {
        options.arches
    } else {
        explicit
    };
    Ok(Loaded {
        profile,
        arches,
        skipped,
    })
}

/// The `--weights` mix, read for the first architecture compiled.
fn load_mix(l: &Loaded, weights: &Weights) -> anyhow::Result<Option<SyscallMix>> {
    let Some(path) = &weights.file else {
        return Ok(None);
    };
    let arch = *l.arches.first().context("no architecture to weight")?;
    Ok(Some(
        SyscallMix::from_file(path, arch).context("--weights")?,
    ))
}

fn compile(l: &Loaded, mix: Option<&SyscallMix>) -> anyhow::Result<Program> {
    let mut options = CompileOptions::arches(&l.arches);
    if let Some(m) = mix {
        options = options.with_weights(m.clone());
    }
    Ok(node_seccomp::compile(&l.profile, &options)?)
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[derive(Serialize)]
struct ValidateOut {
    profile: String,
    valid: bool,
    rules: usize,
    architectures: Vec<String>,
    unknown_syscalls: Vec<String>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct StatsOut {
    #[serde(flatten)]
    stats: node_seccomp::Stats,
    /// Present with --weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    weighted: Option<node_seccomp::WeightedCost>,
}

#[derive(Serialize)]
struct InsnOut {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
    text: String,
}

/// Runs `nodectl seccomp`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Cmd::Validate { source, output } => {
            let l = load(&source)?;
            let report = node_seccomp::validate(&l.profile)?;
            let mut warnings = report.warnings.clone();
            for a in &l.skipped {
                warnings.push(format!(
                    "architecture {a} is not compiled here (only x86_64, x86, x32, aarch64)"
                ));
            }
            let out = ValidateOut {
                profile: source.profile.display().to_string(),
                valid: true,
                rules: l.profile.syscalls.len(),
                architectures: l.arches.iter().map(|a| a.oci_name().to_string()).collect(),
                unknown_syscalls: report.unknown_syscalls,
                warnings,
            };
            if output == Format::Text {
                let mut text = format!(
                    "{}: valid ({} rules, arches {})\n",
                    out.profile,
                    out.rules,
                    out.architectures.join(",")
                );
                for w in &out.warnings {
                    text.push_str(&format!("warning: {w}\n"));
                }
                print_text(&text)
            } else {
                print_structured(&out, output)
            }
        }
        Cmd::Compile {
            source,
            format,
            weights,
            output,
        } => {
            let l = load(&source)?;
            let mix = load_mix(&l, &weights)?;
            let program = compile(&l, mix.as_ref())?;
            match (format, output) {
                (CompileFormat::Raw, _) => {
                    let mut out = std::io::stdout().lock();
                    match out
                        .write_all(&program.to_bytes())
                        .and_then(|()| out.flush())
                    {
                        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                            Err(e).context("writing to stdout")
                        }
                        _ => Ok(()),
                    }
                }
                (CompileFormat::Disasm, Format::Text) => print_text(&program.disasm()),
                (CompileFormat::Disasm, fmt) => {
                    let insns: Vec<InsnOut> = program
                        .insns
                        .iter()
                        .enumerate()
                        .map(|(pc, i)| InsnOut {
                            code: i.code,
                            jt: i.jt,
                            jf: i.jf,
                            k: i.k,
                            text: node_seccomp::bpf::disasm_one(pc, i),
                        })
                        .collect();
                    print_structured(&insns, fmt)
                }
            }
        }
        Cmd::Explain {
            source,
            syscall,
            args,
            weights,
            output,
        } => {
            let l = load(&source)?;
            let mix = load_mix(&l, &weights)?;
            let arch = *l.arches.first().context("no architecture to explain")?;
            let nr = match parse_u64(&syscall) {
                Some(n) => u32::try_from(n)
                    .with_context(|| format!("--syscall {syscall}: number too large"))?,
                None => node_seccomp::syscalls::resolve(arch, &syscall)
                    .with_context(|| format!("--syscall {syscall:?}: no such syscall on {arch}"))?,
            };
            let mut values = [0u64; 6];
            for a in &args {
                let (i, v) = a
                    .split_once('=')
                    .with_context(|| format!("--arg {a:?}: expected INDEX=VALUE"))?;
                let i: usize = i
                    .parse()
                    .ok()
                    .filter(|i| *i < 6)
                    .with_context(|| format!("--arg {a:?}: index must be 0-5"))?;
                values[i] = parse_u64(v)
                    .with_context(|| format!("--arg {a:?}: value must be a 64-bit number"))?;
            }
            let program = compile(&l, mix.as_ref())?;
            let e = node_seccomp::explain(&program, arch, nr, values)?;
            if output == Format::Text {
                let mut text = format!(
                    "{} {} ({}) -> {} after {} instructions\n",
                    e.arch,
                    e.name.as_deref().unwrap_or("?"),
                    e.nr,
                    e.action,
                    e.trace.len()
                );
                for t in &e.trace {
                    text.push_str(&format!("  {t}\n"));
                }
                print_text(&text)
            } else {
                print_structured(&e, output)
            }
        }
        Cmd::Stats {
            source,
            weights,
            output,
        } => {
            let l = load(&source)?;
            let mix = load_mix(&l, &weights)?;
            let program = compile(&l, mix.as_ref())?;
            let s = node_seccomp::stats(&program, &l.arches)?;
            let weighted = match &mix {
                Some(m) => Some(node_seccomp::weighted_mean(&program, m)?),
                None => None,
            };
            if output == Format::Text {
                let mut text = format!("program: {} instructions\n", s.instructions);
                for a in &s.arches {
                    text.push_str(&format!(
                        "{}: {} syscall numbers, mean {:.2} / max {} executed instructions, {} allowed\n",
                        a.arch, a.syscalls, a.mean, a.max, a.allowed
                    ));
                }
                if let Some(w) = &weighted {
                    text.push_str(&format!(
                        "{} under the mix: {} calls, mean {:.2} executed instructions per call, {} allowed\n",
                        w.arch, w.calls, w.mean, w.allowed
                    ));
                }
                print_text(&text)
            } else {
                print_structured(&StatsOut { stats: s, weighted }, output)
            }
        }
    }
}
