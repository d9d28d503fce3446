//! The path every request body takes, whatever the transport: gunzip (bounded),
//! scan (bounded), reserve, decode. Nothing is decoded before the scanner has
//! bounded what decoding costs and the memory budget has room for it.
//!
//! "Decode" is, for a plain protobuf body (nearly all of them), nothing at all:
//! the scan found it plain, and the counters read it where it lies. Other
//! bodies (JSON, or protobuf the scan leaves to prost) are decoded with prost
//! and re-encoded, so every accepted request reaches the counters as protobuf.

use std::borrow::Cow;
use std::io::Read as _;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::budget::{BudgetError, Reservation};
use super::otlp_json;
use super::scan::{
    scan_protobuf, JsonScan, ProtoScan, Root, ScanError, ScanLimits, Scanned, Shape,
};

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

/// An accepted export request: its body as protobuf (as it arrived when that
/// was plain, else as prost re-encoded it), which the sink's views read in place.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded<'a> {
    signal: Signal,
    body: Cow<'a, [u8]>,
    items: u64,
}

impl<'a> Decoded<'a> {
    /// Which export it is.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// Spans, metric data points or log records in it.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// The request as protobuf, in the plain form the views read.
    pub fn protobuf(&self) -> &[u8] {
        &self.body
    }

    /// A request prost decoded, re-encoded (its bytes reserved first).
    fn from_message(
        signal: Signal,
        message: &impl Message,
        reservation: &mut Reservation,
    ) -> Result<Self, Refusal> {
        reservation.try_grow(message.encoded_len())?;
        let body = message.encode_to_vec();
        let scanned = scan_protobuf(signal.root(), &body, ScanLimits::NONE)
            .ok()
            .filter(|s| s.plain)
            .ok_or_else(|| {
                Refusal::new(
                    RefusalKind::Malformed,
                    format!("invalid {signal:?} payload: it does not re-encode as plain OTLP"),
                )
            })?;
        Ok(Decoded {
            signal,
            body: Cow::Owned(body),
            items: scanned.shape.items,
        })
    }
}

impl Signal {
    /// The export request a body of this signal is.
    fn root(self) -> Root {
        match self {
            Signal::Traces => Root::Traces,
            Signal::Metrics => Root::Metrics,
            Signal::Logs => Root::Logs,
        }
    }
}

/// A request that passed every check, with what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedRequest<'a> {
    /// The request.
    pub request: Decoded<'a>,
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

    fn finish(self, body: &[u8]) -> Result<Scanned, ScanError> {
        match self {
            Scan::Proto(s) => s.finish(body),
            Scan::Json(mut s) => {
                s.advance(body)?;
                Ok(Scanned {
                    shape: s.shape(),
                    plain: false,
                })
            }
        }
    }
}

