//! Send: batching, a bounded queue with backpressure, concurrent senders,
//! retries on transient errors, and exact counters. Nothing accepted is dropped
//! silently: every span ends up counted as acknowledged or failed.

use crate::encode::{self, Resources};
use crate::record::TraceRecord;
use anyhow::{anyhow, bail, Context as _, Result};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Protocol {
    #[value(name = "grpc")]
    #[serde(rename = "grpc")]
    Grpc,
    #[value(name = "http/protobuf")]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[value(name = "http/json")]
    #[serde(rename = "http/json")]
    HttpJson,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "grpc" => Some(Protocol::Grpc),
            "http/protobuf" | "http" | "http_protobuf" => Some(Protocol::HttpProtobuf),
            "http/json" | "http_json" | "json" => Some(Protocol::HttpJson),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }

    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            _ => "http://localhost:4318",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// Base URL (`http://host:port`); for HTTP `/v1/traces` is appended unless present.
    pub endpoint: String,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub gzip: bool,
    /// Write OTLP/JSON lines here instead of sending.
    pub output_file: Option<PathBuf>,
    pub max_batch_spans: usize,
    /// Flush a partial batch after this long; `None`: only by size and at the end
    /// (what file output uses, so batches do not depend on timing).
    pub linger: Option<Duration>,
    /// The endpoint is already the full traces URL (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): use as is.
    pub signal_url: bool,
    pub concurrency: usize,
    pub queue_batches: usize,
    pub request_timeout: Duration,
    /// How long one batch keeps retrying, and how long the endpoint may stay
    /// unreachable before the run is declared failed.
    pub retry_budget: Duration,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            endpoint: Protocol::Grpc.default_endpoint().into(),
            protocol: Protocol::Grpc,
            headers: Vec::new(),
            gzip: false,
            output_file: None,
            max_batch_spans: 512,
            linger: Some(Duration::from_millis(200)),
            signal_url: false,
            concurrency: 4,
            queue_batches: 64,
            request_timeout: Duration::from_secs(10),
            retry_budget: Duration::from_secs(15),
        }
    }
}

/// Exact counters of the export pipeline.
#[derive(Debug, Default)]
pub struct Counters {
    pub traces_generated: AtomicU64,
    pub spans_generated: AtomicU64,
    pub spans_sent: AtomicU64,
    pub spans_acked: AtomicU64,
    pub spans_failed: AtomicU64,
    pub requests_sent: AtomicU64,
    pub requests_acked: AtomicU64,
    pub requests_failed: AtomicU64,
    pub retries: AtomicU64,
    pub bytes_sent: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// When the endpoint started failing (reset by any success).
    failing_since: Mutex<Option<Instant>>,
    fatal: Mutex<Option<String>>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CountersSnapshot {
    pub traces_generated: u64,
    pub spans_generated: u64,
    pub spans_sent: u64,
    pub spans_acked: u64,
    pub spans_failed: u64,
    pub requests_sent: u64,
    pub requests_acked: u64,
    pub requests_failed: u64,
    pub retries: u64,
    pub bytes_sent: u64,
    pub first_error: Option<String>,
}

impl Counters {
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            traces_generated: self.traces_generated.load(Relaxed),
            spans_generated: self.spans_generated.load(Relaxed),
            spans_sent: self.spans_sent.load(Relaxed),
            spans_acked: self.spans_acked.load(Relaxed),
            spans_failed: self.spans_failed.load(Relaxed),
            requests_sent: self.requests_sent.load(Relaxed),
            requests_acked: self.requests_acked.load(Relaxed),
            requests_failed: self.requests_failed.load(Relaxed),
            retries: self.retries.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            first_error: self.first_error.lock().map(|e| e.clone()).unwrap_or(None),
        }
    }

    fn note_error(&self, msg: &str) {
        if let Ok(mut e) = self.first_error.lock() {
            if e.is_none() {
                *e = Some(msg.to_string());
            }
        }
    }

    fn mark_healthy(&self) {
        if let Ok(mut f) = self.failing_since.lock() {
            *f = None;
        }
    }

    /// Starts (or continues) the failing clock; past the budget the run is failing.
    fn mark_failing(&self, cfg: &ExportConfig, msg: &str) {
        let Ok(mut f) = self.failing_since.lock() else {
            return;
        };
        let since = *f.get_or_insert_with(Instant::now);
        if since.elapsed() >= cfg.retry_budget {
            if let Ok(mut fatal) = self.fatal.lock() {
                fatal.get_or_insert_with(|| {
                    format!(
                        "OTLP endpoint {} failing for {:.0?}: {msg}",
                        cfg.endpoint,
                        since.elapsed()
                    )
                });
            }
        }
    }

    /// The reason the run must stop (endpoint failing beyond the retry budget).
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }
}

