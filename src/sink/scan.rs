//! Walks a request body once, before it is decoded: bounds what decoding it
//! will cost, and for protobuf tells whether the sink can read it in place.
//!
//! A protobuf message can decode to far more memory than its wire size: two
//! bytes (`0a 00`) are an empty `ResourceSpans` of about a hundred bytes, so a
//! 64 MiB body of them decodes to gigabytes. The scanners here walk a body
//! without building anything and add up an upper bound of the memory its
//! decoding allocates (every Vec at its worst-case capacity, every string and
//! byte string) and the number of items (spans, log records, metric points) it
//! holds, so the sink can refuse a request before it costs anything.
//!
//! [`ProtoScan`] walks by the OTLP schema ([`super::schema`]) and can be fed a
//! body as it grows, so a gzip bomb is stopped after the first few
//! decompressed megabytes. The same walk finds whether the body is plain:
//! whether prost would decode it to exactly what the sink's views
//! ([`super::view`]) read from its bytes. It is stricter than prost on purpose:
//! an unusual body (such as a resource sent in two pieces, which prost merges,
//! or a string that is not UTF-8, which prost refuses) goes the slow way,
//! through prost, which decides whether it is valid and re-encodes it plainly.
//!
//! [`JsonScan`] counts objects, members, array elements and string bytes, and
//! charges each array element as the message its array's member name says
//! (the largest one for a name it does not know).

use super::schema::{Entry, Field, Msg};
use super::wire::{varint, BadVarint};
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

impl From<BadVarint> for ScanError {
    fn from(_: BadVarint) -> Self {
        ScanError::Malformed("invalid varint".into())
    }
}

/// What a scan found (so far, for a scan that is still being fed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Spans, log records or metric data points.
    pub items: u64,
    /// Upper bound of the heap memory decoding allocates, in bytes.
    pub decoded_bytes: usize,
}

/// What the scan of a whole body found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Its items and decoding cost.
    pub shape: Shape,
    /// Whether it is protobuf that prost would decode to exactly what the
    /// sink's views read from it (never so for JSON).
    pub plain: bool,
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
    /// No limit at all (for bodies the sink made itself).
    pub const NONE: ScanLimits = ScanLimits {
        max_items: u64::MAX,
        max_decoded_bytes: usize::MAX,
    };

    #[inline]
    fn check(&self, shape: &Shape) -> Result<(), ScanError> {
        if shape.items > self.max_items || shape.decoded_bytes > self.max_decoded_bytes {
            return Err(self.exceeded(shape));
        }
        Ok(())
    }

    /// The error of a `shape` over a limit.
    #[cold]
    fn exceeded(&self, shape: &Shape) -> ScanError {
        if shape.items > self.max_items {
            return ScanError::TooLarge(format!(
                "the request holds more than {} spans, log records or metric points (the \
                 sink's limit per request); send smaller batches",
                self.max_items
            ));
        }
        ScanError::TooLarge(format!(
            "the request would take more than {} bytes of memory to decode (the sink's \
             limit per request); send smaller batches",
            self.max_decoded_bytes
        ))
    }
}

/// Which export request a body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// `ExportTraceServiceRequest`.
    Traces,
    /// `ExportMetricsServiceRequest`.
    Metrics,
    /// `ExportLogsServiceRequest`.
    Logs,
}

/// A message being walked: its kind, where it ends, and which of its fields
/// have come, a bit per field number: `charged` (modulo 64), the repeated
/// ones whose first element has been charged; `seen`, the singular messages
/// and oneof members (all below 32).
#[derive(Clone, Copy, Debug)]
struct Frame {
    msg: Msg,
    end: usize,
    charged: u64,
    seen: u32,
}

impl Frame {
    fn new(msg: Msg, end: usize) -> Self {
        Frame {
            msg,
            end,
            charged: 0,
            seen: 0,
        }
    }

