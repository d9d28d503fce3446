//! Thread-safe counters shared by the gRPC and HTTP receivers, and the
//! human-readable summary printed when `otelsim sink` stops.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, Metric};

use prost::Message as _;

use super::decode::{Decoded, Signal};
use super::distinct::DistinctIds;
use super::runs::{RunSeen, Runs, DEFAULT_MAX_TRACKED_SPANS, UNATTRIBUTED_RUN};
use super::view::{self, RequestView, ResourceView, SpanView};

/// Scope-name prefix otelsim uses to tag the scenario a span belongs to.
pub const SCENARIO_SCOPE_PREFIX: &str = "otelsim.";

/// Key under which spans from scopes without the otelsim prefix are counted.
pub const OTHER_SCENARIO: &str = "(other)";

/// Key that absorbs new names once a per-name map is full, so a sender that
/// puts unique ids into span names cannot grow the sink's memory without bound.
pub const OVERFLOW_KEY: &str = "(overflow)";

/// Distinct keys kept per breakdown map before new keys go to [`OVERFLOW_KEY`].
pub const MAX_DISTINCT_KEYS: usize = 10_000;

/// The message of an injected partial success.
pub const PARTIAL_MESSAGE: &str = "otelsim sink: refused on purpose (--partial-first)";

/// The message of a partial success for spans with invalid ids.
const INVALID_ID_MESSAGE: &str = "refused: a span needs a 16-byte trace_id and an 8-byte span_id, \
     neither all zeros, and an empty or 8-byte parent_span_id";

/// How many span names `render_summary` lists.
const TOP_SPAN_NAMES: usize = 15;

/// The wire format a request arrived in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Transport {
    /// OTLP over gRPC.
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/HTTP with a JSON body.
    #[serde(rename = "http/json")]
    HttpJson,
}

