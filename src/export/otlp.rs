//! The OTLP writer: OTLP to an endpoint over gRPC, HTTP/protobuf or
//! HTTP/JSON, or OTLP/JSON lines to a file (the Collector file exporter's
//! format). A bounded queue of encoded batches with backpressure, concurrent
//! senders, retries on transient errors within a budget, partial success.

use super::buffers::Buffers;
use super::counters::{AckLog, Counters, CountersSnapshot, TraceDigest};
use super::transport::{Outcome, Transport};
use super::{BoxFuture, ExportConfig, Secrets, Signal, Writer, WriterSink};
use crate::encode::wire::WireEncoder;
use crate::encode::{self, Resources};
use crate::record::{LogRecord, TraceRecord};
use anyhow::Result;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// An encoded export request of one signal.
pub(crate) enum Body {
    Traces(ExportTraceServiceRequest),
    /// An `ExportTraceServiceRequest` already in protobuf wire format (the fast path).
    TracesWire(bytes::Bytes),
    /// An `ExportLogsServiceRequest` already in protobuf wire format.
    LogsWire(bytes::Bytes),
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
    /// A wire-format request of `signal` (traces or logs) compressed with gzip
    /// once for all its attempts; `raw_len`: its size before.
    Gzipped {
        signal: Signal,
        payload: bytes::Bytes,
        raw_len: u64,
    },
}

/// A batch ready to send: how many items (spans, points, records) it holds and,
/// when acknowledgements are logged, which traces (id, spans) it carries and
/// which of them it holds only a part of (sorted ids).
struct Batch {
    body: Body,
    items: u64,
    traces: Vec<TraceDigest>,
    parts: Vec<[u8; 16]>,
}

impl Body {
    /// The signal whose export request this is.
    pub(crate) fn signal(&self) -> Signal {
        match self {
            Body::Traces(_) | Body::TracesWire(_) => Signal::Traces,
            Body::Metrics(_) => Signal::Metrics,
            Body::Logs(_) | Body::LogsWire(_) => Signal::Logs,
            Body::Gzipped { signal, .. } => *signal,
        }
    }

    /// Done with: a wire-encoded body's buffer goes back to `buffers` when no
    /// one else holds it.
    fn give_back(self, buffers: &Buffers) {
        if let Body::TracesWire(b) | Body::LogsWire(b) = self {
            buffers.give_bytes(b);
        }
    }
}

impl Batch {
    fn signal(&self) -> Signal {
        self.body.signal()
    }

    /// Done with (acknowledged, failed or dropped): its encode buffer goes back
    /// to `buffers` when no one else holds it.
    fn done(self, buffers: &Buffers) {
        self.body.give_back(buffers);
    }
}

/// One OTLP output: the queue of encoded batches and the senders draining it.
pub struct OtlpWriter {
    label: String,
    btx: mpsc::Sender<Batch>,
    senders: Vec<JoinHandle<()>>,
    transport: Transport,
    cfg: Arc<ExportConfig>,
    resources: Resources,
    counters: Arc<Counters>,
    acks: Option<Arc<AckLog>>,
    buffers: Arc<Buffers>,
}

/// What every sender of one writer shares.
struct Sending {
    transport: Transport,
    buffers: Arc<Buffers>,
    cfg: Arc<ExportConfig>,
    counters: Arc<Counters>,
    acks: Option<Arc<AckLog>>,
    /// Scrubbed from every message before it is kept or printed.
    secrets: Secrets,
    /// Whether the first failure has been diagnosed (a protocol mismatch?).
    diagnosed: AtomicBool,
}

impl OtlpWriter {
    /// Connects (or creates the file); `acks`: log the traces acknowledged in full.
    pub async fn start(
        label: String,
        mut cfg: ExportConfig,
        resources: Resources,
        acks: Option<Arc<AckLog>>,
    ) -> Result<OtlpWriter> {
        if cfg.output_file.is_some() {
            // One writer, batches cut by size only: the file's bytes depend on the data alone.
            cfg.concurrency = 1;
            cfg.linger = None;
        }
        let transport = Transport::new(&cfg).await?;
        let counters = Arc::new(Counters::default());
        let (btx, brx) = mpsc::channel::<Batch>(cfg.queue_batches.max(1));
        let brx = Arc::new(tokio::sync::Mutex::new(brx));
        // A buffer is busy while its request waits in the queue or is sent, and
        // while a producer encodes into it: that many idle ones (and a producer's
        // one) cover every buffer the queue and senders give back before the
        // producers take them again.
        let buffers = Arc::new(Buffers::new(
            cfg.queue_batches.max(1) + cfg.concurrency.max(1) + 1,
        ));
        let cfg = Arc::new(cfg);
        let sending = Arc::new(Sending {
            transport: transport.clone(),
            buffers: buffers.clone(),
            cfg: cfg.clone(),
            counters: counters.clone(),
            acks: acks.clone(),
            secrets: Secrets::of(&cfg),
            diagnosed: AtomicBool::new(false),
        });
        let mut senders = Vec::new();
        for _ in 0..cfg.concurrency.max(1) {
            let brx = brx.clone();
            let sending = sending.clone();
            senders.push(tokio::spawn(async move {
                loop {
                    let next = brx.lock().await.recv().await;
                    let Some(mut batch) = next else { break };
                    sending.send_with_retry(&mut batch).await;
                    batch.done(&sending.buffers);
                }
            }));
        }
        Ok(OtlpWriter {
            label,
            btx,
            senders,
            transport,
            cfg,
            resources,
            counters,
            acks,
            buffers,
        })
    }
}

