//! Reading an OTLP protobuf body where it lies, without decoding it into
//! structs: a field reader over borrowed bytes, and [`check`], which accepts a
//! body only when prost would decode it to exactly what the sink's views
//! ([`super::view`]) read from it.
//!
//! [`check`] is stricter than prost on purpose: a body it does not accept
//! (malformed, or well-formed but unusual, such as a resource sent twice, which
//! prost merges) goes the slow way, through prost, which decides whether it is
//! valid and re-encodes it in the plain form the views read.

use super::scan::Root;

/// Deepest nesting [`check`] follows (prost's recursion limit).
const MAX_DEPTH: usize = 100;

/// A body [`check`] does not accept; prost decides what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unusual;

/// One field's value as it is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 5.
    Fixed32(u32),
    /// Wire type 2: a string, bytes, a message or a packed run.
    Len(&'a [u8]),
}

/// The fields of one message, in wire order.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The fields of the message `buf`.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

/// A varint at `pos` in `buf`: its value and where it ends.
#[inline]
fn varint(buf: &[u8], pos: usize) -> Result<(u64, usize), Unusual> {
    match buf.get(pos) {
        Some(&b) if b < 0x80 => Ok((u64::from(b), pos + 1)),
        _ => varint_long(buf, pos),
    }
}

/// The field number in a field's key: prost refuses a key past `u32::MAX` and
/// field number 0.
#[inline]
fn field_number(key: u64) -> Result<u32, Unusual> {
    u32::try_from(key)
        .ok()
        .map(|k| k >> 3)
        .filter(|n| *n != 0)
        .ok_or(Unusual)
}

fn varint_long(buf: &[u8], pos: usize) -> Result<(u64, usize), Unusual> {
    let mut value = 0u64;
    for i in 0..10 {
        let b = *buf.get(pos + i).ok_or(Unusual)?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // The tenth byte may only hold the top bit of a u64.
            if i == 9 && b > 1 {
                return Err(Unusual);
            }
            return Ok((value, pos + i + 1));
        }
    }
    Err(Unusual)
}

impl<'a> Fields<'a> {
    #[inline]
    fn read(&mut self) -> Result<(u32, Value<'a>), Unusual> {
        let (key, pos) = varint(self.buf, self.pos)?;
        let number = field_number(key)?;
        let (value, end) = match key & 7 {
            0 => {
                let (v, end) = varint(self.buf, pos)?;
                (Value::Varint(v), end)
            }
            1 => {
                let b = self.buf.get(pos..pos + 8).ok_or(Unusual)?;
                let v = u64::from_le_bytes(b.try_into().map_err(|_| Unusual)?);
                (Value::Fixed64(v), pos + 8)
            }
            5 => {
                let b = self.buf.get(pos..pos + 4).ok_or(Unusual)?;
                let v = u32::from_le_bytes(b.try_into().map_err(|_| Unusual)?);
                (Value::Fixed32(v), pos + 4)
            }
            2 => {
                let (len, start) = varint(self.buf, pos)?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| start.checked_add(l))
                    .ok_or(Unusual)?;
                (Value::Len(self.buf.get(start..end).ok_or(Unusual)?), end)
            }
            // Groups (3, 4) are not OTLP; prost decides.
            _ => return Err(Unusual),
        };
        self.pos = end;
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), Unusual>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let field = self.read();
        if field.is_err() {
            // Stop after the first error.
            self.pos = self.buf.len();
        }
        Some(field)
    }
}

/// The OTLP messages (field numbers and types from the OTLP protos).
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
    Gauge,
    Sum,
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

/// What a field of a message is, as far as decoding it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Not in the schema: prost skips it.
    Unknown,
    /// A string (or repeated string): must be UTF-8.
    Text,
    /// A byte string.
    Bytes,
    /// A singular message: a second one would be merged into the first.
    One(Msg),
    /// A repeated message.
    Many(Msg),
    /// A repeated message that counts as an item (span, log record, data point).
    Items(Msg),
    /// An integer, bool or enum.
    Varint,
    /// fixed64, sfixed64 or double.
    Fixed64,
    /// fixed32.
    Fixed32,
    /// Repeated fixed64 or double, packed or not.
    Fixed64s,
    /// Repeated uint64, packed or not.
    Varints,
}

