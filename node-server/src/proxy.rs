//! The kubelet's upgrade-aware proxy for exec, attach and port-forward: the client's HTTP
//! Upgrade request (SPDY or WebSocket) is sent on to the runtime's streaming server and, once
//! that answers `101 Switching Protocols`, both connections are spliced byte for byte. The
//! kubelet proxies and never redirects (`pkg/kubelet/server/server.go proxyStream`, which uses
//! `apimachinery/pkg/util/proxy/upgradeaware.go` with `upgradeRequired=true`); the protocol is
//! negotiated between the client and the runtime, so every version the runtime speaks works.
//!
//! Decisions are pure functions ([`is_upgrade_request`], [`backend_target`],
//! [`forwarded_headers`]); [`proxy_upgrade`] is the thin acting layer.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

/// How long connecting to the streaming server and getting its answer may take (the
/// kubelet's dialer has a 30 s connect timeout; `DefaultStreamCreationTimeout` is 30 s too).
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

/// At most this much of a refusing streaming server's body is passed back to the client.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The text of the kubelet's answer to a non-upgrade request on a streaming route (its
/// responder writes it with Go's `http.Error`: status 500, a newline after the text).
pub const UPGRADE_REQUIRED: &str = "Upgrade request required\n";

/// Whether the request asks for a protocol upgrade: a `Connection` header naming `upgrade`
/// (case-insensitively, among comma-separated tokens) and an `Upgrade` header
/// (`apimachinery/pkg/util/httpstream.IsUpgradeRequest`).
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
    });
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// Whether the request is a WebSocket upgrade (`Upgrade: websocket`), as
/// `wsstream.IsWebSocketRequest` decides.
pub fn is_websocket_request(headers: &HeaderMap) -> bool {
    is_upgrade_request(headers)
        && headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// Where to send the upgrade: the runtime URL's `host:port` (port 80 when absent) and its
/// path, with the client's query string when the runtime URL has none (WebSocket
/// port-forward reads its `port` parameters from it). Only `http` URLs are supported.
pub fn backend_target(
    runtime_url: &str,
    client_query: Option<&str>,
) -> Result<(String, Uri), String> {
    let uri: Uri = runtime_url
        .parse()
        .map_err(|e| format!("invalid streaming URL {runtime_url:?} from the runtime: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(format!(
                "streaming URL {runtime_url:?} from the runtime: scheme {other:?} is not supported (only http)"
            ));
        }
        None => {
            return Err(format!(
                "streaming URL {runtime_url:?} from the runtime has no scheme and host"
            ));
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("streaming URL {runtime_url:?} from the runtime has no host"))?;
    let address = match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.host()),
    };
    let path = uri.path();
    let query = match uri.query() {
        Some(q) => Some(q),
        None => client_query.filter(|q| !q.is_empty()),
    };
    let path_and_query = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let target = Uri::builder()
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| format!("streaming URL {runtime_url:?}: {e}"))?;
    Ok((address, target))
}