impl Writer for OtlpWriter {
    fn label(&self) -> &str {
        &self.label
    }

    fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    fn cuts_by_size_only(&self) -> bool {
        self.cfg.linger.is_none()
    }

    fn sink(&self) -> Box<dyn WriterSink> {
        Box::new(OtlpSink {
            btx: self.btx.clone(),
            counters: self.counters.clone(),
            acks: self.acks.clone(),
            buffers: self.buffers.clone(),
            max_batch_logs: self.cfg.max_batch_logs.max(1),
            resources: self.resources.clone(),
            track: self.acks.is_some(),
            wire: self
                .transport
                .takes_wire()
                .then(|| WireEncoder::new(self.resources.clone())),
            bytes_per_span: 1024,
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, CountersSnapshot> {
        Box::pin(async move {
            let OtlpWriter {
                label,
                btx,
                senders,
                transport,
                counters,
                buffers,
                ..
            } = *self;
            drop(btx);
            for s in senders {
                let _ = s.await;
            }
            transport.flush();
            // For tests and measurements: how often a request reused a buffer.
            if std::env::var_os("OTELSIM_BUFFER_STATS").is_some() {
                eprintln!("otelsim: {label}: request buffers: {}", buffers.stats());
            }
            counters.snapshot()
        })
    }
}

/// One producer's handle on an OTLP writer: encodes on the producer's task
/// (so encoding scales with producers) and queues the requests.
struct OtlpSink {
    btx: mpsc::Sender<Batch>,
    counters: Arc<Counters>,
    acks: Option<Arc<AckLog>>,
    /// Where trace and log requests are encoded, and their buffers come back to.
    buffers: Arc<Buffers>,
    max_batch_logs: usize,
    resources: Resources,
    /// Whether batches carry trace digests for the ack log.
    track: bool,
    /// Protobuf transports get traces and logs from the wire encoder; JSON ones need prost types.
    wire: Option<WireEncoder>,
    /// Encoded bytes per span of the last trace request, with room to spare.
    bytes_per_span: usize,
}

impl WriterSink for OtlpSink {
    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn traces<'a>(
        &'a mut self,
        traces: &'a [TraceRecord],
        spans: usize,
        parts: &'a [[u8; 16]],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let body = match &mut self.wire {
                Some(w) => {
                    // Sized by the last request, so the buffer is not grown (and copied) as
                    // it fills.
                    let mut buf = self.buffers.take(spans * self.bytes_per_span);
                    w.traces(traces, &mut buf);
                    self.bytes_per_span = buf.len() / spans.max(1) + 64;
                    Body::TracesWire(bytes::Bytes::from(buf))
                }
                None => Body::Traces(encode::traces_request(traces, &self.resources)),
            };
            let (digests, parts) = if self.track {
                (digests(traces), parts.to_vec())
            } else {
                (Vec::new(), Vec::new())
            };
            self.send(Batch {
                body,
                items: spans as u64,
                traces: digests,
                parts,
            })
            .await;
        })
    }

    fn logs<'a>(&'a mut self, logs: &'a [LogRecord]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for chunk in logs.chunks(self.max_batch_logs) {
                let body = match &mut self.wire {
                    Some(w) => {
                        let mut buf = self.buffers.take(chunk.len() * 400);
                        w.logs(chunk, &mut buf);
                        Body::LogsWire(bytes::Bytes::from(buf))
                    }
                    None => Body::Logs(encode::logs_request(chunk, &self.resources)),
                };
                self.send(Batch {
                    body,
                    items: chunk.len() as u64,
                    traces: Vec::new(),
                    parts: Vec::new(),
                })
                .await;
            }
        })
    }

    fn metrics<'a>(
        &'a mut self,
        request: &'a ExportMetricsServiceRequest,
        points: u64,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.send(Batch {
                body: Body::Metrics(request.clone()),
                items: points,
                traces: Vec::new(),
                parts: Vec::new(),
            })
            .await;
        })
    }
}

