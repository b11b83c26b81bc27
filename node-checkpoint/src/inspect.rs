//! A streaming reader for checkpoint archives: what `checkpointctl show` prints (container,
//! image, ID, runtime, created, engine, checkpoint size, rootfs-diff size), the member list,
//! per-process memory image sizes from the CRIU pagemaps, and a search of the memory pages
//! for a string.
//!
//! Memory use is constant in the archive size: members are read (or skipped with a seek)
//! one at a time, only the small JSON and pagemap members are buffered (at most
//! [`MAX_METADATA_BYTES`] each), and the page search keeps one chunk plus the needle's
//! length. A truncated archive (a member or the end-of-archive marker missing) and a tar
//! without the checkpoint members are reported as errors.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::CheckpointError;

/// CRIU's page size on x86-64 and arm64 (4 KiB).
pub const PAGE_SIZE: u64 = 4096;
/// The magic every CRIU image starts with (`IMG_COMMON_MAGIC`).
pub const CRIU_COMMON_MAGIC: u32 = 0x5456_4319;
/// The magic of `pagemap-<pid>.img` (`PAGEMAP_MAGIC`).
pub const CRIU_PAGEMAP_MAGIC: u32 = 0x5608_4025;
/// Largest metadata member (`config.dump`, `spec.dump`, a pagemap) read into memory.
pub const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;
/// Most search matches reported one by one (the total is always counted).
pub const MAX_REPORTED_MATCHES: usize = 100;
const CHUNK: usize = 1 << 20;
/// Buffer of the archive reader: a few tar headers and small metadata members.
const HEADER_BUFFER: usize = 16 << 10;

/// What to gather besides the summary.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct InspectOptions {
    /// List every member.
    pub files: bool,
    /// Per-process memory image sizes.
    pub memory: bool,
    /// Search the memory pages for these bytes.
    pub search: Option<Vec<u8>>,
}

impl InspectOptions {
    /// Sets [`files`](Self::files).
    #[must_use]
    pub fn with_files(mut self, files: bool) -> Self {
        self.files = files;
        self
    }

    /// Sets [`memory`](Self::memory).
    #[must_use]
    pub fn with_memory(mut self, memory: bool) -> Self {
        self.memory = memory;
        self
    }

    /// Searches the memory pages for `search` ([`search`](Self::search)).
    #[must_use]
    pub fn with_search(mut self, search: impl Into<Vec<u8>>) -> Self {
        self.search = Some(search.into());
        self
    }
}

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Path inside the archive.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// `file`, `dir`, `symlink`, `other`.
    pub kind: &'static str,
}

/// One process's memory image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessMemory {
    /// PID inside the container (from `pagemap-<pid>.img`).
    pub pid: u32,
    /// The `pages-<n>.img` holding its pages, when the pagemap could be read.
    pub pages_file: Option<String>,
    /// Size of that pages file (bytes of dumped memory).
    pub memory_bytes: u64,
    /// Pages the pagemap lists.
    pub mapped_pages: u64,
}

/// One place the search string was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    /// The pages file.
    pub file: String,
    /// Byte offset inside it.
    pub offset: u64,
    /// The process those pages belong to, when known.
    pub pid: Option<u32>,
    /// Printable bytes around the match (at most 64).
    pub context: String,
}

/// Result of a memory search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Search {
    /// What was searched for.
    pub needle: String,
    /// Every match.
    pub total_matches: u64,
    /// The first [`MAX_REPORTED_MATCHES`].
    pub matches: Vec<Match>,
    /// Bytes of pages scanned.
    pub bytes_scanned: u64,
}

/// What the archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// The archive file.
    pub archive: PathBuf,
    /// Container name.
    pub container: Option<String>,
    /// Pod name.
    pub pod: Option<String>,
    /// Pod namespace.
    pub namespace: Option<String>,
    /// Image name.
    pub image: Option<String>,
    /// Container ID.
    pub id: Option<String>,
    /// Runtime (e.g. `io.containerd.runc.v2`).
    pub runtime: Option<String>,
    /// When the container was created.
    pub created: Option<String>,
    /// When it was checkpointed.
    pub checkpointed: Option<String>,
    /// `containerd`, `CRI-O` or `Podman` (from the `io.container.manager` annotation).
    pub engine: String,
    /// Size of the archive file.
    pub archive_size: u64,
    /// Bytes under `checkpoint/` (the CRIU images).
    pub checkpoint_size: u64,
    /// Bytes of memory pages (`pages-*.img`, `amdgpu-pages-*`).
    pub memory_pages_size: u64,
    /// Size of `rootfs-diff.tar`, if present.
    pub rootfs_diff_size: Option<u64>,
    /// Every member (with `files`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<Member>>,
    /// Per-process memory (with `memory`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcessMemory>>,
    /// Search result (with `search`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<Search>,
}

