//! Encode: trace records → OTLP export requests (protobuf types; JSON via serde).
//!
//! All spans of the given traces go into ONE request, grouped by resource
//! (plane + component) and instrumentation scope (`otelsim.<scenario>`), so a
//! trace never spans two export requests.

pub mod metrics;
mod room;
pub mod wire;

use crate::model::AttrValue;
use crate::plan::World;
use crate::record::{Key, LogRecord, ServiceId, SpanKind, SpanRecord, StatusCode, TraceRecord};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpLogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An attribute value as an OTLP `AnyValue`.
pub fn any_value(v: &AttrValue) -> AnyValue {
    AnyValue {
        value: Some(match v {
            AttrValue::Str(s) => any_value::Value::StringValue(s.to_string()),
            AttrValue::Int(i) => any_value::Value::IntValue(*i),
            AttrValue::Double(d) => any_value::Value::DoubleValue(*d),
            AttrValue::Bool(b) => any_value::Value::BoolValue(*b),
            AttrValue::StrArray(items) => any_value::Value::ArrayValue(ArrayValue {
                values: items
                    .iter()
                    .map(|s| AnyValue {
                        value: Some(any_value::Value::StringValue(s.to_string())),
                    })
                    .collect(),
            }),
        }),
    }
}

/// An attribute as an OTLP `KeyValue`.
pub fn key_value(k: &str, v: &AttrValue) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(any_value(v)),
    }
}

/// The OTLP `Resource` of every service of the run (with the run's own
/// attributes, such as `otelsim.run.id`), built once and indexed by `ServiceId`.
#[derive(Clone, Debug)]
pub struct Resources {
    schema_url: String,
    by_service: Arc<[Resource]>,
    /// `service.name` of each service, for reports.
    names: Arc<[String]>,
}

impl Resources {
    /// Resources for `world`'s services; `extra` goes after each service's own
    /// attributes (before a plane component's `component`).
    pub fn new(world: &World, extra: &[(String, AttrValue)]) -> Self {
        let by_service: Vec<Resource> = world
            .services
            .iter()
            .map(|(_, svc)| Resource {
                attributes: svc
                    .attrs
                    .iter()
                    .chain(extra.iter())
                    .chain(svc.after_run.iter())
                    .map(|(k, v)| key_value(k, v))
                    .collect(),
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            })
            .collect();
        let names = world
            .services
            .iter()
            .map(|(_, svc)| svc.name().map(ToString::to_string).unwrap_or_default())
            .collect::<Vec<_>>();
        Resources {
            schema_url: world.schema_url.clone().unwrap_or_default(),
            by_service: by_service.into(),
            names: names.into(),
        }
    }

    /// The resource of a service.
    pub fn resource(&self, id: ServiceId) -> Resource {
        self.by_service[usize::from(id.0)].clone()
    }

    /// `service.name` of a service.
    pub fn service_name(&self, id: ServiceId) -> &str {
        &self.names[usize::from(id.0)]
    }

    /// The schema URL every resource and scope carries.
    pub fn schema_url(&self) -> &str {
        &self.schema_url
    }
}

fn kind(k: SpanKind) -> i32 {
    (match k {
        SpanKind::Internal => span::SpanKind::Internal,
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
        SpanKind::Producer => span::SpanKind::Producer,
        SpanKind::Consumer => span::SpanKind::Consumer,
    }) as i32
}

fn encode_span(trace_id: &[u8; 16], s: &SpanRecord) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        trace_state: String::new(),
        parent_span_id: s.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        flags: 0x100 | 0x01, // sampled; parent-is-remote known (false)
        name: s.name.to_string(),
        kind: kind(s.kind),
        start_time_unix_nano: s.start_ns,
        end_time_unix_nano: s.end_ns,
        attributes: s.attrs.iter().map(|(k, v)| key_value(k, v)).collect(),
        dropped_attributes_count: 0,
        events: s
            .events
            .iter()
            .map(|e| span::Event {
                time_unix_nano: e.time_ns,
                name: e.name.to_string(),
                attributes: e.attrs.iter().map(|(k, v)| key_value(k, v)).collect(),
                dropped_attributes_count: 0,
            })
            .collect(),
        dropped_events_count: 0,
        links: s
            .links
            .iter()
            .map(|(t, sp)| span::Link {
                trace_id: t.to_vec(),
                span_id: sp.to_vec(),
                trace_state: String::new(),
                attributes: Vec::new(),
                dropped_attributes_count: 0,
                flags: 0x100 | 0x01,
            })
            .collect(),
        dropped_links_count: 0,
        status: Some(Status {
            message: s.status_message.as_deref().unwrap_or_default().to_string(),
            code: match s.status {
                StatusCode::Unset => status::StatusCode::Unset,
                StatusCode::Ok => status::StatusCode::Ok,
                StatusCode::Error => status::StatusCode::Error,
            } as i32,
        }),
    }
}