/// The client's headers as sent on to the runtime: everything the upgrade negotiation needs
/// (`Connection`, `Upgrade`, `Sec-WebSocket-*`, `X-Stream-Protocol-Version`, ...), `Host` set
/// to the runtime, and without the client's credentials (`Authorization`, `Cookie`,
/// `Proxy-Authorization`: meant for the kubelet, not the runtime), the other hop-by-hop
/// headers, and any body framing (the upgrade request is sent without a body).
pub fn forwarded_headers(client: &HeaderMap, backend_host: &str) -> HeaderMap {
    const DROPPED: [HeaderName; 9] = [
        header::HOST,
        header::AUTHORIZATION,
        header::PROXY_AUTHORIZATION,
        header::COOKIE,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::PROXY_AUTHENTICATE,
    ];
    let mut out = HeaderMap::with_capacity(client.len() + 1);
    for (name, value) in client {
        if DROPPED.contains(name)
            || name.as_str().eq_ignore_ascii_case("keep-alive")
            || name.as_str().eq_ignore_ascii_case("proxy-connection")
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if let Ok(host) = HeaderValue::from_str(backend_host) {
        out.insert(header::HOST, host);
    }
    out
}

/// Proxies the client's upgrade request to the runtime's streaming URL and splices the two
/// connections once the runtime switches protocols. A non-upgrade request gets the
/// kubelet's `500 Upgrade request required`; a runtime that cannot be reached gets 500 with
/// the reason; a runtime that refuses the upgrade has its status, headers and (bounded) body
/// passed back. The splice runs in its own task until either side closes.
pub async fn proxy_upgrade(mut req: Request, runtime_url: &str) -> Response {
    if !is_upgrade_request(req.headers()) {
        return crate::text_response(StatusCode::INTERNAL_SERVER_ERROR, UPGRADE_REQUIRED);
    }
    let (address, target) = match backend_target(runtime_url, req.uri().query()) {
        Ok(t) => t,
        Err(reason) => return internal(reason),
    };
    let mut backend_req = http::Request::new(Body::empty());
    *backend_req.method_mut() = req.method().clone();
    *backend_req.uri_mut() = target;
    *backend_req.headers_mut() = forwarded_headers(req.headers(), &address);

    let backend = async {
        let stream = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|e| format!("error dialing backend {address}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("error talking to the streaming server {address}: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "streaming server connection ended");
            }
        });
        sender
            .send_request(backend_req)
            .await
            .map_err(|e| format!("error proxying to the streaming server {address}: {e}"))
    };
    let response = match tokio::time::timeout(UPGRADE_TIMEOUT, backend).await {
        Ok(Ok(r)) => r,
        Ok(Err(reason)) => return internal(reason),
        Err(_) => {
            return internal(format!(
                "the streaming server {address} did not answer within {UPGRADE_TIMEOUT:?}"
            ));
        }
    };

    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The runtime refused (bad token, unsupported protocol, ...): its answer goes back.
        let (parts, body) = response.into_parts();
        let limited = http_body_util::Limited::new(body, MAX_ERROR_BODY_BYTES);
        let bytes = match tokio::time::timeout(UPGRADE_TIMEOUT, limited.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => bytes_of(""),
        };
        let mut out = Response::new(Body::from(bytes));
        *out.status_mut() = parts.status;
        for (name, value) in &parts.headers {
            if name != header::TRANSFER_ENCODING && name != header::CONTENT_LENGTH {
                out.headers_mut().append(name.clone(), value.clone());
            }
        }
        return out;
    }

    let mut out = Response::new(Body::empty());
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *out.headers_mut() = response.headers().clone();
    let client_upgrade = hyper::upgrade::on(&mut req);
    let backend_upgrade = hyper::upgrade::on(response);
    tokio::spawn(async move {
        let (client, backend) = match tokio::join!(client_upgrade, backend_upgrade) {
            (Ok(c), Ok(b)) => (c, b),
            (c, b) => {
                tracing::warn!(
                    client = ?c.err(),
                    runtime = ?b.err(),
                    "stream upgrade failed"
                );
                return;
            }
        };
        splice(TokioIo::new(client), TokioIo::new(backend)).await;
    });
    out
}

/// Copies both ways until either direction ends, then closes both connections, as the
/// upgrade-aware proxy does (`upgradeaware.go`: "Wait for one half the connection to exit").
/// Waiting for the other direction instead would hold a departed client's connection and the
/// runtime's stream open until the command in the container ends.
async fn splice<C, B>(client: C, backend: B)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    use tokio::io::AsyncWriteExt;
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut backend_read, mut backend_write) = tokio::io::split(backend);
    let up = async {
        let r = tokio::io::copy(&mut client_read, &mut backend_write).await;
        let _ = backend_write.shutdown().await;
        r
    };
    let down = async {
        let r = tokio::io::copy(&mut backend_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
        r
    };
    tokio::select! {
        r = up => tracing::debug!(result = ?r, "stream closed by the client"),
        r = down => tracing::debug!(result = ?r, "stream closed by the runtime"),
    }
    // Both halves are dropped here: the connections close.
}

