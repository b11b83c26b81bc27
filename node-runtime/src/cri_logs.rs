//! The CRI container log reader, as the kubelet's `ReadLogs`: what `GET /containerLogs` streams.
//!
//! A runtime writes each container's output to its log file (the kubelet's layout:
//! `<podLogsDir>/<namespace>_<pod>_<uid>/<container>/<restartCount>.log`), one record a line:
//!
//! ```text
//! 2016-10-06T00:17:09.669794202Z stdout F a whole line
//! 2016-10-06T00:17:09.669794203Z stderr P the first part of a long line, then
//! 2016-10-06T00:17:09.669794204Z stderr F  its end
//! ```
//!
//! * [`parse_query`] turns the `containerLogs` query (`v1.PodLogOptions`: `follow`, `previous`,
//!   `sinceSeconds`, `sinceTime`, `timestamps`, `tailLines`, `limitBytes`, `stream`, and the
//!   legacy `tail`) into [`LogOptions`], or the kubelet's answer when it is refused
//!   ([`QueryRejection`]: 400 undecodable, 422 invalid, 400 for a split stream while
//!   `PodLogsQuerySplitStreams` is off).
//! * [`LogDecoder`] is the pure part: file bytes in, response bytes out. Partial (`P`) records
//!   lose their newline so fragments join; `timestamps` prefixes each logical line with the
//!   fixed-width RFC 3339 time; `sinceSeconds`/`sinceTime` drop older records; `limitBytes`
//!   cuts the output at exactly that many bytes; a `tailLines` read stops after that many
//!   records. The format is told from the first line (CRI, else Docker's JSON file); lines that
//!   do not parse are skipped. The container's bytes pass through unchanged (invalid UTF-8
//!   included) and a record's message is never held whole: memory stays bounded whatever the
//!   line length.
//! * [`LogReader`] is the thin I/O layer: it opens the file (never through a symlink), finds
//!   where the last `tailLines` lines start by scanning back from the end in blocks
//!   ([`tail_start`]), and streams to a [`tokio::sync::mpsc::Sender`] of [`Bytes`]. With
//!   `follow` it waits at the end of the file for the file to grow (inotify on its directory,
//!   and a check at least every second), moves to the new file when rotation recreated it, and
//!   stops when the caller's check says the container no longer runs or when the receiver is
//!   dropped. Only the current file is read (rotated files are not), as the kubelet does.
//!
//! ```no_run
//! # async fn demo() -> Result<(), node_runtime::Error> {
//! use node_runtime::cri_logs::{LogReader, parse_query};
//! let request = parse_query("tailLines=10&timestamps=true", jiff::Timestamp::now(), false)
//!     .map_err(|r| node_runtime::Error::PodSpec { pod: "-".into(), reason: r.message })?;
//! let reader = LogReader::open("/var/log/pods/ns_pod_uid/app/0.log".as_ref(), &request.options).await?;
//! let (tx, mut rx) = tokio::sync::mpsc::channel(16);
//! tokio::spawn(reader.run(tx, || async { false }));
//! while let Some(chunk) = rx.recv().await {
//!     print!("{}", String::from_utf8_lossy(&chunk));
//! }
//! # Ok(()) }
//! ```

use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::AsyncReadExt;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

use crate::error::RuntimeError;

/// How often a follower looks at the file even without a change notification (the kubelet's
/// `logForceCheckPeriod`).
pub const FORCE_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// Bytes read from the file at a time (and so the most one response chunk holds, plus the
/// timestamp prefixes).
const READ_CHUNK: usize = 32 * 1024;

/// Block size of the backwards scan for `tailLines`.
const TAIL_BLOCK: u64 = 4 * 1024;

/// The longest CRI record header (`<timestamp> <stream> <tags> `) accepted; a longer one is not
/// a CRI record and its line is skipped.
const MAX_HEADER: usize = 256;

/// The longest Docker JSON-file line decoded (Docker splits messages at 16 KiB); longer ones
/// are skipped rather than held in memory.
const MAX_JSON_LINE: usize = 1024 * 1024;

/// `PodLogOptions.stream`: which of the container's streams to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogStream {
    /// Both, interleaved as written (the default).
    #[default]
    All,
    /// Standard output only.
    Stdout,
    /// Standard error only.
    Stderr,
}

impl LogStream {
    /// The API's spelling (`All`, `Stdout`, `Stderr`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "All",
            Self::Stdout => "Stdout",
            Self::Stderr => "Stderr",
        }
    }

    fn selects(self, stream: Stream) -> bool {
        match self {
            Self::All => true,
            Self::Stdout => stream == Stream::Stdout,
            Self::Stderr => stream == Stream::Stderr,
        }
    }
}

/// What to read from a log file (the kubelet's CRI `LogOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogOptions {
    /// Only the last N lines (physical lines: each partial record counts).
    pub tail_lines: Option<u64>,
    /// Stop after this many bytes of output.
    pub limit_bytes: Option<u64>,
    /// Drop records older than this.
    pub since: Option<jiff::Timestamp>,
    /// Prefix each logical line with its time (`2006-01-02T15:04:05.000000000Z07:00 `).
    pub timestamps: bool,
    /// Keep reading as the container writes, until it stops running.
    pub follow: bool,
    /// Which stream(s).
    pub stream: LogStream,
}

/// A parsed `containerLogs` query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRequest {
    /// How to read.
    pub options: LogOptions,
    /// The previous (terminated) instance rather than the current one.
    pub previous: bool,
}

/// Why a `containerLogs` query is refused, as the kubelet answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRejection {
    /// HTTP status: 400 (undecodable, or a stream that cannot be returned) or 422 (invalid).
    pub status: u16,
    /// The response body, the kubelet's text.
    pub message: String,
}

impl std::fmt::Display for QueryRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

fn undecodable() -> QueryRejection {
    QueryRejection {
        status: 400,
        message: r#"{"message": "Unable to decode query."}"#.to_owned(),
    }
}

