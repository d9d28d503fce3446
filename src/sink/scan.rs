//! Predicts what decoding a request body will cost, before it is decoded.
//!
//! A protobuf message can decode to far more memory than its wire size: two
//! bytes (`0a 00`) are an empty `ResourceSpans` of about a hundred bytes, so a
//! 64 MiB body of them decodes to gigabytes. The scanners here walk a body
//! without building anything and add up an upper bound of the memory its
//! decoding allocates (every Vec at its worst-case capacity, every string and
//! byte string) and the number of items (spans, log records, metric points) it
//! holds, so the sink can refuse a request before it costs anything.
//!
//! [`ProtoScan`] knows the OTLP schema (which field is which message) and can
//! be fed a body as it grows, so a gzip bomb is stopped after the first few
//! decompressed megabytes. [`JsonScan`] counts objects, members, array
//! elements and string bytes, and charges each array element as the message its
//! array's member name says (the largest one for a name it does not know).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, summary_data_point::ValueAtQuantile, Exemplar,
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use std::mem::size_of;

/// Deepest nesting accepted; prost refuses deeper messages too.
const MAX_DEPTH: usize = 100;

/// A repeated field's first element is charged as a Vec's smallest allocation
/// (room for four), later ones at twice their size (a Vec at most doubles).
const FIRST_ELEMENTS: usize = 4;
const GROWTH: usize = 2;

/// Why a scan stops: the body is not valid OTLP, or it is too big to decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanError {
    /// Not a well-formed message (truncated, overlapping lengths, too deep).
    Malformed(String),
    /// Decoding it would exceed a limit; the message names the limit.
    TooLarge(String),
}

/// What a scan found (so far, for a scan that is still being fed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Spans, log records or metric data points.
    pub items: u64,
    /// Upper bound of the heap memory decoding allocates, in bytes.
    pub decoded_bytes: usize,
}

/// The limits a scan enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanLimits {
    /// Most spans, log records or metric points in one request.
    pub max_items: u64,
    /// Most memory decoding one request may take.
    pub max_decoded_bytes: usize,
}

impl ScanLimits {
    fn check(&self, shape: &Shape) -> Result<(), ScanError> {
        if shape.items > self.max_items {
            return Err(ScanError::TooLarge(format!(
                "the request holds more than {} spans, log records or metric points (the \
                 sink's limit per request); send smaller batches",
                self.max_items
            )));
        }
        if shape.decoded_bytes > self.max_decoded_bytes {
            return Err(ScanError::TooLarge(format!(
                "the request would take more than {} bytes of memory to decode (the sink's \
                 limit per request); send smaller batches",
                self.max_decoded_bytes
            )));
        }
        Ok(())
    }
}