fn bytes_of(s: &'static str) -> axum::body::Bytes {
    axum::body::Bytes::from_static(s.as_bytes())
}

fn internal(reason: String) -> Response {
    tracing::warn!(%reason, "error while proxying a stream");
    (StatusCode::INTERNAL_SERVER_ERROR, reason).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[tokio::test]
    async fn a_splice_ends_both_ways_when_one_side_leaves() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (backend, mut backend_peer) = tokio::io::duplex(64);
        let task = tokio::spawn(splice(client, backend));
        client_peer.write_all(b"up").await.unwrap();
        let mut buf = [0u8; 2];
        backend_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"up");
        backend_peer.write_all(b"dn").await.unwrap();
        client_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"dn");
        // The client goes; the runtime side (a long-running exec) never closes by itself.
        drop(client_peer);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the splice ended")
            .unwrap();
        // The runtime's side sees its connection closed.
        let mut rest = Vec::new();
        backend_peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn upgrade_requests_are_recognised_as_apimachinery_does() {
        assert!(is_upgrade_request(&headers(&[
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1")
        ])));
        assert!(is_upgrade_request(&headers(&[
            ("Connection", "keep-alive, upgrade"),
            ("Upgrade", "websocket")
        ])));
        assert!(!is_upgrade_request(&headers(&[("Upgrade", "websocket")])));
        assert!(!is_upgrade_request(&headers(&[("Connection", "Upgrade")])));
        assert!(!is_upgrade_request(&headers(&[
            ("Connection", "upgraded-not"),
            ("Upgrade", "x")
        ])));
        assert!(is_websocket_request(&headers(&[
            ("Connection", "Upgrade"),
            ("Upgrade", "WebSocket")
        ])));
        assert!(!is_websocket_request(&headers(&[
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1")
        ])));
    }

    #[test]
    fn the_target_is_the_runtime_url_with_the_clients_query_when_it_has_none() {
        let (addr, uri) = backend_target(
            "http://127.0.0.1:41234/exec/AbCd1234",
            Some("command=ls&output=1"),
        )
        .unwrap();
        assert_eq!(addr, "127.0.0.1:41234");
        assert_eq!(uri.to_string(), "/exec/AbCd1234?command=ls&output=1");
        let (addr, uri) =
            backend_target("http://[::1]/portforward/tok?port=80", Some("port=9")).unwrap();
        assert_eq!(addr, "[::1]:80");
        assert_eq!(uri.to_string(), "/portforward/tok?port=80");
        let (_, uri) = backend_target("http://h:1/attach/t", None).unwrap();
        assert_eq!(uri.to_string(), "/attach/t");
        for bad in [
            "https://h:1/x",
            "/exec/relative",
            "ftp://h/x",
            "http://",
            "not a url",
        ] {
            assert!(backend_target(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_and_framing_stay_with_the_kubelet() {
        let client = headers(&[
            ("Host", "node-1:10250"),
            ("Authorization", "Bearer secret"),
            ("Cookie", "a=b"),
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
            ("X-Stream-Protocol-Version", "v3.channel.k8s.io"),
            ("Content-Length", "0"),
            ("Keep-Alive", "timeout=5"),
            ("Sec-WebSocket-Protocol", "v4.channel.k8s.io"),
        ]);
        let out = forwarded_headers(&client, "127.0.0.1:4000");
        assert_eq!(out.get("host").unwrap(), "127.0.0.1:4000");
        for gone in ["authorization", "cookie", "content-length", "keep-alive"] {
            assert!(!out.contains_key(gone), "{gone}");
        }
        assert_eq!(out.get_all("x-stream-protocol-version").iter().count(), 2);
        assert_eq!(out.get("upgrade").unwrap(), "SPDY/3.1");
        assert_eq!(out.get("connection").unwrap(), "Upgrade");
        assert_eq!(
            out.get("sec-websocket-protocol").unwrap(),
            "v4.channel.k8s.io"
        );
    }
}