fn invalid() -> QueryRejection {
    QueryRejection {
        status: 422,
        message: r#"{"message": "Invalid request."}"#.to_owned(),
    }
}

/// A query parameter as a boolean: present with any value but `0` or `false` (any case) is
/// true, as the API machinery's string conversion decides.
fn query_bool(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

/// Parses the `containerLogs` query string (without `?`) at time `now` (for `sinceSeconds`).
/// `split_streams` is the `PodLogsQuerySplitStreams` gate (off by default in 1.35): off, a
/// `stream` other than `All` is refused with 400; on, it selects the stream.
///
/// The first value of a repeated parameter counts; unknown parameters are ignored. Legacy
/// `tail=<n>` is `tailLines=<n>`, and `tail=all` removes `tailLines`.
///
/// # Errors
/// The kubelet's answer: 400 `{"message": "Unable to decode query."}` for a value that is not
/// a number, time or boolean; 422 `{"message": "Invalid request."}` for `tailLines` < 0,
/// `limitBytes` < 1, `sinceSeconds` < 1, both `sinceSeconds` and `sinceTime`, a `stream` not
/// `All`, `Stdout` or `Stderr`, or a specific stream with `tailLines`; 400
/// `unable to return the given log stream: "<stream>". Please enable PodLogsQuerySplitStreams
/// feature gate in kubelet` for a specific stream with the gate off.
pub fn parse_query(
    query: &str,
    now: jiff::Timestamp,
    split_streams: bool,
) -> Result<LogRequest, QueryRejection> {
    let mut first: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        first
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    if let Some(tail) = first.get("tail").cloned()
        && !tail.is_empty()
    {
        if tail == "all" {
            first.remove("tailLines");
        } else {
            first.insert("tailLines".to_owned(), tail);
        }
    }
    let int = |name: &str| -> Result<Option<i64>, QueryRejection> {
        first
            .get(name)
            .map(|v| v.parse::<i64>().map_err(|_| undecodable()))
            .transpose()
    };
    let flag = |name: &str| first.get(name).is_some_and(|v| query_bool(v));
    let tail_lines = int("tailLines")?;
    let limit_bytes = int("limitBytes")?;
    let since_seconds = int("sinceSeconds")?;
    // `sinceTime` present: empty or `null` is the zero time (set, but filtering nothing).
    let since_time: Option<Option<jiff::Timestamp>> = match first.get("sinceTime") {
        None => None,
        Some(v) if v.is_empty() || v == "null" => Some(None),
        Some(v) => Some(Some(parse_rfc3339(v).ok_or_else(undecodable)?)),
    };
    let stream = first.get("stream").cloned();

    // Validation (`ValidatePodLogOptions`).
    if tail_lines.is_some_and(|n| n < 0) || limit_bytes.is_some_and(|n| n < 1) {
        return Err(invalid());
    }
    match (since_seconds, &since_time) {
        (Some(_), Some(_)) => return Err(invalid()),
        (Some(s), None) if s < 1 => return Err(invalid()),
        _ => {}
    }
    let stream = match stream.as_deref() {
        None | Some("All") => LogStream::All,
        Some("Stdout") => LogStream::Stdout,
        Some("Stderr") => LogStream::Stderr,
        Some(_) => return Err(invalid()),
    };
    if stream != LogStream::All && tail_lines.is_some() {
        return Err(invalid());
    }
    if stream != LogStream::All && !split_streams {
        return Err(QueryRejection {
            status: 400,
            message: format!(
                "unable to return the given log stream: {:?}. Please enable PodLogsQuerySplitStreams feature gate in kubelet",
                stream.as_str()
            ),
        });
    }

    // The later of the two since times wins (only one can be set after validation).
    let mut since = since_seconds.and_then(|s| {
        jiff::SignedDuration::from_secs(s)
            .checked_neg()
            .and_then(|d| now.checked_add(d).ok())
            .or(Some(jiff::Timestamp::MIN))
    });
    if let Some(Some(t)) = since_time
        && since.is_none_or(|s| t > s)
    {
        since = Some(t);
    }
    let options = LogOptions {
        tail_lines: tail_lines.and_then(|n| u64::try_from(n).ok()),
        limit_bytes: limit_bytes.and_then(|n| u64::try_from(n).ok()),
        since,
        timestamps: flag("timestamps"),
        follow: flag("follow"),
        stream,
    };
    Ok(LogRequest {
        options,
        previous: flag("previous"),
    })
}

/// Parses an RFC 3339 time as a query parameter (`sinceTime`): seconds required, fraction
/// optional, `Z` or a numeric offset.
fn parse_rfc3339(text: &str) -> Option<jiff::Timestamp> {
    parse_timestamp(text.as_bytes()).map(|t| t.instant)
}

/// A record's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// A record's time: the instant and its fixed-width text (`RFC3339NanoFixed`, in the offset
/// the runtime wrote).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    instant: jiff::Timestamp,
    fixed: String,
}

