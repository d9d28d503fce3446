//! Generated telemetry records: what the generator produces and the encoders consume.
//! Plain data, independent of any OTLP crate.

use crate::class::ClassOf;
use std::fmt;
use std::sync::Arc;

/// An attribute value as otelsim emits it.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// A string: interned when the plan made it, else shared rather than copied.
    Str(Text),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// An array of strings (`string[]`, e.g. `gen_ai.response.finish_reasons`),
    /// shared like a string: values the generator repeats are interned once.
    StrArray(Arc<[Arc<str>]>),
}

impl AttrValue {
    /// A string value (one allocation).
    pub fn str(s: &str) -> Self {
        AttrValue::Str(Text::Shared(Arc::from(s)))
    }

    /// The text of a string value; `None` for the others.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Interns a string value's text (see [`crate::intern::intern`]: for the plan's
    /// values, never per span).
    pub fn intern(&mut self) {
        if let AttrValue::Str(t @ Text::Shared(_)) = self {
            *t = Text::interned(t);
        }
    }

    /// A string array of the given items (one allocation per item).
    pub fn str_array(items: &[&str]) -> Self {
        AttrValue::StrArray(items.iter().map(|s| Arc::from(*s)).collect())
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => write!(f, "{s}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Double(d) => write!(f, "{d}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::StrArray(items) => {
                write!(f, "[")?;
                for (i, s) in items.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{s}")?;
                }
                write!(f, "]")
            }
        }
    }
}

/// OTel span kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanKind {
    /// `INTERNAL`: work inside a service.
    Internal,
    /// `SERVER`: handles an incoming request.
    Server,
    /// `CLIENT`: an outgoing request.
    Client,
    /// `PRODUCER`: sends a message.
    Producer,
    /// `CONSUMER`: receives a message.
    Consumer,
}

impl SpanKind {
    /// A kind written in any case (`server`, `SERVER`); `None` for anything else.
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

    /// The upper-case OTel name (`SERVER`).
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

/// OTel span status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCode {
    /// Not set: the default, and what a successful span keeps.
    Unset,
    /// Explicitly OK (the generator leaves its successful spans `Unset`).
    Ok,
    /// The span failed.
    Error,
}

pub use crate::intern::{Key, Text};

/// A span event (an exception, a validation error, a tool selection).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Event name (`exception`, `<prefix>.validation.error`, …).
    pub name: Key,
    /// When it happened, Unix time in ns.
    pub time_ns: u64,
    /// Attributes (`exception.type`, `exception.message`, …).
    pub attrs: Vec<(Key, AttrValue)>,
}

/// The service (an OTel resource: `service.name` and its attributes) a span or
/// log record is emitted under: an index into the run's service table
/// (`plan::Services`). Encoders group by it in index order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u16);

/// One span as generated.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    /// Span id, from the run's seeded RNG (never all zeros).
    pub span_id: [u8; 8],
    /// The parent's span id; `None` for the trace's root.
    pub parent_span_id: Option<[u8; 8]>,
    /// Span name, prefix applied: interned when it comes from the plan.
    pub name: Text,
    /// OTel span kind, from the plan's node.
    pub kind: SpanKind,
    /// Start, Unix time in ns (relative to 0 until the trace is laid out).
    pub start_ns: u64,
    /// End, Unix time in ns (relative to 0 until the trace is laid out).
    pub end_ns: u64,
    /// Attributes in the order they were set.
    pub attrs: Vec<(Key, AttrValue)>,
    /// Events in the order they were recorded.
    pub events: Vec<Event>,
    /// Status code: `Error` when the span failed.
    pub status: StatusCode,
    /// Status message of a failed span: its exception message, or the declared error `message`.
    pub status_message: Option<Arc<str>>,
    /// The service that emits the span.
    pub service: ServiceId,
    /// What the span is (its `span.class` attribute, typed).
    pub class: ClassOf,
    /// Links to spans of other traces: (trace id, span id).
    pub links: Vec<([u8; 16], [u8; 8])>,
}

/// Whether two attribute keys are the same text, cheaply: the lengths first, then
/// the same allocation (keys are interned, so a match is usually the same one),
/// then the last eight bytes (keys of one family share their start, `gen_ai.`,
/// `vendor.`, and differ at the end), and only then every byte.
#[inline]
pub(crate) fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if std::ptr::eq(a.as_ptr(), b.as_ptr()) {
        return true;
    }
    if let (Some(x), Some(y)) = (a.last_chunk::<8>(), b.last_chunk::<8>()) {
        if x != y {
            return false;
        }
    }
    a == b
}

