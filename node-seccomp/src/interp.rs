//! A classic-BPF interpreter for seccomp filters that counts executed instructions.
//!
//! It runs a program over a `struct seccomp_data` exactly as the kernel's interpreter would
//! (unsigned comparisons, forward-only jumps, 16 scratch words) and reports the return value and
//! the number of instructions executed: the cost metric of the compiler and the oracle of the
//! differential tests.

use crate::action::Action;
use crate::bpf::{Insn, Program, data, op};
use crate::error::{Error, Result};

/// The input of a seccomp filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeccompData {
    /// Syscall number (x32 numbers include `X32_SYSCALL_BIT`).
    pub nr: u32,
    /// `AUDIT_ARCH_*`.
    pub arch: u32,
    /// Instruction pointer.
    pub instruction_pointer: u64,
    /// The six syscall arguments.
    pub args: [u64; 6],
}

impl SeccompData {
    /// Reads the 32-bit word at byte offset `off` (little-endian layout, as on x86 and arm64).
    fn word(&self, off: u32) -> Option<u32> {
        // `off` comes from a program that may be hostile: no overflow near u32::MAX.
        if !off.is_multiple_of(4) || off.checked_add(4).is_none_or(|end| end > data::SIZE) {
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            reason = "one 32-bit half of a 64-bit field, as the kernel's struct lays it out"
        )]
        let lo_hi = |v: u64, high: bool| if high { (v >> 32) as u32 } else { v as u32 };
        Some(match off {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => lo_hi(self.instruction_pointer, off == 12),
            _ => {
                let i = ((off - 16) / 8) as usize;
                lo_hi(self.args[i], (off - 16) % 8 == 4)
            }
        })
    }
}

/// The result of running a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The raw return value.
    pub ret: u32,
    /// The decoded action.
    pub action: Action,
    /// Instructions executed, including the final `ret`.
    pub executed: usize,
}

fn bad(pc: usize, what: &str) -> Error {
    Error::Bpf {
        message: format!("instruction {pc}: {what}"),
    }
}

/// Runs `program` on `input`. Errors on what the kernel's checker would refuse (jumps out of
/// the program, loads outside `seccomp_data`, falling off the end, unknown opcodes).
pub fn run(program: &Program, input: &SeccompData) -> Result<Outcome> {
    run_traced(program, input, |_, _| {})
}

/// Like [`run`], calling `trace(pc, insn)` for every executed instruction.
pub fn run_traced(
    program: &Program,
    input: &SeccompData,
    mut trace: impl FnMut(usize, &Insn),
) -> Result<Outcome> {
    let insns = &program.insns;
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let mut executed = 0usize;
    loop {
        let i = insns
            .get(pc)
            .ok_or_else(|| bad(pc, "past the end of the program"))?;
        trace(pc, i);
        executed += 1;
        let k = i.k;
        let src = if i.code & op::X != 0 { x } else { k };
        let mut next = pc + 1;
        match i.code & 0x07 {
            op::LD | op::LDX => {
                let v = match i.code & 0xe0 {
                    op::ABS => input
                        .word(k)
                        .ok_or_else(|| bad(pc, "load outside seccomp_data"))?,
                    op::IMM => k,
                    op::MEM => *mem
                        .get(k as usize)
                        .ok_or_else(|| bad(pc, "scratch index"))?,
                    op::LEN => data::SIZE,
                    _ => return Err(bad(pc, "unsupported load mode")),
                };
                if i.code & 0x07 == op::LD {
                    a = v;
                } else {
                    x = v;
                }
            }
            op::ST | op::STX => {
                let slot = mem
                    .get_mut(k as usize)
                    .ok_or_else(|| bad(pc, "scratch index"))?;
                *slot = if i.code & 0x07 == op::ST { a } else { x };
            }
            op::ALU => {
                a = match i.code & 0xf0 {
                    op::ADD => a.wrapping_add(src),
                    op::SUB => a.wrapping_sub(src),
                    op::MUL => a.wrapping_mul(src),
                    op::DIV => {
                        if src == 0 {
                            // The kernel's classic BPF returns 0 (KILL) on division by zero.
                            return Ok(Outcome {
                                ret: 0,
                                action: Action::from_ret(0),
                                executed,
                            });
                        }
                        a / src
                    }
                    op::MOD => {
                        if src == 0 {
                            return Ok(Outcome {
                                ret: 0,
                                action: Action::from_ret(0),
                                executed,
                            });
                        }
                        a % src
                    }
                    op::OR => a | src,
                    op::AND => a & src,
                    op::LSH => a.checked_shl(src).unwrap_or(0),
                    op::RSH => a.checked_shr(src).unwrap_or(0),
                    op::NEG => a.wrapping_neg(),
                    op::XOR => a ^ src,
                    _ => return Err(bad(pc, "unknown ALU operation")),
                };
            }
            op::JMP => {
                let taken = match i.code & 0xf0 {
                    op::JA => {
                        next = pc + 1 + k as usize;
                        None
                    }
                    op::JEQ => Some(a == src),
                    op::JGT => Some(a > src),
                    op::JGE => Some(a >= src),
                    op::JSET => Some(a & src != 0),
                    _ => return Err(bad(pc, "unknown jump")),
                };
                if let Some(t) = taken {
                    next = pc + 1 + usize::from(if t { i.jt } else { i.jf });
                }
            }
            op::RET => {
                let ret = match i.code & 0x18 {
                    op::A => a,
                    _ => k,
                };
                return Ok(Outcome {
                    ret,
                    action: Action::from_ret(ret),
                    executed,
                });
            }
            _ => {
                if i.code & 0xf8 == op::TXA {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
        pc = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_outside_seccomp_data_are_errors_not_panics() {
        let input = SeccompData::default();
        for off in [64, 68, 0xffff_fff0, 0xffff_fffc, 2, u32::MAX] {
            let program = Program {
                insns: vec![Insn::load(off), Insn::ret(0x7fff_0000)],
            };
            let e = run(&program, &input).unwrap_err();
            assert!(
                e.to_string().contains("load outside seccomp_data"),
                "{off}: {e}"
            );
        }
        // The last argument word is the last valid load.
        let program = Program {
            insns: vec![Insn::load(60), Insn::ret(0x7fff_0000)],
        };
        assert_eq!(run(&program, &input).unwrap().action, Action::Allow);
    }
}