fn two_digits(b: &[u8]) -> Option<i8> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => i8::try_from((a - b'0') * 10 + (c - b'0')).ok(),
        _ => None,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)` (trailing zeros of the fraction may be
/// trimmed, as runtimes write it; digits past nanoseconds are dropped).
fn parse_timestamp(b: &[u8]) -> Option<Stamp> {
    if b.len() < 20 {
        return None;
    }
    let year_text = b.get(0..4)?;
    if !year_text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year = year_text
        .iter()
        .fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0'));
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let month = two_digits(&b[5..7])?;
    let day = two_digits(&b[8..10])?;
    let hour = two_digits(&b[11..13])?;
    let minute = two_digits(&b[14..16])?;
    let second = two_digits(&b[17..19])?;
    let mut rest = &b[19..];
    let mut nanos: i32 = 0;
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for i in 0..9 {
            let d = frac.get(i).filter(|_| i < digits).map_or(0, |c| c - b'0');
            nanos = nanos * 10 + i32::from(d);
        }
        rest = &frac[digits..];
    }
    let (offset_secs, zone) = match rest {
        b"Z" => (0i32, "Z".to_owned()),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = two_digits(&[*h1, *h2])?;
            let m = two_digits(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i32::from(h) * 3600 + i32::from(m) * 60;
            let secs = if *sign == b'-' { -secs } else { secs };
            let zone = if secs == 0 {
                "Z".to_owned()
            } else {
                String::from_utf8_lossy(rest).into_owned()
            };
            (secs, zone)
        }
        _ => return None,
    };
    let civil = jiff::civil::DateTime::new(year, month, day, hour, minute, second, nanos).ok()?;
    let offset = jiff::tz::Offset::from_seconds(offset_secs).ok()?;
    let instant = offset.to_timestamp(civil).ok()?;
    let fixed = format!("{}.{nanos:09}{zone}", String::from_utf8_lossy(&b[..19]));
    Some(Stamp { instant, fixed })
}

/// A record header: `<timestamp> <stream> <tags> ` (the message follows).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    stamp: Stamp,
    stream: Stream,
    partial: bool,
}

/// Parses a CRI record header (the bytes up to and including the third space).
fn parse_cri_header(h: &[u8]) -> Option<Header> {
    let mut parts = h.splitn(4, |&c| c == b' ');
    let stamp = parse_timestamp(parts.next()?)?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let tags = parts.next()?;
    // The rest must exist (the third space was seen).
    parts.next()?;
    let partial = tags.split(|&c| c == b':').next() == Some(b"P");
    Some(Header {
        stamp,
        stream,
        partial,
    })
}

#[derive(serde::Deserialize)]
struct JsonLine {
    #[serde(default)]
    log: String,
    #[serde(default)]
    stream: String,
    time: String,
}

/// Parses a Docker JSON-file line (`{"log":..,"stream":..,"time":..}`).
fn parse_json_line(line: &[u8]) -> Option<(Header, Vec<u8>)> {
    let l: JsonLine = serde_json::from_slice(line).ok()?;
    let stamp = parse_timestamp(l.time.as_bytes())?;
    let stream = match l.stream.as_str() {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    Some((
        Header {
            stamp,
            stream,
            partial: false,
        },
        l.log.into_bytes(),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Cri,
    Json,
}

/// Where the decoder is within the current physical line.
#[derive(Debug)]
enum LineState {
    /// Collecting a CRI header (or, before the format is known, the first bytes).
    Header(Vec<u8>),
    /// Passing a CRI message through until its newline.
    Body { emit: bool, partial: bool, len: u64 },
    /// Collecting a JSON line.
    Json(Vec<u8>),
    /// Discarding the rest of an unusable line.
    Skip,
}

/// What the decoder saw that ends the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeEnd {
    /// `limitBytes` output, or `tailLines` records read (without `follow`): stop.
    Done,
    /// The first line is in no known log format: stop (the kubelet answers
    /// `unsupported log format`).
    UnsupportedFormat,
}

/// The pure log decoder: file bytes in, response bytes out, as [`LogOptions`] say. Feed it the
/// file from where reading starts ([`tail_start`]), in chunks of any size.
#[derive(Debug)]
pub struct LogDecoder {
    since: Option<jiff::Timestamp>,
    timestamps: bool,
    stream: LogStream,
    remaining_bytes: Option<u64>,
    remaining_lines: Option<u64>,
    format: Option<Format>,
    state: LineState,
    at_line_start: bool,
    /// A line has been decoded or skipped (the first one decides the format).
    line_seen: bool,
    end: Option<DecodeEnd>,
}

impl LogDecoder {
    /// A decoder for `options` (`tailLines` limits the records read only without `follow`).
    pub fn new(options: &LogOptions) -> Self {
        Self {
            since: options.since,
            timestamps: options.timestamps,
            stream: options.stream,
            remaining_bytes: options.limit_bytes,
            remaining_lines: if options.follow {
                None
            } else {
                options.tail_lines
            },
            format: None,
            state: LineState::Header(Vec::new()),
            at_line_start: true,
            line_seen: false,
            end: if options.tail_lines == Some(0) && !options.follow {
                Some(DecodeEnd::Done)
            } else {
                None
            },
        }
    }

    /// Why decoding ended, once it has.
    pub fn end(&self) -> Option<&DecodeEnd> {
        self.end.as_ref()
    }

    /// Forgets a line cut short (the file was replaced): the next byte starts a new line.
    pub fn reset_line(&mut self) {
        self.state = LineState::Header(Vec::new());
    }

    /// Appends `bytes` of output to `out`, cut at `limitBytes`.
    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        if self.end.is_some() {
            return;
        }
        match &mut self.remaining_bytes {
            None => out.extend_from_slice(bytes),
            Some(remaining) => {
                let take = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                out.extend_from_slice(&bytes[..take]);
                *remaining -= take as u64;
                if *remaining == 0 {
                    self.end = Some(DecodeEnd::Done);
                }
            }
        }
    }

    /// Whether a record with `header` is output, and its timestamp prefix.
    fn start_record(&mut self, header: &Header, out: &mut Vec<u8>) -> bool {
        self.line_seen = true;
        let emit = self.stream.selects(header.stream)
            && self.since.is_none_or(|s| header.stamp.instant >= s);
        if emit && self.timestamps && self.at_line_start {
            let mut prefix = header.stamp.fixed.clone().into_bytes();
            prefix.push(b' ');
            self.emit(out, &prefix);
        }
        emit
    }

    /// A physical line ended (`message_ended_in_newline`: its output ends a logical line).
    fn end_record(&mut self, ends_logical_line: bool) {
        self.at_line_start = ends_logical_line;
        if let Some(n) = &mut self.remaining_lines {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.end = Some(DecodeEnd::Done);
            }
        }
    }

    /// Decodes `input`, appending the output to `out`. Stops early once [`LogDecoder::end`]
    /// is set.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() && self.end.is_none() {
            let state = std::mem::replace(&mut self.state, LineState::Skip);
            match state {
                LineState::Header(mut buf) => {
                    if self.format.is_none() && buf.is_empty() {
                        self.format = Some(if input[0] == b'{' {
                            Format::Json
                        } else {
                            Format::Cri
                        });
                        if self.format == Some(Format::Json) {
                            self.state = LineState::Json(Vec::new());
                            continue;
                        }
                    }
                    if self.format == Some(Format::Json) {
                        self.state = LineState::Json(buf);
                        continue;
                    }
                    // Collect up to the third space (or the end of the line).
                    let mut spaces = buf.iter().filter(|&&c| c == b' ').count();
                    let mut used = 0;
                    let mut newline = false;
                    for &c in input {
                        used += 1;
                        if c == b'\n' {
                            newline = true;
                            break;
                        }
                        buf.push(c);
                        if c == b' ' {
                            spaces += 1;
                            if spaces == 3 {
                                break;
                            }
                        }
                        if buf.len() > MAX_HEADER {
                            break;
                        }
                    }
                    input = &input[used..];
                    if newline {
                        // A line without a whole header: not a record.
                        self.unparsable(&buf);
                        self.state = LineState::Header(Vec::new());
                    } else if spaces == 3 {
                        match parse_cri_header(&buf) {
                            Some(header) => {
                                let emit = self.start_record(&header, out);
                                self.state = LineState::Body {
                                    emit,
                                    partial: header.partial,
                                    len: 0,
                                };
                            }
                            None => {
                                self.unparsable(&buf);
                                self.state = LineState::Skip;
                            }
                        }
                    } else if buf.len() > MAX_HEADER {
                        self.unparsable(&buf);
                        self.state = LineState::Skip;
                    } else {
                        self.state = LineState::Header(buf);
                    }
                }
                LineState::Body { emit, partial, len } => {
                    match input.iter().position(|&c| c == b'\n') {
                        Some(i) => {
                            let msg = &input[..i];
                            if emit {
                                self.emit(out, msg);
                                if !partial {
                                    self.emit(out, b"\n");
                                }
                            }
                            let len = len + msg.len() as u64 + u64::from(!partial);
                            input = &input[i + 1..];
                            // An empty message starts a new line, as the kubelet's reader has it.
                            self.end_record(len == 0 || !partial);
                            self.state = LineState::Header(Vec::new());
                        }
                        None => {
                            if emit {
                                self.emit(out, input);
                            }
                            self.state = LineState::Body {
                                emit,
                                partial,
                                len: len + input.len() as u64,
                            };
                            input = &[];
                        }
                    }
                }
                LineState::Json(mut buf) => match input.iter().position(|&c| c == b'\n') {
                    Some(i) => {
                        buf.extend_from_slice(&input[..i]);
                        input = &input[i + 1..];
                        self.json_line(&buf, out);
                        self.state = LineState::Header(Vec::new());
                    }
                    None => {
                        buf.extend_from_slice(input);
                        input = &[];
                        self.state = if buf.len() > MAX_JSON_LINE {
                            tracing::debug!("skipping an over-long JSON log line");
                            LineState::Skip
                        } else {
                            LineState::Json(buf)
                        };
                    }
                },
                LineState::Skip => match input.iter().position(|&c| c == b'\n') {
                    Some(i) => {
                        input = &input[i + 1..];
                        self.state = LineState::Header(Vec::new());
                    }
                    None => {
                        input = &[];
                        self.state = LineState::Skip;
                    }
                },
            }
        }
    }

    /// The file ended (without `follow`): a JSON line without its newline is still decoded; a
    /// CRI message cut short has been passed through already.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let LineState::Json(buf) = std::mem::replace(&mut self.state, LineState::Skip)
            && !buf.is_empty()
            && self.end.is_none()
        {
            self.json_line(&buf, out);
        }
        self.state = LineState::Header(Vec::new());
    }

    fn json_line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        match parse_json_line(line) {
            Some((header, log)) => {
                if self.start_record(&header, out) {
                    self.emit(out, &log);
                }
                self.end_record(log.last().is_none_or(|&c| c == b'\n'));
            }
            None => self.unparsable(line),
        }
    }

    /// A line that is no record: skipped, except that the file's first line decides the
    /// format, and one in no format ends the read.
    fn unparsable(&mut self, line: &[u8]) {
        if !self.line_seen {
            self.end = Some(DecodeEnd::UnsupportedFormat);
        }
        self.line_seen = true;
        let shown = &line[..line.len().min(64)];
        tracing::debug!(line = %String::from_utf8_lossy(shown), "skipping a log line that does not parse");
    }
}

/// Where the last `n` complete lines of `file` start, found by scanning back from the end in
/// blocks (a last line without its newline is not counted); 0 when the file has fewer.
///
/// # Errors
/// Seeking or reading fails.
pub fn tail_start<R: Read + Seek>(file: &mut R, n: u64) -> std::io::Result<u64> {
    let size = file.seek(SeekFrom::End(0))?;
    let mut right = size;
    let mut count: u64 = 0;
    let mut buf = vec![0u8; usize::try_from(TAIL_BLOCK).unwrap_or(4096)];
    while right > 0 {
        let left = right.saturating_sub(TAIL_BLOCK);
        let len = usize::try_from(right - left).unwrap_or(buf.len());
        let block = &mut buf[..len];
        file.seek(SeekFrom::Start(left))?;
        file.read_exact(block)?;
        // Newlines in this block from its end backwards: the (n+1)th from the file's end is
        // the one just before the first wanted line.
        for (i, _) in block.iter().enumerate().rev().filter(|(_, c)| **c == b'\n') {
            count += 1;
            if count > n {
                return Ok(left + i as u64 + 1);
            }
        }
        right = left;
    }
    Ok(0)
}

/// The file's identity, to tell a recreated file from the open one.
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// Opens `path` for reading without following a symlink in its last component, and checks it
/// is a regular file.
fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// A container log file opened for reading, positioned where [`LogOptions::tail_lines`] starts.
#[derive(Debug)]
pub struct LogReader {
    path: PathBuf,
    file: tokio::fs::File,
    id: (u64, u64),
    options: LogOptions,
}

impl LogReader {
    /// Opens the log file at `path` (refusing a symlink or anything but a regular file) and
    /// seeks to where the last `tailLines` lines start.
    ///
    /// # Errors
    /// [`RuntimeError::Io`] when the file cannot be opened or read (the kubelet's `failed to
    /// open log file`).
    pub async fn open(path: &Path, options: &LogOptions) -> Result<Self, RuntimeError> {
        let owned = path.to_path_buf();
        let tail = options.tail_lines;
        let (file, id) = crate::blocking::run("opening log file", move || {
            let io = |source| RuntimeError::Io {
                action: "open log file",
                path: owned.clone(),
                source,
            };
            let mut file = open_regular(&owned).map_err(io)?;
            let start = match tail {
                Some(n) => tail_start(&mut file, n).map_err(io)?,
                None => 0,
            };
            file.seek(SeekFrom::Start(start)).map_err(io)?;
            let id = identity(&file.metadata().map_err(io)?);
            Ok((file, id))
        })
        .await?;
        Ok(Self {
            path: path.to_path_buf(),
            file: tokio::fs::File::from_std(file),
            id,
            options: options.clone(),
        })
    }

    /// Streams the log to `sink` as [`LogOptions`] say. With `follow`, at the end of the file it
    /// waits for more (inotify on the file's directory, at least every
    /// [`FORCE_CHECK_PERIOD`]), asking `running` each time whether the container still runs;
    /// once it does not, it reads to the end and returns. It also returns when `sink`'s
    /// receiver is dropped.
    ///
    /// # Errors
    /// Reading the file fails ([`RuntimeError::Io`]); the output so far has been sent.
    pub async fn run<F, Fut>(
        mut self,
        sink: mpsc::Sender<Bytes>,
        mut running: F,
    ) -> Result<(), RuntimeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let io_err = |path: &Path, source| RuntimeError::Io {
            action: "read log file",
            path: path.to_path_buf(),
            source,
        };
        let mut decoder = LogDecoder::new(&self.options);
        let mut buf = vec![0u8; READ_CHUNK];
        let mut watch: Option<Watch> = None;
        let mut still_running = true;
        loop {
            if decoder.end().is_some() {
                if decoder.end() == Some(&DecodeEnd::UnsupportedFormat) {
                    tracing::info!(path = %self.path.display(), "unsupported log format");
                }
                return Ok(());
            }
            let n = self
                .file
                .read(&mut buf)
                .await
                .map_err(|e| io_err(&self.path, e))?;
            if n > 0 {
                let mut out = Vec::with_capacity(n + 64);
                decoder.feed(&buf[..n], &mut out);
                if !send(&sink, out).await {
                    return Ok(());
                }
                continue;
            }
            // End of file.
            if !self.options.follow {
                let mut out = Vec::new();
                decoder.finish(&mut out);
                send(&sink, out).await;
                return Ok(());
            }
            if !still_running {
                return Ok(());
            }
            if watch.is_none() {
                // Watch first, then look again: a write between the read and the watch is
                // not missed.
                watch = Some(Watch::new(self.path.parent().unwrap_or(Path::new("/"))));
                continue;
            }
            still_running = running().await;
            if !still_running {
                // Read what was written before it stopped, then return.
                continue;
            }
            let Some(w) = watch.as_mut() else {
                continue;
            };
            tokio::select! {
                () = w.changed() => {}
                () = tokio::time::sleep(FORCE_CHECK_PERIOD) => {}
                () = sink.closed() => return Ok(()),
            }
            if let Some(file) = self.reopened().await {
                // Rotation: what the runtime wrote to the old file before it reopened is read
                // first, then the new file from its start.
                loop {
                    let n = self
                        .file
                        .read(&mut buf)
                        .await
                        .map_err(|e| io_err(&self.path, e))?;
                    if n == 0 || decoder.end().is_some() {
                        break;
                    }
                    let mut out = Vec::with_capacity(n + 64);
                    decoder.feed(&buf[..n], &mut out);
                    if !send(&sink, out).await {
                        return Ok(());
                    }
                }
                decoder.reset_line();
                self.file = tokio::fs::File::from_std(file.0);
                self.id = file.1;
            }
        }
    }

    /// The file now at the path, when it is another one than the open file (rotation
    /// recreated it).
    async fn reopened(&self) -> Option<(std::fs::File, (u64, u64))> {
        let path = self.path.clone();
        let current = self.id;
        crate::blocking::run("reopening log file", move || {
            let reopened = open_regular(&path).ok().and_then(|file| {
                let id = identity(&file.metadata().ok()?);
                (id != current).then_some((file, id))
            });
            Ok(reopened)
        })
        .await
        .ok()
        .flatten()
    }
}