/// A batch ready to send: the encoded request and how many spans it holds.
struct Batch {
    request: ExportTraceServiceRequest,
    spans: u64,
}

enum Outcome {
    /// Accepted; `rejected` spans were refused by the receiver (OTLP partial success).
    Ok { rejected: u64, message: String },
    /// Transient: retry after the hint or the backoff.
    Retry(String, Option<Duration>),
    /// Permanent: the batch fails.
    Fail(String),
}

type GrpcHeaders = Vec<(
    tonic::metadata::MetadataKey<tonic::metadata::Ascii>,
    tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
)>;

fn grpc_headers(cfg: &ExportConfig) -> Result<GrpcHeaders> {
    cfg.headers
        .iter()
        .map(|(k, v)| {
            let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                .map_err(|_| anyhow!("invalid header name `{k}`"))?;
            let val = tonic::metadata::MetadataValue::try_from(v.as_str())
                .map_err(|_| anyhow!("invalid value for header `{k}`"))?;
            Ok((key, val))
        })
        .collect()
}

#[derive(Clone)]
enum Transport {
    /// Client, headers, gzip.
    Grpc(
        TraceServiceClient<tonic::transport::Channel>,
        Arc<GrpcHeaders>,
        bool,
    ),
    Http {
        client: reqwest::Client,
        url: String,
        json: bool,
        gzip: bool,
    },
    File(Arc<Mutex<std::io::BufWriter<std::fs::File>>>),
}

pub struct Exporter {
    tx: mpsc::Sender<Vec<TraceRecord>>,
    batcher: JoinHandle<()>,
    pub counters: Arc<Counters>,
}

/// Normalises an endpoint to a URL with a scheme.
pub fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

/// The HTTP traces URL: `/v1/traces` appended unless the path already names a signal.
pub fn http_traces_url(endpoint: &str) -> String {
    let base = endpoint_url(endpoint);
    if base.trim_end_matches('/').ends_with("/v1/traces") {
        base
    } else {
        format!("{}/v1/traces", base.trim_end_matches('/'))
    }
}

/// Connects once to fail fast, with one clear line, when nothing listens.
async fn preflight(endpoint: &str, protocol: Protocol) -> Result<()> {
    let url = reqwest::Url::parse(&endpoint_url(endpoint)).with_context(|| {
        format!("invalid OTLP endpoint `{endpoint}`: expected e.g. http://localhost:4317")
    })?;
    let host = url
        .host_str()
        .ok_or_else(|| anyhow!("invalid OTLP endpoint `{endpoint}`: no host"))?
        .to_string();
    let port = url
        .port_or_known_default()
        .unwrap_or(if protocol == Protocol::Grpc {
            4317
        } else {
            4318
        });
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    match tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => bail!(
            "cannot reach the OTLP endpoint {endpoint} ({}): {e}. Start a receiver (`otelsim sink`, `make jaeger-up`) or point --endpoint at your collector, or use --output-file",
            protocol.as_str()
        ),
        Err(_) => bail!("cannot reach the OTLP endpoint {endpoint} ({}): connection timed out after 3 s", protocol.as_str()),
    }
}

