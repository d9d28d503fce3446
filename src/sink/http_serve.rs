//! The OTLP/HTTP accept loop, plaintext or TLS: connections are capped and
//! guarded (see [`super::listen`]), served over HTTP/1.1 by hyper with a
//! header-read timeout, and shut down gracefully: stop accepting, let every
//! open connection finish its request, then return.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::listen::{accept, Gate, Guarded};
use crate::tls::HANDSHAKE_TIMEOUT;

/// How connections are served.
#[derive(Clone)]
pub(super) struct HttpServe {
    pub(super) router: Router,
    pub(super) gate: Gate,
    pub(super) tls: Option<TlsAcceptor>,
    /// A request's headers must arrive within this long of the connection
    /// being ready for it (hyper starts the timer when it waits for the next
    /// request, so an idle keep-alive connection is closed after it too).
    pub(super) header_timeout: Duration,
}

/// Serves on `listener` until `stop` resolves, then waits for open
/// connections to finish their in-flight requests.
pub(super) async fn serve(
    listener: TcpListener,
    how: HttpServe,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (closing_tx, closing) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            conn = accept(&listener, &how.gate) => {
                connections.spawn(connection(conn, how.clone(), closing.clone()));
            }
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// One connection: the TLS handshake if any (bounded in time; a failed one,
/// such as a client without an acceptable certificate, just closes it), then
/// HTTP/1.1 until the client leaves, a timeout closes it, or the sink stops.
async fn connection(conn: Guarded, how: HttpServe, mut closing: watch::Receiver<bool>) {
    let Some(acceptor) = how.tls.clone() else {
        return http1(conn, &how, closing).await;
    };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(conn));
    let tls = tokio::select! {
        done = handshake => match done {
            Ok(Ok(tls)) => tls,
            _ => return,
        },
        _ = closing.wait_for(|c| *c) => return,
    };
    http1(tls, &how, closing).await;
}

async fn http1<IO>(io: IO, how: &HttpServe, mut closing: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(how.header_timeout);
    let conn = builder.serve_connection(
        TokioIo::new(io),
        TowerToHyperService::new(how.router.clone()),
    );
    tokio::pin!(conn);
    tokio::select! {
        done = conn.as_mut() => {
            if done.is_err_and(|e| e.is_timeout()) {
                how.gate.count_timed_out();
            }
            return;
        }
        _ = closing.wait_for(|c| *c) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
