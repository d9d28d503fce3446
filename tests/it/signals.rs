//! Metrics and logs agree with the traces they were derived from, over real
//! OTLP (gRPC and HTTP) into the sink.

use crate::support::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, AggregationTemporality};
use std::collections::{HashMap, HashSet};

const T0: &str = "2026-05-01T00:00:00Z";

struct Received {
    spans: Vec<Flat>,
    metrics: Vec<ExportMetricsServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
}

fn run(protocol: &str, sim: Otelsim) -> Received {
    let d = sim.deliver(protocol);
    assert!(
        d.snapshot.metric_points > 0 && d.snapshot.log_records > 0,
        "the sink counts metric points and log records: {:?}",
        d.snapshot
    );
    Received {
        spans: d.spans,
        metrics: d.metrics,
        logs: d.logs,
    }
}

/// A flattened metric data point: (name, attributes, count-or-sum, histogram sum, start, time).
#[derive(Debug, Clone)]
struct Point {
    name: String,
    attrs: HashMap<String, String>,
    value: f64,
    count: u64,
    start: u64,
    time: u64,
    temporality: i32,
    exemplars: Vec<(String, String, f64)>,
}

fn points(reqs: &[ExportMetricsServiceRequest]) -> Vec<Point> {
    let mut out = Vec::new();
    for m in reqs
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
    {
        match m.data.as_ref().unwrap() {
            metric::Data::Sum(s) => {
                for p in &s.data_points {
                    let value = match p.value {
                        Some(number_data_point::Value::AsInt(i)) => i as f64,
                        Some(number_data_point::Value::AsDouble(d)) => d,
                        None => panic!("point without value"),
                    };
                    out.push(Point {
                        name: m.name.clone(),
                        attrs: p
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), value_text(kv)))
                            .collect(),
                        value,
                        count: 0,
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        temporality: s.aggregation_temporality,
                        exemplars: vec![],
                    });
                }
            }
            metric::Data::Histogram(h) => {
                for p in &h.data_points {
                    assert_eq!(
                        p.bucket_counts.iter().sum::<u64>(),
                        p.count,
                        "{}: bucket counts add up",
                        m.name
                    );
                    assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
                    out.push(Point {
                        name: m.name.clone(),
                        attrs: p.attributes.iter().map(|kv| (kv.key.clone(), value_text(kv))).collect(),
                        value: p.sum.unwrap(),
                        count: p.count,
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        temporality: h.aggregation_temporality,
                        exemplars: p.exemplars.iter().map(|e| (hex::encode(&e.trace_id), hex::encode(&e.span_id), match e.value { Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(d)) => d, _ => f64::NAN })).collect(),
                    });
                }
            }
            other => panic!("unexpected metric type {other:?}"),
        }
    }
    out
}

/// The points of the last collection (cumulative: the totals).
fn last_collection(ps: &[Point]) -> Vec<Point> {
    let t = ps.iter().map(|p| p.time).max().unwrap();
    ps.iter().filter(|p| p.time == t).cloned().collect()
}

fn spans_of<'a>(spans: &'a [Flat], class: &str) -> Vec<&'a Flat> {
    spans
        .iter()
        .filter(|s| s.attrs.get("vendor.span.class").map(String::as_str) == Some(class))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

