//! Classic BPF instructions (`struct sock_filter`) and programs.

use std::fmt::Write as _;

use crate::action::Action;
use crate::error::{Error, Result};

/// Instruction classes and fields (`linux/filter.h`).
pub mod op {
    /// `BPF_LD`
    pub const LD: u16 = 0x00;
    /// `BPF_LDX`
    pub const LDX: u16 = 0x01;
    /// `BPF_ST`
    pub const ST: u16 = 0x02;
    /// `BPF_STX`
    pub const STX: u16 = 0x03;
    /// `BPF_ALU`
    pub const ALU: u16 = 0x04;
    /// `BPF_JMP`
    pub const JMP: u16 = 0x05;
    /// `BPF_RET`
    pub const RET: u16 = 0x06;
    /// `BPF_MISC`
    pub const MISC: u16 = 0x07;
    /// `BPF_W`
    pub const W: u16 = 0x00;
    /// `BPF_ABS`
    pub const ABS: u16 = 0x20;
    /// `BPF_IMM`
    pub const IMM: u16 = 0x00;
    /// `BPF_MEM`
    pub const MEM: u16 = 0x60;
    /// `BPF_LEN`
    pub const LEN: u16 = 0x80;
    /// `BPF_K`
    pub const K: u16 = 0x00;
    /// `BPF_X`
    pub const X: u16 = 0x08;
    /// `BPF_A` (for RET)
    pub const A: u16 = 0x10;
    /// `BPF_ADD`
    pub const ADD: u16 = 0x00;
    /// `BPF_SUB`
    pub const SUB: u16 = 0x10;
    /// `BPF_MUL`
    pub const MUL: u16 = 0x20;
    /// `BPF_DIV`
    pub const DIV: u16 = 0x30;
    /// `BPF_OR`
    pub const OR: u16 = 0x40;
    /// `BPF_AND`
    pub const AND: u16 = 0x50;
    /// `BPF_LSH`
    pub const LSH: u16 = 0x60;
    /// `BPF_RSH`
    pub const RSH: u16 = 0x70;
    /// `BPF_NEG`
    pub const NEG: u16 = 0x80;
    /// `BPF_MOD`
    pub const MOD: u16 = 0x90;
    /// `BPF_XOR`
    pub const XOR: u16 = 0xa0;
    /// `BPF_JA`
    pub const JA: u16 = 0x00;
    /// `BPF_JEQ`
    pub const JEQ: u16 = 0x10;
    /// `BPF_JGT`
    pub const JGT: u16 = 0x20;
    /// `BPF_JGE`
    pub const JGE: u16 = 0x30;
    /// `BPF_JSET`
    pub const JSET: u16 = 0x40;
    /// `BPF_TAX`
    pub const TAX: u16 = 0x00;
    /// `BPF_TXA`
    pub const TXA: u16 = 0x80;
}

/// Offsets in `struct seccomp_data`.
pub mod data {
    /// `nr` (int).
    pub const NR: u32 = 0;
    /// `arch` (u32).
    pub const ARCH: u32 = 4;
    /// `instruction_pointer` (u64).
    pub const IP: u32 = 8;
    /// Low word of `args[i]` on little-endian machines.
    pub fn arg_lo(i: u32) -> u32 {
        16 + 8 * i
    }
    /// High word of `args[i]` on little-endian machines.
    pub fn arg_hi(i: u32) -> u32 {
        16 + 8 * i + 4
    }
    /// Size of the structure.
    pub const SIZE: u32 = 64;
}

/// One `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump offset when true.
    pub jt: u8,
    /// Jump offset when false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

impl Insn {
    /// A non-jump instruction.
    pub const fn stmt(code: u16, k: u32) -> Insn {
        Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }
    /// A conditional jump.
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn { code, jt, jf, k }
    }
    /// `ld [off]`
    pub const fn load(off: u32) -> Insn {
        Insn::stmt(op::LD | op::W | op::ABS, off)
    }
    /// `ret #k`
    pub const fn ret(k: u32) -> Insn {
        Insn::stmt(op::RET | op::K, k)
    }
    /// `ja +k`
    pub const fn ja(k: u32) -> Insn {
        Insn::stmt(op::JMP | op::JA, k)
    }
    /// Whether this is a `ret`.
    pub fn is_ret(&self) -> bool {
        self.code & 0x07 == op::RET
    }
}

