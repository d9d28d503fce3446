//! OTLP/JSON decoding on top of opentelemetry-proto's `with-serde` derives.
//!
//! Those derives (0.31) follow the OTLP/JSON encoding only in part:
//!
//! * 64-bit integers: span/log/event times and number/histogram point times
//!   must be *strings*, while `asInt`, histogram `count` / `bucketCounts`,
//!   and every integer of exponential-histogram, summary and exemplar points
//!   must be *numbers* (proto3 JSON allows both on input);
//! * the request messages, `KeyValue`, `ArrayValue`, `KeyValueList`,
//!   `EntityRef`, exponential-histogram / summary points and exemplars lack
//!   `#[serde(default)]`, so omitted default-valued fields are errors;
//! * exemplar `asDouble` / `asInt` are expected nested under `"value"`;
//! * `Metric.data` and `NumberDataPoint.value` are flattened `Option`s, and
//!   serde turns any error inside those into `None`, silently;
//! * `null` members are rejected where proto3 JSON means "default".
//!
//! Real senders (the collector, SDKs) write spec-shaped JSON, so before
//! handing the document to serde we rewrite it, schema-aware, into the shape
//! the derives accept, and check the flattened oneofs ourselves. Anything the
//! rewrite does not recognise is left alone for serde to report. Nesting
//! depth is bounded by serde_json's recursion limit on the initial parse.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use serde_json::{Map, Value};

type Obj = Map<String, Value>;

type JsonResult<T> = Result<T, serde_json::Error>;

fn invalid(msg: impl std::fmt::Display) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(msg)
}