fn check_agreement(r: &Received) {
    let ps = last_collection(&points(&r.metrics));
    let total = |name: &str| -> (f64, u64) {
        ps.iter()
            .filter(|p| p.name == name)
            .fold((0.0, 0), |(v, c), p| (v + p.value, c + p.count))
    };
    let llm = spans_of(&r.spans, "llm.call");
    let tools = spans_of(&r.spans, "mcp.tool.execute");
    let turns = spans_of(&r.spans, "a2a.orchestrate");
    assert!(!llm.is_empty() && !tools.is_empty() && !turns.is_empty());
    // Counts equal span counts.
    assert_eq!(total("vendor.llm.count").0 as usize, llm.len());
    assert_eq!(total("vendor.tool.count").0 as usize, tools.len());
    assert_eq!(total("vendor.turn.count").0 as usize, turns.len());
    // Histogram sums equal the spans' durations.
    let dur_ms = |v: &[&Flat]| {
        v.iter()
            .map(|s| (s.end - s.start) as f64 / 1e6)
            .sum::<f64>()
    };
    let (sum, count) = total("vendor.turn.duration_ms");
    assert_eq!(count as usize, turns.len());
    assert!(
        close(sum, dur_ms(&turns)),
        "turn duration sum {sum} vs spans {}",
        dur_ms(&turns)
    );
    let (sum, count) = total("gen_ai.client.operation.duration");
    assert_eq!(count as usize, llm.len());
    assert!(
        close(sum, dur_ms(&llm) / 1000.0),
        "{sum} vs {}",
        dur_ms(&llm) / 1000.0
    );
    let (sum, _) = total("mcp.client.operation.duration");
    assert!(close(sum, dur_ms(&tools) / 1000.0));
    // Token sums equal the spans' token attributes.
    let tokens = |key: &str| {
        llm.iter()
            .map(|s| s.attrs[key].parse::<f64>().unwrap())
            .sum::<f64>()
    };
    assert_eq!(
        total("vendor.llm.tokens.input").0,
        tokens("gen_ai.usage.input_tokens")
    );
    assert_eq!(
        total("vendor.llm.tokens.output").0,
        tokens("gen_ai.usage.output_tokens")
    );
    let usage = |kind: &str| {
        ps.iter()
            .filter(|p| {
                p.name == "gen_ai.client.token.usage" && p.attrs["gen_ai.token.type"] == kind
            })
            .map(|p| p.value)
            .sum::<f64>()
    };
    assert_eq!(usage("input"), tokens("gen_ai.usage.input_tokens"));
    assert_eq!(usage("output"), tokens("gen_ai.usage.output_tokens"));
    // No high-cardinality dimensions.
    for p in &ps {
        for k in p.attrs.keys() {
            assert!(
                !k.contains("session") && !k.contains("request.id") && !k.contains("call.id"),
                "{}: {k}",
                p.name
            );
        }
    }
    // Exemplars point at real spans whose duration is the exemplar's value.
    let by_id: HashMap<(&str, &str), &Flat> = r
        .spans
        .iter()
        .map(|s| ((s.trace_id.as_str(), s.span_id.as_str()), s))
        .collect();
    let mut seen = 0;
    for p in points(&r.metrics)
        .iter()
        .filter(|p| p.name == "vendor.turn.duration_ms")
    {
        for (t, s, v) in &p.exemplars {
            let span = by_id
                .get(&(t.as_str(), s.as_str()))
                .unwrap_or_else(|| panic!("exemplar points at no span"));
            assert!(close(*v, (span.end - span.start) as f64 / 1e6));
            seen += 1;
        }
    }
    assert!(seen > 0, "histograms carry exemplars");
    // Log records belong to received spans and lie inside them.
    let mut events = HashSet::new();
    let mut n = 0;
    for rec in r
        .logs
        .iter()
        .flat_map(|l| &l.resource_logs)
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
    {
        let span = by_id
            .get(&(
                hex::encode(&rec.trace_id).as_str(),
                hex::encode(&rec.span_id).as_str(),
            ))
            .copied()
            .unwrap_or_else(|| panic!("log record {:?} has no span", rec.body));
        assert!(
            span.start <= rec.time_unix_nano && rec.time_unix_nano <= span.end,
            "record inside its span"
        );
        assert_eq!(rec.flags & 1, 1);
        // The event's name is the record's EventName; the `event.name`
        // attribute is deprecated and not set.
        let ev = rec.event_name.clone();
        assert!(!ev.is_empty(), "record without EventName: {:?}", rec.body);
        assert!(
            !rec.attributes.iter().any(|kv| kv.key == "event.name"),
            "{ev}: event.name attribute"
        );
        assert!(rec.severity_number >= 9 && !rec.severity_text.is_empty());
        events.insert(ev);
        n += 1;
    }
    assert!(n > turns.len());
    for ev in [
        "turn.start",
        "turn.end",
        "llm.call.completed",
        "tool.call.completed",
    ] {
        assert!(events.contains(ev), "{ev} missing from {events:?}");
    }
}

