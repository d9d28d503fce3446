//! The OTLP protobuf schema as the sink reads it: one table of every message
//! in an export request and what each of its field numbers is (field numbers
//! and types from the OTLP protos). The protobuf scan ([`super::scan`]) walks a
//! body by it, both to bound what decoding would cost and to tell whether the
//! body is plain; the JSON scan takes the messages' decoded sizes from it.

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

/// The OTLP messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Msg {
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

/// What a field of a message is: how it is sent, and what decoding it allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    /// Not in the schema: prost skips it.
    Unknown,
    /// A nested message of `size` bytes decoded; repeated ones are Vec
    /// elements, `item` ones count as items (spans, log records, data points).
    /// A singular one sent twice would be merged into the first.
    Message {
        msg: Msg,
        size: u32,
        repeated: bool,
        item: bool,
    },
    /// A string, which must be UTF-8 (a Vec element too, if repeated).
    Text { repeated: bool },
    /// A byte string.
    Bytes,
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

impl Field {
    /// The wire types prost decodes this field from, a bit per wire type
    /// (unknown fields from any).
    const fn wires(self) -> u8 {
        match self {
            Field::Unknown => 0xff,
            Field::Varint => 1 << 0,
            Field::Fixed64 => 1 << 1,
            Field::Fixed32 => 1 << 5,
            Field::Varints => 1 << 0 | 1 << 2,
            Field::Fixed64s => 1 << 1 | 1 << 2,
            Field::Message { .. } | Field::Text { .. } | Field::Bytes => 1 << 2,
        }
    }
}

/// One field of one message, as the scan's walk reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    /// What it is.
    pub(super) field: Field,
    /// The wire types prost decodes it from, a bit per wire type.
    pub(super) wires: u8,
    /// Fields of the message (a bit per field number) that must not have come
    /// before this one for prost to decode what the views read: itself if it
    /// is a singular message (a second is merged into the first), the whole
    /// oneof if it is a member of one the views read (a second member
    /// replaces the first); 0 for anything else.
    pub(super) once: u32,
}

impl Msg {
    /// The message an export request of kind `root` is.
    pub(super) fn request(root: super::scan::Root) -> Msg {
        use super::scan::Root;
        match root {
            Root::Traces => Msg::TracesRequest,
            Root::Metrics => Msg::MetricsRequest,
            Root::Logs => Msg::LogsRequest,
        }
    }

