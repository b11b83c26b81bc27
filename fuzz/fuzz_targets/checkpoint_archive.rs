//! node-checkpoint: checkpoint archives (tar with `config.dump`, `spec.dump`, CRIU images and
//! pagemaps) through `inspect_reader` with every option on.
//!
//! Invariant: an accepted archive reports its own size, and its memory search never reports
//! more matches than it counted.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use node_checkpoint::{InspectOptions, inspect_reader};

fuzz_target!(|data: &[u8]| {
    let options = InspectOptions::default()
        .with_files(true)
        .with_memory(true)
        .with_search(b"secret");
    let path = Path::new("/var/lib/kubelet/checkpoints/fuzz.tar");
    let Ok(report) = inspect_reader(Cursor::new(data), path, &options) else {
        return;
    };
    assert_eq!(report.archive_size, data.len() as u64);
    let search = report.search.as_ref().expect("search was asked for");
    assert!(search.matches.len() as u64 <= search.total_matches);
    assert!(search.bytes_scanned <= data.len() as u64);
    serde_json::to_string(&report).expect("a report serializes");
});