impl Exporter {
    pub async fn start(mut cfg: ExportConfig, resources: Resources) -> Result<Exporter> {
        if cfg.output_file.is_some() {
            // One writer, batches cut by size only: the file's bytes depend on the data alone.
            cfg.concurrency = 1;
            cfg.linger = None;
        }
        let transport = match &cfg.output_file {
            Some(path) => {
                let f = std::fs::File::create(path)
                    .with_context(|| format!("cannot create output file {}", path.display()))?;
                Transport::File(Arc::new(Mutex::new(std::io::BufWriter::new(f))))
            }
            None => {
                preflight(&cfg.endpoint, cfg.protocol).await?;
                match cfg.protocol {
                    Protocol::Grpc => {
                        let channel =
                            tonic::transport::Endpoint::from_shared(endpoint_url(&cfg.endpoint))
                                .with_context(|| {
                                    format!("invalid gRPC endpoint `{}`", cfg.endpoint)
                                })?
                                .connect_timeout(Duration::from_secs(3))
                                .timeout(cfg.request_timeout)
                                .connect_lazy();
                        let client =
                            TraceServiceClient::new(channel).max_encoding_message_size(64 << 20);
                        Transport::Grpc(client, Arc::new(grpc_headers(&cfg)?), cfg.gzip)
                    }
                    Protocol::HttpProtobuf | Protocol::HttpJson => Transport::Http {
                        client: reqwest::Client::builder()
                            .default_headers(http_headers(&cfg)?)
                            .timeout(cfg.request_timeout)
                            .connect_timeout(Duration::from_secs(3))
                            .build()
                            .context("cannot build the HTTP client")?,
                        url: if cfg.signal_url {
                            endpoint_url(&cfg.endpoint)
                        } else {
                            http_traces_url(&cfg.endpoint)
                        },
                        json: cfg.protocol == Protocol::HttpJson,
                        gzip: cfg.gzip,
                    },
                }
            }
        };
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel::<Vec<TraceRecord>>(cfg.queue_batches.max(1) * 8);
        let (btx, brx) = mpsc::channel::<Batch>(cfg.queue_batches.max(1));
        let brx = Arc::new(tokio::sync::Mutex::new(brx));
        let cfg = Arc::new(cfg);
        let mut workers = Vec::new();
        for _ in 0..cfg.concurrency.max(1) {
            let brx = brx.clone();
            let transport = transport.clone();
            let counters = counters.clone();
            let cfg = cfg.clone();
            workers.push(tokio::spawn(async move {
                loop {
                    let next = brx.lock().await.recv().await;
                    let Some(batch) = next else { break };
                    send_with_retry(&transport, &cfg, &counters, batch).await;
                }
            }));
        }
        let batcher = tokio::spawn(run_batcher(
            rx,
            btx,
            resources,
            cfg.clone(),
            workers,
            transport,
        ));
        Ok(Exporter {
            tx,
            batcher,
            counters,
        })
    }

    /// Queues the traces of one request; waits when the queue is full (backpressure).
    pub async fn submit(&self, traces: Vec<TraceRecord>) {
        let spans: usize = traces.iter().map(|t| t.spans.len()).sum();
        self.counters
            .traces_generated
            .fetch_add(traces.len() as u64, Relaxed);
        self.counters
            .spans_generated
            .fetch_add(spans as u64, Relaxed);
        if self.tx.send(traces).await.is_err() {
            // The pipeline is gone: these spans can never be sent.
            self.counters.spans_failed.fetch_add(spans as u64, Relaxed);
            self.counters.note_error("export pipeline stopped");
        }
    }

    /// Flushes everything queued, waits for every send to finish, returns the counters.
    pub async fn finish(self) -> CountersSnapshot {
        drop(self.tx);
        let _ = self.batcher.await;
        self.counters.snapshot()
    }
}

