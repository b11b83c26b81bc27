//! node-config scalar parsers: Go durations, resource quantities and command-line flags.
//!
//! Invariants: a parsed duration prints (Go's `Duration.String()`) to text that parses to the
//! same duration; a parsed quantity is finite, within int64 and re-parses from its text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_config::{Duration, FlagOverrides, KubeletConfiguration, Quantity, TimeOrMetaDuration};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(d) = Duration::parse(&s) {
        let printed = d.to_string();
        let back = Duration::parse(&printed)
            .unwrap_or_else(|e| panic!("{s:?} -> {printed:?} does not parse: {e}"));
        assert_eq!(back, d, "{s:?} -> {printed:?}");
    }
    if let Ok(q) = Quantity::parse(&s) {
        assert!(q.value().is_finite(), "{s:?} gave {}", q.value());
        assert!(
            q.value().abs() <= Quantity::MAX_ABS_VALUE,
            "{s:?} gave {}",
            q.value()
        );
        let back = Quantity::parse(q.as_str()).expect("a quantity's text parses");
        assert_eq!(back, q);
    }
    // JSON scalars as serde sees them in a config (integers, floats, strings).
    let _ = serde_json::from_slice::<Quantity>(data);
    let _ = serde_json::from_slice::<Duration>(data);
    let _ = serde_json::from_slice::<TimeOrMetaDuration>(data);
    // Flags, one per line, applied to a default configuration like the loader does.
    let args: Vec<&str> = s.lines().collect();
    if let Ok(flags) = FlagOverrides::parse_args(args.iter().copied()) {
        let mut json = serde_json::to_value(KubeletConfiguration::default()).expect("json");
        flags.apply(&mut json);
        let _ = serde_json::from_value::<KubeletConfiguration>(json);
        let _ = flags.kubelet_flags();
        let _ = flags.feature_gates();
    }
});