#[test]
fn metrics_and_logs_agree_with_traces_over_grpc() {
    let r = run(
        "grpc",
        Otelsim::new()
            .cli("run --count 150 --interval 0")
            .seed(31)
            .cli("--tags data-plane"),
    );
    check_agreement(&r);
}

#[test]
fn metrics_and_logs_agree_with_traces_over_http() {
    let r = run(
        "http/protobuf",
        Otelsim::new()
            .cli("scenario --name tool_retry_backoff --count 40")
            .seed(8)
            .start_time(T0),
    );
    let spans_r = &r;
    // Retries produce retry.scheduled records and the retry-attempt counter.
    let events: HashSet<String> = spans_r
        .logs
        .iter()
        .flat_map(|l| &l.resource_logs)
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
        .map(|rec| rec.event_name.clone())
        .collect();
    assert!(
        events.contains("retry.scheduled") && events.contains("exception"),
        "{events:?}"
    );
    let retries = spans_r
        .spans
        .iter()
        .filter(|s| s.attrs.contains_key("vendor.retry.reason"))
        .count();
    let ps = last_collection(&points(&r.metrics));
    let counted: f64 = ps
        .iter()
        .filter(|p| p.name == "vendor.tool.retry.attempts")
        .map(|p| p.value)
        .sum();
    assert_eq!(counted as usize, retries);
    check_agreement(&r);
}

#[test]
fn control_plane_logs_report_blocks_and_validation_errors() {
    let r = run(
        "grpc",
        Otelsim::new()
            .cli("run --tags control-plane --each-once")
            .seed(2),
    );
    let records: Vec<_> = r
        .logs
        .iter()
        .flat_map(|l| &l.resource_logs)
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
        .collect();
    let count = |ev: &str| records.iter().filter(|rec| rec.event_name == ev).count();
    assert!(count("request.blocked") >= 5, "blocked requests are logged");
    assert!(
        count("validation.error") >= 3,
        "one record per validation error"
    );
    assert!(count("policy.decision") >= 1);
    assert!(count("exception") >= 2);
    let ps = last_collection(&points(&r.metrics));
    let validations = spans_of(&r.spans, "request.validation").len();
    let counted: f64 = ps
        .iter()
        .filter(|p| p.name == "vendor.request.validation.count")
        .map(|p| p.value)
        .sum();
    assert_eq!(counted as usize, validations);
}

#[test]
fn temporality_is_honoured() {
    let base = Otelsim::new()
        .cli("run --count 60 --interval 200")
        .seed(5)
        .start_time(T0)
        .cli("--metrics-interval 2s");
    // Cumulative: one start time, totals only grow, the last collection has everything.
    let r = run("grpc", base.clone());
    let ps: Vec<Point> = points(&r.metrics)
        .into_iter()
        .filter(|p| p.name == "vendor.turn.count")
        .collect();
    let times: HashSet<u64> = ps.iter().map(|p| p.time).collect();
    assert!(
        times.len() >= 4,
        "several collections on the virtual clock: {times:?}"
    );
    assert!(ps
        .iter()
        .all(|p| p.temporality == AggregationTemporality::Cumulative as i32));
    let starts: HashSet<u64> = ps.iter().map(|p| p.start).collect();
    assert_eq!(starts.len(), 1, "cumulative points share their start");
    let mut by_time: Vec<(u64, f64)> = times
        .iter()
        .map(|t| {
            (
                *t,
                ps.iter().filter(|p| p.time == *t).map(|p| p.value).sum(),
            )
        })
        .collect();
    by_time.sort_by_key(|x| x.0);
    assert!(by_time.windows(2).all(|w| w[0].1 <= w[1].1), "{by_time:?}");
    assert_eq!(
        by_time.last().unwrap().1 as usize,
        spans_of(&r.spans, "a2a.orchestrate").len()
    );
    // Delta: windows tile the run (each starts where the previous ended) and add up to the total.
    let r = run("grpc", base.cli("--temporality delta"));
    let ps: Vec<Point> = points(&r.metrics)
        .into_iter()
        .filter(|p| p.name == "vendor.turn.count")
        .collect();
    assert!(ps
        .iter()
        .all(|p| p.temporality == AggregationTemporality::Delta as i32));
    let mut windows: Vec<(u64, u64)> = ps
        .iter()
        .map(|p| (p.start, p.time))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    windows.sort();
    assert!(windows.len() >= 4);
    assert!(
        windows.windows(2).all(|w| w[0].1 == w[1].0),
        "delta windows are contiguous: {windows:?}"
    );
    let sum: f64 = ps.iter().map(|p| p.value).sum();
    assert_eq!(sum as usize, spans_of(&r.spans, "a2a.orchestrate").len());
    // Every data point is stamped after the spans it counts ended... and never in the future of the run clock.
    let last_emit = otelsim::settings::parse_start_time(T0).unwrap() + 59 * 200_000_000;
    assert!(ps.iter().all(|p| p.time <= last_emit));
}