async fn run_batcher(
    mut rx: mpsc::Receiver<Vec<TraceRecord>>,
    btx: mpsc::Sender<Batch>,
    resources: Resources,
    cfg: Arc<ExportConfig>,
    workers: Vec<JoinHandle<()>>,
    transport: Transport,
) {
    let mut pending: Vec<TraceRecord> = Vec::new();
    let mut pending_spans = 0usize;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let msg = match deadline {
            Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    flush(&mut pending, &mut pending_spans, &btx, &resources).await;
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(traces) = msg else { break };
        for t in traces {
            let n = t.spans.len();
            // A trace is never split: flush first if it would overflow the batch.
            if pending_spans > 0 && pending_spans + n > cfg.max_batch_spans {
                flush(&mut pending, &mut pending_spans, &btx, &resources).await;
            }
            pending_spans += n;
            pending.push(t);
        }
        if pending_spans >= cfg.max_batch_spans {
            flush(&mut pending, &mut pending_spans, &btx, &resources).await;
            deadline = None;
        } else if deadline.is_none() && !pending.is_empty() {
            deadline = cfg.linger.map(|l| tokio::time::Instant::now() + l);
        }
    }
    flush(&mut pending, &mut pending_spans, &btx, &resources).await;
    drop(btx);
    for w in workers {
        let _ = w.await;
    }
    if let Transport::File(f) = transport {
        if let Ok(mut w) = f.lock() {
            let _ = w.flush();
        }
    }
}

async fn flush(
    pending: &mut Vec<TraceRecord>,
    pending_spans: &mut usize,
    btx: &mpsc::Sender<Batch>,
    resources: &Resources,
) {
    if pending.is_empty() {
        return;
    }
    let request = encode::traces_request(pending, resources);
    let spans = *pending_spans as u64;
    pending.clear();
    *pending_spans = 0;
    let _ = btx.send(Batch { request, spans }).await;
}