    /// The size of the decoded struct (what one Vec element of it takes).
    pub(super) const fn size(self) -> usize {
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
            // A metric's data is a oneof held inline.
            Msg::Metric
            | Msg::Gauge
            | Msg::Sum
            | Msg::Histogram
            | Msg::ExpHistogram
            | Msg::Summary => size_of::<Metric>(),
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

    /// What field `number` of this message is: the schema.
    const fn schema(self, number: u32) -> Field {
        use Field::*;
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
        let text = Text { repeated: false };
        match (self, number) {
            (Msg::TracesRequest, 1) => many(Msg::ResourceSpans),
            (Msg::ResourceSpans, 1) => one(Msg::Resource),
            (Msg::ResourceSpans, 2) => many(Msg::ScopeSpans),
            (Msg::ScopeSpans, 1) => one(Msg::Scope),
            (Msg::ScopeSpans, 2) => items(Msg::Span),
            (Msg::Span, 1 | 2 | 4) => Bytes,
            (Msg::Span, 3 | 5) => text,
            (Msg::Span, 6 | 10 | 12 | 14) => Varint,
            (Msg::Span, 7 | 8) => Fixed64,
            (Msg::Span, 9) => many(Msg::KeyValue),
            (Msg::Span, 11) => many(Msg::Event),
            (Msg::Span, 13) => many(Msg::Link),
            (Msg::Span, 15) => one(Msg::Status),
            (Msg::Span, 16) => Fixed32,
            (Msg::Event, 1) => Fixed64,
            (Msg::Event, 2) => text,
            (Msg::Event, 3) => many(Msg::KeyValue),
            (Msg::Event, 4) => Varint,
            (Msg::Link, 1 | 2) => Bytes,
            (Msg::Link, 3) => text,
            (Msg::Link, 4) => many(Msg::KeyValue),
            (Msg::Link, 5) => Varint,
            (Msg::Link, 6) => Fixed32,
            (Msg::Status, 2) => text,
            (Msg::Status, 3) => Varint,
            (Msg::LogsRequest, 1) => many(Msg::ResourceLogs),
            (Msg::ResourceLogs, 1) => one(Msg::Resource),
            (Msg::ResourceLogs, 2) => many(Msg::ScopeLogs),
            (Msg::ScopeLogs, 1) => one(Msg::Scope),
            (Msg::ScopeLogs, 2) => items(Msg::LogRecord),
            (Msg::LogRecord, 1 | 11) => Fixed64,
            (Msg::LogRecord, 2 | 7) => Varint,
            (Msg::LogRecord, 3 | 12) => text,
            (Msg::LogRecord, 5) => one(Msg::AnyValue),
            (Msg::LogRecord, 6) => many(Msg::KeyValue),
            (Msg::LogRecord, 8) => Fixed32,
            (Msg::LogRecord, 9 | 10) => Bytes,
            (Msg::MetricsRequest, 1) => many(Msg::ResourceMetrics),
            (Msg::ResourceMetrics, 1) => one(Msg::Resource),
            (Msg::ResourceMetrics, 2) => many(Msg::ScopeMetrics),
            (Msg::ScopeMetrics, 1) => one(Msg::Scope),
            (Msg::ScopeMetrics, 2) => many(Msg::Metric),
            // schema_url.
            (Msg::ResourceSpans | Msg::ScopeSpans, 3)
            | (Msg::ResourceLogs | Msg::ScopeLogs, 3)
            | (Msg::ResourceMetrics | Msg::ScopeMetrics, 3) => text,
            (Msg::Metric, 1..=3) => text,
            (Msg::Metric, 5) => one(Msg::Gauge),
            (Msg::Metric, 7) => one(Msg::Sum),
            (Msg::Metric, 9) => one(Msg::Histogram),
            (Msg::Metric, 10) => one(Msg::ExpHistogram),
            (Msg::Metric, 11) => one(Msg::Summary),
            (Msg::Metric, 12) => many(Msg::KeyValue),
            (Msg::Gauge, 1) | (Msg::Sum, 1) => items(Msg::NumberPoint),
            (Msg::Sum, 2 | 3) => Varint,
            (Msg::Histogram, 1) => items(Msg::HistogramPoint),
            (Msg::ExpHistogram, 1) => items(Msg::ExpPoint),
            (Msg::Histogram | Msg::ExpHistogram, 2) => Varint,
            (Msg::Summary, 1) => items(Msg::SummaryPoint),
            (Msg::NumberPoint, 7) => many(Msg::KeyValue),
            (Msg::NumberPoint, 2 | 3 | 4 | 6) => Fixed64,
            (Msg::NumberPoint, 5) => many(Msg::Exemplar),
            (Msg::NumberPoint, 8) => Varint,
            (Msg::HistogramPoint, 9) => many(Msg::KeyValue),
            (Msg::HistogramPoint, 2..=5 | 11 | 12) => Fixed64,
            (Msg::HistogramPoint, 6 | 7) => Fixed64s,
            (Msg::HistogramPoint, 8) => many(Msg::Exemplar),
            (Msg::HistogramPoint, 10) => Varint,
            (Msg::ExpPoint, 1) => many(Msg::KeyValue),
            (Msg::ExpPoint, 2..=5 | 7 | 12..=14) => Fixed64,
            (Msg::ExpPoint, 6 | 10) => Varint,
            (Msg::ExpPoint, 8 | 9) => one(Msg::Buckets),
            (Msg::ExpPoint, 11) => many(Msg::Exemplar),
            (Msg::Buckets, 1) => Varint,
            (Msg::Buckets, 2) => Varints,
            (Msg::SummaryPoint, 7) => many(Msg::KeyValue),
            (Msg::SummaryPoint, 2..=5) => Fixed64,
            (Msg::SummaryPoint, 6) => many(Msg::Quantile),
            (Msg::SummaryPoint, 8) => Varint,
            (Msg::Quantile, 1 | 2) => Fixed64,
            (Msg::Exemplar, 7) => many(Msg::KeyValue),
            (Msg::Exemplar, 2 | 3 | 6) => Fixed64,
            (Msg::Exemplar, 4 | 5) => Bytes,
            (Msg::Resource, 1) => many(Msg::KeyValue),
            (Msg::Resource, 2) => Varint,
            (Msg::Resource, 3) => many(Msg::EntityRef),
            (Msg::EntityRef, 1 | 2) => text,
            (Msg::EntityRef, 3 | 4) => Text { repeated: true },
            (Msg::Scope, 1 | 2) => text,
            (Msg::Scope, 3) => many(Msg::KeyValue),
            (Msg::Scope, 4) => Varint,
            (Msg::KeyValue, 1) => text,
            (Msg::KeyValue, 2) => one(Msg::AnyValue),
            (Msg::AnyValue, 1) => text,
            (Msg::AnyValue, 2 | 3) => Varint,
            (Msg::AnyValue, 4) => Fixed64,
            (Msg::AnyValue, 5) => one(Msg::ArrayValue),
            (Msg::AnyValue, 6) => one(Msg::KeyValueList),
            (Msg::AnyValue, 7) => Bytes,
            (Msg::ArrayValue, 1) => many(Msg::AnyValue),
            (Msg::KeyValueList, 1) => many(Msg::KeyValue),
            _ => Unknown,
        }
    }

    /// The members of the message's oneof that the views read (an attribute's
    /// value, a metric's data), a bit per field number: a second member would
    /// replace or merge into the first.
    const fn oneof(self) -> u64 {
        match self {
            Msg::AnyValue => 0b1111_1110,
            Msg::Metric => 1 << 5 | 1 << 7 | 1 << 9 | 1 << 10 | 1 << 11,
            _ => 0,
        }
    }

    /// Field `number` of this message.
    #[inline]
    pub(super) fn entry(self, number: u32) -> Entry {
        match FIELDS[self as usize].get(number as usize) {
            Some(entry) => *entry,
            None => UNKNOWN,
        }
    }

    /// [`Msg::schema`] and [`Msg::oneof`], for the walk.
    const fn make_entry(self, number: u32) -> Entry {
        let field = self.schema(number);
        let bit = 1 << number;
        let singular = matches!(
            field,
            Field::Message {
                repeated: false,
                ..
            }
        );
        let mut once = if singular { bit } else { 0 };
        if self.oneof() & bit as u64 != 0 {
            once |= self.oneof() as u32;
        }
        Entry {
            field,
            wires: field.wires(),
            once,
        }
    }

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

/// Messages in [`Msg`].
const MESSAGES: usize = Msg::KeyValueList as usize + 1;
/// Field numbers below this are in [`FIELDS`] (OTLP's highest is 16).
const TABLE_FIELDS: usize = 17;

/// A field not in the schema.
const UNKNOWN: Entry = Entry {
    field: Field::Unknown,
    wires: 0xff,
    once: 0,
};

/// Every message's entries, indexed by message and field number: the scan's
/// hot path is one lookup per field.
static FIELDS: [[Entry; TABLE_FIELDS]; MESSAGES] = {
    let mut table = [[UNKNOWN; TABLE_FIELDS]; MESSAGES];
    let mut m = 0;
    while m < MESSAGES {
        let mut n = 0;
        while n < TABLE_FIELDS {
            table[m][n] = Msg::ALL[m].make_entry(n as u32);
            n += 1;
        }
        m += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_table_is_the_schema() {
        for (i, msg) in Msg::ALL.into_iter().enumerate() {
            assert_eq!(msg as usize, i, "{msg:?}");
            for n in 0..64 {
                let entry = msg.entry(n);
                assert_eq!(entry.field, msg.schema(n), "{msg:?} {n}");
                if n >= TABLE_FIELDS as u32 {
                    assert_eq!(entry, UNKNOWN, "{msg:?} {n}");
                }
                // Oneof members are known fields.
                if msg.oneof() & 1 << n != 0 {
                    assert_ne!(entry.field, Field::Unknown, "{msg:?} {n}");
                    assert_eq!(entry.once as u64, msg.oneof(), "{msg:?} {n}");
                }
            }
        }
    }
}
