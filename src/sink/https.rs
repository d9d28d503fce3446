//! OTLP/HTTP over TLS: `axum::serve` has no TLS, so this accept loop does the
//! TLS handshake (tokio-rustls) and serves the same router over HTTP/1.1
//! (hyper), with the same graceful shutdown: stop accepting, let every open
//! connection finish its request, then return.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::tls::HANDSHAKE_TIMEOUT;

/// Serves `router` on `listener` over TLS until `stop` resolves, then waits for
/// open connections to finish their in-flight requests.
pub(super) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
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
            accepted = listener.accept() => {
                let tcp = match accepted {
                    Ok((tcp, _peer)) => tcp,
                    Err(_) => {
                        // Out of file descriptors and the like: back off briefly, as axum does.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                connections.spawn(connection(
                    tcp,
                    acceptor.clone(),
                    router.clone(),
                    closing.clone(),
                ));
            }
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// One connection: TLS handshake (bounded in time; a failed one, such as a
/// client without an acceptable certificate, just closes it), then HTTP/1.1
/// until the client leaves or the sink closes.
async fn connection(
    tcp: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    router: Router,
    mut closing: watch::Receiver<bool>,
) {
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let tls = tokio::select! {
        done = handshake => match done {
            Ok(Ok(tls)) => tls,
            _ => return,
        },
        _ = closing.wait_for(|c| *c) => return,
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closing.wait_for(|c| *c) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