impl OtlpSink {
    async fn send(&self, batch: Batch) {
        let sc = self.counters.of(batch.signal());
        // The receiver does not take this signal: nothing more of it is sent.
        if sc.is_off() {
            sc.dropped.fetch_add(batch.items, Relaxed);
            batch.done(&self.buffers);
            return;
        }
        if let Err(mpsc::error::SendError(batch)) = self.btx.send(batch).await {
            // The senders are gone: these items can never be sent.
            sc.failed.fetch_add(batch.items, Relaxed);
            if let Some(a) = &self.acks {
                a.record_failed(&batch.parts);
            }
            self.counters.note_error("export pipeline stopped");
            batch.done(&self.buffers);
        }
    }
}

/// Each trace of a batch once, with its spans (realtime mode sends a trace
/// span by span: one entry per trace and batch).
fn digests(traces: &[TraceRecord]) -> Vec<TraceDigest> {
    let mut d: Vec<TraceDigest> = traces
        .iter()
        .map(|t| (t.trace_id, t.spans.len() as u32))
        .collect();
    d.sort_unstable_by_key(|x| x.0);
    d.dedup_by(|b, a| {
        let same = a.0 == b.0;
        if same {
            a.1 += b.1;
        }
        same
    });
    d
}

impl Sending {
    /// Sends one batch, retrying transient failures within the retry budget
    /// (counted from its first failed attempt, so a slow first answer costs
    /// none of it); counts it as acknowledged, failed, or dropped because the
    /// receiver does not accept its signal. A wire-format body to be sent
    /// gzipped is compressed once, first, and its raw buffer given back.
    async fn send_with_retry(&self, batch: &mut Batch) {
        let (cfg, counters) = (&*self.cfg, &*self.counters);
        let sc = counters.of(batch.signal());
        // Queued before the receiver refused the signal.
        if sc.is_off() {
            sc.dropped.fetch_add(batch.items, Relaxed);
            return;
        }
        if let Some(gzipped) = self.transport.gzip_once(&batch.body) {
            std::mem::replace(&mut batch.body, gzipped).give_back(&self.buffers);
        }
        let batch = &*batch;
        sc.requests_sent.fetch_add(1, Relaxed);
        sc.sent.fetch_add(batch.items, Relaxed);
        let mut failing_since: Option<Instant> = None;
        let mut delay = Duration::from_millis(100);
        loop {
            // Once the endpoint has been failing past the budget, stop trying: the run is failing.
            if let Some(reason) = counters.fatal() {
                self.fail(batch, &reason);
                return;
            }
            let mut bytes = 0;
            // Each attempt gets the request timeout; a retry no more than is left of the budget.
            let limit = match failing_since {
                None => cfg.request_timeout,
                Some(t) => cfg
                    .request_timeout
                    .min(cfg.retry_budget.saturating_sub(t.elapsed())),
            }
            .max(Duration::from_millis(1));
            let outcome =
                match tokio::time::timeout(limit, self.transport.send(&batch.body, &mut bytes))
                    .await
                {
                    Ok(o) => o,
                    Err(_) => Outcome::Retry(format!("no answer within {limit:.1?}"), None),
                };
            counters.bytes_sent.fetch_add(bytes, Relaxed);
            if let Outcome::Retry(failure, _)
            | Outcome::Fail(failure)
            | Outcome::NotAccepted { failure, .. } = &outcome
            {
                if let Some(diagnosis) = self.diagnose(batch, failure).await {
                    self.stop_run(batch, &diagnosis);
                    return;
                }
            }
            let (msg, hint) = match outcome {
                Outcome::Ok { rejected, message } => {
                    let rejected = rejected.min(batch.items);
                    if let Some(a) = &self.acks {
                        if rejected == 0 {
                            a.record(&batch.traces, &batch.parts);
                        } else {
                            a.record_failed(&batch.parts);
                        }
                    }
                    sc.requests_acked.fetch_add(1, Relaxed);
                    sc.acked.fetch_add(batch.items - rejected, Relaxed);
                    if rejected > 0 {
                        sc.failed.fetch_add(rejected, Relaxed);
                        let message = self.secrets.scrub(&message);
                        counters.note_error(&format!(
                            "receiver rejected {rejected} item(s): {message}"
                        ));
                    }
                    counters.mark_healthy();
                    return;
                }
                Outcome::NotAccepted { answer, failure } => {
                    let signal = batch.signal();
                    let why = format!(
                        "the receiver does not accept {} ({})",
                        signal.name(),
                        self.secrets.scrub(&answer)
                    );
                    if cfg.optional_signals[signal.index()] {
                        self.turn_off(batch, &why);
                    } else {
                        // Traces, or a signal the user asked for by name: it must arrive.
                        let asked = match signal {
                            Signal::Traces => String::new(),
                            s => format!(", and --{} asks for them", s.name()),
                        };
                        let failure = self.secrets.scrub(&failure);
                        self.fail(batch, &format!("{why}{asked}: {failure}"));
                    }
                    return;
                }
                Outcome::Fail(msg) => {
                    self.fail(batch, &self.secrets.scrub(&msg));
                    return;
                }
                Outcome::TooLarge(msg) => {
                    let msg = self.secrets.scrub(&msg);
                    self.fail(
                        batch,
                        &format!(
                            "the receiver refused a request of {} ({} {}) as too large, not retried: {msg}",
                            human_bytes(bytes),
                            batch.items,
                            item_name(batch.signal())
                        ),
                    );
                    return;
                }
                Outcome::Fatal(msg) => {
                    self.stop_run(batch, &self.secrets.scrub(&msg));
                    return;
                }
                Outcome::Retry(msg, hint) => (self.secrets.scrub(&msg), hint),
            };
            let since = *failing_since.get_or_insert_with(Instant::now);
            if let Some(reason) = counters.mark_failing(cfg, &msg) {
                announce(&reason);
            }
            // The receiver's hint (Retry-After, gRPC RetryInfo) wins over our backoff
            // (at least 50 ms, so `Retry-After: 0` cannot spin); the retry budget
            // bounds the whole.
            let wait = hint.map_or(delay, |h| h.max(Duration::from_millis(50)));
            if since.elapsed() + wait > cfg.retry_budget {
                let why = if hint.is_some() {
                    format!(
                        "the receiver asked to wait {wait:.1?}, beyond what is left of the retry budget ({:.1?})",
                        cfg.retry_budget
                    )
                } else {
                    format!("gave up after {:.1?} of retries", since.elapsed())
                };
                self.fail(batch, &format!("{why}: {msg}"));
                return;
            }
            counters.retries.fetch_add(1, Relaxed);
            if hint.is_some() {
                counters.retry_hints.fetch_add(1, Relaxed);
            }
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// The receiver does not accept the batch's signal (`reason`): its items
    /// are dropped, and the signal is off for the rest of the run (said once, as
    /// a warning).
    fn turn_off(&self, batch: &Batch, reason: &str) {
        let signal = batch.signal();
        let sc = self.counters.of(signal);
        sc.dropped.fetch_add(batch.items, Relaxed);
        if sc.turn_off(reason) && !self.cfg.quiet {
            eprintln!("otelsim: {reason}; {} are off for this run", signal.name());
        }
    }

    /// On the writer's first failed request: does the endpoint speak the other
    /// protocol? (Once: the answer does not change while the run goes.)
    async fn diagnose(&self, batch: &Batch, failure: &str) -> Option<String> {
        if self.diagnosed.swap(true, Relaxed) {
            return None;
        }
        let url = self.transport.url_of(&batch.body)?;
        super::probe::mismatch(url, self.cfg.protocol, &super::redact_url(url), failure).await
    }

    /// The batch fails and the run stops for `reason`, said at once on stderr.
    fn stop_run(&self, batch: &Batch, reason: &str) {
        if let Some(first) = self.counters.set_fatal(reason) {
            announce(&first);
        }
        self.fail(batch, reason);
    }

    fn fail(&self, batch: &Batch, msg: &str) {
        let sc = self.counters.of(batch.signal());
        sc.requests_failed.fetch_add(1, Relaxed);
        sc.failed.fetch_add(batch.items, Relaxed);
        if let Some(a) = &self.acks {
            a.record_failed(&batch.parts);
        }
        self.counters.note_error(msg);
    }
}

/// Says on stderr, at once and even with `-q` (it is an error), why the run stops.
fn announce(reason: &str) {
    eprintln!("otelsim: stopping the run: {reason}");
}

/// What a signal's items are called in messages.
fn item_name(s: Signal) -> &'static str {
    match s {
        Signal::Traces => "spans",
        Signal::Metrics => "metric points",
        Signal::Logs => "log records",
    }
}

/// `35.2 MB`, `812 KB`, `96 bytes`.
fn human_bytes(n: u64) -> String {
    match n {
        0..=9_999 => format!("{n} bytes"),
        10_000..=9_999_999 => format!("{:.0} KB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}
