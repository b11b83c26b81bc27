//! `GET /logs/` and `/logs/{path}`: the node's log directory (`/var/log`), served as the
//! kubelet serves it (`enableSystemLogHandler`, default true: `http.StripPrefix("/logs/",
//! http.FileServer(http.Dir("/var/log/")))` in `pkg/kubelet/kubelet.go`): a directory is an
//! HTML listing of its entries (directories with a trailing `/`), a file its bytes, a
//! directory named without its trailing slash a `301` to it, anything else `404 page not
//! found`.
//!
//! Safer than the kubelet: Go's `http.Dir` follows symlinks wherever they point; here a path
//! whose resolved location leaves the log directory is `404` (symlinks inside it, such as
//! `/var/log/containers/*.log` into `/var/log/pods`, still work), and only directories and
//! regular files are served (no FIFOs or devices an open could block on).
//!
//! The decisions ([`resolve`], [`listing`], [`content_type`]) are pure functions.

use std::path::{Component, Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};

use crate::PodApi;

/// The kubelet's node log directory.
pub const SYSTEM_LOG_DIR: &str = "/var/log";

/// The routes `/logs/` and `/logs/{*path}` over `api` (see [`crate::PodApi::with_system_logs`]).
pub fn router(api: PodApi) -> Router {
    Router::new()
        .route("/logs/", get(serve))
        .route("/logs/{*path}", get(serve))
        .with_state(api)
}

/// What a request path under `/logs/` names, relative to the log directory: its components
/// (never `..`, never absolute) and whether it ended with a slash. `None`: a path that would
/// leave the directory.
pub fn resolve(rest: &str) -> Option<(PathBuf, bool)> {
    let trailing = rest.ends_with('/');
    let mut out = PathBuf::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                // http.Dir cleans the path as rooted, so `..` at the top stays at the top;
                // anything else climbing is refused rather than cleaned.
                if !out.pop() {
                    return None;
                }
            }
            p => {
                if Path::new(p)
                    .components()
                    .any(|c| !matches!(c, Component::Normal(_)))
                    || p.contains('\0')
                {
                    return None;
                }
                out.push(p);
            }
        }
    }
    Some((out, trailing))
}

/// `%XX` escapes decoded (a `+` stays a `+`: this is a path, not a form); `None` for a bad
/// escape or bytes that are not UTF-8.
pub fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The content type Go's `mime.TypeByExtension` gives a file name from its built-in table,
/// `None` for other extensions (the content is sniffed then: [`content_type`]).
pub fn type_by_extension(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "avif" => "image/avif",
        "css" => "text/css; charset=utf-8",
        "gif" => "image/gif",
        "htm" | "html" => "text/html; charset=utf-8",
        "jpeg" | "jpg" => "image/jpeg",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "wasm" => "application/wasm",
        "webp" => "image/webp",
        "xml" => "text/xml; charset=utf-8",
        _ => return None,
    })
}

/// The HTML listing of a directory as Go's `http.FileServer` writes it: entries sorted by
/// name, directories with a trailing `/`, names HTML-escaped and hrefs percent-encoded.
pub fn listing(mut entries: Vec<(String, bool)>) -> String {
    entries.sort();
    let mut out = String::from(
        "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n",
    );
    for (name, is_dir) in entries {
        let shown = if is_dir { format!("{name}/") } else { name };
        let href: String = shown
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let href = if href.contains(':') {
            format!("./{href}")
        } else {
            href
        };
        out.push_str(&format!(
            "<a href=\"{}\">{}</a>\n",
            html_escape(&href),
            html_escape(&shown)
        ));
    }
    out.push_str("</pre>\n");
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The content type Go would give a file from its first bytes: text (UTF-8 without control
/// bytes other than whitespace and escape) is `text/plain; charset=utf-8`, gzip is
/// `application/x-gzip`, anything else `application/octet-stream`.
pub fn content_type(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        return "application/x-gzip";
    }
    let text = head
        .iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b));
    let utf8 = match std::str::from_utf8(head) {
        Ok(_) => true,
        // A multi-byte character cut by the sniff window is still text.
        Err(e) => e.error_len().is_none(),
    };
    if text && utf8 {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

fn not_found() -> Response {
    node_server::text_response(StatusCode::NOT_FOUND, node_server::PAGE_NOT_FOUND)
}

async fn serve(State(api): State<PodApi>, req: Request) -> Response {
    let Some(root) = api.system_log_dir().map(Path::to_path_buf) else {
        return not_found();
    };
    // Go's file server works on the decoded path (`r.URL.Path`): `%20` is a space, `%2F` a
    // separator, `%2e%2e` a `..` (cleaned like any other). A path that does not decode to
    // UTF-8 names nothing here.
    let Some(path) = percent_decode(req.uri().path()) else {
        return not_found();
    };
    let rest = path.strip_prefix("/logs/").unwrap_or_default().to_owned();
    let Some((relative, trailing)) = resolve(&rest) else {
        return not_found();
    };
    let last = rest
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    match tokio::task::spawn_blocking(move || open(&root, &relative)).await {
        Ok(Ok(Opened::Dir(entries))) => {
            if !trailing && !rest.is_empty() {
                return redirect(&format!("{last}/"));
            }
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                listing(entries),
            )
                .into_response()
        }
        Ok(Ok(Opened::File(file, head, len))) => {
            if trailing {
                return redirect(&format!("../{last}"));
            }
            let file = tokio::fs::File::from_std(file);
            let stream = tokio_util_stream(file);
            let mut resp = Response::new(Body::from_stream(stream));
            let kind = type_by_extension(&last).unwrap_or_else(|| content_type(&head));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
            resp
        }
        _ => not_found(),
    }
}