async fn send_with_retry(
    transport: &Transport,
    cfg: &ExportConfig,
    counters: &Counters,
    batch: Batch,
) {
    counters.requests_sent.fetch_add(1, Relaxed);
    counters.spans_sent.fetch_add(batch.spans, Relaxed);
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        // Once the endpoint has been failing past the budget, stop trying: the run is failing.
        if let Some(reason) = counters.fatal() {
            fail(counters, &batch, &reason);
            return;
        }
        let (msg, hint) = match send_once(transport, &batch, counters).await {
            Outcome::Ok { rejected, message } => {
                let rejected = rejected.min(batch.spans);
                counters.requests_acked.fetch_add(1, Relaxed);
                counters
                    .spans_acked
                    .fetch_add(batch.spans - rejected, Relaxed);
                if rejected > 0 {
                    counters.spans_failed.fetch_add(rejected, Relaxed);
                    counters
                        .note_error(&format!("receiver rejected {rejected} span(s): {message}"));
                }
                counters.mark_healthy();
                return;
            }
            Outcome::Fail(msg) => {
                fail(counters, &batch, &msg);
                return;
            }
            Outcome::Retry(msg, hint) => (msg, hint),
        };
        counters.mark_failing(cfg, &msg);
        let wait = hint.unwrap_or(delay).min(Duration::from_secs(5));
        if started.elapsed() + wait > cfg.retry_budget {
            fail(
                counters,
                &batch,
                &format!("gave up after {:.1?} of retries: {msg}", started.elapsed()),
            );
            return;
        }
        counters.retries.fetch_add(1, Relaxed);
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

fn fail(counters: &Counters, batch: &Batch, msg: &str) {
    counters.requests_failed.fetch_add(1, Relaxed);
    counters.spans_failed.fetch_add(batch.spans, Relaxed);
    counters.note_error(msg);
}

async fn send_once(transport: &Transport, batch: &Batch, counters: &Counters) -> Outcome {
    match transport {
        Transport::File(f) => {
            let line = encode::to_json_line(&batch.request);
            counters
                .bytes_sent
                .fetch_add(line.len() as u64 + 1, Relaxed);
            let Ok(mut w) = f.lock() else {
                return Outcome::Fail("output file lock poisoned".into());
            };
            // Flushed per line so a write error is charged to the spans it lost.
            match writeln!(w, "{line}").and_then(|()| w.flush()) {
                Ok(()) => Outcome::Ok {
                    rejected: 0,
                    message: String::new(),
                },
                Err(e) => Outcome::Fail(format!("cannot write output file: {e}")),
            }
        }
        Transport::Grpc(client, headers, gzip) => {
            let mut client = client.clone();
            if *gzip {
                client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
            }
            counters
                .bytes_sent
                .fetch_add(batch.request.encoded_len() as u64, Relaxed);
            let mut req = tonic::Request::new(batch.request.clone());
            for (k, v) in headers.iter() {
                req.metadata_mut().insert(k.clone(), v.clone());
            }
            match client.export(req).await {
                Ok(resp) => {
                    let ps = resp.into_inner().partial_success.unwrap_or_default();
                    Outcome::Ok {
                        rejected: ps.rejected_spans.max(0) as u64,
                        message: ps.error_message,
                    }
                }
                Err(status) => {
                    use tonic::Code;
                    let msg = format!("gRPC {:?}: {}", status.code(), status.message());
                    match status.code() {
                        Code::Unavailable
                        | Code::ResourceExhausted
                        | Code::Aborted
                        | Code::DeadlineExceeded
                        | Code::Cancelled
                        | Code::OutOfRange
                        | Code::DataLoss
                        | Code::Unknown => Outcome::Retry(msg, None),
                        _ => Outcome::Fail(msg),
                    }
                }
            }
        }
        Transport::Http {
            client,
            url,
            json,
            gzip,
        } => {
            let (body, ctype) = if *json {
                (
                    encode::to_json_line(&batch.request).into_bytes(),
                    "application/json",
                )
            } else {
                (batch.request.encode_to_vec(), "application/x-protobuf")
            };
            let mut req = client.post(url).header("content-type", ctype);
            let body = if *gzip {
                req = req.header("content-encoding", "gzip");
                gzip_bytes(&body)
            } else {
                body
            };
            counters.bytes_sent.fetch_add(body.len() as u64, Relaxed);
            match req.body(body).send().await {
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    match code {
                        200..=299 => {
                            let body = resp.bytes().await.unwrap_or_default();
                            let (rejected, message) = http_partial_success(&body, *json);
                            Outcome::Ok { rejected, message }
                        }
                        429 | 502 | 503 | 504 => {
                            Outcome::Retry(format!("HTTP {code} from {url}"), retry_after)
                        }
                        _ => {
                            let text = resp.text().await.unwrap_or_default();
                            Outcome::Fail(format!(
                                "HTTP {code} from {url}: {}",
                                text.chars().take(200).collect::<String>()
                            ))
                        }
                    }
                }
                Err(e) => Outcome::Retry(format!("HTTP request to {url} failed: {e}"), None),
            }
        }
    }
}

fn gzip_bytes(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// Rejected spans from an OTLP/HTTP response body (protobuf or JSON); 0 when absent.
fn http_partial_success(body: &[u8], json: bool) -> (u64, String) {
    if body.is_empty() {
        return (0, String::new());
    }
    if json {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let ps = &v["partialSuccess"];
        let rejected = match &ps["rejectedSpans"] {
            serde_json::Value::String(s) => s.parse().unwrap_or(0),
            n => n.as_u64().unwrap_or(0),
        };
        return (
            rejected,
            ps["errorMessage"].as_str().unwrap_or_default().to_string(),
        );
    }
    match ExportTraceServiceResponse::decode(body) {
        Ok(r) => {
            let ps = r.partial_success.unwrap_or_default();
            (ps.rejected_spans.max(0) as u64, ps.error_message)
        }
        Err(_) => (0, String::new()),
    }
}

/// Configured headers as HTTP headers (auth tokens and the like).
fn http_headers(cfg: &ExportConfig) -> Result<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in &cfg.headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .with_context(|| format!("invalid header name `{k}`"))?;
        let value = reqwest::header::HeaderValue::from_str(v)
            .with_context(|| format!("invalid value for header `{k}`"))?;
        map.insert(name, value);
    }
    Ok(map)
}
