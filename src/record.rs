//! Generated telemetry records: what the generator produces and the encoders consume.
//! Plain data, independent of any OTLP crate.

use crate::class::ClassOf;
use std::fmt;
use std::sync::Arc;

/// An attribute value as otelsim emits it.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Str(Arc<str>),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl AttrValue {
    pub fn str(s: &str) -> Self {
        AttrValue::Str(Arc::from(s))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => write!(f, "{s}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Double(d) => write!(f, "{d}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanKind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "INTERNAL" => SpanKind::Internal,
            "SERVER" => SpanKind::Server,
            "CLIENT" => SpanKind::Client,
            "PRODUCER" => SpanKind::Producer,
            "CONSUMER" => SpanKind::Consumer,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCode {
    Unset,
    Ok,
    Error,
}

pub type Key = Arc<str>;

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: Key,
    pub time_ns: u64,
    pub attrs: Vec<(Key, AttrValue)>,
}

/// The service (an OTel resource: `service.name` and its attributes) a span or
/// log record is emitted under: an index into the run's service table
/// (`plan::Services`). Encoders group by it in index order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u16);

#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub name: Key,
    pub kind: SpanKind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attrs: Vec<(Key, AttrValue)>,
    pub events: Vec<Event>,
    pub status: StatusCode,
    pub status_message: Option<Arc<str>>,
    /// The service that emits the span.
    pub service: ServiceId,
    /// What the span is (its `span.class` attribute, typed).
    pub class: ClassOf,
    /// Links to spans of other traces: (trace id, span id).
    pub links: Vec<([u8; 16], [u8; 8])>,
}

impl SpanRecord {
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attrs.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }

    pub fn set_attr(&mut self, key: Key, value: AttrValue) {
        match self.attrs.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.attrs.push((key, value)),
        }
    }

    pub fn remove_attr(&mut self, key: &str) {
        self.attrs.retain(|(k, _)| &**k != key);
    }

    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// One trace: every span shares `trace_id`; spans are in creation order (parents first).
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRecord {
    pub trace_id: [u8; 16],
    /// Instrumentation scope name, `otelsim.<scenario>`.
    pub scope: Key,
    pub scenario: Key,
    pub spans: Vec<SpanRecord>,
}

/// Log severities otelsim emits, with their OTLP numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn number(self) -> i32 {
        match self {
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        }
    }
}

/// A log record tied to the span it describes.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord {
    pub time_ns: u64,
    pub severity: Severity,
    pub body: Arc<str>,
    pub attrs: Vec<(Key, AttrValue)>,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub scope: Key,
    /// The service of the span the record describes.
    pub service: ServiceId,
}
