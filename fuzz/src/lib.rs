//! Helpers shared by the fuzz targets: splitting one input into several files, and a scratch
//! directory for targets whose API reads files.
//!
//! Multi-file inputs are parts separated by a line holding only `%%%%` (see [`SEPARATOR`]);
//! the seed corpora under `fuzz/corpus/<target>/` are written that way, so they stay readable.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The part separator of multi-file inputs: a line holding only `%%%%`.
pub const SEPARATOR: &[u8] = b"\n%%%%\n";

/// Splits `data` at every [`SEPARATOR`] into at most `max` parts (the last part keeps any
/// further separators).
pub fn parts(data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < max {
        match memfind(rest, SEPARATOR) {
            Some(at) => {
                out.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Part `i`, or empty.
pub fn part<'a>(parts: &[&'a [u8]], i: usize) -> &'a [u8] {
    parts.get(i).copied().unwrap_or_default()
}

/// A directory private to this fuzzing process: `$NODE_FUZZ_SCRATCH/<pid>` when the script set
/// it (it removes the whole tree afterwards), else a directory under `/dev/shm` or the
/// system temp directory. Created once; callers clear what they put in it.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::var_os("NODE_FUZZ_SCRATCH")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let shm = Path::new("/dev/shm");
                if shm.is_dir() {
                    shm.to_path_buf()
                } else {
                    std::env::temp_dir()
                }
            });
        let dir = base.join(format!("node-fuzz-{}", std::process::id()));
        // A failure here is a broken machine, not a finding: stop loudly.
        #[allow(clippy::expect_used)]
        std::fs::create_dir_all(&dir).expect("creating the fuzz scratch directory");
        dir
    })
}

/// A fresh empty directory `scratch()/<name>` (removed and recreated).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = scratch().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    #[allow(clippy::expect_used)]
    std::fs::create_dir_all(&dir).expect("creating a fuzz scratch directory");
    dir
}

/// Writes `bytes` to `dir/rel`, creating parent directories.
pub fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    #[allow(clippy::expect_used)]
    std::fs::write(&path, bytes).expect("writing a fuzz scratch file");
}

/// Lossy UTF-8 of a part.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Strings for names taken from fuzz input that must be one path component.
pub fn file_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
}