impl Transport {
    /// The key used in [`SinkSnapshot::requests_by_transport`]; matches the
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` spelling so users recognise it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::HttpProtobuf => "http/protobuf",
            Transport::HttpJson => "http/json",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored trace export request together with how it arrived (tests use the
/// transport to check that each exporter path really was exercised).
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedTraces {
    /// How it arrived.
    pub transport: Transport,
    /// The request as decoded.
    pub request: ExportTraceServiceRequest,
}

/// Point-in-time copy of the sink's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SinkSnapshot {
    /// Trace export requests accepted.
    pub trace_requests: u64,
    /// Metrics export requests accepted.
    pub metrics_requests: u64,
    /// Logs export requests accepted.
    pub logs_requests: u64,
    /// Accepted requests keyed by "grpc", "http/protobuf" or "http/json".
    pub requests_by_transport: BTreeMap<String, u64>,
    /// Malformed, too large, or unsupported content type / encoding.
    pub rejected_requests: u64,
    /// Rejected requests by reason: `malformed`, `too_large` (over a size, item or
    /// memory limit), `busy` (no room in the memory budget now), `timeout` (the body
    /// was too slow), `unsupported` (content type or encoding).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Spans refused with an OTLP partial success because a trace, span or parent
    /// id was invalid (wrong length, or an all-zero trace or span id).
    pub invalid_id_spans: u64,
    /// Connections closed as soon as they were accepted, because the listener had
    /// its maximum open.
    pub refused_connections: u64,
    /// Connections the sink closed because the client sent nothing, or not a
    /// request's headers, in time.
    pub timed_out_connections: u64,
    /// Spans in accepted requests.
    pub spans: u64,
    /// Data points summed over all metric types.
    pub metric_points: u64,
    /// Log records in accepted requests.
    pub log_records: u64,
    /// Uncompressed payload bytes of accepted requests (protobuf or JSON body
    /// after gzip decoding), so gRPC and HTTP numbers are comparable.
    pub bytes_received: u64,
    /// Spans per scenario: the scope name after `otelsim.`, or [`OTHER_SCENARIO`].
    pub spans_by_scenario: BTreeMap<String, u64>,
    /// Spans per resource `service.name` (`(none)` for a resource without one).
    pub spans_by_service: BTreeMap<String, u64>,
    /// Spans per span name, at most [`MAX_DISTINCT_KEYS`] names (then [`OVERFLOW_KEY`]).
    pub spans_by_name: BTreeMap<String, u64>,
    /// Distinct 16-byte trace ids seen (an estimate past 100,000; see `traces_seen_estimated`).
    pub traces_seen: u64,
    /// Whether `traces_seen` is estimated (a standard error of 0.4 %) rather than
    /// exact: past 100,000 ids the sink keeps a sketch instead of every id.
    pub traces_seen_estimated: bool,
    /// Spans whose resource carries no `otelsim.run.id` (tracked as the run
    /// `(no run id)` in `runs`).
    pub spans_without_run_id: u64,
    /// Metric data points whose resource carries no `otelsim.run.id`.
    pub metric_points_without_run_id: u64,
    /// Log records whose resource carries no `otelsim.run.id`.
    pub log_records_without_run_id: u64,
    /// Spans whose status code is ERROR.
    pub error_spans: u64,
    /// Requests refused on purpose (`--reject-first`).
    pub injected_rejections: u64,
    /// Spans refused on purpose with a partial-success answer (`--partial-first`).
    pub injected_partial_spans: u64,
    /// What arrived of each otelsim run (by `otelsim.run.id`), for `otelsim verify`.
    pub runs: BTreeMap<String, RunSeen>,
}

struct Inner {
    counters: SinkSnapshot,
    runs: Runs,
    trace_ids: DistinctIds,
    kept_traces: Vec<ReceivedTraces>,
    kept_metrics: Vec<ExportMetricsServiceRequest>,
    kept_logs: Vec<ExportLogsServiceRequest>,
}

/// Faults the sink injects, to test how senders cope (all off by default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Refuse this many requests (of any signal) first, as retryable.
    pub reject_first: u64,
    /// How: HTTP 429 / gRPC RESOURCE_EXHAUSTED, or HTTP 503 / gRPC UNAVAILABLE.
    pub reject_with: RejectWith,
    /// The retry hint sent with each refusal (HTTP Retry-After, gRPC RetryInfo).
    pub retry_after: Option<std::time::Duration>,
    /// Accept this many trace requests first only partly: the last span of each
    /// is refused with an OTLP partial-success answer.
    pub partial_first: u64,
}

/// How an injected refusal is answered: `503` (HTTP 503, gRPC UNAVAILABLE; the default) or
/// `429` (HTTP 429, gRPC RESOURCE_EXHAUSTED). Both are retryable.
// The variants have no doc comments: clap would print them in `--help`.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RejectWith {
    #[default]
    #[value(name = "503")]
    Unavailable,
    #[value(name = "429")]
    TooManyRequests,
}

/// Counters updated by both servers. One mutex keeps every snapshot
/// internally consistent (a request's spans and its request count move
/// together); the critical sections are short and never await.
pub struct SinkStats {
    keep_requests: bool,
    inner: Mutex<Inner>,
    faults: Faults,
    rejections_left: AtomicU64,
    partials_left: AtomicU64,
    refused_connections: AtomicU64,
    timed_out_connections: AtomicU64,
}

/// What became of an accepted request's items.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Spans refused (invalid ids, or an injected partial success); the rest were kept.
    pub rejected: u64,
    /// Why, for the OTLP partial-success answer (empty when nothing was refused).
    pub message: String,
}

impl std::fmt::Debug for SinkStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkStats")
            .field("keep_requests", &self.keep_requests)
            .finish_non_exhaustive()
    }
}

impl Default for SinkStats {
    fn default() -> Self {
        Self::new(false)
    }
}

impl Inner {
    fn new(max_tracked_spans: usize) -> Self {
        Inner {
            counters: SinkSnapshot::default(),
            runs: Runs::new(max_tracked_spans),
            trace_ids: DistinctIds::default(),
            kept_traces: Vec::new(),
            kept_metrics: Vec::new(),
            kept_logs: Vec::new(),
        }
    }
}

impl SinkStats {
    /// `keep_requests` stores every accepted request in memory (for tests).
    pub fn new(keep_requests: bool) -> Self {
        Self::with_limit(keep_requests, DEFAULT_MAX_TRACKED_SPANS)
    }

    /// `max_tracked_spans`: spans checked trace by trace for `verify` (the rest are counted).
    pub fn with_limit(keep_requests: bool, max_tracked_spans: usize) -> Self {
        Self::with_faults(keep_requests, max_tracked_spans, Faults::default())
    }

    /// A sink that injects `faults` (see [`Self::with_limit`] for the other arguments).
    pub fn with_faults(keep_requests: bool, max_tracked_spans: usize, faults: Faults) -> Self {
        SinkStats {
            keep_requests,
            inner: Mutex::new(Inner::new(max_tracked_spans)),
            rejections_left: AtomicU64::new(faults.reject_first),
            partials_left: AtomicU64::new(faults.partial_first),
            refused_connections: AtomicU64::new(0),
            timed_out_connections: AtomicU64::new(0),
            faults,
        }
    }

    /// Whether to refuse this request (an injected fault), with the hint to send.
    pub fn take_rejection(&self) -> Option<(RejectWith, Option<std::time::Duration>)> {
        take_one(&self.rejections_left).then(|| {
            self.lock().counters.injected_rejections += 1;
            (self.faults.reject_with, self.faults.retry_after)
        })
    }

    /// Whether accepted requests are stored.
    pub fn keeps_requests(&self) -> bool {
        self.keep_requests
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave counters in a state
        // worse than "slightly off", so keep serving instead of cascading.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters now, with the distinct trace count and what each run has sent so far.
    pub fn snapshot(&self) -> SinkSnapshot {
        let inner = self.lock();
        let mut snap = inner.counters.clone();
        (snap.traces_seen, snap.traces_seen_estimated) = inner.trace_ids.count();
        snap.runs = inner.runs.seen();
        if let Some(r) = snap.runs.get(UNATTRIBUTED_RUN) {
            snap.spans_without_run_id = r.spans;
            snap.metric_points_without_run_id = r.metric_points;
            snap.log_records_without_run_id = r.log_records;
        }
        snap.refused_connections = self.refused_connections.load(Relaxed);
        snap.timed_out_connections = self.timed_out_connections.load(Relaxed);
        snap
    }

    /// Stored trace requests, in arrival order (empty unless `keep_requests`).
    pub fn trace_requests(&self) -> Vec<ReceivedTraces> {
        self.lock().kept_traces.clone()
    }

    /// Stored metrics requests, in arrival order (empty unless `keep_requests`).
    pub fn metrics_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.lock().kept_metrics.clone()
    }

    /// Stored logs requests, in arrival order (empty unless `keep_requests`).
    pub fn logs_requests(&self) -> Vec<ExportLogsServiceRequest> {
        self.lock().kept_logs.clone()
    }

    /// Counts a request that was refused before reaching the counters, by reason
    /// (see [`SinkSnapshot::rejected_by_reason`]).
    pub fn record_rejected(&self, reason: &str) {
        let c = &mut self.lock().counters;
        c.rejected_requests += 1;
        bump(&mut c.rejected_by_reason, reason, 1);
    }

    /// Counts a connection closed at once because the listener had its maximum open.
    pub fn record_refused_connection(&self) {
        self.refused_connections.fetch_add(1, Relaxed);
    }

    /// Counts a connection closed because its client sent nothing in time.
    pub fn record_timed_out_connection(&self) {
        self.timed_out_connections.fetch_add(1, Relaxed);
    }

    /// Counts an accepted request of any signal; `payload_bytes` is its uncompressed size.
    pub fn record(
        &self,
        transport: Transport,
        payload_bytes: usize,
        request: Decoded<'_>,
    ) -> Accepted {
        let body = request.protobuf();
        match request.signal() {
            Signal::Traces => return self.record_trace_body(transport, payload_bytes, body),
            Signal::Metrics => self.record_metrics(transport, payload_bytes, body),
            Signal::Logs => self.record_logs(transport, payload_bytes, body),
        }
        Accepted::default()
    }

    /// Counts an accepted trace request; `payload_bytes` is its uncompressed size.
    /// Spans with invalid ids are refused (and counted), as is the last span of
    /// the first `--partial-first` requests; the answer says how many and why.
    pub fn record_traces(
        &self,
        transport: Transport,
        payload_bytes: usize,
        request: ExportTraceServiceRequest,
    ) -> Accepted {
        self.record_trace_body(transport, payload_bytes, &request.encode_to_vec())
    }

    /// [`Self::record_traces`] of a trace request's protobuf body that
    /// the scan found plain.
    fn record_trace_body(
        &self,
        transport: Transport,
        payload_bytes: usize,
        body: &[u8],
    ) -> Accepted {
        let request = RequestView(body);
        // The last span with valid ids is refused on purpose: its place among them.
        let refused_on_purpose = take_one(&self.partials_left)
            .then(|| {
                request
                    .resources()
                    .flat_map(|rs| rs.scopes())
                    .flat_map(|ss| ss.spans())
                    .filter(SpanView::valid_ids)
                    .count()
                    .checked_sub(1)
            })
            .flatten();
        let injected = u64::from(refused_on_purpose.is_some());
        let mut invalid = 0u64;
        let mut valid = 0usize;
        let mut spans: Vec<SpanView<'_>> = Vec::new();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let c = &mut inner.counters;
        c.trace_requests += 1;
        count_request(c, transport, payload_bytes);
        for rs in request.resources() {
            let resource = rs.resource();
            let service = service_of(resource);
            spans.clear();
            for ss in rs.scopes() {
                let first = spans.len();
                for span in ss.spans() {
                    if !span.valid_ids() {
                        invalid += 1;
                        continue;
                    }
                    valid += 1;
                    if Some(valid - 1) != refused_on_purpose {
                        spans.push(span);
                    }
                }
                let kept = &spans[first..];
                if kept.is_empty() {
                    continue;
                }
                let n = kept.len() as u64;
                c.spans += n;
                bump(&mut c.spans_by_service, service, n);
                bump(&mut c.spans_by_scenario, scenario_named(ss.scope_name()), n);
                for span in kept {
                    bump(&mut c.spans_by_name, span.name, 1);
                    c.error_spans += u64::from(span.error);
                    if let Ok(id) = <[u8; 16]>::try_from(span.trace_id) {
                        inner.trace_ids.insert(id);
                    }
                }
            }
            inner.runs.record_spans(resource, &spans);
        }
        c.injected_partial_spans += injected;
        c.invalid_id_spans += invalid;
        if self.keep_requests {
            // Kept as prost would have decoded it, without the refused spans.
            let mut request = ExportTraceServiceRequest::decode(body).unwrap_or_default();
            refuse_invalid_ids(&mut request);
            if injected > 0 {
                refuse_last_span(&mut request);
            }
            inner
                .kept_traces
                .push(ReceivedTraces { transport, request });
        }
        drop(guard);
        let mut messages = Vec::new();
        if invalid > 0 {
            messages.push(format!(
                "otelsim sink: {invalid} span(s) {INVALID_ID_MESSAGE}"
            ));
        }
        if injected > 0 {
            messages.push(PARTIAL_MESSAGE.to_string());
        }
        Accepted {
            rejected: invalid + injected,
            message: messages.join("; "),
        }
    }

    /// Counts an accepted metrics request (its protobuf body); `payload_bytes`
    /// is its uncompressed size.
    fn record_metrics(&self, transport: Transport, payload_bytes: usize, body: &[u8]) {
        let mut inner = self.lock();
        let mut points = 0;
        for rm in RequestView(body).resources() {
            let n: u64 = rm
                .scopes()
                .flat_map(|sm| sm.entries())
                .map(view::data_points)
                .sum();
            inner.runs.record_points(rm.resource(), n);
            points += n;
        }
        let c = &mut inner.counters;
        c.metrics_requests += 1;
        count_request(c, transport, payload_bytes);
        c.metric_points += points;
        if self.keep_requests {
            let request = ExportMetricsServiceRequest::decode(body).unwrap_or_default();
            inner.kept_metrics.push(request);
        }
    }

    /// Counts an accepted logs request (its protobuf body); `payload_bytes` is
    /// its uncompressed size.
    fn record_logs(&self, transport: Transport, payload_bytes: usize, body: &[u8]) {
        let mut inner = self.lock();
        let mut records = 0;
        for rl in RequestView(body).resources() {
            records += inner
                .runs
                .record_logs(rl.resource(), rl.scopes().flat_map(|sl| sl.log_records()));
        }
        let c = &mut inner.counters;
        c.logs_requests += 1;
        count_request(c, transport, payload_bytes);
        c.log_records += records;
        if self.keep_requests {
            let request = ExportLogsServiceRequest::decode(body).unwrap_or_default();
            inner.kept_logs.push(request);
        }
    }
}

/// Takes one from a fault budget; `false` once it is spent.
fn take_one(left: &AtomicU64) -> bool {
    left.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// Whether a span's ids are valid OTLP: a 16-byte trace id and an 8-byte span
/// id, neither all zeros, and no parent or an 8-byte one.
fn valid_ids(span: &opentelemetry_proto::tonic::trace::v1::Span) -> bool {
    let nonzero = |b: &[u8]| b.iter().any(|&x| x != 0);
    span.trace_id.len() == 16
        && nonzero(&span.trace_id)
        && span.span_id.len() == 8
        && nonzero(&span.span_id)
        && matches!(span.parent_span_id.len(), 0 | 8)
}

/// Removes the spans with invalid ids; returns how many there were.
fn refuse_invalid_ids(request: &mut ExportTraceServiceRequest) -> u64 {
    let mut refused = 0;
    for ss in request
        .resource_spans
        .iter_mut()
        .flat_map(|rs| &mut rs.scope_spans)
    {
        let before = ss.spans.len();
        ss.spans.retain(valid_ids);
        refused += (before - ss.spans.len()) as u64;
    }
    refused
}

/// Drops the last span of the request (an injected partial success); returns 1
/// when there was one to drop.
fn refuse_last_span(request: &mut ExportTraceServiceRequest) -> u64 {
    for rs in request.resource_spans.iter_mut().rev() {
        for ss in rs.scope_spans.iter_mut().rev() {
            if ss.spans.pop().is_some() {
                return 1;
            }
        }
    }
    0
}

fn count_request(c: &mut SinkSnapshot, transport: Transport, payload_bytes: usize) {
    bump(&mut c.requests_by_transport, transport.as_str(), 1);
    c.bytes_received += payload_bytes as u64;
}

/// Adds `n` under `key`, without allocating when the key already exists and
/// folding new keys into [`OVERFLOW_KEY`] once the map is full.
fn bump(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    if let Some(v) = map.get_mut(key) {
        *v += n;
        return;
    }
    let key = if map.len() >= MAX_DISTINCT_KEYS {
        OVERFLOW_KEY
    } else {
        key
    };
    *map.entry(key.to_owned()).or_insert(0) += n;
}

/// The resource's `service.name`, or [`NO_SERVICE`].
fn service_of(resource: Option<ResourceView<'_>>) -> &str {
    resource
        .and_then(|r| r.attributes().find(|kv| kv.key == "service.name"))
        .and_then(|kv| kv.str_value())
        .unwrap_or(NO_SERVICE)
}

/// Key of `spans_by_service` for a resource without `service.name`.
pub const NO_SERVICE: &str = "(none)";

/// Scenario name encoded in the scope name (`otelsim.<scenario>`), or
/// [`OTHER_SCENARIO`] for spans that did not come from an otelsim scenario.
pub fn scenario_of(scope: Option<&InstrumentationScope>) -> &str {
    scenario_named(scope.map(|s| s.name.as_str()))
}

/// [`scenario_of`] a scope named `name` (`None`: no scope).
fn scenario_named(name: Option<&str>) -> &str {
    name.and_then(|n| n.strip_prefix(SCENARIO_SCOPE_PREFIX))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(OTHER_SCENARIO)
}

/// Number of data points in one metric, whatever its type.
pub fn data_points(metric: &Metric) -> u64 {
    let n = match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    };
    n as u64
}

impl SinkSnapshot {
    /// Multi-line report for a terminal: totals per signal, then aligned
    /// tables for transports, scenarios and the busiest span names.
    pub fn render_summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "otelsim sink summary");
        let signal_row = |name: &str, requests: u64, items: u64, unit: &str| {
            vec![
                name.to_owned(),
                requests.to_string(),
                items.to_string(),
                unit.to_owned(),
            ]
        };
        table(
            &mut out,
            &["signal", "requests", "items", ""],
            &[
                signal_row("traces", self.trace_requests, self.spans, "spans"),
                signal_row(
                    "metrics",
                    self.metrics_requests,
                    self.metric_points,
                    "data points",
                ),
                signal_row("logs", self.logs_requests, self.log_records, "log records"),
            ],
        );
        let _ = write!(out, "  rejected requests: {}", self.rejected_requests);
        if !self.rejected_by_reason.is_empty() {
            let reasons: Vec<String> = self
                .rejected_by_reason
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = write!(out, " ({})", reasons.join(", "));
        }
        let _ = writeln!(out);
        if self.invalid_id_spans > 0 {
            let _ = writeln!(
                out,
                "  spans refused for invalid ids: {}",
                self.invalid_id_spans
            );
        }
        if self.refused_connections + self.timed_out_connections > 0 {
            let _ = writeln!(
                out,
                "  connections refused (too many open): {}, closed on a timeout: {}",
                self.refused_connections, self.timed_out_connections
            );
        }
        let _ = writeln!(
            out,
            "  payload received:  {} ({} bytes)",
            human_bytes(self.bytes_received),
            self.bytes_received
        );
        let approx = if self.traces_seen_estimated {
            " (estimated: standard error 0.4 %)"
        } else {
            ""
        };
        let _ = writeln!(out, "  distinct traces:   {}{approx}", self.traces_seen);
        let _ = writeln!(out, "  error spans:       {}", self.error_spans);
        let unattributed = self.spans_without_run_id
            + self.metric_points_without_run_id
            + self.log_records_without_run_id;
        if unattributed > 0 {
            let _ = writeln!(
                out,
                "  without a run id:  {} spans, {} metric points, {} log records (run `{UNATTRIBUTED_RUN}`)",
                self.spans_without_run_id,
                self.metric_points_without_run_id,
                self.log_records_without_run_id
            );
        }

        if !self.requests_by_transport.is_empty() {
            let _ = writeln!(out, "\nrequests by transport");
            let rows: Vec<Vec<String>> = self
                .requests_by_transport
                .iter()
                .map(|(k, v)| vec![k.clone(), v.to_string()])
                .collect();
            table(&mut out, &["transport", "requests"], &rows);
        }

        if !self.spans_by_scenario.is_empty() {
            let _ = writeln!(out, "\nspans by scenario");
            let rows: Vec<Vec<String>> = sorted_desc(&self.spans_by_scenario)
                .into_iter()
                .map(|(k, v)| vec![k.to_owned(), v.to_string(), percent(v, self.spans)])
                .collect();
            table(&mut out, &["scenario", "spans", "share"], &rows);
        }

        if !self.spans_by_service.is_empty() {
            let _ = writeln!(out, "\nspans by service");
            let rows: Vec<Vec<String>> = sorted_desc(&self.spans_by_service)
                .into_iter()
                .map(|(k, v)| vec![k.to_owned(), v.to_string(), percent(v, self.spans)])
                .collect();
            table(&mut out, &["service", "spans", "share"], &rows);
        }

        if !self.spans_by_name.is_empty() {
            let all = sorted_desc(&self.spans_by_name);
            let shown = all.len().min(TOP_SPAN_NAMES);
            let _ = writeln!(out, "\ntop span names ({shown} of {} distinct)", all.len());
            let rows: Vec<Vec<String>> = all
                .into_iter()
                .take(shown)
                .map(|(k, v)| vec![k.to_owned(), v.to_string(), percent(v, self.spans)])
                .collect();
            table(&mut out, &["span name", "spans", "share"], &rows);
        }
        out
    }
}

/// Entries by descending count, ties by name, so output is deterministic.
fn sorted_desc(map: &BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    let mut v: Vec<(&str, u64)> = map.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v
}

fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        return "-".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / total as f64)
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Writes an indented table: first column left-aligned, then numeric
/// columns right-aligned; a column with an empty header is a left-aligned
/// label (a unit). Widths come from the widest cell.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::from(" ");
        for (i, cell) in cells.enumerate().take(cols) {
            let w = widths[i];
            if i == 0 || header[i].is_empty() {
                let _ = write!(s, " {cell:<w$}");
            } else {
                let _ = write!(s, "  {cell:>w$}");
            }
        }
        let _ = writeln!(out, "{}", s.trim_end());
    };
    line(out, &mut header.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_prefix_is_stripped() {
        let scope = |name: &str| InstrumentationScope {
            name: name.into(),
            ..Default::default()
        };
        assert_eq!(scenario_of(Some(&scope("otelsim.demo"))), "demo");
        assert_eq!(scenario_of(Some(&scope("otelsim."))), OTHER_SCENARIO);
        assert_eq!(scenario_of(Some(&scope("io.other"))), OTHER_SCENARIO);
        assert_eq!(scenario_of(None), OTHER_SCENARIO);
    }

    #[test]
    fn bump_caps_distinct_keys() {
        let mut m = BTreeMap::new();
        for i in 0..(MAX_DISTINCT_KEYS + 5) {
            bump(&mut m, &format!("k{i}"), 1);
        }
        assert_eq!(m.len(), MAX_DISTINCT_KEYS + 1);
        assert_eq!(m[OVERFLOW_KEY], 5);
    }

    #[test]
    fn summary_tables_are_aligned() {
        let mut snap = SinkSnapshot {
            trace_requests: 3,
            spans: 6,
            ..Default::default()
        };
        snap.spans_by_name.insert("a-very-long-span-name".into(), 4);
        snap.spans_by_name.insert("short".into(), 2);
        snap.spans_by_scenario.insert("demo".into(), 6);
        snap.requests_by_transport.insert("grpc".into(), 3);
        let text = snap.render_summary();
        assert!(text.contains("top span names (2 of 2 distinct)"), "{text}");
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("top span names"))
            .skip(1)
            .collect();
        assert_eq!(rows.len(), 3, "{text}");
        // Right-aligned numeric columns end at the same position.
        assert_eq!(rows[0].len(), rows[1].len(), "{text}");
        assert_eq!(rows[1].len(), rows[2].len(), "{text}");
        assert!(rows[1].trim_start().starts_with("a-very-long-span-name"));
    }
}
