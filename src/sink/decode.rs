//! The path every request body takes, whatever the transport: gunzip (bounded),
//! scan (bounded), reserve, decode. Nothing is decoded before the scanner has
//! bounded what decoding costs and the memory budget has room for it.

use std::borrow::Cow;
use std::io::Read as _;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

use super::budget::{BudgetError, Reservation};
use super::otlp_json;
use super::scan::{JsonScan, ProtoScan, Root, ScanError, ScanLimits, Shape};
use super::stats::data_points;

/// Bodies are gunzipped this much at a time, and scanned after each piece.
const GUNZIP_CHUNK: usize = 64 * 1024;
/// What the gzip decoder itself holds: its input buffer (32 KiB), the inflate
/// window (32 KiB) and state.
const GUNZIP_STATE: usize = 96 * 1024;
/// Upper bound on the first allocation for a gunzipped body.
const MAX_PREALLOC: usize = 4 * 1024 * 1024;

/// Which export service a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `/v1/traces`, `TraceService/Export`.
    Traces,
    /// `/v1/metrics`, `MetricsService/Export`.
    Metrics,
    /// `/v1/logs`, `LogsService/Export`.
    Logs,
}

/// How a request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Binary protobuf (gRPC and `application/x-protobuf`).
    Protobuf,
    /// OTLP/JSON (`application/json`).
    Json,
}

/// What one request may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest body, before and after gunzip.
    pub max_bytes: usize,
    /// Most spans, log records or metric points in one request.
    pub max_items: u64,
    /// Most memory decoding one request may take (the scanner's bound).
    pub max_decoded_bytes: usize,
}

/// How a refused request is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// Not valid OTLP: HTTP 400, gRPC INVALID_ARGUMENT.
    Malformed,
    /// Over a limit it will always be over: HTTP 413, gRPC INVALID_ARGUMENT.
    TooLarge,
    /// No room in the memory budget now: HTTP 503, gRPC RESOURCE_EXHAUSTED, both with a retry hint.
    Busy,
    /// The body did not arrive in time: HTTP 408, gRPC DEADLINE_EXCEEDED.
    Timeout,
    /// A content type or encoding the sink does not speak: HTTP 415, gRPC UNIMPLEMENTED.
    Unsupported,
}

impl RefusalKind {
    /// The key under which refusals of this kind are counted.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::Malformed => "malformed",
            RefusalKind::TooLarge => "too_large",
            RefusalKind::Busy => "busy",
            RefusalKind::Timeout => "timeout",
            RefusalKind::Unsupported => "unsupported",
        }
    }
}

/// Why a request was refused, for the sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// How it is answered.
    pub kind: RefusalKind,
    /// What was wrong, and what would be accepted.
    pub message: String,
}

impl Refusal {
    /// A refusal of `kind` with `message`.
    pub fn new(kind: RefusalKind, message: impl Into<String>) -> Self {
        Refusal {
            kind,
            message: message.into(),
        }
    }

    /// Over the byte limit, before or after gunzip.
    pub fn too_large(limit: usize) -> Self {
        Refusal::new(
            RefusalKind::TooLarge,
            format!("request body exceeds the sink's limit of {limit} bytes"),
        )
    }
}

impl From<ScanError> for Refusal {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Malformed(m) => Refusal::new(RefusalKind::Malformed, m),
            ScanError::TooLarge(m) => Refusal::new(RefusalKind::TooLarge, m),
        }
    }
}

impl From<BudgetError> for Refusal {
    fn from(e: BudgetError) -> Self {
        match e {
            BudgetError::NeverFits(m) => Refusal::new(RefusalKind::TooLarge, m),
            BudgetError::Busy(m) => Refusal::new(RefusalKind::Busy, m),
        }
    }
}

/// A decoded export request.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// A trace export.
    Traces(ExportTraceServiceRequest),
    /// A metrics export.
    Metrics(ExportMetricsServiceRequest),
    /// A logs export.
    Logs(ExportLogsServiceRequest),
}