/// The OTLP messages, as far as their memory cost goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// `ExportTraceServiceRequest`.
    Traces,
    /// `ExportMetricsServiceRequest`.
    Metrics,
    /// `ExportLogsServiceRequest`.
    Logs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Msg {
    TracesRequest,
    ResourceSpans,
    ScopeSpans,
    Span,
    Event,
    Link,
    Status,
    LogsRequest,
    ResourceLogs,
    ScopeLogs,
    LogRecord,
    MetricsRequest,
    ResourceMetrics,
    ScopeMetrics,
    Metric,
    /// Gauge and Sum: both hold number points in field 1.
    NumberSeries,
    Histogram,
    ExpHistogram,
    Summary,
    NumberPoint,
    HistogramPoint,
    ExpPoint,
    Buckets,
    SummaryPoint,
    Quantile,
    Exemplar,
    Resource,
    Scope,
    EntityRef,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

impl Msg {
    /// The size of the decoded struct (what one Vec element of it takes).
    const fn size(self) -> usize {
        match self {
            Msg::TracesRequest => size_of::<ExportTraceServiceRequest>(),
            Msg::ResourceSpans => size_of::<ResourceSpans>(),
            Msg::ScopeSpans => size_of::<ScopeSpans>(),
            Msg::Span => size_of::<Span>(),
            Msg::Event => size_of::<span::Event>(),
            Msg::Link => size_of::<span::Link>(),
            Msg::Status => size_of::<Status>(),
            Msg::LogsRequest => size_of::<ExportLogsServiceRequest>(),
            Msg::ResourceLogs => size_of::<ResourceLogs>(),
            Msg::ScopeLogs => size_of::<ScopeLogs>(),
            Msg::LogRecord => size_of::<LogRecord>(),
            Msg::MetricsRequest => size_of::<ExportMetricsServiceRequest>(),
            Msg::ResourceMetrics => size_of::<ResourceMetrics>(),
            Msg::ScopeMetrics => size_of::<ScopeMetrics>(),
            Msg::Metric | Msg::NumberSeries | Msg::Histogram | Msg::ExpHistogram | Msg::Summary => {
                size_of::<Metric>()
            }
            Msg::NumberPoint => size_of::<NumberDataPoint>(),
            Msg::HistogramPoint => size_of::<HistogramDataPoint>(),
            Msg::ExpPoint => size_of::<ExponentialHistogramDataPoint>(),
            Msg::Buckets => size_of::<Buckets>(),
            Msg::SummaryPoint => size_of::<SummaryDataPoint>(),
            Msg::Quantile => size_of::<ValueAtQuantile>(),
            Msg::Exemplar => size_of::<Exemplar>(),
            Msg::Resource => size_of::<Resource>(),
            Msg::Scope => size_of::<InstrumentationScope>(),
            Msg::EntityRef => size_of::<EntityRef>(),
            Msg::KeyValue => size_of::<KeyValue>(),
            Msg::AnyValue => size_of::<AnyValue>(),
            Msg::ArrayValue => size_of::<ArrayValue>(),
            Msg::KeyValueList => size_of::<KeyValueList>(),
        }
    }

    /// What field `number` of this message is (field numbers from the OTLP protos).
    const fn field(self, number: u32) -> Field {
        use Field::{Bytes, Numbers, Scalar};
        const fn message(msg: Msg, repeated: bool, item: bool) -> Field {
            Field::Message {
                msg,
                size: msg.size() as u32,
                repeated,
                item,
            }
        }
        const fn one(msg: Msg) -> Field {
            message(msg, false, false)
        }
        const fn many(msg: Msg) -> Field {
            message(msg, true, false)
        }
        const fn items(msg: Msg) -> Field {
            message(msg, true, true)
        }
        let text = Bytes { repeated: false };
        match (self, number) {
            (Msg::TracesRequest, 1) => many(Msg::ResourceSpans),
            (Msg::ResourceSpans, 1) => one(Msg::Resource),
            (Msg::ResourceSpans, 2) => many(Msg::ScopeSpans),
            (Msg::ScopeSpans, 1) => one(Msg::Scope),
            (Msg::ScopeSpans, 2) => items(Msg::Span),
            // schema_url.
            (Msg::ResourceSpans | Msg::ScopeSpans, 3)
            | (Msg::ResourceLogs | Msg::ScopeLogs, 3)
            | (Msg::ResourceMetrics | Msg::ScopeMetrics, 3) => text,
            (Msg::Span, 1..=5) => text,
            (Msg::Span, 9) => many(Msg::KeyValue),
            (Msg::Span, 11) => many(Msg::Event),
            (Msg::Span, 13) => many(Msg::Link),
            (Msg::Span, 15) => one(Msg::Status),
            (Msg::Event, 2) => text,
            (Msg::Event, 3) => many(Msg::KeyValue),
            (Msg::Link, 1..=3) => text,
            (Msg::Link, 4) => many(Msg::KeyValue),
            (Msg::Status, 2) => text,
            (Msg::LogsRequest, 1) => many(Msg::ResourceLogs),
            (Msg::ResourceLogs, 1) => one(Msg::Resource),
            (Msg::ResourceLogs, 2) => many(Msg::ScopeLogs),
            (Msg::ScopeLogs, 1) => one(Msg::Scope),
            (Msg::ScopeLogs, 2) => items(Msg::LogRecord),
            (Msg::LogRecord, 3 | 9 | 10 | 12) => text,
            (Msg::LogRecord, 5) => one(Msg::AnyValue),
            (Msg::LogRecord, 6) => many(Msg::KeyValue),
            (Msg::MetricsRequest, 1) => many(Msg::ResourceMetrics),
            (Msg::ResourceMetrics, 1) => one(Msg::Resource),
            (Msg::ResourceMetrics, 2) => many(Msg::ScopeMetrics),
            (Msg::ScopeMetrics, 1) => one(Msg::Scope),
            (Msg::ScopeMetrics, 2) => many(Msg::Metric),
            (Msg::Metric, 1..=3) => text,
            (Msg::Metric, 5 | 7) => one(Msg::NumberSeries),
            (Msg::Metric, 9) => one(Msg::Histogram),
            (Msg::Metric, 10) => one(Msg::ExpHistogram),
            (Msg::Metric, 11) => one(Msg::Summary),
            (Msg::Metric, 12) => many(Msg::KeyValue),
            (Msg::NumberSeries, 1) => items(Msg::NumberPoint),
            (Msg::Histogram, 1) => items(Msg::HistogramPoint),
            (Msg::ExpHistogram, 1) => items(Msg::ExpPoint),
            (Msg::Summary, 1) => items(Msg::SummaryPoint),
            (Msg::NumberPoint, 7) => many(Msg::KeyValue),
            (Msg::NumberPoint, 5) => many(Msg::Exemplar),
            (Msg::HistogramPoint, 9) => many(Msg::KeyValue),
            (Msg::HistogramPoint, 6 | 7) => Numbers { min_wire: 8 },
            (Msg::HistogramPoint, 8) => many(Msg::Exemplar),
            (Msg::ExpPoint, 1) => many(Msg::KeyValue),
            (Msg::ExpPoint, 8 | 9) => one(Msg::Buckets),
            (Msg::ExpPoint, 11) => many(Msg::Exemplar),
            (Msg::Buckets, 2) => Numbers { min_wire: 1 },
            (Msg::SummaryPoint, 7) => many(Msg::KeyValue),
            (Msg::SummaryPoint, 6) => many(Msg::Quantile),
            (Msg::Exemplar, 7) => many(Msg::KeyValue),
            (Msg::Exemplar, 4 | 5) => text,
            (Msg::Resource, 1) => many(Msg::KeyValue),
            (Msg::Resource, 3) => many(Msg::EntityRef),
            (Msg::EntityRef, 1 | 2) => text,
            (Msg::EntityRef, 3 | 4) => Bytes { repeated: true },
            (Msg::Scope, 1 | 2) => text,
            (Msg::Scope, 3) => many(Msg::KeyValue),
            (Msg::KeyValue, 1) => text,
            (Msg::KeyValue, 2) => one(Msg::AnyValue),
            (Msg::AnyValue, 1 | 7) => text,
            (Msg::AnyValue, 5) => one(Msg::ArrayValue),
            (Msg::AnyValue, 6) => one(Msg::KeyValueList),
            (Msg::ArrayValue, 1) => many(Msg::AnyValue),
            (Msg::KeyValueList, 1) => many(Msg::KeyValue),
            _ => Scalar,
        }
    }

    /// Every message, in declaration order (`ALL[m as usize] == m`).
    const ALL: [Msg; 33] = [
        Msg::TracesRequest,
        Msg::ResourceSpans,
        Msg::ScopeSpans,
        Msg::Span,
        Msg::Event,
        Msg::Link,
        Msg::Status,
        Msg::LogsRequest,
        Msg::ResourceLogs,
        Msg::ScopeLogs,
        Msg::LogRecord,
        Msg::MetricsRequest,
        Msg::ResourceMetrics,
        Msg::ScopeMetrics,
        Msg::Metric,
        Msg::NumberSeries,
        Msg::Histogram,
        Msg::ExpHistogram,
        Msg::Summary,
        Msg::NumberPoint,
        Msg::HistogramPoint,
        Msg::ExpPoint,
        Msg::Buckets,
        Msg::SummaryPoint,
        Msg::Quantile,
        Msg::Exemplar,
        Msg::Resource,
        Msg::Scope,
        Msg::EntityRef,
        Msg::KeyValue,
        Msg::AnyValue,
        Msg::ArrayValue,
        Msg::KeyValueList,
    ];
}

/// Field numbers below this are looked up in [`FIELDS`]; OTLP uses none above 15
/// that the scan cares about (span flags, 16, is a number).
const TABLE_FIELDS: usize = 16;

/// [`Msg::field`] as a table: the scan's hot path is one lookup per field.
static FIELDS: [[Field; TABLE_FIELDS]; Msg::ALL.len()] = {
    let mut table = [[Field::Scalar; TABLE_FIELDS]; Msg::ALL.len()];
    let mut m = 0;
    while m < Msg::ALL.len() {
        let mut n = 0;
        while n < TABLE_FIELDS {
            table[m][n] = Msg::ALL[m].field(n as u32);
            n += 1;
        }
        m += 1;
    }
    table
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// A nested message, `size` bytes decoded; repeated ones are Vec elements,
    /// `item` ones count as items.
    Message {
        msg: Msg,
        size: u32,
        repeated: bool,
        item: bool,
    },
    /// A string or byte string: its length is heap memory (plus a Vec element if repeated).
    Bytes { repeated: bool },
    /// A repeated number (8 bytes decoded); `min_wire` is its smallest encoding in
    /// a packed run (1 for varints, 8 for fixed64 and double).
    Numbers { min_wire: usize },
    /// A single number, or a field prost does not know (it skips those).
    Scalar,
}

/// A message being walked: its kind, where it ends, and which of its repeated
/// fields have had their first element (as a bit per field number below 64).
#[derive(Clone, Copy, Debug)]
struct Frame {
    msg: Msg,
    end: usize,
    seen: u64,
}

impl Frame {
    /// Charge for one more element of repeated field `number` of `size` bytes.
    fn element(&mut self, number: u32, size: usize) -> usize {
        let bit = 1u64 << (number % 64);
        if self.seen & bit == 0 {
            self.seen |= bit;
            FIRST_ELEMENTS * size
        } else {
            GROWTH * size
        }
    }
}

/// Walks a protobuf OTLP request without decoding it. Feed it the body as it
/// grows ([`ProtoScan::advance`]), then [`ProtoScan::finish`] it.
#[derive(Debug)]
pub struct ProtoScan {
    limits: ScanLimits,
    /// The open messages; the first is the request, which ends with the body.
    stack: Vec<Frame>,
    /// Where the next field starts; may lie past the data seen so far when a
    /// string is being skipped.
    pos: usize,
    shape: Shape,
}

/// A varint at the start of `b`: its value and length, `Ok(None)` when `b` ends first.
#[inline]
fn varint(b: &[u8]) -> Result<Option<(u64, usize)>, ScanError> {
    // Most tags and lengths are one byte.
    match b.first() {
        Some(&x) if x < 0x80 => Ok(Some((u64::from(x), 1))),
        None => Ok(None),
        Some(_) => varint_long(b),
    }
}

fn varint_long(b: &[u8]) -> Result<Option<(u64, usize)>, ScanError> {
    let mut value = 0u64;
    for (i, byte) in b.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i == 9 && *byte > 1 {
                break;
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if b.len() >= 10 {
        return Err(ScanError::Malformed("invalid varint".into()));
    }
    Ok(None)
}

impl ProtoScan {
    /// A scan of one request of kind `root`.
    pub fn new(root: Root, limits: ScanLimits) -> Self {
        let msg = match root {
            Root::Traces => Msg::TracesRequest,
            Root::Metrics => Msg::MetricsRequest,
            Root::Logs => Msg::LogsRequest,
        };
        ProtoScan {
            limits,
            stack: vec![Frame {
                msg,
                end: usize::MAX,
                seen: 0,
            }],
            pos: 0,
            shape: Shape::default(),
        }
    }

    /// What the scan has found so far.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Walks `body` (everything received so far: the same bytes as the last
    /// call, and perhaps more) as far as it is complete.
    pub fn advance(&mut self, body: &[u8]) -> Result<(), ScanError> {
        loop {
            self.close_finished()?;
            if self.pos >= body.len() {
                return Ok(());
            }
            let Some((key, key_len)) = varint(&body[self.pos..])? else {
                return Ok(());
            };
            let number = u32::try_from(key >> 3)
                .ok()
                .filter(|n| *n != 0 && *n < (1 << 29))
                .ok_or_else(|| {
                    ScanError::Malformed(format!("invalid field number {}", key >> 3))
                })?;
            let start = self.pos + key_len;
            let rest = body.get(start..).unwrap_or_default();
            let top = self.stack.len() - 1;
            let field = FIELDS
                .get(self.stack[top].msg as usize)
                .and_then(|fields| fields.get(number as usize))
                .copied()
                .unwrap_or(Field::Scalar);
            let next = match key & 7 {
                0 => match varint(rest)? {
                    Some((_, n)) => start + n,
                    None => return Ok(()),
                },
                1 => start + 8,
                5 => start + 4,
                2 => {
                    let Some((len, n)) = varint(rest)? else {
                        return Ok(());
                    };
                    let data = start + n;
                    let len = usize::try_from(len)
                        .ok()
                        .filter(|l| {
                            data.checked_add(*l)
                                .is_some_and(|e| e <= self.stack[top].end)
                        })
                        .ok_or_else(|| {
                            ScanError::Malformed(format!(
                                "field {number} is longer than the message holding it"
                            ))
                        })?;
                    self.length_delimited(field, number, data, len)?;
                    self.limits.check(&self.shape)?;
                    self.pos = match field {
                        Field::Message { .. } => data,
                        _ => data + len,
                    };
                    continue;
                }
                w => {
                    return Err(ScanError::Malformed(format!(
                        "field {number} has wire type {w}, which OTLP does not use"
                    )))
                }
            };
            if let Field::Numbers { .. } = field {
                // An unpacked repeated number: one more element.
                self.shape.decoded_bytes += self.stack[top].element(number, 8);
                self.limits.check(&self.shape)?;
            }
            self.pos = next;
        }
    }

    /// Charges a length-delimited field and opens it if it is a message.
    fn length_delimited(
        &mut self,
        field: Field,
        number: u32,
        data: usize,
        len: usize,
    ) -> Result<(), ScanError> {
        let top = self.stack.len() - 1;
        match field {
            Field::Message {
                msg,
                size,
                repeated,
                item,
            } => {
                if repeated {
                    self.shape.decoded_bytes += self.stack[top].element(number, size as usize);
                }
                if item {
                    self.shape.items += 1;
                }
                if self.stack.len() >= MAX_DEPTH {
                    return Err(ScanError::Malformed(format!(
                        "messages nested deeper than {MAX_DEPTH}"
                    )));
                }
                self.stack.push(Frame {
                    msg,
                    end: data + len,
                    seen: 0,
                });
            }
            Field::Bytes { repeated } => {
                if repeated {
                    self.shape.decoded_bytes +=
                        self.stack[top].element(number, size_of::<String>());
                }
                self.shape.decoded_bytes += len;
            }
            Field::Numbers { min_wire } => {
                // Charged as if every element were its own first push after a doubling.
                self.shape.decoded_bytes +=
                    GROWTH * 8 * len.div_ceil(min_wire) + self.stack[top].element(number, 8);
            }
            Field::Scalar => {}
        }
        Ok(())
    }

    /// Pops the messages that end where the walk stands.
    fn close_finished(&mut self) -> Result<(), ScanError> {
        while self.stack.len() > 1 {
            let end = self.stack[self.stack.len() - 1].end;
            if self.pos < end {
                break;
            }
            if self.pos > end {
                return Err(ScanError::Malformed(
                    "a field runs past the end of the message holding it".into(),
                ));
            }
            self.stack.pop();
        }
        Ok(())
    }

    /// Ends the scan of a `body` that is now complete.
    pub fn finish(mut self, body: &[u8]) -> Result<Shape, ScanError> {
        self.advance(body)?;
        if self.pos != body.len() || self.stack.len() > 1 {
            return Err(ScanError::Malformed("the message is truncated".into()));
        }
        Ok(self.shape)
    }
}

/// Scans a complete protobuf body in one go.
pub fn scan_protobuf(root: Root, body: &[u8], limits: ScanLimits) -> Result<Shape, ScanError> {
    ProtoScan::new(root, limits).finish(body)
}

/// Memory of one `serde_json::Value`.
const JSON_VALUE: usize = size_of::<serde_json::Value>();
/// A leaf node of a `serde_json::Map` (a B-tree of 11 entries): what a
/// non-empty object takes, and the decoder fills defaults into some empty ones.
const JSON_MAP_NODE: usize = 11 * (size_of::<String>() + JSON_VALUE) + 16;
/// Entries of one node; past them an object takes more nodes (internal ones
/// with child pointers), at least half full: one more per five members.
const JSON_NODE_ENTRIES: u32 = 11;
const JSON_MEMBERS_PER_NODE: usize = 5;
const JSON_INTERNAL_NODE: usize = JSON_MAP_NODE + 12 * 8;
/// Deepest nesting serde_json accepts.
const JSON_MAX_DEPTH: usize = 128;
/// Longest member name the scanner recognises; longer ones are unknown.
const JSON_MAX_KEY: usize = 24;

/// The largest OTLP message an element of an unknown array may decode to.
fn largest_message() -> usize {
    [
        Msg::Span,
        Msg::LogRecord,
        Msg::Metric,
        Msg::ExpPoint,
        Msg::HistogramPoint,
        Msg::ResourceSpans,
        Msg::ResourceMetrics,
        Msg::ResourceLogs,
    ]
    .into_iter()
    .map(Msg::size)
    .max()
    .unwrap_or(0)
}

/// What one element of the array under member `key` decodes to, in bytes.
/// Names the scanner does not recognise (including escaped spellings) are
/// charged as the largest message, so the bound holds whatever the names.
fn json_element(key: Option<&[u8]>) -> usize {
    let points = [
        Msg::NumberPoint,
        Msg::HistogramPoint,
        Msg::ExpPoint,
        Msg::SummaryPoint,
    ]
    .map(Msg::size)
    .into_iter()
    .max()
    .unwrap_or(0);
    let prost = match key.unwrap_or_default() {
        b"resourceSpans" => Msg::ResourceSpans.size(),
        b"scopeSpans" => Msg::ScopeSpans.size(),
        b"spans" => Msg::Span.size(),
        b"events" => Msg::Event.size(),
        b"links" => Msg::Link.size(),
        b"resourceLogs" => Msg::ResourceLogs.size(),
        b"scopeLogs" => Msg::ScopeLogs.size(),
        b"logRecords" => Msg::LogRecord.size(),
        b"resourceMetrics" => Msg::ResourceMetrics.size(),
        b"scopeMetrics" => Msg::ScopeMetrics.size(),
        b"metrics" => Msg::Metric.size(),
        b"dataPoints" => points,
        b"exemplars" => Msg::Exemplar.size(),
        b"quantileValues" => Msg::Quantile.size(),
        b"entityRefs" => Msg::EntityRef.size(),
        b"attributes" | b"metadata" | b"filteredAttributes" => Msg::KeyValue.size(),
        b"values" => Msg::KeyValue.size().max(Msg::AnyValue.size()),
        b"idKeys" | b"descriptionKeys" => size_of::<String>(),
        b"bucketCounts" | b"explicitBounds" => 8,
        _ => largest_message(),
    };
    JSON_VALUE + prost
}

/// An open object or array, as far as its memory goes.
#[derive(Clone, Copy, Debug)]
enum Open {
    Object { members: u32 },
    Array { element: usize },
}

/// Walks an OTLP/JSON body without parsing it, and bounds what
/// `serde_json::Value` and then the OTLP structs made from it take: a map node
/// per object, a Vec element (a Value and the struct it becomes, by the
/// array's member name) per array element, string bytes twice (they may be
/// copied once on the way). An object in an object decodes into a field of
/// its parent, inline. Feed it with [`JsonScan::advance`].
#[derive(Debug)]
pub struct JsonScan {
    limits: ScanLimits,
    pos: usize,
    in_string: bool,
    escaped: bool,
    /// The start of the last string (a member name when a colon follows);
    /// `None` once it is too long or has escapes.
    key: [u8; JSON_MAX_KEY],
    key_len: Option<usize>,
    /// The last structural character or closing quote.
    previous: u8,
    open: Vec<Open>,
    shape: Shape,
}

impl JsonScan {
    /// A scan that enforces `limits` (only the memory limit: items are counted after decoding).
    pub fn new(limits: ScanLimits) -> Self {
        JsonScan {
            limits,
            pos: 0,
            in_string: false,
            escaped: false,
            key: [0; JSON_MAX_KEY],
            key_len: None,
            previous: 0,
            open: Vec::new(),
            shape: Shape::default(),
        }
    }

    /// What the scan has found so far (`items` stays 0).
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Walks the new part of `body` (everything received so far).
    pub fn advance(&mut self, body: &[u8]) -> Result<(), ScanError> {
        let mut cost = 0usize;
        for &b in body.get(self.pos..).unwrap_or_default() {
            if self.in_string {
                cost += 2;
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                    self.key_len = None;
                } else if b == b'"' {
                    self.in_string = false;
                    self.previous = b'"';
                } else if let Some(n) = self.key_len {
                    self.key_len = (n < JSON_MAX_KEY).then(|| {
                        self.key[n] = b;
                        n + 1
                    });
                }
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.key_len = Some(0);
                }
                b'{' | b'[' => {
                    if self.open.len() >= JSON_MAX_DEPTH {
                        return Err(ScanError::Malformed(format!(
                            "JSON nested deeper than {JSON_MAX_DEPTH}"
                        )));
                    }
                    if b == b'{' {
                        cost += JSON_MAP_NODE;
                        self.open.push(Open::Object { members: 0 });
                    } else {
                        let named = self.previous == b':';
                        let key = self.key_len.filter(|_| named).map(|n| &self.key[..n]);
                        let element = json_element(key);
                        cost += FIRST_ELEMENTS * element;
                        self.open.push(Open::Array { element });
                    }
                }
                b'}' | b']' => {
                    self.open.pop();
                }
                b':' => {
                    if let Some(Open::Object { members }) = self.open.last_mut() {
                        *members += 1;
                        if *members > JSON_NODE_ENTRIES {
                            cost += JSON_INTERNAL_NODE.div_ceil(JSON_MEMBERS_PER_NODE);
                        }
                    }
                }
                b',' => {
                    if let Some(Open::Array { element }) = self.open.last() {
                        cost += GROWTH * element;
                    }
                }
                _ => {}
            }
            if !b.is_ascii_whitespace() {
                self.previous = b;
            }
        }
        self.pos = body.len();
        self.shape.decoded_bytes = self.shape.decoded_bytes.saturating_add(cost);
        self.limits.check(&self.shape)
    }
}

