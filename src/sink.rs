//! `otelsim sink`: otelsim's own OTLP receiver.
//!
//! It exists so the README demo has a target without installing a collector,
//! and so integration tests can run the whole export path against real
//! sockets and then assert on what arrived. It accepts OTLP/gRPC (optionally
//! gzip) and OTLP/HTTP with protobuf or JSON bodies (optionally gzip), counts
//! what it receives, and can keep every request for inspection.
//!
//! OTLP/JSON goes through opentelemetry-proto's `with-serde` derives after a
//! normalising pass (see [`otlp_json`]) that papers over the places where
//! those derives deviate from the OTLP/JSON encoding.

mod grpc;
mod http;
mod https;
pub mod otlp_json;
pub mod runs;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::http::{JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE};
pub use self::stats::{
    data_points, scenario_of, Faults, ReceivedTraces, RejectWith, SinkSnapshot, SinkStats,
    Transport, MAX_DISTINCT_KEYS, OTHER_SCENARIO, OVERFLOW_KEY, SCENARIO_SCOPE_PREFIX,
};

/// Default request size limit: far above what SDK batchers send, low enough
/// that a runaway sender cannot exhaust memory.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// How long [`RunningSink::shutdown`] waits for in-flight requests before
/// aborting a server, so a stuck client cannot hang shutdown forever (tonic
/// waits indefinitely for a connection that never sent the HTTP/2 preface).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Where and how the sink listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkOptions {
    /// OTLP/gRPC listen address (default 127.0.0.1:4317; port 0 picks one).
    pub grpc_addr: SocketAddr,
    /// OTLP/HTTP listen address (default 127.0.0.1:4318; port 0 picks one).
    pub http_addr: SocketAddr,
    /// Larger requests are refused (gRPC: OUT_OF_RANGE, or RESOURCE_EXHAUSTED
    /// when the limit is hit while decompressing; HTTP: 413). Applies to the
    /// decompressed size too.
    pub max_request_bytes: usize,
    /// Store every accepted request (for tests); memory grows without bound.
    pub keep_requests: bool,
    /// Spans of otelsim runs checked trace by trace for `otelsim verify`; past
    /// this many they are only counted (bounds the sink's memory).
    pub max_tracked_spans: usize,
    /// Injected faults, to test senders (none by default).
    pub faults: Faults,
    /// TLS (and mTLS) on both listeners; `None`: plaintext.
    pub tls: Option<crate::tls::ServerTls>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 4317)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 4318)),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            keep_requests: false,
            max_tracked_spans: runs::DEFAULT_MAX_TRACKED_SPANS,
            faults: Faults::default(),
            tls: None,
        }
    }
}

impl SinkOptions {
    /// Both listeners on 127.0.0.1 with OS-assigned ports and requests kept:
    /// what an in-process test wants.
    pub fn for_tests() -> Self {
        SinkOptions {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            keep_requests: true,
            ..Default::default()
        }
    }
}

/// A started sink. Dropping it without calling [`RunningSink::shutdown`]
/// also stops both servers (without waiting for them).
#[derive(Debug)]
pub struct RunningSink {
    /// Actual bound gRPC address (real port when 0 was requested).
    pub grpc_addr: SocketAddr,
    /// Actual bound HTTP address (real port when 0 was requested).
    pub http_addr: SocketAddr,
    /// What both listeners have received so far, shared with their handlers.
    pub stats: Arc<SinkStats>,
    /// Whether both listeners speak TLS.
    pub tls: bool,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl RunningSink {
    /// `http://<grpc_addr>` (`https://` with TLS), ready for a tonic client or an
    /// OTLP endpoint setting.
    pub fn grpc_endpoint(&self) -> String {
        format!("{}://{}", self.scheme(), self.grpc_addr)
    }

    /// `http://<http_addr>` (`https://` with TLS), without the `/v1/...` signal path.
    pub fn http_endpoint(&self) -> String {
        format!("{}://{}", self.scheme(), self.http_addr)
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// Stops accepting, lets in-flight requests finish (up to a grace
    /// period), and waits for both servers to exit.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for (name, mut task) in self.tasks {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                eprintln!("otelsim sink: {name} server did not stop within {SHUTDOWN_GRACE:?}; aborting it");
                task.abort();
                let _ = task.await;
            }
        }
    }
}

