//! node-config: `--config` file, `--config-dir` drop-ins and command-line flags through the
//! real `Loader` (decode, merge, defaults, validation).
//!
//! Input: parts separated by `%%%%` lines: flags (one per line), the config file, then up to
//! three drop-ins. Invariant: a configuration that loads from a file without flags prints
//! (`to_yaml`) to a file that loads strictly to the same configuration, and prints the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_config::{FlagOverrides, Loader, Strictness, to_yaml};
use node_fuzz::{fresh_dir, part, parts, text, write};

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 5);
    let dir = fresh_dir("config");
    let flag_text = text(part(&p, 0));
    let flag_args: Vec<&str> = flag_text.lines().filter(|l| !l.is_empty()).collect();
    let Ok(flags) = FlagOverrides::parse_args(flag_args.iter().copied()) else {
        return;
    };
    let base = dir.join("kubelet.yaml");
    write(&dir, "kubelet.yaml", part(&p, 1));
    let dropins = dir.join("kubelet.conf.d");
    std::fs::create_dir_all(&dropins).ok();
    for (i, d) in p.iter().skip(2).enumerate() {
        write(&dropins, &format!("{}0-fuzz.conf", i + 1), d);
    }
    let strict = data.len() % 2 == 1;
    let mut loader = Loader::new()
        .config_file(&base)
        .flags(flags.clone())
        .strictness(if strict {
            Strictness::Strict
        } else {
            Strictness::LenientWithWarnings
        });
    if p.len() > 2 {
        loader = loader.config_dir(&dropins);
    }
    let Ok(loaded) = loader.load() else {
        return;
    };
    if !flags.is_empty() {
        // Paths set by flags are not resolved against a file; printing them into a file
        // changes their meaning, so the round trip only holds without flags.
        return;
    }
    let printed = to_yaml(&loaded.config).expect("a loaded configuration prints");
    write(&dir, "printed.yaml", printed.as_bytes());
    let again = Loader::new()
        .config_file(dir.join("printed.yaml"))
        .strictness(Strictness::Strict)
        .load()
        .unwrap_or_else(|e| panic!("printed configuration does not load: {e}\n{printed}"));
    assert_eq!(
        again.config, loaded.config,
        "round trip changed the configuration\n{printed}"
    );
    assert_eq!(
        to_yaml(&again.config).expect("prints"),
        printed,
        "printing is not stable"
    );
});