/// Gunzips (if `gzip`), scans and decodes one request body, holding every
/// byte it allocates in `reservation` first. The body itself must already be
/// held there by whoever read it.
pub fn decode<'a>(
    signal: Signal,
    wire: Wire,
    gzip: bool,
    body: &'a [u8],
    limits: &RequestLimits,
    reservation: &mut Reservation,
) -> Result<DecodedRequest<'a>, Refusal> {
    let scan_limits = ScanLimits {
        max_items: limits.max_items,
        max_decoded_bytes: limits.max_decoded_bytes,
    };
    let mut scan = match wire {
        Wire::Protobuf => Scan::Proto(ProtoScan::new(signal.root(), scan_limits)),
        Wire::Json => Scan::Json(JsonScan::new(scan_limits)),
    };
    let payload: Cow<'_, [u8]> = if gzip {
        Cow::Owned(gunzip(body, limits.max_bytes, &mut scan, reservation)?)
    } else {
        Cow::Borrowed(body)
    };
    let Scanned { shape, plain } = scan.finish(&payload)?;
    reservation.try_grow(shape.decoded_bytes)?;
    let invalid = |e: &dyn std::fmt::Display| {
        Refusal::new(
            RefusalKind::Malformed,
            format!("invalid {signal:?} payload: {e}"),
        )
    };
    let payload_bytes = payload.len();
    let request = match wire {
        // The common case: a plain body, read where it lies.
        Wire::Protobuf if plain => Decoded {
            signal,
            body: payload,
            items: shape.items,
        },
        // Invalid in a way only prost tells, or valid in a form the views do
        // not read: prost decides.
        Wire::Protobuf => match signal {
            Signal::Traces => {
                let m = ExportTraceServiceRequest::decode(&*payload).map_err(|e| invalid(&e))?;
                Decoded::from_message(signal, &m, reservation)?
            }
            Signal::Metrics => {
                let m = ExportMetricsServiceRequest::decode(&*payload).map_err(|e| invalid(&e))?;
                Decoded::from_message(signal, &m, reservation)?
            }
            Signal::Logs => {
                let m = ExportLogsServiceRequest::decode(&*payload).map_err(|e| invalid(&e))?;
                Decoded::from_message(signal, &m, reservation)?
            }
        },
        Wire::Json => match signal {
            Signal::Traces => Decoded::from_message(
                signal,
                &otlp_json::decode_traces(&payload).map_err(|e| invalid(&e))?,
                reservation,
            )?,
            Signal::Metrics => Decoded::from_message(
                signal,
                &otlp_json::decode_metrics(&payload).map_err(|e| invalid(&e))?,
                reservation,
            )?,
            Signal::Logs => Decoded::from_message(
                signal,
                &otlp_json::decode_logs(&payload).map_err(|e| invalid(&e))?,
                reservation,
            )?,
        },
    };
    // The JSON scanner does not know the schema; count what was decoded.
    if request.items > limits.max_items {
        return Err(ScanError::TooLarge(format!(
            "the request holds more than {} spans, log records or metric points (the sink's \
             limit per request); send smaller batches",
            limits.max_items
        ))
        .into());
    }
    Ok(DecodedRequest {
        request,
        payload_bytes,
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

    /// A trace request whose `ResourceSpans` sends its resource twice, as two
    /// pieces prost merges into one.
    fn resource_in_two_pieces() -> Vec<u8> {
        use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        let piece = |key: &str, value: &str| {
            let resource = Resource {
                attributes: vec![KeyValue {
                    key: key.into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(value.into())),
                    }),
                }],
                ..Default::default()
            };
            ResourceSpans {
                resource: Some(resource),
                ..Default::default()
            }
            .encode_to_vec()
        };
        let spans = ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: "op".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_to_vec();
        // Fields of one message may come in any number of pieces.
        let resource_spans = [
            piece("service.name", "svc"),
            piece("otelsim.run.id", "r1"),
            spans,
        ]
        .concat();
        let mut body = vec![0x0a];
        prost::encoding::encode_varint(resource_spans.len() as u64, &mut body);
        body.extend_from_slice(&resource_spans);
        body
    }

    #[test]
    fn a_merged_resource_is_counted_as_prost_decodes_it() {
        let body = resource_in_two_pieces();
        let scanned = scan_protobuf(Root::Traces, &body, ScanLimits::NONE).expect("well-formed");
        assert!(!scanned.plain);
        let budget = Budget::new(64 << 20);
        let d = decode(
            Signal::Traces,
            Wire::Protobuf,
            false,
            &body,
            &LIMITS,
            &mut budget.reservation(),
        )
        .expect("valid");
        assert_eq!(d.request.items(), 1);
        let stats = super::super::stats::SinkStats::new(false);
        stats.record(
            super::super::stats::Transport::HttpProtobuf,
            d.payload_bytes,
            d.request,
        );
        let snap = stats.snapshot();
        assert_eq!(snap.spans_by_service.get("svc"), Some(&1), "{snap:?}");
        assert_eq!(snap.runs.get("r1").map(|r| r.spans), Some(1), "{snap:?}");
        // The same request, plain, reads the same.
        let plain = ExportTraceServiceRequest::decode(&*body)
            .expect("prost")
            .encode_to_vec();
        assert!(
            scan_protobuf(Root::Traces, &plain, ScanLimits::NONE)
                .expect("well-formed")
                .plain
        );
        let again = super::super::stats::SinkStats::new(false);
        again.record_traces(
            super::super::stats::Transport::HttpProtobuf,
            d.payload_bytes,
            ExportTraceServiceRequest::decode(&*plain).expect("prost"),
        );
        assert_eq!(again.snapshot(), snap);
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
