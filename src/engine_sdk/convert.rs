//! otelsim records → the SDK's own types (`SpanData`, `Resource`, `KeyValue`),
//! keeping ids, parent ids, timestamps, kind, attributes, events, status and links
//! exactly as generated.

use crate::record::{AttrValue, Event, SpanKind, SpanRecord, StatusCode, Text};
use opentelemetry::trace::{
    self as api, SpanContext, SpanId, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;
use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn value(v: &AttrValue) -> Value {
    match v {
        // No string copy per attribute: interned texts stay static, shared ones are Arc clones.
        AttrValue::Str(Text::Static(s)) => Value::from(*s),
        AttrValue::Str(Text::Shared(s)) => Value::from(s.clone()),
        AttrValue::Int(i) => Value::I64(*i),
        AttrValue::Double(d) => Value::F64(*d),
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::StrArray(items) => Value::Array(Array::String(
            items.iter().map(|s| StringValue::from(s.clone())).collect(),
        )),
    }
}

fn attributes<'a>(
    attrs: impl IntoIterator<Item = &'a (crate::record::Key, AttrValue)>,
) -> Vec<KeyValue> {
    attrs
        .into_iter()
        .map(|(k, v)| KeyValue::new(Key::from_static_str(k.as_str()), value(v)))
        .collect()
}

fn time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn kind(k: SpanKind) -> api::SpanKind {
    match k {
        SpanKind::Internal => api::SpanKind::Internal,
        SpanKind::Server => api::SpanKind::Server,
        SpanKind::Client => api::SpanKind::Client,
        SpanKind::Producer => api::SpanKind::Producer,
        SpanKind::Consumer => api::SpanKind::Consumer,
    }
}

/// A sampled, local context, as a span started by the SDK itself would have.
fn context(trace_id: &[u8; 16], span_id: &[u8; 8]) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(*trace_id),
        SpanId::from_bytes(*span_id),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    )
}

fn status(s: &SpanRecord) -> Status {
    match s.status {
        StatusCode::Unset => Status::Unset,
        StatusCode::Ok => Status::Ok,
        // The SDK keeps a description only on errors (as the spec says).
        StatusCode::Error => Status::Error {
            description: Cow::Owned(s.status_message.as_deref().unwrap_or_default().to_string()),
        },
    }
}

fn event(e: &Event) -> api::Event {
    api::Event::new(e.name.to_string(), time(e.time_ns), attributes(&e.attrs), 0)
}

/// The SDK's finished-span record for one otelsim span of trace `trace_id`.
pub fn span_data(trace_id: &[u8; 16], s: &SpanRecord, scope: &InstrumentationScope) -> SpanData {
    // SpanEvents / SpanLinks are non-exhaustive: start from their defaults.
    let mut events = SpanEvents::default();
    events.events = s.events.iter().map(event).collect();
    let mut links = SpanLinks::default();
    links.links = s
        .links
        .iter()
        .map(|(t, sp)| api::Link::new(context(t, sp), Vec::new(), 0))
        .collect();
    SpanData {
        span_context: context(trace_id, &s.span_id),
        parent_span_id: s.parent_span_id.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: false,
        span_kind: kind(s.kind),
        name: Cow::Owned(s.name.to_string()),
        start_time: time(s.start_ns),
        end_time: time(s.end_ns),
        attributes: attributes(&s.attrs),
        dropped_attributes_count: 0,
        events,
        links,
        status: status(s),
        instrumentation_scope: scope.clone(),
    }
}

/// otelsim's scope `name` (`otelsim.<scenario>`) with otelsim's version, as the
/// native encoder reports it.
pub fn scope(name: &str, schema_url: &str) -> InstrumentationScope {
    let b = InstrumentationScope::builder(name.to_string()).with_version(env!("CARGO_PKG_VERSION"));
    if schema_url.is_empty() {
        b.build()
    } else {
        b.with_schema_url(schema_url.to_string()).build()
    }
}

fn proto_value(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> Value {
    match v.as_ref().and_then(|a| a.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Value::from(s.clone()),
        Some(any_value::Value::IntValue(i)) => Value::I64(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::F64(*d),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        // otelsim's resources hold scalars only; anything else is kept readable.
        Some(other) => Value::from(format!("{other:?}")),
        None => Value::from(String::new()),
    }
}

/// The SDK resource with exactly otelsim's resource attributes: no SDK detectors,
/// so both engines report the same resource.
pub fn resource(r: &OtlpResource, schema_url: &str) -> Resource {
    let attrs: Vec<KeyValue> = r
        .attributes
        .iter()
        .map(|kv| KeyValue::new(kv.key.clone(), proto_value(&kv.value)))
        .collect();
    let b = Resource::builder_empty();
    if schema_url.is_empty() {
        b.with_attributes(attrs).build()
    } else {
        b.with_schema_url(attrs, schema_url.to_string()).build()
    }
}