/// The instrumentation scope otelsim reports under `name`, with its own version.
pub fn scope_named(name: &str) -> InstrumentationScope {
    InstrumentationScope {
        name: name.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    }
}

/// One export request holding every span of `traces`.
pub fn traces_request(traces: &[TraceRecord], resources: &Resources) -> ExportTraceServiceRequest {
    let mut groups: BTreeMap<ServiceId, BTreeMap<Key, Vec<Span>>> = BTreeMap::new();
    for t in traces {
        for s in &t.spans {
            groups
                .entry(s.service)
                .or_default()
                .entry(t.scope)
                .or_default()
                .push(encode_span(&t.trace_id, s));
        }
    }
    let resource_spans = groups
        .into_iter()
        .map(|(rk, scopes)| ResourceSpans {
            resource: Some(resources.resource(rk)),
            scope_spans: scopes
                .into_iter()
                .map(|(scope, spans)| ScopeSpans {
                    scope: Some(scope_named(&scope)),
                    spans,
                    schema_url: resources.schema_url().to_string(),
                })
                .collect(),
            schema_url: resources.schema_url().to_string(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// One export request holding `records`, grouped by resource and scope.
pub fn logs_request(records: &[LogRecord], resources: &Resources) -> ExportLogsServiceRequest {
    let mut groups: BTreeMap<ServiceId, BTreeMap<Key, Vec<OtlpLogRecord>>> = BTreeMap::new();
    for r in records {
        groups
            .entry(r.service)
            .or_default()
            .entry(r.scope)
            .or_default()
            .push(OtlpLogRecord {
                time_unix_nano: r.time_ns,
                observed_time_unix_nano: r.time_ns,
                severity_number: r.severity.number(),
                severity_text: r.severity.text().to_string(),
                body: Some(any_value(&AttrValue::Str(r.body.clone().into()))),
                attributes: r.attrs().map(|(k, v)| key_value(k, v)).collect(),
                dropped_attributes_count: 0,
                flags: 0x01, // sampled, like the span it belongs to
                trace_id: r.trace_id.to_vec(),
                span_id: r.span_id.to_vec(),
                event_name: r.event_name.to_string(),
            });
    }
    ExportLogsServiceRequest {
        resource_logs: groups
            .into_iter()
            .map(|(rk, scopes)| ResourceLogs {
                resource: Some(resources.resource(rk)),
                scope_logs: scopes
                    .into_iter()
                    .map(|(scope, log_records)| ScopeLogs {
                        scope: Some(scope_named(&scope)),
                        log_records,
                        schema_url: resources.schema_url().to_string(),
                    })
                    .collect(),
                schema_url: resources.schema_url().to_string(),
            })
            .collect(),
    }
}

/// OTLP/JSON of a request, as one line (the Collector file exporter's format).
pub fn to_json_line<T: serde::Serialize>(req: &T) -> String {
    match serde_json::to_value(req) {
        Ok(mut v) => {
            to_otlp_json(&mut v);
            v.to_string()
        }
        Err(e) => format!("{{\"error\":\"cannot encode: {e}\"}}"),
    }
}

/// 64-bit integer fields, which OTLP/JSON writes as decimal strings.
const INT64_FIELDS: &[&str] = &[
    "timeUnixNano",
    "startTimeUnixNano",
    "observedTimeUnixNano",
    "count",
    "asInt",
    "intValue",
];

/// Brings opentelemetry-proto's serde output in line with the OTLP/JSON encoding:
/// 64-bit integers as strings, exemplar values inline (`asDouble` beside
/// `timeUnixNano`, not under `value`), and no `null` fields.
fn to_otlp_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            map.retain(|_, x| !x.is_null());
            if let Some(Value::Object(inner)) = map.get("value").cloned() {
                if inner.contains_key("asDouble") || inner.contains_key("asInt") {
                    map.remove("value");
                    map.extend(inner);
                }
            }
            for (k, x) in map.iter_mut() {
                match x {
                    Value::Number(n)
                        if INT64_FIELDS.contains(&k.as_str()) && (n.is_i64() || n.is_u64()) =>
                    {
                        let text = n.to_string();
                        *x = Value::String(text);
                    }
                    Value::Array(items) if k == "bucketCounts" => {
                        for it in items.iter_mut() {
                            if it.is_number() {
                                *it = Value::String(it.to_string());
                            }
                        }
                    }
                    _ => to_otlp_json(x),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_otlp_json),
        _ => {}
    }
}
