//! A small HTTP/1.1 `GET` client for probes and lifecycle hooks: one request per connection
//! (`Connection: close`, as the kubelet's transport with keep-alives off), no compression,
//! redirects followed only to the same host (at most 10), the body read up to 10 KiB, and
//! HTTPS without certificate verification (the kubelet's `InsecureSkipVerify`). Answers from
//! the container are untrusted: the status line and headers are bounded and parsed strictly
//! enough that garbage is an error, never a panic.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::spec::{Scheme, join_host_port};

/// The most of a response body that is read (the kubelet's `maxRespBodyLength`, 10 KiB).
pub const MAX_BODY: usize = 10 * 1024;
/// The most bytes a response's status line and headers may take.
pub const MAX_HEAD: usize = 64 * 1024;
/// Redirects are followed until the 10th one, which is an error (Go's `stopped after 10
/// redirects`).
const MAX_REDIRECTS: usize = 10;
/// Fallback for "no deadline" (a deadline that does not fit an `Instant`).
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// An absolute `http`/`https` URL as the client needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub scheme: Scheme,
    /// Host name or IP address (an IPv6 address without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`, safe for a request line.
    pub path: String,
}

impl Url {
    /// A URL from its parts; `path` is made a safe absolute path (a missing `/` is added, the
    /// fragment dropped, bytes not allowed in a request line percent-encoded).
    pub fn new(scheme: Scheme, host: &str, port: u16, path: &str) -> Self {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Self {
            scheme,
            host,
            port,
            path: clean_path(path),
        }
    }

    fn authority(&self) -> String {
        join_host_port(&self.host, self.port)
    }

    /// The URL resolved from a `Location` header against this one.
    fn join(&self, location: &str) -> Result<Url, String> {
        let location = location.trim();
        let lower = location.to_ascii_lowercase();
        let (scheme, rest) = if let Some(rest) = lower.strip_prefix("http://") {
            (Scheme::Http, &location[location.len() - rest.len()..])
        } else if let Some(rest) = lower.strip_prefix("https://") {
            (Scheme::Https, &location[location.len() - rest.len()..])
        } else if let Some(rest) = location.strip_prefix("//") {
            (self.scheme, rest)
        } else if location.contains("://") {
            return Err("unsupported protocol scheme".to_owned());
        } else {
            let path = if location.starts_with('/') {
                location.to_owned()
            } else {
                // Relative to the current path's directory.
                let path = self.path.split(['?', '#']).next().unwrap_or("/");
                let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
                format!("{dir}{location}")
            };
            return Ok(Url::new(self.scheme, &self.host, self.port, &path));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let (host, port) = split_authority(authority, default_port)?;
        if host.is_empty() {
            return Err("missing host".to_owned());
        }
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(Url::new(scheme, &host, port, &path))
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path
        )
    }
}

fn split_authority(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    let invalid = || format!("invalid port in {authority:?}");
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, rest) = v6.split_once(']').ok_or_else(invalid)?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| invalid())?,
            None if rest.is_empty() => default_port,
            None => return Err(invalid()),
        };
        return Ok((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, "")) => Ok((host.to_owned(), default_port)),
        Some((host, port)) => Ok((host.to_owned(), port.parse().map_err(|_| invalid())?)),
        None => Ok((authority.to_owned(), default_port)),
    }
}

