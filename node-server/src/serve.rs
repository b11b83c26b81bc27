//! The accept loops: HTTPS (rustls, client chain into request extensions) and plain HTTP,
//! both HTTP/1.1 through hyper, both with graceful shutdown.
//!
//! Neither loop can be stalled or stopped by a client: connections are bounded
//! ([`ServeOptions::max_connections`]), a TLS handshake and each request head must arrive in
//! time (an idle keep-alive connection is closed after the header read timeout too), request
//! heads are bounded in bytes (431 beyond), every request runs behind [`CatchPanic`], and
//! accept errors (EMFILE, ENFILE, ECONNABORTED, ...) only pause accepting, as Go's
//! `http.Server` does.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::error::ServerError;
use crate::guard::CatchPanic;

/// How long in-flight requests may run after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a request head, on a new connection and between requests on
/// a keep-alive one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Open connections per server at most; more are closed as soon as they are accepted. This
/// bounds the descriptors and memory anonymous clients can hold (the agent needs descriptors
/// for its runtime, plugin and state work too).
pub const MAX_CONNECTIONS: usize = 1024;
/// Largest request head (request line and headers) in bytes; a larger one is answered 431 and
/// the connection closed. Bearer tokens and kubelet API paths fit many times over.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// hyper's smallest allowed read buffer.
const MIN_BUFFER: usize = 8192;

/// Limits of an accept loop; [`Default`] is what [`serve_https`] and [`serve_http`] use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Open connections at most ([`MAX_CONNECTIONS`]); 0 is taken as 1.
    pub max_connections: usize,
    /// Largest request head in bytes ([`MAX_HEADER_BYTES`]); at least 8192 is used.
    pub max_header_bytes: usize,
    /// Time to send a request head ([`HEADER_READ_TIMEOUT`]).
    pub header_read_timeout: Duration,
    /// Time to finish the TLS handshake ([`HANDSHAKE_TIMEOUT`]).
    pub handshake_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            max_header_bytes: MAX_HEADER_BYTES,
            header_read_timeout: HEADER_READ_TIMEOUT,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }
}

impl ServeOptions {
    /// Sets [`max_connections`](Self::max_connections).
    #[must_use]
    pub fn with_max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Sets [`max_header_bytes`](Self::max_header_bytes).
    #[must_use]
    pub fn with_max_header_bytes(mut self, max_header_bytes: usize) -> Self {
        self.max_header_bytes = max_header_bytes;
        self
    }

    /// Sets [`header_read_timeout`](Self::header_read_timeout).
    #[must_use]
    pub fn with_header_read_timeout(mut self, header_read_timeout: Duration) -> Self {
        self.header_read_timeout = header_read_timeout;
        self
    }

    /// Sets [`handshake_timeout`](Self::handshake_timeout).
    #[must_use]
    pub fn with_handshake_timeout(mut self, handshake_timeout: Duration) -> Self {
        self.handshake_timeout = handshake_timeout;
        self
    }
}

pub use crate::contract::PeerCertificates;

/// Serves `app` over TLS on `listener` until `shutdown` resolves, with the default
/// [`ServeOptions`].
///
/// Each connection's handshake runs in its own task (failures are logged at debug and only end
/// that connection). Requests carry [`PeerCertificates`] and axum's
/// `ConnectInfo<SocketAddr>` in their extensions. On shutdown the listener stops accepting,
/// idle keep-alive connections are closed and in-flight requests get [`SHUTDOWN_GRACE`] to
/// finish.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_https_with(listener, tls, app, shutdown, ServeOptions::default()).await
}

/// [`serve_https`] with explicit limits.
pub async fn serve_https_with(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> Result<(), ServerError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let options = Arc::new(options);
    let limit = options.max_connections;
    accept_loop(listener, shutdown, limit, move |stream, peer, stop| {
        let acceptor = acceptor.clone();
        let app = app.clone();
        let options = options.clone();
        async move {
            let handshake = acceptor.accept(stream);
            let tls = match tokio::time::timeout(options.handshake_timeout, handshake).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let certs = PeerCertificates(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
                    .unwrap_or_default(),
            );
            serve_connection(tls, app, peer, Some(certs), stop, &options).await;
        }
    })
    .await
}

/// Serves `app` over plain HTTP/1.1 on `listener` until `shutdown` resolves (the kubelet's
/// healthz port), with the default [`ServeOptions`]. Requests carry axum's
/// `ConnectInfo<SocketAddr>`; shutdown is graceful as in [`serve_https`].
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_http_with(listener, app, shutdown, ServeOptions::default()).await
}

/// [`serve_http`] with explicit limits.
pub async fn serve_http_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> Result<(), ServerError> {
    let options = Arc::new(options);
    let limit = options.max_connections;
    accept_loop(listener, shutdown, limit, move |stream, peer, stop| {
        let app = app.clone();
        let options = options.clone();
        async move { serve_connection(stream, app, peer, None, stop, &options).await }
    })
    .await
}

/// Whether an accept error means the listener itself is unusable (as opposed to a shortage
/// of descriptors or memory, or a connection that died before it was accepted, which only
/// pause accepting).
fn listener_broken(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EBADF | libc::EFAULT | libc::EINVAL | libc::ENOTSOCK | libc::EOPNOTSUPP)
    )
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    max_connections: usize,
    mut on_conn: F,
) -> Result<(), ServerError>
where
    F: FnMut(tokio::net::TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".to_owned());
    let max_connections = max_connections.max(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    // Go's http.Server: 5 ms after the first failure, doubling, at most 1 s.
    let mut backoff = Duration::ZERO;
    let mut full = false;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::ZERO;
                    // Finished connections (a panicked one included) leave the set here.
                    while conns.try_join_next().is_some() {}
                    if conns.len() >= max_connections {
                        if !full {
                            tracing::warn!(%addr, max_connections, "connection limit reached; new connections are closed until some end");
                            full = true;
                        }
                        drop(stream);
                        continue;
                    }
                    full = false;
                    let _ = stream.set_nodelay(true);
                    conns.spawn(on_conn(stream, peer, stop_rx.clone()));
                }
                Err(err) if listener_broken(&err) => {
                    return Err(ServerError::Serve { addr, source: err });
                }
                Err(err) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                    tracing::warn!(%addr, error = %err, retry_in = ?backoff, "accept failed");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(%addr, open = conns.len(), "shutdown grace expired, closing connections");
        conns.abort_all();
    }
    Ok(())
}

async fn serve_connection<IO>(
    io: IO,
    app: Router,
    peer: SocketAddr,
    certs: Option<PeerCertificates>,
    mut stop: watch::Receiver<bool>,
    options: &ServeOptions,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = CatchPanic::new(app);
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let app = app.clone();
        if let Some(certs) = &certs {
            req.extensions_mut().insert(certs.clone());
        }
        req.extensions_mut().insert(ConnectInfo(peer));
        app.oneshot(req.map(axum::body::Body::new))
    });
    let header_bytes = options.max_header_bytes.max(MIN_BUFFER);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_header_size(header_bytes)
        // The read buffer must hold a whole head; hyper refuses less than 8 KiB.
        .max_buf_size(header_bytes.saturating_add(MIN_BUFFER))
        .serve_connection(TokioIo::new(io), svc)
        // Upgrades (WebSocket/SPDY for exec, attach, port-forward) stay possible.
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(err) = res {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
            return;
        }
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(err) = conn.await {
        tracing::debug!(%peer, error = %err, "connection ended with an error during shutdown");
    }
}