impl SpanRecord {
    /// The value of the attribute `key`, if set.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attrs
            .iter()
            .find(|(k, _)| same_key(k, key))
            .map(|(_, v)| v)
    }

    /// Sets an attribute, replacing its value in place when already set.
    pub fn set_attr(&mut self, key: Key, value: AttrValue) {
        match self.attrs.iter_mut().find(|(k, _)| same_key(k, &key)) {
            Some((_, v)) => *v = value,
            None => self.attrs.push((key, value)),
        }
    }

    /// Removes the attribute `key`, if set.
    pub fn remove_attr(&mut self, key: &str) {
        self.attrs.retain(|(k, _)| !same_key(k, key));
    }

    /// End minus start, in ns (0 if the end comes first).
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_by_text_whatever_their_allocation() {
        let texts = [
            "",
            "a",
            "b",
            "gen_ai",
            "gen_ai.x",
            "gen_ai.y",
            "gen_ai.request.model",
            "gen_ai.response.model",
            "vendor.step.outcome",
            "xendor.step.outcome",
        ];
        for a in texts {
            for b in texts {
                let owned = String::from(b);
                assert_eq!(same_key(a, &owned), a == b, "{a:?} vs {b:?}");
            }
            assert!(same_key(a, a));
        }
    }

    #[test]
    fn setting_an_attribute_replaces_it_by_text() {
        let mut s = SpanRecord {
            span_id: [1; 8],
            parent_span_id: None,
            name: Text::interned("s"),
            kind: SpanKind::Internal,
            start_ns: 0,
            end_ns: 1,
            attrs: Vec::new(),
            events: Vec::new(),
            status: StatusCode::Unset,
            status_message: None,
            service: ServiceId(0),
            class: ClassOf::step(crate::class::SpanClass::Planner),
            links: Vec::new(),
        };
        s.set_attr(
            Key::from_static("vendor.step.outcome"),
            AttrValue::str("success"),
        );
        s.set_attr(Key::from_static("vendor.task.outcome"), AttrValue::Int(1));
        s.set_attr(
            Key::from_static("vendor.step.outcome"),
            AttrValue::str("fail"),
        );
        assert_eq!(s.attrs.len(), 2);
        assert_eq!(s.attr("vendor.step.outcome"), Some(&AttrValue::str("fail")));
        s.remove_attr("vendor.step.outcome");
        assert_eq!(s.attr("vendor.step.outcome"), None);
        assert_eq!(s.attr("vendor.task.outcome"), Some(&AttrValue::Int(1)));
    }
}

/// One trace: every span shares `trace_id`; spans are in creation order (parents first).
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRecord {
    /// Trace id, from the run's seeded RNG (never all zeros).
    pub trace_id: [u8; 16],
    /// Instrumentation scope name, `otelsim.<scenario>`.
    pub scope: Key,
    /// The scenario that produced it, for per-scenario counts.
    pub scenario: Key,
    /// Every span, parents before children.
    pub spans: Vec<SpanRecord>,
}

/// Log severities otelsim emits, with their OTLP numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// `INFO` (9).
    Info,
    /// `WARN` (13).
    Warn,
    /// `ERROR` (17).
    Error,
}

impl Severity {
    /// The OTLP severity number.
    pub fn number(self) -> i32 {
        match self {
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
        }
    }

    /// The OTLP severity text.
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
    /// When it happened, Unix time in ns (also sent as its observed time).
    pub time_ns: u64,
    /// `ERROR` for a failure, `WARN` for a scheduled retry or a block, else `INFO`.
    pub severity: Severity,
    /// The message in plain words (`Agent turn started`).
    pub body: Arc<str>,
    /// The record's event name (OTLP `LogRecord.event_name`: `turn.start`, …),
    /// which is not repeated as an attribute (the `event.name` attribute is deprecated).
    pub event_name: &'static str,
    /// The span's key attributes (ids, tenant) and the event's own.
    pub attrs: Vec<(Key, AttrValue)>,
    /// The trace of the span it describes.
    pub trace_id: [u8; 16],
    /// The span it describes.
    pub span_id: [u8; 8],
    /// Instrumentation scope name, the same as its trace's.
    pub scope: Key,
    /// The service of the span the record describes.
    pub service: ServiceId,
}