impl Msg {
    const fn field(self, number: u32) -> Kind {
        use Kind::*;
        match (self, number) {
            (Msg::TracesRequest, 1) => Many(Msg::ResourceSpans),
            (Msg::ResourceSpans, 1) => One(Msg::Resource),
            (Msg::ResourceSpans, 2) => Many(Msg::ScopeSpans),
            (Msg::ScopeSpans, 1) => One(Msg::Scope),
            (Msg::ScopeSpans, 2) => Items(Msg::Span),
            (Msg::Span, 1 | 2 | 4) => Bytes,
            (Msg::Span, 3 | 5) => Text,
            (Msg::Span, 6 | 10 | 12 | 14) => Varint,
            (Msg::Span, 7 | 8) => Fixed64,
            (Msg::Span, 9) => Many(Msg::KeyValue),
            (Msg::Span, 11) => Many(Msg::Event),
            (Msg::Span, 13) => Many(Msg::Link),
            (Msg::Span, 15) => One(Msg::Status),
            (Msg::Span, 16) => Fixed32,
            (Msg::Event, 1) => Fixed64,
            (Msg::Event, 2) => Text,
            (Msg::Event, 3) => Many(Msg::KeyValue),
            (Msg::Event, 4) => Varint,
            (Msg::Link, 1 | 2) => Bytes,
            (Msg::Link, 3) => Text,
            (Msg::Link, 4) => Many(Msg::KeyValue),
            (Msg::Link, 5) => Varint,
            (Msg::Link, 6) => Fixed32,
            (Msg::Status, 2) => Text,
            (Msg::Status, 3) => Varint,
            (Msg::LogsRequest, 1) => Many(Msg::ResourceLogs),
            (Msg::ResourceLogs, 1) => One(Msg::Resource),
            (Msg::ResourceLogs, 2) => Many(Msg::ScopeLogs),
            (Msg::ScopeLogs, 1) => One(Msg::Scope),
            (Msg::ScopeLogs, 2) => Items(Msg::LogRecord),
            (Msg::LogRecord, 1 | 11) => Fixed64,
            (Msg::LogRecord, 2 | 7) => Varint,
            (Msg::LogRecord, 3 | 12) => Text,
            (Msg::LogRecord, 5) => One(Msg::AnyValue),
            (Msg::LogRecord, 6) => Many(Msg::KeyValue),
            (Msg::LogRecord, 8) => Fixed32,
            (Msg::LogRecord, 9 | 10) => Bytes,
            (Msg::MetricsRequest, 1) => Many(Msg::ResourceMetrics),
            (Msg::ResourceMetrics, 1) => One(Msg::Resource),
            (Msg::ResourceMetrics, 2) => Many(Msg::ScopeMetrics),
            (Msg::ScopeMetrics, 1) => One(Msg::Scope),
            (Msg::ScopeMetrics, 2) => Many(Msg::Metric),
            (Msg::ResourceSpans | Msg::ScopeSpans, 3)
            | (Msg::ResourceLogs | Msg::ScopeLogs, 3)
            | (Msg::ResourceMetrics | Msg::ScopeMetrics, 3) => Text,
            (Msg::Metric, 1..=3) => Text,
            (Msg::Metric, 5) => One(Msg::Gauge),
            (Msg::Metric, 7) => One(Msg::Sum),
            (Msg::Metric, 9) => One(Msg::Histogram),
            (Msg::Metric, 10) => One(Msg::ExpHistogram),
            (Msg::Metric, 11) => One(Msg::Summary),
            (Msg::Metric, 12) => Many(Msg::KeyValue),
            (Msg::Gauge, 1) | (Msg::Sum, 1) => Items(Msg::NumberPoint),
            (Msg::Sum, 2 | 3) => Varint,
            (Msg::Histogram, 1) => Items(Msg::HistogramPoint),
            (Msg::ExpHistogram, 1) => Items(Msg::ExpPoint),
            (Msg::Histogram | Msg::ExpHistogram, 2) => Varint,
            (Msg::Summary, 1) => Items(Msg::SummaryPoint),
            (Msg::NumberPoint, 7) => Many(Msg::KeyValue),
            (Msg::NumberPoint, 2 | 3 | 4 | 6) => Fixed64,
            (Msg::NumberPoint, 5) => Many(Msg::Exemplar),
            (Msg::NumberPoint, 8) => Varint,
            (Msg::HistogramPoint, 9) => Many(Msg::KeyValue),
            (Msg::HistogramPoint, 2..=5 | 11 | 12) => Fixed64,
            (Msg::HistogramPoint, 6 | 7) => Fixed64s,
            (Msg::HistogramPoint, 8) => Many(Msg::Exemplar),
            (Msg::HistogramPoint, 10) => Varint,
            (Msg::ExpPoint, 1) => Many(Msg::KeyValue),
            (Msg::ExpPoint, 2..=5 | 7 | 12..=14) => Fixed64,
            (Msg::ExpPoint, 6 | 10) => Varint,
            (Msg::ExpPoint, 8 | 9) => One(Msg::Buckets),
            (Msg::ExpPoint, 11) => Many(Msg::Exemplar),
            (Msg::Buckets, 1) => Varint,
            (Msg::Buckets, 2) => Varints,
            (Msg::SummaryPoint, 7) => Many(Msg::KeyValue),
            (Msg::SummaryPoint, 2..=5) => Fixed64,
            (Msg::SummaryPoint, 6) => Many(Msg::Quantile),
            (Msg::SummaryPoint, 8) => Varint,
            (Msg::Quantile, 1 | 2) => Fixed64,
            (Msg::Exemplar, 7) => Many(Msg::KeyValue),
            (Msg::Exemplar, 2 | 3 | 6) => Fixed64,
            (Msg::Exemplar, 4 | 5) => Bytes,
            (Msg::Resource, 1) => Many(Msg::KeyValue),
            (Msg::Resource, 2) => Varint,
            (Msg::Resource, 3) => Many(Msg::EntityRef),
            (Msg::EntityRef, 1..=4) => Text,
            (Msg::Scope, 1 | 2) => Text,
            (Msg::Scope, 3) => Many(Msg::KeyValue),
            (Msg::Scope, 4) => Varint,
            (Msg::KeyValue, 1) => Text,
            (Msg::KeyValue, 2) => One(Msg::AnyValue),
            (Msg::AnyValue, 1) => Text,
            (Msg::AnyValue, 2 | 3) => Varint,
            (Msg::AnyValue, 4) => Fixed64,
            (Msg::AnyValue, 5) => One(Msg::ArrayValue),
            (Msg::AnyValue, 6) => One(Msg::KeyValueList),
            (Msg::AnyValue, 7) => Bytes,
            (Msg::ArrayValue, 1) => Many(Msg::AnyValue),
            (Msg::KeyValueList, 1) => Many(Msg::KeyValue),
            _ => Kind::Unknown,
        }
    }