/// Inspects the archive at `path`.
pub fn inspect_file(path: &Path, options: &InspectOptions) -> Result<Inspection, CheckpointError> {
    let file = std::fs::File::open(path).map_err(|e| CheckpointError::io("opening", path, e))?;
    // A small buffer: members are skipped with seeks, and each seek empties a `BufReader`,
    // so a large buffer would be refilled in full for every 512-byte header that follows
    // (1 MiB per member: 1.7 ms for a 20-member archive from the page cache, against 17 µs for
    // the headers alone). The page search reads `CHUNK`-sized blocks, which a `BufReader`
    // passes straight to the file.
    inspect_reader(
        std::io::BufReader::with_capacity(HEADER_BUFFER, file),
        path,
        options,
    )
}

/// Tracks the position and the last 512 bytes read, to tell a clean end-of-archive marker
/// from a truncated stream.
struct Tracking<R> {
    inner: R,
    pos: u64,
    tail: [u8; 512],
    tail_len: usize,
}

impl<R: Read> Read for Tracking<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        let got = &buf[..n];
        if got.len() >= 512 {
            self.tail.copy_from_slice(&got[got.len() - 512..]);
            self.tail_len = 512;
        } else {
            let keep = (512 - got.len()).min(self.tail_len);
            self.tail
                .copy_within(self.tail_len - keep..self.tail_len, 0);
            self.tail[keep..keep + got.len()].copy_from_slice(got);
            self.tail_len = keep + got.len();
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for Tracking<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let p = self.inner.seek(to)?;
        if p != self.pos {
            self.tail_len = 0;
        }
        self.pos = p;
        Ok(p)
    }
}

#[derive(Default)]
struct Gathered {
    config: Option<serde_json::Value>,
    spec: Option<serde_json::Value>,
    has_inventory: bool,
    checkpoint_size: u64,
    memory_pages_size: u64,
    rootfs_diff_size: Option<u64>,
    files: Vec<Member>,
    /// pid -> (pages id, mapped pages)
    pagemaps: BTreeMap<u32, (Option<u32>, u64)>,
    /// pages id -> size
    pages: BTreeMap<u32, u64>,
    raw_matches: Vec<(String, u64, String)>,
    total_matches: u64,
    scanned: u64,
}

/// Inspects an archive read from `reader` (`path` names it in errors and the report).
pub fn inspect_reader<R: Read + Seek>(
    reader: R,
    path: &Path,
    options: &InspectOptions,
) -> Result<Inspection, CheckpointError> {
    let bad = |reason: String| CheckpointError::BadTar {
        path: path.to_owned(),
        reason,
    };
    let mut tracking = Tracking {
        inner: reader,
        pos: 0,
        tail: [0; 512],
        tail_len: 0,
    };
    let len = tracking
        .inner
        .seek(SeekFrom::End(0))
        .and_then(|l| tracking.inner.seek(SeekFrom::Start(0)).map(|_| l))
        .map_err(|e| CheckpointError::io("reading", path, e))?;
    let mut g = Gathered::default();
    let mut end_of_last = 0u64;
    {
        let mut archive = tar::Archive::new(&mut tracking);
        let entries = archive
            .entries_with_seek()
            .map_err(|e| bad(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            let name = entry
                .path()
                .map_err(|e| bad(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            let name = name.trim_start_matches("./").to_owned();
            let size = entry.size();
            // Where this member's data (padded to whole blocks) ends.
            end_of_last = entry.raw_file_position() + size.div_ceil(512) * 512;
            let kind = match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => "file",
                tar::EntryType::Directory => "dir",
                tar::EntryType::Symlink => "symlink",
                _ => "other",
            };
            if options.files {
                g.files.push(Member {
                    path: name.clone(),
                    size,
                    mode: entry.header().mode().unwrap_or(0),
                    kind,
                });
            }
            gather(&mut g, &mut entry, &name, size, kind, options)
                .map_err(|e| bad(format!("member {name}: {e}")))?;
        }
    }
    // tar stops at the first all-zero header block or at EOF: only the former is a complete
    // archive. So exactly one more block must have been read after the last member, and it
    // must be zeros; a seek past the end means the last member was cut short.
    let clean_end = tracking.pos == end_of_last + 512
        && tracking.tail_len == 512
        && tracking.tail.iter().all(|b| *b == 0)
        && tracking.pos <= len;
    if !clean_end {
        return Err(bad(format!(
            "no end-of-archive marker (archive is {len} bytes, reading stopped at byte {})",
            tracking.pos
        )));
    }
    let mut missing = Vec::new();
    if g.spec.is_none() {
        missing.push("spec.dump");
    }
    if g.config.is_none() {
        missing.push("config.dump");
    }
    if !g.has_inventory {
        missing.push("checkpoint/inventory.img");
    }
    if !missing.is_empty() {
        return Err(CheckpointError::NotCheckpoint {
            path: path.to_owned(),
            reason: format!("missing {}", missing.join(", ")),
        });
    }
    Ok(report(g, path, len, options))
}

fn gather<R: Read>(
    g: &mut Gathered,
    entry: &mut R,
    name: &str,
    size: u64,
    kind: &str,
    options: &InspectOptions,
) -> std::io::Result<()> {
    let file_name = name.rsplit('/').next().unwrap_or(name);
    if name.starts_with("checkpoint/") && kind == "file" {
        g.checkpoint_size += size;
    }
    match name {
        "config.dump" => g.config = Some(read_json(entry, size)?),
        "spec.dump" => g.spec = Some(read_json(entry, size)?),
        "checkpoint/inventory.img" => g.has_inventory = true,
        "rootfs-diff.tar" => g.rootfs_diff_size = Some(size),
        _ if name.starts_with("checkpoint/") => {
            if let Some(id) = numbered(file_name, "pages-") {
                g.memory_pages_size += size;
                g.pages.insert(id, size);
                if let Some(needle) = &options.search {
                    search(g, entry, size, name, needle)?;
                }
            } else if file_name.starts_with("amdgpu-pages-") {
                g.memory_pages_size += size;
            } else if let Some(pid) = numbered(file_name, "pagemap-")
                && size <= MAX_METADATA_BYTES
            {
                let data = read_all(entry, size)?;
                g.pagemaps.insert(pid, parse_pagemap(&data));
            }
        }
        _ => {}
    }
    Ok(())
}

fn numbered(file_name: &str, prefix: &str) -> Option<u32> {
    file_name
        .strip_prefix(prefix)?
        .strip_suffix(".img")?
        .parse()
        .ok()
}

fn read_all<R: Read>(entry: &mut R, size: u64) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    entry.take(size).read_to_end(&mut data)?;
    if (data.len() as u64) < size {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{} of {size} bytes present", data.len()),
        ));
    }
    Ok(data)
}