    /// Charge for one more element of repeated field `number` of `size` bytes.
    fn element(&mut self, number: u32, size: usize) -> usize {
        let bit = 1u64 << (number % 64);
        if self.charged & bit == 0 {
            self.charged |= bit;
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
    /// Whether everything walked so far is plain.
    plain: bool,
    /// A string or packed run walked past before all its bytes had come (its
    /// field and where its bytes lie): they are looked at once they have.
    pending: Option<(Field, usize, usize)>,
}

impl ProtoScan {
    /// A scan of one request of kind `root`.
    pub fn new(root: Root, limits: ScanLimits) -> Self {
        ProtoScan {
            limits,
            stack: vec![Frame::new(Msg::request(root), usize::MAX)],
            pos: 0,
            shape: Shape::default(),
            plain: true,
            pending: None,
        }
    }

    /// What the scan has found so far.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Walks `body` (everything received so far: the same bytes as the last
    /// call, and perhaps more) as far as it is complete.
    pub fn advance(&mut self, body: &[u8]) -> Result<(), ScanError> {
        if let Some((field, start, end)) = self.pending {
            // The walk stands at `end`: nothing more to do until it has come.
            let Some(bytes) = body.get(start..end) else {
                return Ok(());
            };
            self.pending = None;
            self.plain &= plain_bytes(field, bytes);
        }
        loop {
            // Only where the open message ends (never for the request's).
            if self.pos >= self.stack[self.stack.len() - 1].end {
                self.close_finished()?;
            }
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
            let wire = key & 7;
            let start = self.pos + key_len;
            let rest = body.get(start..).unwrap_or_default();
            let top = self.stack.len() - 1;
            let entry = self.stack[top].msg.entry(number);
            let field = entry.field;
            let next = match wire {
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
                    let room = self.stack[top].end.checked_sub(data);
                    let len = match usize::try_from(len) {
                        Ok(len) if room.is_some_and(|room| len <= room) => len,
                        _ => {
                            return Err(ScanError::Malformed(format!(
                                "field {number} is longer than the message holding it"
                            )))
                        }
                    };
                    self.note(entry, number, wire);
                    self.length_delimited(field, number, body, data, len)?;
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
            self.note(entry, number, wire);
            if let Field::Varints | Field::Fixed64s = field {
                // An unpacked repeated number: one more element.
                self.shape.decoded_bytes += self.stack[top].element(number, 8);
                self.limits.check(&self.shape)?;
            }
            self.pos = next;
        }
    }

    /// Notes whether field `number` of the open message, sent as wire type
    /// `wire`, leaves the body plain: prost refuses a wire type the schema
    /// does not say; a singular message or a oneof member sent twice would be
    /// merged or replaced.
    #[inline]
    fn note(&mut self, entry: Entry, number: u32, wire: u64) {
        if entry.wires & (1 << wire) == 0 {
            self.plain = false;
        }
        if entry.once != 0 {
            let top = self.stack.len() - 1;
            let frame = &mut self.stack[top];
            if frame.seen & entry.once != 0 {
                self.plain = false;
            }
            frame.seen |= 1 << number;
        }
    }

    /// Charges a length-delimited field (its bytes at `data..data + len` in
    /// `body`, perhaps not all there yet) and opens it if it is a message.
    fn length_delimited(
        &mut self,
        field: Field,
        number: u32,
        body: &[u8],
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
                self.stack.push(Frame::new(msg, data + len));
                return Ok(());
            }
            Field::Text { repeated } => {
                if repeated {
                    self.shape.decoded_bytes +=
                        self.stack[top].element(number, size_of::<String>());
                }
                self.shape.decoded_bytes += len;
            }
            Field::Bytes => self.shape.decoded_bytes += len,
            Field::Fixed64s | Field::Varints => {
                let min_wire = if field == Field::Fixed64s { 8 } else { 1 };
                // A packed run of fixed64s that is not whole.
                if !len.is_multiple_of(min_wire) {
                    self.plain = false;
                }
                // Charged as if every element were its own first push after a doubling.
                self.shape.decoded_bytes +=
                    GROWTH * 8 * len.div_ceil(min_wire) + self.stack[top].element(number, 8);
            }
            Field::Unknown | Field::Varint | Field::Fixed64 | Field::Fixed32 => return Ok(()),
        }
        if self.plain && matches!(field, Field::Text { .. } | Field::Varints) {
            match body.get(data..data + len) {
                Some(bytes) => self.plain = plain_bytes(field, bytes),
                None => self.pending = Some((field, data, data + len)),
            }
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
    pub fn finish(mut self, body: &[u8]) -> Result<Scanned, ScanError> {
        self.advance(body)?;
        if self.pos != body.len() || self.stack.len() > 1 {
            return Err(ScanError::Malformed("the message is truncated".into()));
        }
        Ok(Scanned {
            shape: self.shape,
            plain: self.plain,
        })
    }
}

/// Whether the bytes of a string or packed run of `field` decode as the views
/// read them: text is UTF-8, a packed run of varints holds whole ones.
#[inline]
fn plain_bytes(field: Field, bytes: &[u8]) -> bool {
    match field {
        // Nearly all text is ASCII, which is quicker to tell.
        Field::Text { .. } => bytes.is_ascii() || std::str::from_utf8(bytes).is_ok(),
        Field::Varints => {
            let mut pos = 0;
            while pos < bytes.len() {
                match varint(&bytes[pos..]) {
                    Ok(Some((_, n))) => pos += n,
                    _ => return false,
                }
            }
            true
        }
        _ => true,
    }
}

/// Scans a complete protobuf body in one go.
pub fn scan_protobuf(root: Root, body: &[u8], limits: ScanLimits) -> Result<Scanned, ScanError> {
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
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    const ROOMY: ScanLimits = ScanLimits::NONE;

    /// The shape of a whole body.
    fn shape_of(root: Root, body: &[u8]) -> Shape {
        scan_protobuf(root, body, ROOMY).expect("valid").shape
    }

    /// Whether a whole, well-formed body is plain.
    fn plain(body: &[u8]) -> bool {
        scan_protobuf(Root::Traces, body, ROOMY)
            .expect("well-formed")
            .plain
    }

    fn span(id: u8) -> Span {
        Span {
            trace_id: vec![id; 16],
            span_id: vec![id; 8],
            name: "s".into(),
            attributes: vec![KeyValue {
                key: "k".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("v".into())),
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
    fn counts_spans_and_charges_at_least_their_structs() {
        let body = traces(10).encode_to_vec();
        let shape = shape_of(Root::Traces, &body);
        assert_eq!(shape.items, 10);
        assert!(shape.decoded_bytes >= 10 * size_of::<Span>(), "{shape:?}");
        assert!(shape.decoded_bytes < 100 * body.len(), "{shape:?}");
    }

    #[test]
    fn schema_urls_are_charged() {
        let mut request = traces(1);
        let plain = shape_of(Root::Traces, &request.encode_to_vec());
        request.resource_spans[0].schema_url = "u".repeat(1000);
        request.resource_spans[0].scope_spans[0].schema_url = "u".repeat(1000);
        let body = request.encode_to_vec();
        let with_urls = shape_of(Root::Traces, &body);
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
        // Deep AnyValue arrays in a log record's body.
        use any_value::Value;
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

    /// A trace request with a resource and `spans` spans named "s".
    fn with_resource(spans: usize) -> ExportTraceServiceRequest {
        let mut request = traces(spans);
        request.resource_spans[0].resource = Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("svc".into())),
                }),
            }],
            ..Default::default()
        });
        request
    }