/// Scans a complete OTLP/JSON body in one go.
pub fn scan_json(body: &[u8], limits: ScanLimits) -> Result<Shape, ScanError> {
    let mut scan = JsonScan::new(limits);
    scan.advance(body)?;
    Ok(scan.shape())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    const ROOMY: ScanLimits = ScanLimits {
        max_items: u64::MAX,
        max_decoded_bytes: usize::MAX,
    };

    fn span(id: u8) -> Span {
        Span {
            trace_id: vec![id; 16],
            span_id: vec![id; 8],
            name: "s".into(),
            attributes: vec![KeyValue {
                key: "k".into(),
                value: Some(AnyValue {
                    value: Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                            "v".into(),
                        ),
                    ),
                }),
            }],
            ..Default::default()
        }
    }

    fn traces(spans: usize) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..spans).map(|i| span(i as u8)).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn the_field_table_is_the_schema() {
        for (i, msg) in Msg::ALL.into_iter().enumerate() {
            assert_eq!(msg as usize, i, "{msg:?}");
            for n in 0..TABLE_FIELDS as u32 {
                assert_eq!(FIELDS[i][n as usize], msg.field(n), "{msg:?} {n}");
            }
            // Nothing the scan must see lies past the table.
            for n in TABLE_FIELDS as u32..64 {
                assert_eq!(msg.field(n), Field::Scalar, "{msg:?} {n}");
            }
        }
    }

    #[test]
    fn counts_spans_and_charges_at_least_their_structs() {
        let body = traces(10).encode_to_vec();
        let shape = scan_protobuf(Root::Traces, &body, ROOMY).expect("valid");
        assert_eq!(shape.items, 10);
        assert!(shape.decoded_bytes >= 10 * size_of::<Span>(), "{shape:?}");
        assert!(shape.decoded_bytes < 100 * body.len(), "{shape:?}");
    }

    #[test]
    fn schema_urls_are_charged() {
        let mut request = traces(1);
        let plain = scan_protobuf(Root::Traces, &request.encode_to_vec(), ROOMY).expect("plain");
        request.resource_spans[0].schema_url = "u".repeat(1000);
        request.resource_spans[0].scope_spans[0].schema_url = "u".repeat(1000);
        let body = request.encode_to_vec();
        let with_urls = scan_protobuf(Root::Traces, &body, ROOMY).expect("urls");
        assert!(
            with_urls.decoded_bytes >= plain.decoded_bytes + 2000,
            "{plain:?} {with_urls:?}"
        );
    }

    #[test]
    fn empty_resources_are_expensive_and_stop_the_scan_early() {
        let body = b"\x0a\x00".repeat(1 << 20);
        let limits = ScanLimits {
            max_items: 1000,
            max_decoded_bytes: 1 << 20,
        };
        let mut scan = ProtoScan::new(Root::Traces, limits);
        let err = scan.advance(&body).expect_err("too large");
        assert!(matches!(err, ScanError::TooLarge(_)), "{err:?}");
        // Stopped long before the end of the body.
        assert!(scan.pos < body.len() / 10, "{}", scan.pos);
    }

    #[test]
    fn too_many_spans_are_refused_on_items() {
        let body = traces(50).encode_to_vec();
        let limits = ScanLimits {
            max_items: 49,
            max_decoded_bytes: usize::MAX,
        };
        let err = scan_protobuf(Root::Traces, &body, limits).expect_err("items");
        assert!(
            matches!(&err, ScanError::TooLarge(m) if m.contains("49")),
            "{err:?}"
        );
    }

    #[test]
    fn a_body_fed_in_pieces_scans_like_one_piece() {
        let body = traces(7).encode_to_vec();
        let whole = scan_protobuf(Root::Traces, &body, ROOMY).expect("whole");
        let mut scan = ProtoScan::new(Root::Traces, ROOMY);
        for end in 0..body.len() {
            scan.advance(&body[..end]).expect("prefix");
        }
        assert_eq!(scan.finish(&body).expect("pieces"), whole);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let body = traces(2).encode_to_vec();
        for bad in [
            &body[..body.len() - 1],
            b"\x0a\x05\x00",
            b"\x0b",
            b"\x00\x01",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            let err = scan_protobuf(Root::Traces, bad, ROOMY).expect_err("malformed");
            assert!(matches!(err, ScanError::Malformed(_)), "{bad:?}: {err:?}");
        }
        // A nested length that runs past its parent.
        let err = scan_protobuf(Root::Traces, b"\x0a\x02\x12\x05", ROOMY).expect_err("overrun");
        assert!(matches!(err, ScanError::Malformed(_)), "{err:?}");
        // Deep AnyValue arrays.
        // Deep AnyValue arrays in a log record's body.
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        let mut deep = AnyValue::default();
        for _ in 0..200 {
            deep = AnyValue {
                value: Some(Value::ArrayValue(ArrayValue { values: vec![deep] })),
            };
        }
        let v = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        body: Some(deep),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        let err = scan_protobuf(Root::Logs, &v, ROOMY).expect_err("deep");
        assert!(matches!(err, ScanError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn json_elements_are_charged_by_their_array_name() {
        let spans = format!(
            "{{\"resourceSpans\":[{{\"scopeSpans\":[{{\"spans\":[{}]}}]}}]}}",
            vec!["{}"; 1000].join(",")
        );
        let shape = scan_json(spans.as_bytes(), ROOMY).expect("scan");
        assert!(shape.decoded_bytes >= 2000 * size_of::<Span>(), "{shape:?}");
        // A name the scanner does not know, escapes included, costs the most.
        let escaped = spans.replace("\"spans\"", "\"sp\\u0061ns\"");
        let unknown = scan_json(escaped.as_bytes(), ROOMY).expect("scan");
        assert!(
            unknown.decoded_bytes >= 2000 * largest_message(),
            "{unknown:?}"
        );
        let deep = "[".repeat(200);
        assert!(scan_json(deep.as_bytes(), ROOMY).is_err());
        // Braces inside strings are text.
        let s = scan_json(br#"{"a":"{{{{[[[[\"}}"}"#, ROOMY).expect("string");
        assert!(s.decoded_bytes < JSON_MAP_NODE + 100, "{s:?}");
    }
}