/// `path` as a request target: starts with `/`, no fragment, no byte a request line cannot
/// carry (those are percent-encoded, as Go's URL escaping does).
fn clean_path(path: &str) -> String {
    let path = path.split('#').next().unwrap_or("");
    let mut out = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        out.push('/');
    }
    for b in path.bytes() {
        if b <= b' ' || b >= 0x7f || b"\"<>\\^`{|}".contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// A header name is an HTTP token.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value has no line breaks or NULs.
fn valid_value(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// The request bytes for `url` with the caller's `headers` (the kubelet's
/// `NewRequestForHTTPGetAction`): `User-Agent: <user_agent>` unless set, `Accept: */*` unless
/// set (a set but empty `Accept` removes it), a `Host` header replaces the host,
/// `Connection: close`. Headers that cannot be sent safely (a name that is not a token, a
/// value with a line break) are left out.
pub(crate) fn request(url: &Url, headers: &[(String, String)], user_agent: &str) -> String {
    let mut host = url.authority();
    let mut lines = String::new();
    let (mut agent, mut accept) = (true, true);
    for (name, value) in headers {
        if !valid_name(name) || !valid_value(value) {
            tracing::debug!(header = %name, "probe header left out: not a valid HTTP header");
            continue;
        }
        if name.eq_ignore_ascii_case("host") {
            if !value.is_empty() {
                host.clone_from(value);
            }
            continue;
        }
        if name.eq_ignore_ascii_case("connection") {
            continue;
        }
        if name.eq_ignore_ascii_case("user-agent") {
            agent = false;
        }
        if name.eq_ignore_ascii_case("accept") {
            accept = false;
            if value.is_empty() {
                continue;
            }
        }
        lines.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut req = format!("GET {} HTTP/1.1\r\nHost: {host}\r\n", url.path);
    if agent {
        req.push_str(&format!("User-Agent: {user_agent}\r\n"));
    }
    if accept {
        req.push_str("Accept: */*\r\n");
    }
    req.push_str(&lines);
    req.push_str("Connection: close\r\n\r\n");
    req
}

/// A response: the status and up to [`MAX_BODY`] bytes of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a `GET` gave no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// No (valid) response: connecting, TLS, sending, or reading the status and headers failed
    /// (the kubelet: a probe failure with this text).
    Transport(String),
    /// The status and headers arrived but reading the body failed (the kubelet: a probe
    /// error).
    Body(String),
}

/// `GET url` with `headers` within `timeout` (for the whole exchange, redirects included),
/// following redirects to the same host only.
pub(crate) async fn get(
    url: &Url,
    headers: &[(String, String)],
    user_agent: &str,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let start = Instant::now();
    let deadline = start.checked_add(timeout).unwrap_or(start + FAR);
    let host_override = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("host") && !v.is_empty());
    let mut current = url.clone();
    let mut headers: Vec<(String, String)> = headers.to_vec();
    let mut redirects = 0;
    loop {
        let req = request(&current, &headers, user_agent);
        let (head, body) = exchange(&current, req.as_bytes(), deadline).await?;
        let location = head
            .location
            .as_deref()
            .filter(|_| matches!(head.status, 301 | 302 | 303 | 307 | 308));
        let Some(location) = location else {
            return Ok(Response {
                status: head.status,
                body,
            });
        };
        let next = current.join(location).map_err(|e| {
            HttpError::Transport(format!(
                "Get {:?}: failed to parse Location header {location:?}: {e}",
                current.to_string()
            ))
        })?;
        if !next.host.eq_ignore_ascii_case(&url.host) {
            // Another host: the redirect itself is the answer (Go's ErrUseLastResponse).
            return Ok(Response {
                status: head.status,
                body,
            });
        }
        redirects += 1;
        if redirects >= MAX_REDIRECTS {
            return Err(HttpError::Transport(format!(
                "Get {:?}: stopped after {MAX_REDIRECTS} redirects",
                next.to_string()
            )));
        }
        let absolute = location.contains("://") || location.starts_with("//");
        if host_override && absolute {
            // Go keeps a custom Host only for a relative redirect.
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
        }
        current = next;
    }
}

/// The parts of a response head the client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub status: u16,
    pub location: Option<String>,
    content_length: Option<u64>,
    chunked: bool,
}

/// Parses a response's status line and headers (`head` without the blank line). Errors are
/// Go's texts (`malformed HTTP response "..."`).
pub(crate) fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or("");
    let shown: String = status_line.chars().take(100).collect();
    let Some((proto, rest)) = status_line.split_once(' ') else {
        return Err(format!("malformed HTTP response {shown:?}"));
    };
    if !matches!(proto, "HTTP/1.0" | "HTTP/1.1") {
        return Err(format!("malformed HTTP version {:?}", short(proto)));
    }
    let rest = rest.trim_start_matches(' ');
    let code = rest.split(' ').next().unwrap_or("");
    let status = (code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
        .then(|| code.parse::<u16>().ok())
        .flatten()
        .filter(|c| *c >= 100)
        .ok_or_else(|| format!("malformed HTTP status code {:?}", short(code)))?;
    let mut out = Head {
        status,
        location: None,
        content_length: None,
        chunked: false,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed MIME header line: {}", short(line)));
        };
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(format!("malformed MIME header line: {}", short(line)));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("location") {
            out.location = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse()
                .map_err(|_| format!("bad Content-Length {:?}", short(value)))?;
            if out.content_length.is_some_and(|m| m != n) {
                return Err("message cannot contain multiple Content-Length headers".to_owned());
            }
            out.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            out.chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    Ok(out)
}

fn short(s: &str) -> String {
    s.chars().take(100).collect()
}

/// A connection with its read buffer.
struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
    eof: bool,
}