    /// Where the span name "s" (0x2a 0x01 0x73) starts in `body`.
    fn span_name(body: &[u8]) -> usize {
        body.windows(3)
            .position(|w| w == [0x2a, 0x01, b's'])
            .expect("name")
    }

    /// `body` with its span name broken: not UTF-8.
    fn broken_name(body: &[u8]) -> Vec<u8> {
        let mut bad = body.to_vec();
        bad[span_name(body) + 2] = 0xff;
        bad
    }

    #[test]
    fn what_prost_encodes_is_plain_and_its_items_counted() {
        let body = with_resource(3).encode_to_vec();
        let scanned = scan_protobuf(Root::Traces, &body, ROOMY).expect("valid");
        assert_eq!((scanned.shape.items, scanned.plain), (3, true));
        assert!(plain(&[]));
        // Unknown fields of any wire type but groups are skipped.
        assert!(plain(&[0xf8, 0x01, 0x05, 0x15, 1, 2, 3, 4]));
    }

    #[test]
    fn what_prost_refuses_or_merges_is_not_plain() {
        let body = with_resource(1).encode_to_vec();
        // A span name that is not UTF-8.
        let bad = broken_name(&body);
        assert!(!plain(&bad));
        assert!(ExportTraceServiceRequest::decode(&*bad).is_err());
        // A span name sent as a number (129, two bytes).
        let at = span_name(&body);
        let mut wrong_type = body.clone();
        wrong_type[at..at + 3].copy_from_slice(&[0x28, 0x81, 0x01]);
        assert!(!plain(&wrong_type));
        assert!(ExportTraceServiceRequest::decode(&*wrong_type).is_err());
        // The resource sent twice (prost merges the two): valid, but not plain.
        let rs = &with_resource(0).resource_spans[0];
        let resource = rs.resource.as_ref().expect("resource").encode_to_vec();
        let mut twice = Vec::new();
        for _ in 0..2 {
            twice.push(0x0a);
            twice.push(resource.len() as u8);
            twice.extend_from_slice(&resource);
        }
        let mut body = vec![0x0a, twice.len() as u8];
        body.extend_from_slice(&twice);
        assert!(ExportTraceServiceRequest::decode(&*body).is_ok());
        assert!(!plain(&body));
        // An attribute value holding a string and then an int (prost keeps the int).
        let field = |key: u8, inner: &[u8]| [&[key, inner.len() as u8][..], inner].concat();
        let request = |any: &[u8]| {
            let span = field(0x4a, &field(0x12, any));
            field(0x0a, &field(0x12, &field(0x12, &span)))
        };
        assert!(plain(&request(&[0x0a, 0x01, b'v'])));
        let both = request(&[0x0a, 0x01, b'v', 0x18, 0x07]);
        assert!(ExportTraceServiceRequest::decode(&*both).is_ok());
        assert!(!plain(&both));
    }

    #[test]
    fn plainness_is_found_however_the_body_comes() {
        let body = with_resource(3).encode_to_vec();
        let bad = broken_name(&body);
        for (body, plain) in [(&body, true), (&bad, false)] {
            let whole = scan_protobuf(Root::Traces, body, ROOMY).expect("whole");
            assert_eq!(whole.plain, plain);
            // Every split, including inside the broken name.
            for split in 0..body.len() {
                let mut scan = ProtoScan::new(Root::Traces, ROOMY);
                scan.advance(&body[..split]).expect("prefix");
                assert_eq!(scan.finish(body).expect("rest"), whole, "split at {split}");
            }
        }
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
