//! The checked-in syscall tables match what the generator produces from the installed headers.
#![allow(clippy::print_stdout)]

#[path = "../tools/gen_syscall_tables.rs"]
mod generator;

#[test]
fn generated_tables_are_up_to_date() {
    let include = std::path::Path::new("/usr/include");
    let header = include.join("x86_64-linux-gnu/asm/unistd_64.h");
    let has_cpp = std::process::Command::new("cpp")
        .arg("--version")
        .output()
        .is_ok();
    if !header.exists() || !has_cpp {
        assert!(
            std::env::var_os("CI").is_none(),
            "linux-libc-dev headers and cpp are required in CI"
        );
        eprintln!("SKIP: kernel headers or cpp not installed");
        return;
    }
    let generated = generator::generate(include).unwrap();
    let checked_in = include_str!("../src/syscalls/generated.rs");
    assert!(
        generated == checked_in,
        "src/syscalls/generated.rs is stale: run `cargo run -p node-seccomp --example gen_syscall_tables`"
    );
}