fn read_json<R: Read>(entry: &mut R, size: u64) -> std::io::Result<serde_json::Value> {
    if size > MAX_METADATA_BYTES {
        return Err(std::io::Error::other(format!(
            "{size} bytes, more than the {MAX_METADATA_BYTES} a metadata file may have"
        )));
    }
    let data = read_all(entry, size)?;
    serde_json::from_slice(&data).map_err(|e| std::io::Error::other(format!("invalid JSON: {e}")))
}

/// `pagemap_head.pages_id` and the number of pages the entries list; `(None, 0)` when the
/// image is not a pagemap.
fn parse_pagemap(data: &[u8]) -> (Option<u32>, u64) {
    let word = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if word(0) != Some(CRIU_COMMON_MAGIC) || word(4) != Some(CRIU_PAGEMAP_MAGIC) {
        return (None, 0);
    }
    let mut at = 8;
    let mut pages_id = None;
    let mut pages = 0u64;
    let mut first = true;
    while let Some(len) = word(at) {
        let Some(msg) = data.get(at + 4..at + 4 + len as usize) else {
            break;
        };
        at += 4 + len as usize;
        let fields = proto_varints(msg);
        if first {
            pages_id = fields.get(&1).and_then(|v| u32::try_from(*v).ok());
            first = false;
        } else {
            pages += fields.get(&2).copied().unwrap_or(0);
        }
    }
    (pages_id, pages)
}

/// The varint fields of a protobuf message (other wire types skipped).
fn proto_varints(mut msg: &[u8]) -> BTreeMap<u64, u64> {
    fn varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (first, rest) = b.split_first()?;
            *b = rest;
            v |= u64::from(first & 0x7f) << shift;
            if first & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut out = BTreeMap::new();
    while let Some(key) = varint(&mut msg) {
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => match varint(&mut msg) {
                Some(v) => {
                    out.insert(field, v);
                }
                None => break,
            },
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                match msg.get(n..) {
                    Some(rest) => msg = rest,
                    None => break,
                }
            }
            2 => {
                let Some(n) = varint(&mut msg) else { break };
                match msg.get(usize::try_from(n).unwrap_or(usize::MAX)..) {
                    Some(rest) => msg = rest,
                    None => break,
                }
            }
            _ => break,
        }
    }
    out
}