    /// Whether field `number` is one of the message's oneof members the views
    /// read (an attribute's value, a metric's data): a second member would
    /// replace or merge into the first.
    const fn oneof(self, number: u32) -> bool {
        matches!(
            (self, number),
            (Msg::AnyValue, 1..=7) | (Msg::Metric, 5 | 7 | 9 | 10 | 11)
        )
    }
}

/// Messages in [`Msg`].
const MESSAGES: usize = Msg::KeyValueList as usize + 1;
/// Field numbers below this are looked up in [`FIELDS`] (OTLP's highest is 16).
const TABLE_FIELDS: usize = 17;

/// [`Msg::field`] and [`Msg::oneof`] as a table, indexed by message and field
/// number: the check's hot path is one lookup per field.
static FIELDS: [[(Kind, bool); TABLE_FIELDS]; MESSAGES] = {
    let mut table = [[(Kind::Unknown, false); TABLE_FIELDS]; MESSAGES];
    let mut m = 0;
    while m < MESSAGES {
        let msg = Msg::ALL[m];
        let mut n = 0;
        while n < TABLE_FIELDS {
            table[m][n] = (msg.field(n as u32), msg.oneof(n as u32));
            n += 1;
        }
        m += 1;
    }
    table
};

impl Msg {
    /// Every message, in declaration order (`ALL[m as usize] == m`).
    const ALL: [Msg; MESSAGES] = [
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
        Msg::Gauge,
        Msg::Sum,
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

/// What [`check`] found in a body it accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Spans, log records or metric data points.
    pub items: u64,
}

/// Accepts `body` when prost decodes it without error, to exactly what the
/// views read: every known field of the wire type its schema says, every string
/// UTF-8, packed runs whole, no singular message or oneof sent twice.
pub fn check(request: Root, body: &[u8]) -> Result<Checked, Unusual> {
    let root = match request {
        Root::Traces => Msg::TracesRequest,
        Root::Metrics => Msg::MetricsRequest,
        Root::Logs => Msg::LogsRequest,
    };
    let mut checked = Checked::default();
    check_message(root, body, 0, &mut checked)?;
    Ok(checked)
}

fn check_message(msg: Msg, body: &[u8], depth: usize, out: &mut Checked) -> Result<(), Unusual> {
    if depth >= MAX_DEPTH {
        return Err(Unusual);
    }
    let table = &FIELDS[msg as usize];
    // Singular message fields seen (a bit per field number below 64), and oneof members.
    let mut once = 0u64;
    let mut oneofs = 0u32;
    let mut pos = 0;
    while pos < body.len() {
        let (key, at) = varint(body, pos)?;
        let number = field_number(key)?;
        let (kind, oneof) = table
            .get(number as usize)
            .copied()
            .unwrap_or((Kind::Unknown, false));
        pos = match key & 7 {
            0 => {
                if !matches!(kind, Kind::Unknown | Kind::Varint | Kind::Varints) {
                    return Err(Unusual);
                }
                varint(body, at)?.1
            }
            1 => {
                if !matches!(kind, Kind::Unknown | Kind::Fixed64 | Kind::Fixed64s) {
                    return Err(Unusual);
                }
                at + 8
            }
            5 => {
                if !matches!(kind, Kind::Unknown | Kind::Fixed32) {
                    return Err(Unusual);
                }
                at + 4
            }
            2 => {
                let (len, start) = varint(body, at)?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| start.checked_add(l))
                    .ok_or(Unusual)?;
                let s = body.get(start..end).ok_or(Unusual)?;
                check_len(kind, number, s, &mut once, depth, out)?;
                end
            }
            _ => return Err(Unusual),
        };
        if oneof {
            oneofs += 1;
            if oneofs > 1 {
                return Err(Unusual);
            }
        }
    }
    if pos > body.len() {
        return Err(Unusual);
    }
    Ok(())
}

