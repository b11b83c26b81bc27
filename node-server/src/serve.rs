//! The accept loops: HTTPS (rustls, client chain into request extensions) and plain HTTP,
//! both HTTP/1.1 through hyper, both with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::error::ServerError;

/// How long in-flight requests may run after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The client certificate chain rustls verified for this connection (leaf first), in every
/// request's extensions; empty when the client sent none (or client certificates are not
/// requested).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificates(pub Vec<CertificateDer<'static>>);

/// Serves `app` over TLS on `listener` until `shutdown` resolves.
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
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    accept_loop(listener, shutdown, move |stream, peer, stop| {
        let acceptor = acceptor.clone();
        let app = app.clone();
        async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
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
            serve_connection(tls, app, peer, Some(certs), stop).await;
        }
    })
    .await
}

/// Serves `app` over plain HTTP/1.1 on `listener` until `shutdown` resolves (the kubelet's
/// healthz port). Requests carry axum's `ConnectInfo<SocketAddr>`; shutdown is graceful as in
/// [`serve_https`].
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    accept_loop(listener, shutdown, move |stream, peer, stop| {
        serve_connection(stream, app.clone(), peer, None, stop)
    })
    .await
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
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
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut errors_in_row = 0u32;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    errors_in_row = 0;
                    let _ = stream.set_nodelay(true);
                    conns.spawn(on_conn(stream, peer, stop_rx.clone()));
                }
                Err(err) => {
                    // EMFILE and friends: back off and keep serving.
                    errors_in_row += 1;
                    tracing::warn!(%addr, error = %err, "accept failed");
                    if errors_in_row > 1000 {
                        return Err(ServerError::Serve { addr, source: err });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
        while conns.try_join_next().is_some() {}
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
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let app = app.clone();
        if let Some(certs) = &certs {
            req.extensions_mut().insert(certs.clone());
        }
        req.extensions_mut().insert(ConnectInfo(peer));
        app.oneshot(req.map(axum::body::Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
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