impl Decoded {
    /// Spans, metric data points or log records in it.
    pub fn items(&self) -> u64 {
        match self {
            Decoded::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len() as u64)
                .sum(),
            Decoded::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .map(data_points)
                .sum(),
            Decoded::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len() as u64)
                .sum(),
        }
    }
}

/// A request that passed every check, with what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedRequest {
    /// The request.
    pub request: Decoded,
    /// Its body's size after gunzip.
    pub payload_bytes: usize,
    /// What the scanner predicted (items: exact for protobuf, 0 for JSON).
    pub shape: Shape,
}

/// The scanner of one body, whichever its encoding.
enum Scan {
    Proto(ProtoScan),
    Json(JsonScan),
}

impl Scan {
    fn advance(&mut self, body: &[u8]) -> Result<(), ScanError> {
        match self {
            Scan::Proto(s) => s.advance(body),
            Scan::Json(s) => s.advance(body),
        }
    }

    fn finish(self, body: &[u8]) -> Result<Shape, ScanError> {
        match self {
            Scan::Proto(s) => s.finish(body),
            Scan::Json(mut s) => {
                s.advance(body)?;
                Ok(s.shape())
            }
        }
    }
}

/// Gunzips (if `gzip`), scans and decodes one request body, holding every
/// byte it allocates in `reservation` first. The body itself must already be
/// held there by whoever read it.
pub fn decode(
    signal: Signal,
    wire: Wire,
    gzip: bool,
    body: &[u8],
    limits: &RequestLimits,
    reservation: &mut Reservation,
) -> Result<DecodedRequest, Refusal> {
    let scan_limits = ScanLimits {
        max_items: limits.max_items,
        max_decoded_bytes: limits.max_decoded_bytes,
    };
    let mut scan = match wire {
        Wire::Protobuf => Scan::Proto(ProtoScan::new(
            match signal {
                Signal::Traces => Root::Traces,
                Signal::Metrics => Root::Metrics,
                Signal::Logs => Root::Logs,
            },
            scan_limits,
        )),
        Wire::Json => Scan::Json(JsonScan::new(scan_limits)),
    };
    let payload: Cow<'_, [u8]> = if gzip {
        Cow::Owned(gunzip(body, limits.max_bytes, &mut scan, reservation)?)
    } else {
        Cow::Borrowed(body)
    };
    let shape = scan.finish(&payload)?;
    reservation.try_grow(shape.decoded_bytes)?;
    let invalid = |e: &dyn std::fmt::Display| {
        Refusal::new(
            RefusalKind::Malformed,
            format!("invalid {signal:?} payload: {e}"),
        )
    };
    let request = match (signal, wire) {
        (Signal::Traces, Wire::Protobuf) => {
            Decoded::Traces(ExportTraceServiceRequest::decode(&*payload).map_err(|e| invalid(&e))?)
        }
        (Signal::Traces, Wire::Json) => {
            Decoded::Traces(otlp_json::decode_traces(&payload).map_err(|e| invalid(&e))?)
        }
        (Signal::Metrics, Wire::Protobuf) => Decoded::Metrics(
            ExportMetricsServiceRequest::decode(&*payload).map_err(|e| invalid(&e))?,
        ),
        (Signal::Metrics, Wire::Json) => {
            Decoded::Metrics(otlp_json::decode_metrics(&payload).map_err(|e| invalid(&e))?)
        }
        (Signal::Logs, Wire::Protobuf) => {
            Decoded::Logs(ExportLogsServiceRequest::decode(&*payload).map_err(|e| invalid(&e))?)
        }
        (Signal::Logs, Wire::Json) => {
            Decoded::Logs(otlp_json::decode_logs(&payload).map_err(|e| invalid(&e))?)
        }
    };
    // The JSON scanner does not know the schema; count what was decoded.
    if request.items() > limits.max_items {
        return Err(ScanError::TooLarge(format!(
            "the request holds more than {} spans, log records or metric points (the sink's \
             limit per request); send smaller batches",
            limits.max_items
        ))
        .into());
    }
    Ok(DecodedRequest {
        request,
        payload_bytes: payload.len(),
        shape,
    })
}

