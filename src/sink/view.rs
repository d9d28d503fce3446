//! The parts of an OTLP request the sink counts, read in place from a body
//! that the scan ([`super::scan::ProtoScan`]) found plain: nothing is copied or allocated per
//! span. Each view is a message's bytes; its accessors walk them. On a body
//! that was not found plain they read what they can and never panic.

use super::wire::{fields, Value};

/// The messages (or strings) in field `number` of `body`, in order.
fn each_len(body: &[u8], number: u32) -> impl Iterator<Item = &[u8]> {
    fields(body).filter_map(move |(n, v)| match v {
        Value::Len(b) if n == number => Some(b),
        _ => None,
    })
}

/// The last value of length-delimited field `number` (what prost keeps of a
/// singular field sent twice).
fn last_len(body: &[u8], number: u32) -> Option<&[u8]> {
    each_len(body, number).last()
}

/// Text that the scan found to be UTF-8.
fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// An `ExportTraceServiceRequest`, `ExportMetricsServiceRequest` or
/// `ExportLogsServiceRequest`: all three hold their resources in field 1.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestView<'a>(pub(crate) &'a [u8]);

impl<'a> RequestView<'a> {
    /// `ResourceSpans`, `ResourceMetrics` or `ResourceLogs`.
    pub(crate) fn resources(self) -> impl Iterator<Item = ResourceGroup<'a>> {
        each_len(self.0, 1).map(ResourceGroup)
    }
}

/// A `ResourceSpans`, `ResourceMetrics` or `ResourceLogs`: its resource in
/// field 1, its scopes in field 2.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResourceGroup<'a>(&'a [u8]);

impl<'a> ResourceGroup<'a> {
    /// The resource, if there is one.
    pub(crate) fn resource(self) -> Option<ResourceView<'a>> {
        last_len(self.0, 1).map(ResourceView)
    }

    /// `ScopeSpans`, `ScopeMetrics` or `ScopeLogs`.
    pub(crate) fn scopes(self) -> impl Iterator<Item = ScopeGroup<'a>> {
        each_len(self.0, 2).map(ScopeGroup)
    }
}

/// A `ScopeSpans`, `ScopeMetrics` or `ScopeLogs`: its scope in field 1, its
/// spans, metrics or log records in field 2.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScopeGroup<'a>(&'a [u8]);

impl<'a> ScopeGroup<'a> {
    /// The scope's name, `None` without a scope.
    pub(crate) fn scope_name(self) -> Option<&'a str> {
        let scope = last_len(self.0, 1)?;
        Some(last_len(scope, 1).map_or("", text))
    }

    /// Spans, metrics or log records.
    pub(crate) fn entries(self) -> impl Iterator<Item = &'a [u8]> {
        each_len(self.0, 2)
    }

    /// Spans.
    pub(crate) fn spans(self) -> impl Iterator<Item = SpanView<'a>> {
        self.entries().map(SpanView::new)
    }

    /// Log records.
    pub(crate) fn log_records(self) -> impl Iterator<Item = LogView<'a>> {
        self.entries().map(LogView::new)
    }
}

/// A `Resource`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResourceView<'a>(&'a [u8]);

impl<'a> ResourceView<'a> {
    /// Its attributes.
    pub(crate) fn attributes(self) -> impl Iterator<Item = Attribute<'a>> {
        attributes(self.0, 1)
    }
}

/// A `KeyValue`: its key, and its value when that is a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Attribute<'a> {
    /// The key.
    pub(crate) key: &'a str,
    /// The value's bytes, if it is a string (left unconverted: most values
    /// are only hashed or measured).
    pub(crate) str_bytes: Option<&'a [u8]>,
}

impl<'a> Attribute<'a> {
    fn new(kv: &'a [u8]) -> Self {
        let mut key = "";
        let mut str_bytes = None;
        for (n, v) in fields(kv) {
            match (n, v) {
                (1, Value::Len(b)) => key = text(b),
                (2, Value::Len(any)) => str_bytes = string_value(any),
                _ => {}
            }
        }
        Attribute { key, str_bytes }
    }

    /// The value, if it is a string.
    pub(crate) fn str_value(&self) -> Option<&'a str> {
        self.str_bytes.map(text)
    }
}

/// The string in an `AnyValue`, if it holds one (the last member of its oneof wins).
fn string_value(any: &[u8]) -> Option<&[u8]> {
    let mut value = None;
    for (n, v) in fields(any) {
        value = match (n, v) {
            (1, Value::Len(b)) => Some(b),
            (2..=7, _) => None,
            _ => value,
        };
    }
    value
}

/// The attributes in field `number` of a message.
fn attributes(body: &[u8], number: u32) -> impl Iterator<Item = Attribute<'_>> {
    each_len(body, number).map(Attribute::new)
}