impl<S: AsyncRead + Unpin> Conn<S> {
    /// Reads more into the buffer; false at the end of the stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    /// The next head (status line and headers), 1xx interim responses skipped.
    async fn head(&mut self) -> Result<Head, String> {
        for _ in 0..8 {
            let end = loop {
                if let Some(end) = head_end(&self.buf) {
                    break end;
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(format!(
                        "net/http: server response headers exceeded {MAX_HEAD} bytes; aborted"
                    ));
                }
                match self.fill().await {
                    Ok(true) => {}
                    Ok(false) if self.buf.is_empty() => return Err("EOF".to_owned()),
                    Ok(false) => {
                        return Err(parse_head(&self.buf)
                            .err()
                            .unwrap_or_else(|| "unexpected EOF".to_owned()));
                    }
                    Err(e) => return Err(format!("read: {e}")),
                }
            };
            if end.0 > MAX_HEAD {
                return Err(format!(
                    "net/http: server response headers exceeded {MAX_HEAD} bytes; aborted"
                ));
            }
            let head = parse_head(&self.buf[..end.0])?;
            self.buf.drain(..end.1);
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            return Ok(head);
        }
        Err("too many 1xx informational responses".to_owned())
    }

    /// Up to `limit` bytes of the body `head` announces.
    async fn body(&mut self, head: &Head, limit: usize) -> Result<Vec<u8>, String> {
        if matches!(head.status, 101..=199 | 204 | 304) {
            return Ok(Vec::new());
        }
        if head.chunked {
            return self.chunked(limit).await;
        }
        let want = head.content_length.map_or(limit, |n| {
            usize::try_from(n).unwrap_or(usize::MAX).min(limit)
        });
        while self.buf.len() < want {
            match self.fill().await {
                Ok(true) => {}
                Ok(false) if head.content_length.is_some() => {
                    return Err("unexpected EOF".to_owned());
                }
                Ok(false) => break,
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        self.buf.truncate(want);
        Ok(std::mem::take(&mut self.buf))
    }

    async fn chunked(&mut self, limit: usize) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| "malformed chunked encoding".to_owned())?;
            if size == 0 {
                return Ok(body);
            }
            let take = size.min(limit - body.len());
            while self.buf.len() < take {
                if !self.fill().await.map_err(|e| format!("read: {e}"))? {
                    return Err("unexpected EOF".to_owned());
                }
            }
            body.extend(self.buf.drain(..take));
            if body.len() >= limit {
                return Ok(body);
            }
            // The chunk's CRLF.
            let rest = self.line().await?;
            if !rest.is_empty() {
                return Err("malformed chunked encoding".to_owned());
            }
        }
    }

    /// One line (without its line break) of at most 4 KiB.
    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line);
                return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
            }
            if self.buf.len() > 4096 {
                return Err("malformed chunked encoding".to_owned());
            }
            if !self.fill().await.map_err(|e| format!("read: {e}"))? {
                return Err("unexpected EOF".to_owned());
            }
        }
    }
}

/// Where the head ends: `(end of the headers, start of the body)`.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// One request on a new connection: the head and up to [`MAX_BODY`] of the body.
async fn exchange(
    url: &Url,
    request: &[u8],
    deadline: Instant,
) -> Result<(Head, Vec<u8>), HttpError> {
    let shown = url.to_string();
    let transport = |e: String| HttpError::Transport(format!("Get {shown:?}: {e}"));
    let timed_out = || {
        transport(
            "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".to_owned(),
        )
    };
    let addr = url.authority();
    let tcp = match tokio::time::timeout_at(
        deadline,
        tokio::net::TcpStream::connect((url.host.as_str(), url.port)),
    )
    .await
    {
        Err(_) => return Err(timed_out()),
        Ok(Err(e)) => return Err(transport(format!("dial tcp {addr}: {}", dial_error(&e)))),
        Ok(Ok(s)) => s,
    };
    match url.scheme {
        Scheme::Http => talk(tcp, request, deadline, &shown).await,
        Scheme::Https => {
            let config = tls_config().map_err(transport)?;
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| transport(format!("tls: invalid server name: {e}")))?;
            let connector = tokio_rustls::TlsConnector::from(config);
            let tls = match tokio::time::timeout_at(deadline, connector.connect(name, tcp)).await {
                Err(_) => return Err(timed_out()),
                Ok(Err(e)) => return Err(transport(format!("tls: {e}"))),
                Ok(Ok(s)) => s,
            };
            talk(tls, request, deadline, &shown).await
        }
    }
}