/// Decodes an OTLP/JSON `ExportTraceServiceRequest`.
pub fn decode_traces(body: &[u8]) -> JsonResult<ExportTraceServiceRequest> {
    let mut v: Value = serde_json::from_slice(body)?;
    if let Some(m) = v.as_object_mut() {
        request(m, "resourceSpans", "scopeSpans", "spans", span)?;
    }
    serde_json::from_value(v)
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`.
///
/// `Metric.data` is a flattened `Option` in the derive, and serde turns any
/// error inside a flattened `Option` into `None`: a malformed gauge would
/// silently become a metric without data. So the data member is taken out
/// and decoded on its own, where errors surface.
pub fn decode_metrics(body: &[u8]) -> JsonResult<ExportMetricsServiceRequest> {
    let mut v: Value = serde_json::from_slice(body)?;
    let mut data = Vec::new();
    if let Some(m) = v.as_object_mut() {
        request(m, "resourceMetrics", "scopeMetrics", "metrics", metric)?;
        for rm in objects(m, "resourceMetrics") {
            for sm in objects(rm, "scopeMetrics") {
                for metric in objects(sm, "metrics") {
                    data.push(take_metric_data(metric)?);
                }
            }
        }
    }
    let mut req: ExportMetricsServiceRequest = serde_json::from_value(v)?;
    // from_value succeeded, so every level was an array of objects and the
    // walk above visited the metrics in the same order.
    let mut data = data.into_iter();
    for metric in req
        .resource_metrics
        .iter_mut()
        .flat_map(|rm| &mut rm.scope_metrics)
        .flat_map(|sm| &mut sm.metrics)
    {
        metric.data = data
            .next()
            .ok_or_else(|| invalid("metric list changed while decoding"))?;
    }
    Ok(req)
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest`.
pub fn decode_logs(body: &[u8]) -> JsonResult<ExportLogsServiceRequest> {
    let mut v: Value = serde_json::from_slice(body)?;
    if let Some(m) = v.as_object_mut() {
        request(m, "resourceLogs", "scopeLogs", "logRecords", log_record)?;
    }
    serde_json::from_value(v)
}

const METRIC_KINDS: [&str; 5] = [
    "gauge",
    "sum",
    "histogram",
    "exponentialHistogram",
    "summary",
];

/// Removes and decodes the oneof member of a metric (at most one allowed).
fn take_metric_data(m: &mut Obj) -> JsonResult<Option<Data>> {
    let mut found: Option<Data> = None;
    for kind in METRIC_KINDS {
        let Some(value) = m.remove(kind) else {
            continue;
        };
        if found.is_some() {
            return Err(invalid("metric has more than one data member"));
        }
        found = Some(serde_json::from_value(single(kind, value))?);
    }
    Ok(found)
}

/// Walks request → resource → scope → item, the layout shared by all signals.
fn request(
    m: &mut Obj,
    resources: &str,
    scopes: &str,
    items: &str,
    item: fn(&mut Obj) -> JsonResult<()>,
) -> JsonResult<()> {
    strip_nulls(m);
    default(m, resources, Value::Array(Vec::new()));
    for r in objects(m, resources) {
        strip_nulls(r);
        if let Some(res) = object(r, "resource") {
            resource(res);
        }
        for s in objects(r, scopes) {
            strip_nulls(s);
            if let Some(sc) = object(s, "scope") {
                strip_nulls(sc);
                key_values(sc, "attributes");
            }
            for it in objects(s, items) {
                item(it)?;
            }
        }
    }
    Ok(())
}

fn resource(m: &mut Obj) {
    strip_nulls(m);
    key_values(m, "attributes");
    // EntityRef has no #[serde(default)].
    for e in objects(m, "entityRefs") {
        strip_nulls(e);
        default(e, "schemaUrl", Value::from(""));
        default(e, "type", Value::from(""));
        default(e, "idKeys", Value::Array(Vec::new()));
        default(e, "descriptionKeys", Value::Array(Vec::new()));
    }
}

fn span(m: &mut Obj) -> JsonResult<()> {
    strip_nulls(m);
    int_to_string(m, "startTimeUnixNano");
    int_to_string(m, "endTimeUnixNano");
    key_values(m, "attributes");
    for ev in objects(m, "events") {
        strip_nulls(ev);
        int_to_string(ev, "timeUnixNano");
        key_values(ev, "attributes");
    }
    for link in objects(m, "links") {
        strip_nulls(link);
        key_values(link, "attributes");
    }
    if let Some(st) = object(m, "status") {
        strip_nulls(st);
    }
    Ok(())
}

fn log_record(m: &mut Obj) -> JsonResult<()> {
    strip_nulls(m);
    int_to_string(m, "timeUnixNano");
    int_to_string(m, "observedTimeUnixNano");
    key_values(m, "attributes");
    optional_any_value(m, "body");
    Ok(())
}

fn metric(m: &mut Obj) -> JsonResult<()> {
    strip_nulls(m);
    key_values(m, "metadata");
    for kind in ["gauge", "sum"] {
        if let Some(d) = object(m, kind) {
            strip_nulls(d);
            for dp in objects(d, "dataPoints") {
                number_point(dp)?;
            }
        }
    }
    if let Some(d) = object(m, "histogram") {
        strip_nulls(d);
        for dp in objects(d, "dataPoints") {
            histogram_point(dp);
        }
    }
    if let Some(d) = object(m, "exponentialHistogram") {
        strip_nulls(d);
        for dp in objects(d, "dataPoints") {
            exponential_point(dp);
        }
    }
    if let Some(d) = object(m, "summary") {
        strip_nulls(d);
        for dp in objects(d, "dataPoints") {
            summary_point(dp);
        }
    }
    Ok(())
}

fn number_point(m: &mut Obj) -> JsonResult<()> {
    strip_nulls(m);
    int_to_string(m, "startTimeUnixNano");
    int_to_string(m, "timeUnixNano");
    int_to_number(m, "asInt");
    // The value oneof is a flattened Option too: check it here, since serde
    // would turn a bad value into "no value" without complaint.
    if let Some(v) = m.get("asInt") {
        if v.as_i64().is_none() {
            return Err(invalid(format!("asInt is not a 64-bit integer: {v}")));
        }
    }
    if let Some(v) = m.get("asDouble") {
        if !v.is_number() {
            return Err(invalid(format!("asDouble is not a number: {v}")));
        }
    }
    key_values(m, "attributes");
    exemplars(m);
    Ok(())
}

fn histogram_point(m: &mut Obj) {
    strip_nulls(m);
    int_to_string(m, "startTimeUnixNano");
    int_to_string(m, "timeUnixNano");
    int_to_number(m, "count");
    ints_to_numbers(m, "bucketCounts");
    key_values(m, "attributes");
    exemplars(m);
}

fn exponential_point(m: &mut Obj) {
    strip_nulls(m);
    for k in ["startTimeUnixNano", "timeUnixNano", "count", "zeroCount"] {
        int_to_number(m, k);
        default(m, k, Value::from(0u64));
    }
    default(m, "attributes", Value::Array(Vec::new()));
    default(m, "scale", Value::from(0));
    default(m, "flags", Value::from(0));
    default(m, "exemplars", Value::Array(Vec::new()));
    default(m, "zeroThreshold", Value::from(0.0));
    key_values(m, "attributes");
    for side in ["positive", "negative"] {
        if let Some(b) = object(m, side) {
            strip_nulls(b);
            default(b, "offset", Value::from(0));
            default(b, "bucketCounts", Value::Array(Vec::new()));
            ints_to_numbers(b, "bucketCounts");
        }
    }
    exemplars(m);
}

fn summary_point(m: &mut Obj) {
    strip_nulls(m);
    for k in ["startTimeUnixNano", "timeUnixNano", "count"] {
        int_to_number(m, k);
        default(m, k, Value::from(0u64));
    }
    default(m, "attributes", Value::Array(Vec::new()));
    default(m, "sum", Value::from(0.0));
    default(m, "quantileValues", Value::Array(Vec::new()));
    default(m, "flags", Value::from(0));
    key_values(m, "attributes");
    for q in objects(m, "quantileValues") {
        strip_nulls(q);
        default(q, "quantile", Value::from(0.0));
        default(q, "value", Value::from(0.0));
    }
}

fn exemplars(m: &mut Obj) {
    for ex in objects(m, "exemplars") {
        strip_nulls(ex);
        int_to_number(ex, "timeUnixNano");
        default(ex, "timeUnixNano", Value::from(0u64));
        default(ex, "filteredAttributes", Value::Array(Vec::new()));
        default(ex, "spanId", Value::from(""));
        default(ex, "traceId", Value::from(""));
        key_values(ex, "filteredAttributes");
        // Spec JSON inlines the oneof (`"asDouble": 1.5`); the derive expects
        // it under `"value"`.
        if let Some(x) = ex.remove("asDouble") {
            ex.insert("value".into(), single("asDouble", x));
        } else if let Some(mut x) = ex.remove("asInt") {
            coerce_to_number(&mut x);
            ex.insert("value".into(), single("asInt", x));
        }
    }
}

/// Normalises a list of `KeyValue`s under `key`.
fn key_values(m: &mut Obj, key: &str) {
    for kv in objects(m, key) {
        strip_nulls(kv);
        default(kv, "key", Value::from(""));
        optional_any_value(kv, "value");
    }
}

/// An `AnyValue` in an optional message field: an empty object means "unset"
/// in proto3 JSON but the derive rejects it, so drop it instead.
fn optional_any_value(m: &mut Obj, key: &str) {
    let empty = matches!(m.get(key), Some(Value::Object(o)) if o.is_empty());
    if empty {
        m.remove(key);
    } else if let Some(v) = m.get_mut(key) {
        any_value(v);
    }
}

fn any_value(v: &mut Value) {
    let Some(m) = v.as_object_mut() else { return };
    strip_nulls(m);
    // intValue is accepted as number or string by the derive already.
    if let Some(arr) = object(m, "arrayValue") {
        strip_nulls(arr);
        default(arr, "values", Value::Array(Vec::new()));
        if let Some(Value::Array(items)) = arr.get_mut("values") {
            for item in items {
                any_value(item);
            }
        }
    }
    if let Some(kvl) = object(m, "kvlistValue") {
        strip_nulls(kvl);
        default(kvl, "values", Value::Array(Vec::new()));
        key_values(kvl, "values");
    }
}

fn strip_nulls(m: &mut Obj) {
    m.retain(|_, v| !v.is_null());
}

fn default(m: &mut Obj, key: &str, value: Value) {
    if !m.contains_key(key) {
        m.insert(key.to_owned(), value);
    }
}

fn object<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// The object elements of the array under `key` (non-objects are skipped and
/// left for serde to reject).
fn objects<'a>(m: &'a mut Obj, key: &str) -> impl Iterator<Item = &'a mut Obj> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn single(key: &str, value: Value) -> Value {
    let mut o = Obj::new();
    o.insert(key.to_owned(), value);
    Value::Object(o)
}

