//! Accepting connections, for both listeners: at most `max_connections` open
//! at once (more are closed as soon as they are accepted, and counted), and a
//! connection whose client sends nothing for `idle_timeout` is closed (a client
//! that never sends the HTTP/2 preface, a TLS handshake that stalls, an idle
//! keep-alive connection).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::stats::SinkStats;

/// Pause after a failed accept (out of file descriptors and the like), as axum does.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Admits connections up to a cap and arms their idle timer.
#[derive(Clone, Debug)]
pub(super) struct Gate {
    permits: Arc<Semaphore>,
    idle: Duration,
    stats: Arc<SinkStats>,
}

impl Gate {
    /// At most `max_connections` at once, each closed after `idle` without a byte from its client.
    pub(super) fn new(max_connections: usize, idle: Duration, stats: Arc<SinkStats>) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(
                max_connections.clamp(1, Semaphore::MAX_PERMITS),
            )),
            idle,
            stats,
        }
    }

    /// Counts a connection the server closed on a timeout of its own.
    pub(super) fn count_timed_out(&self) {
        self.stats.record_timed_out_connection();
    }

    /// The connection, guarded; `None` (and it is closed) when the cap is reached.
    pub(super) fn admit(&self, tcp: TcpStream) -> Option<Guarded> {
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.stats.record_refused_connection();
            return None;
        };
        Some(Guarded {
            io: tcp,
            _permit: permit,
            idle: self.idle,
            last_read: Instant::now(),
            timer: Box::pin(tokio::time::sleep(self.idle)),
            timed_out: false,
            stats: self.stats.clone(),
        })
    }
}

/// An admitted connection: holds its place under the cap until dropped, and
/// fails its reads once the client has sent nothing for the idle timeout.
#[derive(Debug)]
pub(super) struct Guarded {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    /// When the client last sent something; the timer is moved forward lazily
    /// (only when it fires), so the hot path does not touch the timer wheel.
    last_read: Instant,
    timer: Pin<Box<Sleep>>,
    timed_out: bool,
    stats: Arc<SinkStats>,
}

impl Guarded {
    fn idle_error(&mut self) -> io::Error {
        if !self.timed_out {
            self.timed_out = true;
            self.stats.record_timed_out_connection();
        }
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no data from the client for {:?}", self.idle),
        )
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(Err(this.idle_error()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.last_read = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => loop {
                ready!(this.timer.as_mut().poll(cx));
                let due = this.last_read + this.idle;
                if Instant::now() >= due {
                    return Poll::Ready(Err(this.idle_error()));
                }
                // Data came since the timer was set: move it and wait again.
                this.timer.as_mut().reset(due);
            },
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl Connected for Guarded {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

/// The gRPC server's incoming connections: accepted, capped and guarded.
pub(super) struct Incoming {
    listener: TcpListener,
    gate: Gate,
    backoff: Option<Pin<Box<Sleep>>>,
}

impl Incoming {
    pub(super) fn new(listener: TcpListener, gate: Gate) -> Self {
        Incoming {
            listener,
            gate,
            backoff: None,
        }
    }
}

impl tonic::codegen::tokio_stream::Stream for Incoming {
    type Item = io::Result<Guarded>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(pause) = &mut this.backoff {
                ready!(pause.as_mut().poll(cx));
                this.backoff = None;
            }
            match ready!(this.listener.poll_accept(cx)) {
                Ok((tcp, _peer)) => {
                    if let Some(conn) = this.gate.admit(tcp) {
                        return Poll::Ready(Some(Ok(conn)));
                    }
                }
                // tonic would retry at once: pause instead of spinning.
                Err(_) => this.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF))),
            }
        }
    }
}

/// Accepts the next admitted connection (pausing briefly after a failed accept).
pub(super) async fn accept(listener: &TcpListener, gate: &Gate) -> Guarded {
    loop {
        match listener.accept().await {
            Ok((tcp, _peer)) => {
                if let Some(conn) = gate.admit(tcp) {
                    return conn;
                }
            }
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}
