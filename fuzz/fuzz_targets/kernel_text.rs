//! node-kernel: the text parsers of `/proc` and `/sys` files and of the config that names
//! sysctls: `/proc/mounts` (octal escapes), `/proc/cmdline`, kernel configs (plain and
//! `config.gz`, decompression capped), kernel releases, `/proc/swaps`, `/proc/meminfo`,
//! `nft --version`, sysctl names and `allowedUnsafeSysctls` patterns, `swapBehavior`.
//!
//! Invariants: a kernel version prints to a numeric release that parses to an equal version;
//! mount entries have no empty fields; a sysctl accepted by the policy has a valid name.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use node_kernel::{
    HostRoot, KernelCmdline, KernelConfig, KernelVersion, SwapBehavior, SysctlPolicy, gunzip_text,
    is_valid_sysctl_pattern, meminfo_bytes, namespace_of, normalize_name, parse_mounts,
    parse_nft_version, parse_proc_swaps,
};

fuzz_target!(|data: &[u8]| {
    // Binary input: a `/proc/config.gz`.
    if let Ok(text) = gunzip_text(Path::new("/proc/config.gz"), data) {
        let _ = KernelConfig::parse("/proc/config.gz", &text);
    }
    let s = String::from_utf8_lossy(data);
    for m in parse_mounts(&s) {
        assert!(!m.fstype.is_empty());
    }
    let cmdline = KernelCmdline::parse(&s);
    let _ = (cmdline.value("psi"), cmdline.bool_value("psi"));
    let config = KernelConfig::parse("/boot/config-fuzz", &s);
    let _ = (config.get("PSI"), config.len());
    if let Ok(v) = KernelVersion::parse(&s) {
        let numeric = v.numeric();
        let back = KernelVersion::parse(&numeric)
            .unwrap_or_else(|e| panic!("{s:?} -> {numeric:?} does not parse: {e}"));
        assert_eq!(back, v);
        assert_eq!(back.to_string(), v.to_string());
    }
    let _ = parse_nft_version(&s);
    let root = HostRoot::new("/nonexistent-fuzz-root");
    let _ = parse_proc_swaps(&root, &s);
    for key in ["MemTotal", "SwapTotal", "SwapFree"] {
        let _ = meminfo_bytes(&root, &s, key);
    }
    let _ = SwapBehavior::parse(&s);
    let lines: Vec<String> = s.lines().map(str::to_owned).collect();
    for l in &lines {
        let _ = (is_valid_sysctl_pattern(l), namespace_of(&normalize_name(l)));
    }
    let kernel = KernelVersion::parse("5.15.0").ok();
    if let Ok(policy) = SysctlPolicy::new(kernel.as_ref(), &lines) {
        for l in &lines {
            let _ = policy.classify(l);
            if policy.validate(l, false, false).is_ok() {
                let name = normalize_name(l);
                assert!(!name.is_empty(), "{l:?} accepted");
            }
        }
    }
});