/// A BPF program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Program {
    /// The instructions, in execution order.
    pub insns: Vec<Insn>,
}

impl Program {
    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether the program is empty.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// The raw `struct sock_filter` array: 8 bytes per instruction, little-endian
    /// (`code` u16, `jt` u8, `jf` u8, `k` u32), as `seccomp_export_bpf` writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.insns.len() * 8);
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_le_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_le_bytes());
        }
        out
    }

    /// Reads a raw `struct sock_filter` array.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program> {
        if !bytes.len().is_multiple_of(8) {
            return Err(Error::Bpf {
                message: format!("{} bytes is not a multiple of 8", bytes.len()),
            });
        }
        let insns = bytes
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Program { insns })
    }

    /// A readable listing, one instruction a line, with absolute jump targets.
    pub fn disasm(&self) -> String {
        let mut out = String::new();
        for (pc, i) in self.insns.iter().enumerate() {
            let _ = writeln!(out, "{pc:04}: {}", disasm_one(pc, i));
        }
        out
    }
}

/// Disassembles one instruction at `pc`.
pub fn disasm_one(pc: usize, i: &Insn) -> String {
    let class = i.code & 0x07;
    let src_x = i.code & op::X != 0;
    let operand = |k: u32| {
        if src_x {
            "x".to_string()
        } else {
            format!("#{k:#x}")
        }
    };
    match class {
        op::LD | op::LDX => {
            let reg = if class == op::LD { "ld" } else { "ldx" };
            match i.code & 0xe0 {
                op::ABS => {
                    let what = match i.k {
                        data::NR => " (nr)".to_string(),
                        data::ARCH => " (arch)".to_string(),
                        k if (16..64).contains(&k) => {
                            format!(
                                " (args[{}].{})",
                                (k - 16) / 8,
                                if (k - 16) % 8 == 0 { "lo" } else { "hi" }
                            )
                        }
                        _ => String::new(),
                    };
                    format!("{reg} [{}]{what}", i.k)
                }
                op::MEM => format!("{reg} M[{}]", i.k),
                op::LEN => format!("{reg} len"),
                _ => format!("{reg} #{:#x}", i.k),
            }
        }
        op::ST => format!("st M[{}]", i.k),
        op::STX => format!("stx M[{}]", i.k),
        op::ALU => {
            let name = match i.code & 0xf0 {
                op::ADD => "add",
                op::SUB => "sub",
                op::MUL => "mul",
                op::DIV => "div",
                op::OR => "or",
                op::AND => "and",
                op::LSH => "lsh",
                op::RSH => "rsh",
                op::NEG => return "neg".to_string(),
                op::MOD => "mod",
                op::XOR => "xor",
                _ => "alu?",
            };
            format!("{name} {}", operand(i.k))
        }
        op::JMP => {
            let next = pc + 1;
            match i.code & 0xf0 {
                op::JA => format!("ja {}", next + i.k as usize),
                c => {
                    let name = match c {
                        op::JEQ => "jeq",
                        op::JGT => "jgt",
                        op::JGE => "jge",
                        op::JSET => "jset",
                        _ => "j?",
                    };
                    format!(
                        "{name} {} -> {} else {}",
                        operand(i.k),
                        next + i.jt as usize,
                        next + i.jf as usize
                    )
                }
            }
        }
        op::RET => {
            if i.code & 0x18 == op::A {
                "ret a".to_string()
            } else {
                format!("ret {:#010x} ({})", i.k, Action::from_ret(i.k))
            }
        }
        _ => {
            if i.code & 0xf8 == op::TXA {
                "txa".to_string()
            } else {
                "tax".to_string()
            }
        }
    }
}