/// Binds both listeners, then starts serving in background tasks. Returns
/// only once both sockets are bound, so callers can send immediately.
pub async fn start(opts: SinkOptions) -> anyhow::Result<RunningSink> {
    let grpc_listener = TcpListener::bind(opts.grpc_addr)
        .await
        .with_context(|| format!("cannot bind OTLP/gRPC listener on {}", opts.grpc_addr))?;
    let http_listener = TcpListener::bind(opts.http_addr)
        .await
        .with_context(|| format!("cannot bind OTLP/HTTP listener on {}", opts.http_addr))?;
    let grpc_addr = grpc_listener
        .local_addr()
        .context("reading bound OTLP/gRPC address")?;
    let http_addr = http_listener
        .local_addr()
        .context("reading bound OTLP/HTTP address")?;

    let stats = Arc::new(SinkStats::with_faults(
        opts.keep_requests,
        opts.max_tracked_spans,
        opts.faults.clone(),
    ));
    let (stop, stop_rx) = watch::channel(false);

    let mut grpc_server = tonic::transport::Server::builder();
    let mut http_tls = None;
    if let Some(tls) = &opts.tls {
        grpc_server = grpc_server
            .tls_config(tls.tonic_config())
            .context("configuring TLS for the OTLP/gRPC listener")?;
        http_tls = Some(tokio_rustls::TlsAcceptor::from(Arc::new(
            tls.rustls_config()
                .context("configuring TLS for the OTLP/HTTP listener")?,
        )));
    }
    let grpc_router = grpc::router(grpc_server, stats.clone(), opts.max_request_bytes);
    let incoming =
        tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
    let grpc_stop = stopped(stop_rx.clone());
    let grpc_task = tokio::spawn(async move {
        if let Err(e) = grpc_router
            .serve_with_incoming_shutdown(incoming, grpc_stop)
            .await
        {
            eprintln!("otelsim sink: gRPC server on {grpc_addr} failed: {e}");
        }
    });

    let http_router = http::router(stats.clone(), opts.max_request_bytes);
    let http_stop = stopped(stop_rx);
    let http_task = tokio::spawn(async move {
        let served = match http_tls {
            Some(acceptor) => https::serve(http_listener, acceptor, http_router, http_stop).await,
            None => {
                axum::serve(http_listener, http_router)
                    .with_graceful_shutdown(http_stop)
                    .await
            }
        };
        if let Err(e) = served {
            eprintln!("otelsim sink: HTTP server on {http_addr} failed: {e}");
        }
    });

    Ok(RunningSink {
        grpc_addr,
        http_addr,
        stats,
        tls: opts.tls.is_some(),
        stop,
        tasks: vec![("gRPC", grpc_task), ("HTTP", http_task)],
    })
}

/// Resolves once a stop is requested or the sender (the `RunningSink`) is gone.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// The `otelsim sink` command: serve until SIGINT/SIGTERM (or
/// `max_duration`), then print the summary to stdout, optionally write the
/// snapshot as pretty JSON, and return it.
pub async fn run_until_signal(
    opts: SinkOptions,
    summary_json: Option<PathBuf>,
    max_duration: Option<Duration>,
) -> anyhow::Result<SinkSnapshot> {
    // Install handlers before announcing readiness, so a signal sent right
    // after the "listening" line is not lost (or fatal).
    let signals = Signals::new()?;
    let security = match &opts.tls {
        Some(tls) if tls.requires_client_cert() => ", TLS with client certificates required",
        Some(_) => ", TLS",
        None => "",
    };
    let sink = start(opts).await?;
    eprintln!(
        "otelsim sink: listening on grpc {}, http {}{security} (Ctrl-C to stop)",
        sink.grpc_addr, sink.http_addr
    );
    let deadline = async {
        match max_duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        name = signals.wait() => eprintln!("otelsim sink: {name} received, shutting down"),
        () = deadline => eprintln!("otelsim sink: time limit reached, shutting down"),
    }
    let stats = sink.stats.clone();
    sink.shutdown().await;
    let snapshot = stats.snapshot();
    print!("{}", snapshot.render_summary());
    if let Some(path) = summary_json {
        let json = serde_json::to_string_pretty(&snapshot).context("serialising sink summary")?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("writing sink summary to {}", path.display()))?;
    }
    Ok(snapshot)
}

/// SIGINT and SIGTERM (Ctrl-C only where Unix signals do not exist).
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
                term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    async fn wait(mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
