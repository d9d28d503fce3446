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
//!
//! Nothing a sender does can make it use unbounded memory or hold sockets
//! forever: bodies are bounded in bytes (before and after gzip), in items and
//! in the memory they decode to ([`scan`], checked before decoding), requests
//! in flight share one memory budget ([`budget`]), connections are capped and
//! time out when idle or slow ([`listen`]), and every per-name or per-trace
//! table is capped.

mod body;
pub mod budget;
pub mod decode;
mod distinct;
mod grpc;
mod http;
mod http_serve;
mod intake;
mod listen;
pub mod otlp_json;
pub mod runs;
pub mod scan;
mod schema;
mod stats;
mod view;
pub(crate) mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::distinct::DISTINCT_EXACT;
pub use self::http::{JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE};
pub use self::stats::{
    data_points, scenario_of, Accepted, Faults, ReceivedTraces, RejectWith, SinkSnapshot,
    SinkStats, Transport, MAX_DISTINCT_KEYS, OTHER_SCENARIO, OVERFLOW_KEY, PARTIAL_MESSAGE,
    SCENARIO_SCOPE_PREFIX,
};

/// Default request size limit: far above what SDK batchers send, low enough
/// that a runaway sender cannot exhaust memory.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;
/// Default limit of spans, log records or metric points in one request (SDKs
/// send batches of 512 to a few thousand).
pub const DEFAULT_MAX_REQUEST_ITEMS: u64 = 200_000;
/// Default limit of the memory one request may decode to (as the scanner bounds it).
pub const DEFAULT_MAX_DECODED_BYTES: usize = 128 * 1024 * 1024;
/// Default memory budget of all requests in flight: bodies, gunzipped bodies and
/// decoded requests.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 256 * 1024 * 1024;
/// Default number of open connections per listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default time a client has to send a request's headers (HTTP).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send a request's body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a connection may go without a byte from its client.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Concurrent requests on one gRPC connection.
const GRPC_MAX_STREAMS: u32 = 128;
/// Largest header block of a gRPC request (HTTP/2 headers are otherwise
/// buffered up to 16 MiB by default).
const GRPC_MAX_HEADER_BYTES: u32 = 64 * 1024;
/// The largest HTTP/2 frame the gRPC listener takes (HTTP/2's default is 16 KiB):
/// a client sends a request in frames of at most this, one write each, so
/// larger frames cost a sender on the same machine fewer writes and packets.
const GRPC_MAX_FRAME_BYTES: u32 = 1 << 20;

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
    /// Larger requests are refused (HTTP 413, gRPC INVALID_ARGUMENT, both with
    /// a message). Applies to the decompressed size too.
    pub max_request_bytes: usize,
    /// Requests with more spans, log records or metric points are refused like
    /// oversized ones.
    pub max_request_items: u64,
    /// Requests that would take more memory to decode are refused like oversized
    /// ones (checked by a scan of the body, before decoding).
    pub max_decoded_bytes: usize,
    /// Memory all requests in flight may hold at once; a request that finds no
    /// room waits up to 2 s, then gets a retryable refusal (HTTP 503 with
    /// Retry-After, gRPC RESOURCE_EXHAUSTED with RetryInfo).
    pub max_in_flight_bytes: usize,
    /// Open connections per listener; more are closed as soon as accepted.
    pub max_connections: usize,
    /// HTTP: a request's headers must arrive within this long of the connection
    /// being ready for them, so an idle keep-alive connection is closed after it too.
    pub header_timeout: Duration,
    /// A request's body must arrive within this long (HTTP 408 / gRPC DEADLINE_EXCEEDED).
    pub body_timeout: Duration,
    /// A connection whose client sends nothing for this long is closed (gRPC
    /// connections that are idle or never send the HTTP/2 preface, stalled TLS handshakes).
    pub idle_timeout: Duration,
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
            max_request_items: DEFAULT_MAX_REQUEST_ITEMS,
            max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES,
            max_in_flight_bytes: DEFAULT_MAX_IN_FLIGHT_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
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
    let intake = Arc::new(intake::Intake {
        stats: stats.clone(),
        budget: budget::Budget::new(opts.max_in_flight_bytes),
        limits: decode::RequestLimits {
            max_bytes: opts.max_request_bytes,
            max_items: opts.max_request_items,
            max_decoded_bytes: opts.max_decoded_bytes,
        },
        body_timeout: opts.body_timeout,
    });
    let gate = || listen::Gate::new(opts.max_connections, opts.idle_timeout, stats.clone());

    // No server keepalive pings: their answers would count as client activity
    // and keep idle connections open; the idle timeout finds dead peers too.
    let mut grpc_server = tonic::transport::Server::builder()
        .max_concurrent_streams(GRPC_MAX_STREAMS)
        .http2_max_header_list_size(GRPC_MAX_HEADER_BYTES)
        .max_frame_size(Some(GRPC_MAX_FRAME_BYTES));
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
    let grpc_router = grpc::router(grpc_server, intake.clone());
    let incoming = listen::Incoming::new(grpc_listener, gate());
    let grpc_stop = stopped(stop_rx.clone());
    let grpc_task = tokio::spawn(async move {
        if let Err(e) = grpc_router
            .serve_with_incoming_shutdown(incoming, grpc_stop)
            .await
        {
            eprintln!("otelsim sink: gRPC server on {grpc_addr} failed: {e}");
        }
    });

    let http_serve = http_serve::HttpServe {
        router: http::router(intake),
        gate: gate(),
        tls: http_tls,
        header_timeout: opts.header_timeout,
    };
    let http_stop = stopped(stop_rx);
    let http_task = tokio::spawn(async move {
        if let Err(e) = http_serve::serve(http_listener, http_serve, http_stop).await {
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
    let authenticated = opts.tls.as_ref().is_some_and(|t| t.requires_client_cert());
    let sink = start(opts).await?;
    eprintln!(
        "otelsim sink: listening on grpc {}, http {}{security} (Ctrl-C to stop)",
        sink.grpc_addr, sink.http_addr
    );
    for addr in [sink.grpc_addr, sink.http_addr] {
        if let Some(warning) = exposure_warning(addr, authenticated) {
            eprintln!("{warning}");
        }
    }
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

/// A warning for a listener other machines can reach while anyone may send to
/// it (no client certificates required).
pub fn exposure_warning(addr: SocketAddr, authenticated: bool) -> Option<String> {
    (!addr.ip().is_loopback() && !authenticated).then(|| {
        format!(
            "otelsim sink: warning: {addr} is reachable from other machines and the sink has no \
             authentication: anyone who can connect can send it telemetry (bind 127.0.0.1, or \
             require client certificates with --tls-client-ca)"
        )
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reachable_listeners_without_client_certificates_warn() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("address");
        for quiet in ["127.0.0.1:4317", "[::1]:4318"] {
            assert_eq!(exposure_warning(addr(quiet), false), None, "{quiet}");
        }
        for loud in ["0.0.0.0:4317", "[::]:4318", "192.0.2.7:4317"] {
            let w = exposure_warning(addr(loud), false).expect(loud);
            assert!(w.contains(loud) && w.contains("no authentication"), "{w}");
            assert_eq!(exposure_warning(addr(loud), true), None, "mTLS: {loud}");
        }
    }
}