fn search<R: Read>(
    g: &mut Gathered,
    entry: &mut R,
    size: u64,
    name: &str,
    needle: &[u8],
) -> std::io::Result<()> {
    if needle.is_empty() {
        return Ok(());
    }
    let finder = memchr::memmem::Finder::new(needle);
    let keep = needle.len() - 1;
    let mut buf = vec![0u8; CHUNK + keep];
    let mut carried = 0usize;
    let mut base = 0u64; // offset of buf[0] in the member
    let mut total = 0u64;
    loop {
        let n = entry.read(&mut buf[carried..])?;
        if n == 0 {
            break;
        }
        total += n as u64;
        let filled = carried + n;
        let window = &buf[..filled];
        for at in finder.find_iter(window) {
            g.total_matches += 1;
            if g.raw_matches.len() < MAX_REPORTED_MATCHES {
                g.raw_matches.push((
                    name.to_owned(),
                    base + at as u64,
                    context(window, at, needle.len()),
                ));
            }
        }
        let carry = keep.min(filled);
        buf.copy_within(filled - carry..filled, 0);
        base += (filled - carry) as u64;
        carried = carry;
    }
    g.scanned += total;
    if total < size {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{total} of {size} bytes present"),
        ));
    }
    Ok(())
}

fn context(window: &[u8], at: usize, len: usize) -> String {
    let printable = |b: &u8| b.is_ascii_graphic() || *b == b' ';
    let mut start = at;
    while start > 0 && at - start < 24 && printable(&window[start - 1]) {
        start -= 1;
    }
    let mut end = at + len;
    while end < window.len() && end - start < 64 && printable(&window[end]) {
        end += 1;
    }
    String::from_utf8_lossy(&window[start..end]).into_owned()
}

fn report(g: Gathered, path: &Path, len: u64, options: &InspectOptions) -> Inspection {
    let ann = |key: &str| -> Option<String> {
        g.spec
            .as_ref()?
            .get("annotations")?
            .get(key)?
            .as_str()
            .map(str::to_owned)
    };
    let cfg =
        |key: &str| -> Option<String> { g.config.as_ref()?.get(key)?.as_str().map(str::to_owned) };
    let manager = ann("io.container.manager");
    let (engine, container, pod, namespace, created) = match manager.as_deref() {
        Some("libpod") => ("Podman", cfg("name"), None, None, cfg("createdTime")),
        Some("cri-o") => (
            "CRI-O",
            ann("io.kubernetes.cri-o.Metadata")
                .and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok())
                .and_then(|m| m.get("name")?.as_str().map(str::to_owned))
                .or_else(|| cfg("name")),
            ann("io.kubernetes.pod.name"),
            ann("io.kubernetes.pod.namespace"),
            ann("io.kubernetes.cri-o.Created").or_else(|| cfg("createdTime")),
        ),
        _ => (
            "containerd",
            ann("io.kubernetes.cri.container-name").or_else(|| cfg("name")),
            ann("io.kubernetes.cri.sandbox-name"),
            ann("io.kubernetes.cri.sandbox-namespace"),
            cfg("createdTime"),
        ),
    };
    let processes = options.memory.then(|| {
        g.pagemaps
            .iter()
            .map(|(pid, (pages_id, mapped))| ProcessMemory {
                pid: *pid,
                pages_file: pages_id.map(|id| format!("checkpoint/pages-{id}.img")),
                memory_bytes: pages_id
                    .and_then(|id| g.pages.get(&id))
                    .copied()
                    .unwrap_or(0),
                mapped_pages: *mapped,
            })
            .collect()
    });
    let pid_of = |file: &str| {
        let id = numbered(file.rsplit('/').next().unwrap_or(file), "pages-")?;
        g.pagemaps
            .iter()
            .find(|(_, (pages_id, _))| *pages_id == Some(id))
            .map(|(pid, _)| *pid)
    };
    let search = options.search.as_ref().map(|needle| Search {
        needle: String::from_utf8_lossy(needle).into_owned(),
        total_matches: g.total_matches,
        matches: g
            .raw_matches
            .iter()
            .map(|(file, offset, context)| Match {
                pid: pid_of(file),
                file: file.clone(),
                offset: *offset,
                context: context.clone(),
            })
            .collect(),
        bytes_scanned: g.scanned,
    });
    Inspection {
        archive: path.to_owned(),
        container,
        pod,
        namespace,
        image: cfg("rootfsImageName").or_else(|| cfg("rootfsImage")),
        id: cfg("id"),
        runtime: cfg("runtime"),
        created,
        checkpointed: cfg("checkpointedTime"),
        engine: engine.to_owned(),
        archive_size: len,
        checkpoint_size: g.checkpoint_size,
        memory_pages_size: g.memory_pages_size,
        rootfs_diff_size: g.rootfs_diff_size,
        files: options.files.then_some(g.files),
        processes,
        search,
    }
}