/// Gunzips with the size limit applied to the output, scanning each piece as it
/// comes, so a compression bomb is stopped after its first few megabytes; every
/// byte of the output buffer is reserved before it is allocated.
fn gunzip(
    compressed: &[u8],
    limit: usize,
    scan: &mut Scan,
    reservation: &mut Reservation,
) -> Result<Vec<u8>, Refusal> {
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed);
    let first = compressed
        .len()
        .saturating_mul(4)
        .min(limit)
        .min(MAX_PREALLOC);
    reservation.try_grow(first + GUNZIP_CHUNK + GUNZIP_STATE)?;
    let mut out: Vec<u8> = Vec::with_capacity(first);
    let mut chunk = vec![0u8; GUNZIP_CHUNK];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Refusal::new(
                    RefusalKind::Malformed,
                    format!("invalid gzip body: {e}"),
                ))
            }
        };
        if n > limit - out.len() {
            return Err(Refusal::too_large(limit));
        }
        if out.capacity() - out.len() < n {
            // Grow geometrically but never past the limit.
            let want = (out.capacity() * 2).max(out.len() + n).min(limit);
            reservation.try_grow(want - out.capacity())?;
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
        scan.advance(&out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::budget::Budget;
    use super::*;
    use std::io::Write as _;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).expect("gzip write");
        enc.finish().expect("gzip finish")
    }

    const LIMITS: RequestLimits = RequestLimits {
        max_bytes: 1_000_000,
        max_items: 1000,
        max_decoded_bytes: 4 << 20,
    };

    #[test]
    fn gunzip_enforces_the_decompressed_limit() {
        let budget = Budget::new(64 << 20);
        let bomb = gzip(&vec![0u8; 1_000_001]);
        let err = decode(
            Signal::Traces,
            Wire::Json,
            true,
            &bomb,
            &LIMITS,
            &mut budget.reservation(),
        )
        .expect_err("over limit");
        assert_eq!(err.kind, RefusalKind::TooLarge);
        let err = decode(
            Signal::Traces,
            Wire::Json,
            true,
            b"not gzip at all",
            &LIMITS,
            &mut budget.reservation(),
        )
        .expect_err("garbage");
        assert_eq!(err.kind, RefusalKind::Malformed);
        assert_eq!(budget.available_bytes(), budget.total_bytes());
    }

    #[test]
    fn an_amplifying_bomb_is_refused_before_it_is_inflated() {
        let budget = Budget::new(64 << 20);
        let bomb = gzip(&b"\x0a\x00".repeat(400_000));
        let mut r = budget.reservation();
        let err = decode(Signal::Traces, Wire::Protobuf, true, &bomb, &LIMITS, &mut r)
            .expect_err("amplifies");
        assert_eq!(err.kind, RefusalKind::TooLarge, "{err:?}");
        // Refused after a piece or two of the 800 KB it inflates to.
        assert!(r.bytes() < 400_000, "{}", r.bytes());
    }

    #[test]
    fn json_items_are_counted_after_decoding() {
        let budget = Budget::new(64 << 20);
        let spans: Vec<String> = (0..1001)
            .map(|_| {
                r#"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}"#
                    .to_string()
            })
            .collect();
        let body = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
            spans.join(",")
        );
        let limits = RequestLimits {
            max_decoded_bytes: 64 << 20,
            ..LIMITS
        };
        let err = decode(
            Signal::Traces,
            Wire::Json,
            false,
            body.as_bytes(),
            &limits,
            &mut budget.reservation(),
        )
        .expect_err("1001 spans");
        assert_eq!(err.kind, RefusalKind::TooLarge);
        assert!(err.message.contains("1000"), "{}", err.message);
    }
}