/// Checks length-delimited field `number` of kind `kind`, holding `s`.
#[inline]
fn check_len(
    kind: Kind,
    number: u32,
    s: &[u8],
    once: &mut u64,
    depth: usize,
    out: &mut Checked,
) -> Result<(), Unusual> {
    match kind {
        Kind::Unknown | Kind::Bytes => {}
        // Nearly all text is ASCII, which is quicker to tell.
        Kind::Text if s.is_ascii() => {}
        Kind::Text => {
            std::str::from_utf8(s).map_err(|_| Unusual)?;
        }
        Kind::One(sub) => {
            let bit = 1u64 << (number % 64);
            if *once & bit != 0 {
                return Err(Unusual);
            }
            *once |= bit;
            check_message(sub, s, depth + 1, out)?;
        }
        Kind::Many(sub) => check_message(sub, s, depth + 1, out)?,
        Kind::Items(sub) => {
            out.items += 1;
            check_message(sub, s, depth + 1, out)?;
        }
        Kind::Fixed64s if s.len().is_multiple_of(8) => {}
        Kind::Varints => {
            let mut pos = 0;
            while pos < s.len() {
                pos = varint(s, pos)?.1;
            }
        }
        _ => return Err(Unusual),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    fn request(spans: usize) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("svc".into())),
                        }),
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: (0..spans)
                        .map(|i| Span {
                            trace_id: vec![1; 16],
                            span_id: vec![i as u8 + 1; 8],
                            name: "s".into(),
                            ..Default::default()
                        })
                        .collect(),
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
            for n in 0..64 {
                let in_table = FIELDS[i].get(n as usize).copied();
                let kind = in_table.unwrap_or((Kind::Unknown, false));
                assert_eq!(kind, (msg.field(n), msg.oneof(n)), "{msg:?} {n}");
            }
        }
    }

    #[test]
    fn a_plain_request_is_accepted_and_its_items_counted() {
        let body = request(3).encode_to_vec();
        assert_eq!(check(Root::Traces, &body), Ok(Checked { items: 3 }));
        assert_eq!(check(Root::Traces, &[]), Ok(Checked { items: 0 }));
    }

    #[test]
    fn what_prost_refuses_or_merges_is_unusual() {
        let body = request(1).encode_to_vec();
        // Truncated.
        assert_eq!(check(Root::Traces, &body[..body.len() - 1]), Err(Unusual));
        // A span name that is not UTF-8: find "s" (0x2a 0x01 0x73) and break it.
        let at = body
            .windows(3)
            .position(|w| w == [0x2a, 0x01, b's'])
            .expect("name");
        let mut bad = body.clone();
        bad[at + 2] = 0xff;
        assert_eq!(check(Root::Traces, &bad), Err(Unusual));
        assert!(ExportTraceServiceRequest::decode(&*bad).is_err());
        // A span name sent as a number.
        let mut wrong_type = body.clone();
        wrong_type[at] = 0x28;
        wrong_type[at + 1] = 0x01;
        assert_eq!(check(Root::Traces, &wrong_type), Err(Unusual));
        assert!(ExportTraceServiceRequest::decode(&*wrong_type).is_err());
        // The resource sent twice (prost merges the two): valid, but unusual.
        let rs = &request(0).resource_spans[0];
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
        assert_eq!(check(Root::Traces, &body), Err(Unusual));
        // Unknown fields of any wire type but groups are skipped.
        assert_eq!(
            check(Root::Traces, &[0xf8, 0x01, 0x05, 0x15, 1, 2, 3, 4]),
            Ok(Checked { items: 0 })
        );
        assert_eq!(check(Root::Traces, &[0x0b]), Err(Unusual));
        // Field number 0, and a key past u32::MAX (field 2^30), which prost refuses.
        assert_eq!(check(Root::Traces, &[0x00, 0x00]), Err(Unusual));
        let past = [0x80, 0x80, 0x80, 0x80, 0x20, 0x00];
        assert_eq!(check(Root::Traces, &past), Err(Unusual));
        assert!(ExportTraceServiceRequest::decode(&past[..]).is_err());
    }
}
