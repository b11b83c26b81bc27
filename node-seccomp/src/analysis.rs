//! What a compiled filter does: one syscall explained, and cost statistics over all numbers.

use serde::Serialize;

use crate::action::Action;
use crate::arch::Arch;
use crate::bpf::{Program, disasm_one};
use crate::error::{Error, Result};
use crate::interp::{SeccompData, run, run_traced};
use crate::syscalls;

/// The decision of a filter for one syscall, with the instructions it executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Architecture (OCI name).
    pub arch: String,
    /// Syscall number.
    pub nr: u32,
    /// Syscall name, when the table knows it.
    pub name: Option<String>,
    /// Arguments given.
    pub args: [u64; 6],
    /// The action.
    pub action: Action,
    /// Raw return value.
    pub ret: u32,
    /// Executed instructions, disassembled with their index.
    pub trace: Vec<String>,
}

/// Builds the `seccomp_data` of a syscall on `arch`.
pub fn seccomp_data(arch: Arch, nr: u32, args: [u64; 6]) -> Result<SeccompData> {
    let audit = arch.audit_arch().ok_or_else(|| Error::UnsupportedArch {
        arch: arch.oci_name().to_string(),
    })?;
    Ok(SeccompData {
        nr,
        arch: audit,
        instruction_pointer: 0,
        args,
    })
}

/// Runs `program` for one syscall and records every executed instruction.
pub fn explain(program: &Program, arch: Arch, nr: u32, args: [u64; 6]) -> Result<Explanation> {
    let input = seccomp_data(arch, nr, args)?;
    let mut trace = Vec::new();
    let out = run_traced(program, &input, |pc, i| {
        trace.push(format!("{pc:04}: {}", disasm_one(pc, i)))
    })?;
    Ok(Explanation {
        arch: arch.oci_name().to_string(),
        nr,
        name: syscalls::name(arch, nr).map(str::to_string),
        args,
        action: out.action,
        ret: out.ret,
        trace,
    })
}

/// Cost of a filter on one architecture, over every syscall number of the sweep range
/// (0 to the highest number in the table; x32 offset by `X32_SYSCALL_BIT`), arguments zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchStats {
    /// Architecture (OCI name).
    pub arch: String,
    /// Numbers swept.
    pub syscalls: usize,
    /// Mean executed instructions.
    pub mean: f64,
    /// Maximum executed instructions.
    pub max: usize,
    /// Numbers that got ALLOW (or LOG).
    pub allowed: usize,
}

/// Statistics of a program.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Program length in instructions.
    pub instructions: usize,
    /// Per architecture.
    pub arches: Vec<ArchStats>,
}

/// Sweeps every syscall number of each architecture.
pub fn stats(program: &Program, arches: &[Arch]) -> Result<Stats> {
    let mut out = Vec::new();
    for &arch in arches {
        let (mut total, mut max, mut count, mut allowed) = (0usize, 0usize, 0usize, 0usize);
        for nr in syscalls::sweep_range(arch) {
            let o = run(program, &seccomp_data(arch, nr, [0; 6])?)?;
            total += o.executed;
            max = max.max(o.executed);
            count += 1;
            if matches!(o.action, Action::Allow | Action::Log) {
                allowed += 1;
            }
        }
        out.push(ArchStats {
            arch: arch.oci_name().to_string(),
            syscalls: count,
            mean: if count == 0 {
                0.0
            } else {
                total as f64 / count as f64
            },
            max,
            allowed,
        });
    }
    Ok(Stats {
        instructions: program.len(),
        arches: out,
    })
}