#[test]
fn no_metrics_and_no_logs_mean_none() {
    let rt = runtime();
    let sink = start_sink(&rt);
    Otelsim::new()
        .cli("run --count 20 --interval 0")
        .endpoint(sink.grpc_endpoint())
        .cli("--no-metrics --no-logs")
        .run_ok();
    let snap = sink.stats.snapshot();
    assert!(snap.spans > 0);
    assert_eq!((snap.metric_points, snap.log_records), (0, 0));
    rt.block_on(sink.shutdown());
}

#[test]
fn file_output_is_spec_shaped_otlp_json_and_windows_hold_their_exemplars() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("all.jsonl");
    Otelsim::new()
        .cli("run --count 80 --interval 300")
        .seed(12)
        .start_time(T0)
        .cli("--metrics-interval 3s --temporality delta")
        .output_file(&f)
        .run_ok();
    let mut exemplars = 0;
    let mut seen_points: HashSet<String> = HashSet::new();
    for line in std::fs::read_to_string(&f).unwrap().lines() {
        assert!(!line.contains("null"), "no null fields in OTLP/JSON");
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(rms) = v.get("resourceMetrics") else {
            continue;
        };
        for m in rms
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rm| rm["scopeMetrics"].as_array().unwrap())
            .flat_map(|sm| sm["metrics"].as_array().unwrap())
        {
            let data = m.get("histogram").or(m.get("sum")).unwrap();
            for p in data["dataPoints"].as_array().unwrap() {
                let start: u64 = p["startTimeUnixNano"]
                    .as_str()
                    .expect("int64 as string")
                    .parse()
                    .unwrap();
                let time: u64 = p["timeUnixNano"].as_str().unwrap().parse().unwrap();
                assert!(
                    seen_points.insert(format!("{}{}{}", m["name"], p["attributes"], time)),
                    "a point is exported once"
                );
                if let Some(bc) = p.get("bucketCounts") {
                    assert!(bc.as_array().unwrap().iter().all(|c| c.is_string()));
                    assert!(p["count"].is_string());
                }
                for e in p
                    .get("exemplars")
                    .and_then(|e| e.as_array())
                    .into_iter()
                    .flatten()
                {
                    assert!(
                        e.get("asDouble").is_some() && e.get("value").is_none(),
                        "exemplar value inline: {e}"
                    );
                    let t: u64 = e["timeUnixNano"].as_str().unwrap().parse().unwrap();
                    assert!(
                        start <= t && t <= time,
                        "exemplar inside its window [{start}, {time}]: {t}"
                    );
                    exemplars += 1;
                }
            }
        }
    }
    assert!(exemplars > 0);
}

