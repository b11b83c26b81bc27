//! node-state: the same bytes as every kubelet state file kind (CPU, memory, DRA and device
//! manager checkpoints, allocated/actuated pods, graceful shutdown, image pull records), the
//! checksum computation, and cpusets.
//!
//! Invariants: a file that decodes re-encodes to bytes that decode again and encode the same
//! (the crate's promise: verified files are written back with a fresh checksum); a cpuset
//! prints to its canonical form, which parses to the same set.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use node_state::{CpuSet, StateDocument, StateKind, checksum_for};

fuzz_target!(|data: &[u8]| {
    let p = Path::new("/var/lib/kubelet/fuzzed");
    for kind in StateKind::ALL {
        let decoded = StateDocument::decode(kind, data, p);
        let _ = checksum_for(kind, data, p);
        if let Ok(doc) = decoded {
            assert_eq!(doc.kind(), kind);
            if let Ok(again) = doc.encode() {
                let back = StateDocument::decode(kind, &again, p).unwrap_or_else(|e| {
                    panic!(
                        "{kind}: re-encoded file does not decode: {e}\n{}",
                        String::from_utf8_lossy(&again)
                    )
                });
                assert_eq!(
                    back.encode().expect("encodes"),
                    again,
                    "{kind}: encoding not stable"
                );
            }
        }
    }
    let s = String::from_utf8_lossy(data);
    if let Ok(set) = CpuSet::parse(&s) {
        let printed = set.to_string();
        let back = CpuSet::parse(&printed)
            .unwrap_or_else(|e| panic!("{s:?} -> {printed:?} does not parse: {e}"));
        assert_eq!(back.to_string(), printed);
        assert_eq!(back.len(), set.len());
    }
});