async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
    deadline: Instant,
    shown: &str,
) -> Result<(Head, Vec<u8>), HttpError> {
    let transport = |e: String| HttpError::Transport(format!("Get {shown:?}: {e}"));
    let sent = tokio::time::timeout_at(deadline, async {
        stream.write_all(request).await?;
        stream.flush().await
    })
    .await;
    match sent {
        Err(_) => {
            return Err(transport(
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                    .to_owned(),
            ));
        }
        Ok(Err(e)) => return Err(transport(format!("write: {e}"))),
        Ok(Ok(())) => {}
    }
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        eof: false,
    };
    let head = match tokio::time::timeout_at(deadline, conn.head()).await {
        Err(_) => {
            return Err(transport(
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                    .to_owned(),
            ));
        }
        Ok(Err(e)) => return Err(transport(e)),
        Ok(Ok(h)) => h,
    };
    let body = match tokio::time::timeout_at(deadline, conn.body(&head, MAX_BODY)).await {
        Err(_) => {
            return Err(HttpError::Body(
                "context deadline exceeded (Client.Timeout or context cancellation while reading body)"
                    .to_owned(),
            ));
        }
        Ok(Err(e)) => return Err(HttpError::Body(e)),
        Ok(Ok(b)) => b,
    };
    Ok((head, body))
}

/// A dial error as Go words the common ones (`connect: connection refused`).
pub(crate) fn dial_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connect: connection refused".to_owned(),
        ErrorKind::HostUnreachable => "connect: no route to host".to_owned(),
        ErrorKind::NetworkUnreachable => "connect: network is unreachable".to_owned(),
        ErrorKind::TimedOut => "i/o timeout".to_owned(),
        _ => e.to_string(),
    }
}

/// The TLS client configuration for HTTPS probes, built once.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("tls: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCert { provider }))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
}

/// Accepts any server certificate: the kubelet's probe transport sets `InsecureSkipVerify`
/// because a container's serving certificate is for its clients, not for the node (it names a
/// service, not the pod IP, and is signed by a CA the node does not know). A probe only asks
/// "does it answer"; it sends no secrets. As with Go's `InsecureSkipVerify`, the handshake
/// signature is still checked against the certificate's key.
#[derive(Debug)]
struct AnyServerCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(path: &str) -> Url {
        Url::new(Scheme::Http, "10.0.0.1", 8080, path)
    }

    #[test]
    fn requests_carry_the_kubelet_headers() {
        let h = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        assert_eq!(
            request(&url("healthz"), &[], "kube-probe/1.35"),
            "GET /healthz HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nUser-Agent: kube-probe/1.35\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let headers = [
            h("Host", "example.com"),
            h("User-Agent", "mine"),
            h("Accept", ""),
            h("X-Bad", "a\r\nInjected: yes"),
            h("Bad Name", "x"),
            h("X-A", "1"),
            h("X-A", "2"),
        ];
        assert_eq!(
            request(&url("/a b?q=1#frag"), &headers, "kube-probe/1.35"),
            "GET /a%20b?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: mine\r\nX-A: 1\r\nX-A: 2\r\nConnection: close\r\n\r\n"
        );
        let accept = [h("accept", "text/plain")];
        assert!(request(&url("/"), &accept, "u").contains("\r\naccept: text/plain\r\n"));
        assert!(!request(&url("/"), &accept, "u").contains("*/*"));
    }

    #[test]
    fn locations_resolve() {
        let base = url("/a/b?x=1");
        assert_eq!(base.join("/c").unwrap(), url("/c"));
        assert_eq!(base.join("c?y").unwrap(), url("/a/c?y"));
        assert_eq!(
            base.join("https://Other:9443/z").unwrap(),
            Url::new(Scheme::Https, "Other", 9443, "/z")
        );
        assert_eq!(
            base.join("//10.0.0.1/q").unwrap(),
            Url::new(Scheme::Http, "10.0.0.1", 80, "/q")
        );
        assert_eq!(
            base.join("http://[::1]:81").unwrap(),
            Url::new(Scheme::Http, "::1", 81, "/")
        );
        assert!(base.join("ftp://x/").is_err());
        assert!(base.join("http://x:notaport/").is_err());
        assert!(base.join("http:///nohost").is_err());
        assert_eq!(
            Url::new(Scheme::Http, "::1", 80, "/").to_string(),
            "http://[::1]:80/"
        );
    }

    #[test]
    fn heads_parse_strictly() {
        let h = parse_head(b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 3").unwrap();
        assert_eq!((h.status, h.location.as_deref()), (301, Some("/x")));
        assert_eq!(h.content_length, Some(3));
        let h = parse_head(b"HTTP/1.0 200\nTransfer-Encoding: gzip, chunked").unwrap();
        assert!(h.chunked);
        for bad in [
            &b"garbage"[..],
            b"",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 abc OK",
            b"HTTP/2 200 OK",
            b"SSH-2.0-OpenSSH_9.6 x",
            b"HTTP/1.1 200 OK\r\nno colon here",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2",
            b"HTTP/1.1 099 OK",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let err = parse_head(b"garbage").unwrap_err();
        assert_eq!(err, "malformed HTTP response \"garbage\"");
    }
}
