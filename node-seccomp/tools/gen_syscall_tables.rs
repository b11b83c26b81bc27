//! Generates `src/syscalls/generated.rs`, the syscall tables of every architecture the compiler
//! supports, from the kernel's UAPI headers (Debian: `linux-libc-dev`).
//!
//! ```text
//! cargo run -p node-seccomp --example gen_syscall_tables -- [INCLUDE_DIR] [OUTPUT]
//! ```
//! `INCLUDE_DIR` defaults to `/usr/include`, `OUTPUT` to the crate's `src/syscalls/generated.rs`.
//!
//! The headers are run through the C preprocessor (`cpp -dM`) so that aarch64's table, which is
//! `asm-generic/unistd.h` under a set of `__ARCH_WANT_*` switches, is evaluated exactly as the
//! kernel build evaluates it. The same function is called by `tests/syscall_tables.rs` to check
//! that the checked-in tables match the installed headers.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One table to generate: Rust constant name, header to include, extra preprocessor defines.
struct Source {
    constant: &'static str,
    header: &'static str,
    defines: &'static [&'static str],
}

/// x86_64, i386 and x32 come from `asm/unistd.h`, which picks `unistd_64.h`, `unistd_32.h`
/// (`__i386__`) or `unistd_x32.h` (`__ILP32__`, which also needs `__X32_SYSCALL_BIT`); aarch64 uses the generic table with
/// the switches set in `arch/arm64/include/uapi/asm/unistd.h`.
const SOURCES: &[Source] = &[
    Source {
        constant: "X86_64",
        header: "x86_64-linux-gnu/asm/unistd.h",
        defines: &[],
    },
    Source {
        constant: "X86",
        header: "x86_64-linux-gnu/asm/unistd.h",
        defines: &["__i386__"],
    },
    Source {
        constant: "X32",
        header: "x86_64-linux-gnu/asm/unistd.h",
        defines: &["__ILP32__"],
    },
    Source {
        constant: "AARCH64",
        header: "asm-generic/unistd.h",
        defines: &[
            "__ARCH_WANT_RENAMEAT",
            "__ARCH_WANT_NEW_STAT",
            "__ARCH_WANT_SET_GET_RLIMIT",
            "__ARCH_WANT_TIME32_SYSCALLS",
            "__ARCH_WANT_SYS_CLONE3",
            "__ARCH_WANT_MEMFD_SECRET",
        ],
    },
];

/// Macros that look like syscalls but are not.
const NOT_SYSCALLS: &[&str] = &["syscalls", "arch_specific_syscall"];

/// Runs `cpp -dM` on one header and returns every `#define` as name -> body.
fn macros(include: &Path, source: &Source) -> Result<BTreeMap<String, String>, Box<dyn Error>> {
    let header = include.join(source.header);
    if !header.is_file() {
        return Err(format!(
            "{}: header not found (install linux-libc-dev)",
            header.display()
        )
        .into());
    }
    let mut cmd = Command::new("cpp");
    cmd.arg("-dM")
        .arg("-nostdinc")
        .arg("-I")
        .arg(include)
        .arg("-I")
        .arg(include.join("x86_64-linux-gnu"));
    for d in source.defines {
        cmd.arg(format!("-D{d}"));
    }
    cmd.arg(&header);
    let out = cmd.output().map_err(|e| format!("running cpp: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cpp {}: {}",
            header.display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8(out.stdout)?;
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("#define ") else {
            continue;
        };
        let (name, body) = rest.split_once(' ').unwrap_or((rest, ""));
        if name.contains('(') {
            continue; // function-like macro
        }
        map.insert(name.to_string(), body.trim().to_string());
    }
    Ok(map)
}

/// Evaluates a macro body made of numbers, macro names, `+` and parentheses.
fn eval(body: &str, macros: &BTreeMap<String, String>, depth: u32) -> Option<u64> {
    if depth > 16 {
        return None;
    }
    let mut total = 0u64;
    for term in body.replace(['(', ')'], " ").split('+') {
        let term = term.trim();
        if term.is_empty() {
            return None;
        }
        let value = if let Some(hex) = term.strip_prefix("0x").or_else(|| term.strip_prefix("0X")) {
            u64::from_str_radix(hex.trim_end_matches(['u', 'U', 'l', 'L']), 16).ok()?
        } else if term.as_bytes()[0].is_ascii_digit() {
            term.trim_end_matches(['u', 'U', 'l', 'L']).parse().ok()?
        } else {
            eval(macros.get(term)?, macros, depth + 1)?
        };
        total = total.checked_add(value)?;
    }
    Some(total)
}

/// The kernel version of the headers, from `linux/version.h`.
fn header_version(include: &Path) -> String {
    let text = std::fs::read_to_string(include.join("linux/version.h")).unwrap_or_default();
    let field = |name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(&format!("#define {name} "))
                .map(|v| v.trim().to_string())
        })
    };
    match (
        field("LINUX_VERSION_MAJOR"),
        field("LINUX_VERSION_PATCHLEVEL"),
    ) {
        (Some(a), Some(b)) => format!("{a}.{b}"),
        _ => "unknown".to_string(),
    }
}

/// Generates the whole `generated.rs` text from the headers under `include`.
pub fn generate(include: &Path) -> Result<String, Box<dyn Error>> {
    let mut out = String::new();
    out.push_str(
        "// @generated by node-seccomp/tools/gen_syscall_tables.rs from the Linux UAPI headers\n",
    );
    out.push_str(&format!(
        "// (kernel headers {}). Do not edit: regenerate with\n",
        header_version(include)
    ));
    out.push_str("// `cargo run -p node-seccomp --example gen_syscall_tables`.\n\n");
    for source in SOURCES {
        let macros = macros(include, source)?;
        let mut table: Vec<(String, u64)> = Vec::new();
        for (name, body) in &macros {
            let Some(syscall) = name.strip_prefix("__NR_") else {
                continue;
            };
            if NOT_SYSCALLS.contains(&syscall) {
                continue;
            }
            let nr = eval(body, &macros, 0)
                .ok_or_else(|| format!("{}: cannot evaluate {name} = {body}", source.header))?;
            table.push((syscall.to_string(), nr));
        }
        table.sort();
        out.push_str(&format!(
            "/// `{}` {:?}: {} syscalls, sorted by name.\npub(crate) const {}: &[(&str, u32)] = &[\n",
            source.header,
            source.defines,
            table.len(),
            source.constant
        ));
        for (name, nr) in table {
            out.push_str(&format!("    (\"{name}\", {nr}),\n"));
        }
        out.push_str("];\n\n");
    }
    let trimmed = out.trim_end().to_string();
    Ok(trimmed + "\n")
}

#[allow(dead_code)] // Unused when this file is included by the table test.
fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let include = PathBuf::from(args.next().unwrap_or_else(|| "/usr/include".to_string()));
    let output = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src/syscalls/generated.rs"));
    let text = generate(&include)?;
    // Write to a temporary file and rename, so a failed run never leaves half a table behind.
    let tmp = output.with_extension("rs.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &output)?;
    Ok(())
}