/// Per metric name: (series, measurements), from one collection.
fn series_and_counts(c: &otelsim::metrics::Collection<'_>) -> HashMap<String, (usize, u64)> {
    let mut out: HashMap<String, (usize, u64)> = HashMap::new();
    for (_, metrics) in &c.services {
        for m in metrics {
            let e = out.entry(m.name.to_string()).or_default();
            e.0 += m.series.len();
            e.1 += m.series.iter().map(|s| s.count).sum::<u64>();
        }
    }
    out
}

#[test]
fn past_its_series_cap_a_metric_counts_new_attribute_sets_in_one_overflow_series() {
    use otelsim::metrics::{Aggregator, MetricsPlan, Temporality, MAX_SERIES_PER_METRIC};
    use otelsim::model::AttrValue;
    let opts = otelsim::plan::WorldOptions {
        vendor: "vendor".into(),
        ..Default::default()
    };
    let prep = otelsim::run::prepare(&Default::default(), &opts).expect("bundled files");
    let world = &prep.world;
    let t0 = 1_800_000_000_000_000_000;
    let mut rng = <rand_pcg::Pcg64Mcg as rand::SeedableRng>::seed_from_u64(5);
    let traces =
        otelsim::run::generate_iteration(world, &prep.plans["new_claim_phone"], t0, 0, &mut rng);
    let tenant = world.keys.tenant_id;
    let as_tenant = |n: usize| {
        let mut ts = traces.clone();
        for s in ts.iter_mut().flat_map(|t| t.spans.iter_mut()) {
            if s.attr(&tenant).is_some() {
                s.set_attr(tenant, AttrValue::str(&format!("tenant-{n}")));
            }
        }
        ts
    };
    let aggregator = || {
        Aggregator::new(
            MetricsPlan::new(world, &prep.registry.semconv),
            Temporality::Cumulative,
            t0 - 1,
        )
    };
    // What one pick measures, per metric.
    let mut one = aggregator();
    for t in &as_tenant(0) {
        one.record(world, t, t0);
    }
    let one = one.collect(t0 + 1).expect("a collection");
    let per_pick = series_and_counts(&one);
    // Many more tenants than a metric may have series, then the first tenant again.
    let picks = MAX_SERIES_PER_METRIC + 300;
    let mut many = aggregator();
    for n in (0..picks).chain([0]) {
        for t in &as_tenant(n) {
            many.record(world, t, t0);
        }
    }
    let c = many.collect(t0 + 1).expect("a collection");
    let seen = series_and_counts(&c);
    let mut capped = 0;
    for (name, (series, count)) in &seen {
        let (one_series, one_count) = per_pick[name];
        // Nothing measured is lost: every pick counts, in some series.
        assert_eq!(*count, one_count * (picks as u64 + 1), "{name}");
        assert!(
            *series <= MAX_SERIES_PER_METRIC + one_series,
            "{name}: {series} series"
        );
        if *series > MAX_SERIES_PER_METRIC {
            capped += 1;
        }
    }
    assert!(
        capped > 0,
        "a metric with the tenant as a dimension reached its cap: {seen:?}"
    );
    let overflow = c
        .services
        .iter()
        .flat_map(|(_, ms)| ms.iter().flat_map(|m| m.series.iter()))
        .filter(|s| s.attrs.iter().any(|(k, _)| &**k == "otel.metric.overflow"))
        .collect::<Vec<_>>();
    assert!(!overflow.is_empty(), "an overflow series");
    // The first tenant, measured again after the cap, went back to its own series.
    let first = AttrValue::str("tenant-0");
    let of_first = |c: &otelsim::metrics::Collection<'_>| -> u64 {
        c.services
            .iter()
            .flat_map(|(_, ms)| ms.iter().flat_map(|m| m.series.iter()))
            .filter(|s| s.attrs.iter().any(|(k, v)| *k == tenant && *v == first))
            .map(|s| s.count)
            .sum()
    };
    assert!(of_first(&one) > 0, "tenant-0's series");
    assert_eq!(of_first(&c), 2 * of_first(&one), "tenant-0 measured twice");
}