/// Sends a non-empty chunk; false when the receiver is gone.
async fn send(sink: &mpsc::Sender<Bytes>, out: Vec<u8>) -> bool {
    out.is_empty() || sink.send(Bytes::from(out)).await.is_ok()
}

/// The inotify descriptor, for [`AsyncFd`].
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Registers the inotify descriptor with the reactor.
#[allow(unsafe_code)]
fn register(inotify: Inotify) -> std::io::Result<AsyncFd<InotifyFd>> {
    // SAFETY: `InotifyFd` owns the descriptor (nix's `Inotify` holds an `OwnedFd`) and never
    // hands it out or replaces it, so it stays open and the same for the `AsyncFd`'s whole
    // lifetime, and `as_raw_fd` always returns it.
    unsafe { AsyncFd::register_with_interest(InotifyFd(inotify), tokio::io::Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Change notification for the log file's directory, closed with the reader (no thread).
struct Watch {
    fd: Option<AsyncFd<InotifyFd>>,
}

impl Watch {
    fn new(dir: &Path) -> Self {
        let flags = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_ATTRIB;
        let fd = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .and_then(|i| i.add_watch(dir, flags).map(|_| i))
            .map_err(std::io::Error::from)
            .and_then(register);
        match fd {
            Ok(fd) => Self { fd: Some(fd) },
            Err(e) => {
                tracing::info!(dir = %dir.display(), error = %e, "not watching the log directory; checking every second");
                Self { fd: None }
            }
        }
    }

    /// Resolves at the next change in the directory (never, without a watch).
    async fn changed(&mut self) {
        let Some(fd) = &self.fd else {
            return std::future::pending().await;
        };
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return std::future::pending().await;
            };
            match guard.try_io(|inner| {
                inner
                    .get_ref()
                    .0
                    .read_events()
                    .map_err(std::io::Error::from)
            }) {
                Ok(Ok(events)) if !events.is_empty() => return,
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "log directory watch failed; checking every second");
                    self.fd = None;
                    return std::future::pending().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-01-02T03:04:05Z".parse().unwrap()
    }

    fn q(query: &str) -> Result<LogRequest, QueryRejection> {
        parse_query(query, now(), false)
    }

    fn status(query: &str) -> u16 {
        q(query).unwrap_err().status
    }

    #[test]
    fn an_empty_query_reads_everything() {
        let r = q("").unwrap();
        assert_eq!(r, LogRequest::default());
    }

    #[test]
    fn booleans_are_true_unless_false_or_zero() {
        for (query, want) in [
            ("follow=true", true),
            ("follow", true),
            ("follow=", true),
            ("follow=yes", true),
            ("follow=1", true),
            ("follow=false", false),
            ("follow=FALSE", false),
            ("follow=0", false),
        ] {
            assert_eq!(q(query).unwrap().options.follow, want, "{query}");
        }
        let r = q("previous=true&timestamps=true").unwrap();
        assert!(r.previous && r.options.timestamps);
        // The first of repeated values counts.
        assert!(!q("follow=false&follow=true").unwrap().options.follow);
    }

    #[test]
    fn numbers_that_do_not_decode_are_400() {
        for query in [
            "tailLines=abc",
            "tailLines=",
            "limitBytes=1.5",
            "sinceSeconds=ten",
            "tailLines=99999999999999999999",
            "sinceTime=yesterday",
            "sinceTime=2026-01-02",
        ] {
            let e = q(query).unwrap_err();
            assert_eq!(e.status, 400, "{query}");
            assert_eq!(e.message, r#"{"message": "Unable to decode query."}"#);
        }
    }

    #[test]
    fn validation_failures_are_422() {
        for query in [
            "tailLines=-1",
            "limitBytes=0",
            "limitBytes=-5",
            "sinceSeconds=0",
            "sinceSeconds=-1",
            "sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z",
            "stream=stdout",
            "stream=",
            "stream=Both",
            "stream=Stdout&tailLines=1",
            "stream=Stderr&tail=3",
        ] {
            let e = q(query).unwrap_err();
            assert_eq!(e.status, 422, "{query}");
            assert_eq!(e.message, r#"{"message": "Invalid request."}"#);
        }
        // Validation comes before the stream gate.
        assert_eq!(
            parse_query("stream=Stdout&tailLines=1", now(), true)
                .unwrap_err()
                .status,
            422
        );
    }

    #[test]
    fn legacy_tail_sets_or_removes_tail_lines() {
        assert_eq!(q("tail=5").unwrap().options.tail_lines, Some(5));
        assert_eq!(q("tailLines=3&tail=7").unwrap().options.tail_lines, Some(7));
        assert_eq!(q("tailLines=3&tail=all").unwrap().options.tail_lines, None);
        assert_eq!(q("tailLines=3&tail=").unwrap().options.tail_lines, Some(3));
        assert_eq!(status("tail=x"), 400);
        assert_eq!(status("tail=-2"), 422);
        assert_eq!(q("tailLines=0").unwrap().options.tail_lines, Some(0));
        assert_eq!(q("limitBytes=10").unwrap().options.limit_bytes, Some(10));
    }

    #[test]
    fn since_seconds_and_since_time() {
        let r = q("sinceSeconds=10").unwrap();
        assert_eq!(
            r.options.since,
            Some("2026-01-02T03:03:55Z".parse().unwrap())
        );
        let r = q("sinceTime=2026-01-01T10:00:00.5%2B02:00").unwrap();
        assert_eq!(
            r.options.since,
            Some("2026-01-01T08:00:00.5Z".parse().unwrap())
        );
        // Empty or null: the zero time, which filters nothing but still counts as set.
        assert_eq!(q("sinceTime=").unwrap().options.since, None);
        assert_eq!(q("sinceTime=null").unwrap().options.since, None);
        assert_eq!(status("sinceTime=&sinceSeconds=1"), 422);
    }

    #[test]
    fn a_specific_stream_needs_the_split_streams_gate() {
        let e = q("stream=Stdout").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            e.message,
            r#"unable to return the given log stream: "Stdout". Please enable PodLogsQuerySplitStreams feature gate in kubelet"#
        );
        assert_eq!(status("stream=Stderr"), 400);
        assert_eq!(q("stream=All").unwrap().options.stream, LogStream::All);
        let on = |query| parse_query(query, now(), true).unwrap().options.stream;
        assert_eq!(on("stream=Stdout"), LogStream::Stdout);
        assert_eq!(on("stream=Stderr"), LogStream::Stderr);
        assert_eq!(on("stream=All&tailLines=2"), LogStream::All);
    }

    #[test]
    fn timestamps_parse_trimmed_and_print_fixed() {
        let t = parse_timestamp(b"2016-10-06T00:17:09.6697942Z").unwrap();
        assert_eq!(t.fixed, "2016-10-06T00:17:09.669794200Z");
        assert_eq!(t.instant, "2016-10-06T00:17:09.6697942Z".parse().unwrap());
        let t = parse_timestamp(b"2016-10-06T00:17:09Z").unwrap();
        assert_eq!(t.fixed, "2016-10-06T00:17:09.000000000Z");
        let t = parse_timestamp(b"2016-10-06T02:17:09.5+02:00").unwrap();
        assert_eq!(t.fixed, "2016-10-06T02:17:09.500000000+02:00");
        assert_eq!(t.instant, "2016-10-06T00:17:09.5Z".parse().unwrap());
        assert_eq!(
            parse_timestamp(b"2016-10-06T00:17:09+00:00").unwrap().fixed,
            "2016-10-06T00:17:09.000000000Z"
        );
        for bad in [
            &b"2016-10-06 00:17:09Z"[..],
            b"2016-13-06T00:17:09Z",
            b"2016-10-06T00:17:09.Z",
            b"2016-10-06T00:17:09",
            b"2016-10-06T00:17:09z",
            b"x016-10-06T00:17:09Z",
        ] {
            assert!(
                parse_timestamp(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn decode(options: &LogOptions, input: &[u8]) -> Vec<u8> {
        let mut d = LogDecoder::new(options);
        let mut out = Vec::new();
        d.feed(input, &mut out);
        d.finish(&mut out);
        out
    }

    /// Feeds one byte at a time: chunk boundaries never change the output.
    fn decode_bytewise(options: &LogOptions, input: &[u8]) -> Vec<u8> {
        let mut d = LogDecoder::new(options);
        let mut out = Vec::new();
        for b in input {
            d.feed(std::slice::from_ref(b), &mut out);
        }
        d.finish(&mut out);
        out
    }

    const LOG: &[u8] = b"2026-01-02T03:04:01.1Z stdout F one\n\
2026-01-02T03:04:02.2Z stderr P two-a \n\
2026-01-02T03:04:03.3Z stderr F two-b\n\
2026-01-02T03:04:04Z stdout F:x three\n";

    #[test]
    fn partial_records_join_and_full_records_end_lines() {
        let all = LogOptions::default();
        assert_eq!(decode(&all, LOG), b"one\ntwo-a two-b\nthree\n");
        assert_eq!(decode_bytewise(&all, LOG), b"one\ntwo-a two-b\nthree\n");
    }

    #[test]
    fn timestamps_prefix_logical_lines_only() {
        let o = LogOptions {
            timestamps: true,
            ..LogOptions::default()
        };
        let want = "2026-01-02T03:04:01.100000000Z one\n\
2026-01-02T03:04:02.200000000Z two-a two-b\n\
2026-01-02T03:04:04.000000000Z three\n";
        assert_eq!(String::from_utf8(decode(&o, LOG)).unwrap(), want);
        assert_eq!(String::from_utf8(decode_bytewise(&o, LOG)).unwrap(), want);
    }

    #[test]
    fn since_drops_older_records() {
        let o = LogOptions {
            since: Some("2026-01-02T03:04:02.2Z".parse().unwrap()),
            ..LogOptions::default()
        };
        assert_eq!(decode(&o, LOG), b"two-a two-b\nthree\n");
    }

    #[test]
    fn limit_bytes_cuts_exactly_and_counts_prefixes() {
        for n in 0..20u64 {
            let o = LogOptions {
                limit_bytes: Some(n + 1),
                ..LogOptions::default()
            };
            let full = b"one\ntwo-a two-b\nthree\n";
            let want = &full[..usize::try_from(n + 1).unwrap().min(full.len())];
            assert_eq!(decode(&o, LOG), want, "{n}");
            assert_eq!(decode_bytewise(&o, LOG), want, "{n}");
        }
        let o = LogOptions {
            limit_bytes: Some(34),
            timestamps: true,
            ..LogOptions::default()
        };
        assert_eq!(decode(&o, LOG), b"2026-01-02T03:04:01.100000000Z one");
    }

    #[test]
    fn tail_lines_stops_after_that_many_records_unless_following() {
        let o = LogOptions {
            tail_lines: Some(2),
            ..LogOptions::default()
        };
        assert_eq!(decode(&o, LOG), b"one\ntwo-a ");
        let o = LogOptions {
            tail_lines: Some(0),
            ..LogOptions::default()
        };
        assert_eq!(decode(&o, LOG), b"");
        let o = LogOptions {
            tail_lines: Some(1),
            follow: true,
            ..LogOptions::default()
        };
        assert_eq!(decode(&o, LOG), b"one\ntwo-a two-b\nthree\n");
    }

    #[test]
    fn a_stream_selects_its_records() {
        let o = LogOptions {
            stream: LogStream::Stderr,
            ..LogOptions::default()
        };
        assert_eq!(decode(&o, LOG), b"two-a two-b\n");
        let o = LogOptions {
            stream: LogStream::Stdout,
            limit_bytes: Some(6),
            ..LogOptions::default()
        };
        assert_eq!(decode(&o, LOG), b"one\nth");
    }

    #[test]
    fn bytes_pass_through_unchanged_and_bad_lines_are_skipped() {
        let mut input = b"2026-01-02T03:04:01Z stdout F \xff\xfe\x00bin\r\n".to_vec();
        input.extend_from_slice(b"garbage without a header\n");
        input.extend_from_slice(b"2026-01-02T03:04:01Z stdin F wrong stream\n");
        input.extend_from_slice(b"not-a-time stdout F x\n");
        input.extend_from_slice(b"\n");
        input.extend_from_slice(&[b'x'; 1000]);
        input.extend_from_slice(b"\n2026-01-02T03:04:01Z stdout F \n");
        input.extend_from_slice(b"2026-01-02T03:04:01Z stdout F last");
        let want = b"\xff\xfe\x00bin\r\n\nlast".to_vec();
        assert_eq!(decode(&LogOptions::default(), &input), want);
        assert_eq!(decode_bytewise(&LogOptions::default(), &input), want);
    }

    #[test]
    fn an_empty_partial_record_ends_the_logical_line() {
        let input = b"2026-01-02T03:04:01Z stdout P \n2026-01-02T03:04:02Z stdout F b\n";
        let o = LogOptions {
            timestamps: true,
            ..LogOptions::default()
        };
        assert_eq!(
            decode(&o, input),
            b"2026-01-02T03:04:01.000000000Z 2026-01-02T03:04:02.000000000Z b\n"
        );
    }

    #[test]
    fn a_first_line_in_no_format_ends_the_read() {
        let mut d = LogDecoder::new(&LogOptions::default());
        let mut out = Vec::new();
        d.feed(
            b"hello world, no header\n2026-01-02T03:04:01Z stdout F x\n",
            &mut out,
        );
        assert_eq!(d.end(), Some(&DecodeEnd::UnsupportedFormat));
        assert!(out.is_empty());
    }

    #[test]
    fn docker_json_lines_are_read_when_the_first_line_is_json() {
        let input = br#"{"log":"a\n","stream":"stdout","time":"2026-01-02T03:04:01.5Z"}
{"log":"part ","stream":"stderr","time":"2026-01-02T03:04:02Z"}
{"log":"end\n","stream":"stderr","time":"2026-01-02T03:04:03Z"}
not json
{"log":"x\n","stream":"stdout","time":"2026-01-02T03:04:04Z"}"#;
        let o = LogOptions {
            timestamps: true,
            ..LogOptions::default()
        };
        let want = "2026-01-02T03:04:01.500000000Z a\n2026-01-02T03:04:02.000000000Z part end\n2026-01-02T03:04:04.000000000Z x\n";
        assert_eq!(String::from_utf8(decode(&o, input)).unwrap(), want);
        assert_eq!(String::from_utf8(decode_bytewise(&o, input)).unwrap(), want);
    }

    #[test]
    fn a_huge_message_streams_without_being_held() {
        let mut d = LogDecoder::new(&LogOptions::default());
        let mut out = Vec::new();
        d.feed(b"2026-01-02T03:04:01Z stdout F ", &mut out);
        let chunk = vec![b'y'; 1 << 20];
        let mut total = 0;
        for _ in 0..64 {
            out.clear();
            d.feed(&chunk, &mut out);
            // Each chunk comes out as it goes in: nothing accumulates.
            assert_eq!(out.len(), chunk.len());
            total += out.len();
            assert!(matches!(d.state, LineState::Body { .. }));
        }
        out.clear();
        d.feed(b"\n", &mut out);
        assert_eq!(out, b"\n");
        assert_eq!(total, 64 << 20);
    }

    #[test]
    fn tail_start_finds_the_last_complete_lines() {
        let mut text = Vec::new();
        for i in 0..3000 {
            writeln!(text, "line {i}").unwrap();
        }
        let find = |data: &[u8], n| tail_start(&mut std::io::Cursor::new(data), n).unwrap();
        let start = usize::try_from(find(&text, 2)).unwrap();
        assert_eq!(&text[start..], b"line 2998\nline 2999\n");
        let start = usize::try_from(find(&text, 2000)).unwrap();
        assert!(text[start..].starts_with(b"line 1000\n"));
        assert_eq!(find(&text, 3000), 0);
        assert_eq!(find(&text, 5000), 0);
        assert_eq!(find(&text, 0), text.len() as u64);
        // A last line without its newline is not counted.
        let partial = b"a\nb\nc";
        assert_eq!(find(partial, 1), 2);
        assert_eq!(find(partial, 0), 4);
        assert_eq!(find(b"", 3), 0);
    }

    async fn next(rx: &mut mpsc::Receiver<Bytes>) -> Bytes {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap()
    }

    async fn collect(mut rx: mpsc::Receiver<Bytes>) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(chunk) = rx.recv().await {
            all.extend_from_slice(&chunk);
        }
        all
    }

    fn record(msg: &str) -> String {
        format!("{} stdout F {msg}\n", jiff::Timestamp::now())
    }

    #[tokio::test]
    async fn reads_a_file_with_tail_and_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, LOG).unwrap();
        let o = LogOptions {
            tail_lines: Some(2),
            ..LogOptions::default()
        };
        let reader = LogReader::open(&path, &o).await.unwrap();
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(reader.run(tx, || async { true }));
        assert_eq!(collect(rx).await, b"two-b\nthree\n");
        task.await.unwrap().unwrap();

        let link = dir.path().join("1.log");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = LogReader::open(&link, &LogOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, RuntimeError::Io { .. }), "{err}");
        let err = LogReader::open(&dir.path().join("missing.log"), &LogOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, RuntimeError::Io { .. }), "{err}");
        std::fs::create_dir(dir.path().join("2.log")).unwrap();
        assert!(
            LogReader::open(&dir.path().join("2.log"), &LogOptions::default())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn follow_sees_new_lines_and_rotation_and_stops_with_the_container() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, record("before")).unwrap();
        let o = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let reader = LogReader::open(&path, &o).await.unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let running = Arc::new(AtomicBool::new(true));
        let check = running.clone();
        let task = tokio::spawn(reader.run(tx, move || {
            let check = check.clone();
            async move { check.load(Ordering::SeqCst) }
        }));
        assert_eq!(&next(&mut rx).await[..], b"before\n");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(record("appended").as_bytes()).unwrap();
        assert_eq!(&next(&mut rx).await[..], b"appended\n");
        // Rotation: renamed away (a late write to the old file is still read), a new file.
        std::fs::rename(&path, dir.path().join("0.log.20260102-030405")).unwrap();
        f.write_all(record("late").as_bytes()).unwrap();
        std::fs::write(&path, record("rotated")).unwrap();
        let mut got = Vec::new();
        while got.len() < b"late\nrotated\n".len() {
            got.extend_from_slice(&next(&mut rx).await);
        }
        assert_eq!(got, b"late\nrotated\n");
        // The container stops after a last line: it is read, then the reader returns.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        running.store(false, Ordering::SeqCst);
        f.write_all(record("last").as_bytes()).unwrap();
        let rest = tokio::time::timeout(Duration::from_secs(10), collect(rx))
            .await
            .unwrap();
        assert_eq!(rest, b"last\n");
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn follow_ends_when_the_receiver_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, record("x")).unwrap();
        let o = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let reader = LogReader::open(&path, &o).await.unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let task = tokio::spawn(reader.run(tx, || async { true }));
        assert_eq!(&rx.recv().await.unwrap()[..], b"x\n");
        drop(rx);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the follower ends")
            .unwrap()
            .unwrap();
    }
}
