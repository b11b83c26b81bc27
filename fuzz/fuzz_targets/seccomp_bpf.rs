//! node-seccomp: raw BPF programs (`Program::from_bytes`, as `nodectl seccomp explain` reads a
//! compiled filter) run through the interpreter, the disassembler and the statistics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_seccomp::{Arch, Program, explain, interp, seccomp_data, stats};

fuzz_target!(|data: &[u8]| {
    let Ok(program) = Program::from_bytes(data) else {
        return;
    };
    assert_eq!(
        program.to_bytes(),
        data,
        "from_bytes/to_bytes is not the identity"
    );
    let _ = program.disasm();
    let _ = stats(&program, &[Arch::X86_64, Arch::Aarch64]);
    for (arch, nr) in [
        (Arch::X86_64, 0u32),
        (Arch::X86_64, 59),
        (Arch::Aarch64, 221),
        (Arch::X86, 11),
    ] {
        if let Ok(input) = seccomp_data(arch, nr, [1, 2, 3, 4, 5, u64::MAX]) {
            let _ = interp::run(&program, &input);
        }
        let _ = explain(&program, arch, nr, [0; 6]);
    }
});