fn redirect(location: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(v) = header::HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

enum Opened {
    Dir(Vec<(String, bool)>),
    /// The open file, its first bytes (for the content type) and its length.
    File(std::fs::File, Vec<u8>, u64),
}

/// Opens `root/relative` if its resolved location stays under the resolved `root` and it is
/// a directory or a regular file.
fn open(root: &Path, relative: &Path) -> std::io::Result<Opened> {
    use std::io::{Read, Seek};
    use std::os::unix::fs::OpenOptionsExt;
    let root = root.canonicalize()?;
    let target = root.join(relative).canonicalize()?;
    if !target.starts_with(&root) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "outside the log directory",
        ));
    }
    let meta = std::fs::metadata(&target)?;
    if meta.is_dir() {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&target)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // As Go's listing: a symlink to a directory is listed as what it points to.
            let is_dir = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
            entries.push((name, is_dir));
        }
        return Ok(Opened::Dir(entries));
    }
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    // O_NONBLOCK: a file swapped for a FIFO between the check and the open cannot block the
    // worker; O_NOFOLLOW: nor can a symlink swapped in for the resolved path.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
        .open(&target)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut head = vec![0; 512];
    let n = file.read(&mut head)?;
    head.truncate(n);
    file.rewind()?;
    Ok(Opened::File(file, head, meta.len()))
}

/// The file's bytes as a stream of chunks.
fn tokio_util_stream(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let mut buf = vec![0; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_as_go_decodes_them() {
        assert_eq!(percent_decode("/logs/a%20b.log").unwrap(), "/logs/a b.log");
        assert_eq!(percent_decode("/logs/p%2541").unwrap(), "/logs/p%41");
        assert_eq!(percent_decode("/logs/a+b").unwrap(), "/logs/a+b");
        assert_eq!(percent_decode("/logs/%2e%2e/x").unwrap(), "/logs/../x");
        assert!(percent_decode("/logs/%zz").is_none());
        assert!(percent_decode("/logs/%2").is_none());
        assert!(percent_decode("/logs/%ff").is_none());
        // What the listing links to comes back to the name.
        let html = listing(vec![("a b&c%.log".into(), false)]);
        assert!(html.contains("href=\"a%20b%26c%25.log\""), "{html}");
        assert_eq!(percent_decode("a%20b%26c%25.log").unwrap(), "a b&c%.log");
        assert!(resolve("a/..").is_some());
        assert!(resolve(&percent_decode("%2e%2e/etc").unwrap()).is_none());
        assert_eq!(type_by_extension("x.JSON"), Some("application/json"));
        assert_eq!(type_by_extension("syslog"), None);
        assert_eq!(type_by_extension("kern.log"), None);
    }

    #[test]
    fn paths_stay_in_the_log_directory() {
        assert_eq!(resolve("").unwrap(), (PathBuf::new(), false));
        assert_eq!(resolve("syslog").unwrap(), (PathBuf::from("syslog"), false));
        assert_eq!(resolve("pods/").unwrap(), (PathBuf::from("pods"), true));
        assert_eq!(
            resolve("a/./b//c").unwrap(),
            (PathBuf::from("a/b/c"), false)
        );
        assert_eq!(resolve("a/../b").unwrap(), (PathBuf::from("b"), false));
        assert!(resolve("..").is_none());
        assert!(resolve("../etc/shadow").is_none());
        assert!(resolve("a/../../etc").is_none());
        assert!(resolve("a\0b").is_none());
    }

    #[test]
    fn listings_are_sorted_escaped_and_mark_directories() {
        let html = listing(vec![
            ("b.log".into(), false),
            ("pods".into(), true),
            ("a <x>&\".log".into(), false),
            ("c:d".into(), false),
        ]);
        assert_eq!(
            html,
            "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n\
             <a href=\"a%20%3Cx%3E%26%22.log\">a &lt;x&gt;&amp;&#34;.log</a>\n\
             <a href=\"b.log\">b.log</a>\n\
             <a href=\"c%3Ad\">c:d</a>\n\
             <a href=\"pods/\">pods/</a>\n</pre>\n"
        );
    }

    #[test]
    fn content_types_follow_the_first_bytes() {
        assert_eq!(
            content_type(b"Dec  3 kernel: ok\n"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type("é".as_bytes()), "text/plain; charset=utf-8");
        assert_eq!(
            content_type(&"é".as_bytes()[..1]),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type(&[0x1f, 0x8b, 0x08, 0]), "application/x-gzip");
        assert_eq!(content_type(&[0, 1, 2]), "application/octet-stream");
        assert_eq!(
            content_type(&[0xff, 0xfe, b'a']),
            "application/octet-stream"
        );
    }

    #[test]
    fn symlinks_out_of_the_directory_and_special_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("log");
        std::fs::create_dir_all(root.join("pods/p")).unwrap();
        std::fs::write(root.join("pods/p/0.log"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(root.join("pods/p/0.log"), root.join("inside")).unwrap();
        nix::unistd::mkfifo(
            &root.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(open(&root, Path::new("escape")).is_err());
        assert!(open(&root, Path::new("fifo")).is_err());
        assert!(matches!(
            open(&root, Path::new("inside")),
            Ok(Opened::File(..))
        ));
        match open(&root, Path::new("")) {
            Ok(Opened::Dir(mut e)) => {
                e.sort();
                assert!(e.contains(&("pods".into(), true)));
            }
            _ => panic!("root not listed"),
        }
    }
}