/// Status code ERROR.
const STATUS_ERROR: u64 = 2;

/// A `Span`: the fields the sink counts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpanView<'a> {
    body: &'a [u8],
    /// `trace_id`.
    pub(crate) trace_id: &'a [u8],
    /// `span_id`.
    pub(crate) span_id: &'a [u8],
    /// `parent_span_id`.
    pub(crate) parent_span_id: &'a [u8],
    /// `name`.
    pub(crate) name: &'a str,
    /// `start_time_unix_nano`.
    pub(crate) start: u64,
    /// `end_time_unix_nano`.
    pub(crate) end: u64,
    /// Whether its status code is ERROR.
    pub(crate) error: bool,
}

impl<'a> SpanView<'a> {
    fn new(body: &'a [u8]) -> Self {
        let mut s = SpanView {
            body,
            trace_id: &[],
            span_id: &[],
            parent_span_id: &[],
            name: "",
            start: 0,
            end: 0,
            error: false,
        };
        for (n, v) in fields(body) {
            match (n, v) {
                (1, Value::Len(b)) => s.trace_id = b,
                (2, Value::Len(b)) => s.span_id = b,
                (4, Value::Len(b)) => s.parent_span_id = b,
                (5, Value::Len(b)) => s.name = text(b),
                (7, Value::Fixed64(t)) => s.start = t,
                (8, Value::Fixed64(t)) => s.end = t,
                (15, Value::Len(status)) => s.error = status_code(status) == STATUS_ERROR,
                _ => {}
            }
        }
        s
    }

    /// Its attributes.
    pub(crate) fn attributes(&self) -> impl Iterator<Item = Attribute<'a>> {
        attributes(self.body, 9)
    }

    /// Whether its ids are valid OTLP: a 16-byte trace id and an 8-byte span
    /// id, neither all zeros, and no parent or an 8-byte one.
    pub(crate) fn valid_ids(&self) -> bool {
        let nonzero = |b: &[u8]| b.iter().any(|&x| x != 0);
        self.trace_id.len() == 16
            && nonzero(self.trace_id)
            && self.span_id.len() == 8
            && nonzero(self.span_id)
            && matches!(self.parent_span_id.len(), 0 | 8)
    }
}

/// A `Status`'s code (the last one sent; prost reads an enum as an i32).
fn status_code(status: &[u8]) -> u64 {
    let mut code = 0;
    for (n, v) in fields(status) {
        if let (3, Value::Varint(c)) = (n, v) {
            code = u64::from(c as i32 as u32);
        }
    }
    code
}

/// A `LogRecord`: the fields the sink counts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogView<'a> {
    body: &'a [u8],
    /// `trace_id`.
    pub(crate) trace_id: &'a [u8],
}

impl<'a> LogView<'a> {
    fn new(body: &'a [u8]) -> Self {
        let trace_id = last_len(body, 9).unwrap_or_default();
        LogView { body, trace_id }
    }

    /// Its attributes.
    pub(crate) fn attributes(&self) -> impl Iterator<Item = Attribute<'a>> {
        attributes(self.body, 6)
    }
}

/// The data points of a `Metric` (in whichever of gauge, sum, histogram,
/// exponential histogram or summary it holds them).
pub(crate) fn data_points(metric: &[u8]) -> u64 {
    let mut points = 0;
    for (n, v) in fields(metric) {
        if let (5 | 7 | 9 | 10 | 11, Value::Len(data)) = (n, v) {
            points = each_len(data, 1).count() as u64;
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span, Status};
    use prost::Message as _;

    #[test]
    fn a_span_reads_as_prost_decodes_it() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            name: "GET /x".into(),
            start_time_unix_nano: 5,
            end_time_unix_nano: 9,
            attributes: vec![
                KeyValue {
                    key: "a".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("v".into())),
                    }),
                },
                KeyValue {
                    key: "n".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::IntValue(3)),
                    }),
                },
            ],
            status: Some(Status {
                code: StatusCode::Error as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec();
        let v = SpanView::new(&span);
        assert_eq!(v.trace_id, &[1; 16]);
        assert_eq!(v.span_id, &[2; 8]);
        assert_eq!(v.parent_span_id, &[3; 8]);
        assert_eq!((v.name, v.start, v.end, v.error), ("GET /x", 5, 9, true));
        assert!(v.valid_ids());
        let attrs: Vec<_> = v.attributes().collect();
        assert_eq!(
            attrs,
            [
                Attribute {
                    key: "a",
                    str_bytes: Some(b"v")
                },
                Attribute {
                    key: "n",
                    str_bytes: None
                }
            ]
        );
        // Garbage reads as far as it goes.
        let v = SpanView::new(b"\x0a\x10\x01");
        assert!(!v.valid_ids());
    }
}