/// For fields the derive reads with a string-only deserializer.
fn int_to_string(m: &mut Obj, key: &str) {
    if let Some(v) = m.get_mut(key) {
        if let Value::Number(n) = v {
            *v = Value::String(n.to_string());
        }
    }
}

/// For 64-bit fields the derive reads as plain JSON numbers.
fn int_to_number(m: &mut Obj, key: &str) {
    if let Some(v) = m.get_mut(key) {
        coerce_to_number(v);
    }
}

fn ints_to_numbers(m: &mut Obj, key: &str) {
    if let Some(Value::Array(items)) = m.get_mut(key) {
        items.iter_mut().for_each(coerce_to_number);
    }
}

/// Turns a decimal string into a JSON integer; anything else is left as is.
fn coerce_to_number(v: &mut Value) {
    let Value::String(s) = v else { return };
    let s = s.trim();
    if let Ok(u) = s.parse::<u64>() {
        *v = Value::from(u);
    } else if let Ok(i) = s.parse::<i64>() {
        *v = Value::from(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{exemplar, metric::Data, number_data_point};

    #[test]
    fn spec_shaped_metrics_are_accepted() {
        // As the collector writes it: int64 as strings, exemplar value
        // inlined, default-valued fields omitted.
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[
              {"key":"service.name","value":{"stringValue":"svc"}}]},
            "scopeMetrics":[{"scope":{"name":"otelsim.demo"},"metrics":[
              {"name":"g","gauge":{"dataPoints":[{"asInt":"7","timeUnixNano":"1700000000000000000",
                  "exemplars":[{"asDouble":1.5,"timeUnixNano":"5","traceId":"5b8efff798038103d269b633813fc60c"}]}]}},
              {"name":"h","histogram":{"aggregationTemporality":2,"dataPoints":[
                  {"count":"3","sum":6.0,"bucketCounts":["1","2"],"explicitBounds":[1.0],
                   "startTimeUnixNano":1,"timeUnixNano":2}]}},
              {"name":"e","exponentialHistogram":{"dataPoints":[{"count":"4","positive":{"bucketCounts":["4"]}}]}},
              {"name":"s","summary":{"dataPoints":[{"count":"2","quantileValues":[{"quantile":0.5}]}]}}
            ]}]}]}"#;
        let req = decode_metrics(body).expect("decode");
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 4);
        let Some(Data::Gauge(g)) = &metrics[0].data else {
            panic!("gauge expected")
        };
        assert_eq!(
            g.data_points[0].value,
            Some(number_data_point::Value::AsInt(7))
        );
        assert_eq!(g.data_points[0].time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(
            g.data_points[0].exemplars[0].value,
            Some(exemplar::Value::AsDouble(1.5))
        );
        assert_eq!(g.data_points[0].exemplars[0].trace_id.len(), 16);
        let Some(Data::Histogram(h)) = &metrics[1].data else {
            panic!("histogram expected")
        };
        assert_eq!(h.data_points[0].count, 3);
        assert_eq!(h.data_points[0].bucket_counts, vec![1, 2]);
        assert_eq!(h.data_points[0].time_unix_nano, 2);
        let Some(Data::ExponentialHistogram(e)) = &metrics[2].data else {
            panic!("exponential histogram expected")
        };
        assert_eq!(e.data_points[0].count, 4);
        let Some(Data::Summary(s)) = &metrics[3].data else {
            panic!("summary expected")
        };
        assert_eq!(s.data_points[0].quantile_values.len(), 1);
    }

    #[test]
    fn nulls_and_empty_objects_mean_default() {
        let body = br#"{"resourceSpans":[{"resource":null,"scopeSpans":[{"scope":{"name":"x"},
            "spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
              "name":"s","startTimeUnixNano":10,"endTimeUnixNano":"20","status":null,
              "attributes":[{"key":"k","value":{}},{"key":"a","value":{"arrayValue":{}}}]}]}]}]}"#;
        let req = decode_traces(body).expect("decode");
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.start_time_unix_nano, 10);
        assert_eq!(span.end_time_unix_nano, 20);
        assert_eq!(span.attributes[0].value, None);
        assert!(decode_traces(b"{}")
            .expect("empty request")
            .resource_spans
            .is_empty());
        assert!(decode_logs(b"{}").is_ok());
    }

    #[test]
    fn hostile_json_is_an_error_not_a_panic() {
        for body in [&b"[]"[..], b"null", b"\"x\"", b"{\"resourceSpans\":5}"] {
            assert!(
                decode_traces(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [
            &br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#[..],
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":-1}]}]}]}"#,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":{"nope":1}}]}]}]}]}"#,
        ] {
            assert!(decode_traces(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        for body in [
            &br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"dataPoints":[{"asInt":"1e99"}]}}]}]}]}"#[..],
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"asDouble":"x"}]}}]}]}]}"#,
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":5}]}]}]}"#,
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{},"sum":{}}]}]}]}"#,
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"attributes":[{"key":"k","value":{"x":1}}]}]}}]}]}]}"#,
        ] {
            assert!(decode_metrics(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        let deep = "[".repeat(10_000);
        assert!(decode_logs(deep.as_bytes()).is_err());
        let deep_any = format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{}{}}}]}}]}}]}}"#,
            r#"{"arrayValue":{"values":["#.repeat(200),
            "]}}".repeat(200)
        );
        assert!(decode_logs(deep_any.as_bytes()).is_err());
    }
}
