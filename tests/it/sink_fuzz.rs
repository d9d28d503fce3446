//! Hostile input for the sink's decoders: random bytes and mutations of real
//! OTLP requests (traces, metrics and logs; protobuf and JSON; gzipped or not)
//! through the very path the servers use (`sink::decode::decode`, then the
//! counters), and over real HTTP to a running sink. Nothing may panic, every
//! request gets an answer, and the work is bounded: what is accepted holds no
//! more items than the limit, and the memory decoding allocates (measured by
//! this binary's allocator, per thread) stays within what the request reserved
//! from the sink's budget.

use crate::alloc::peak_alloc as peak_during;
use crate::support::*;
use otelsim::sink::budget::Budget;
use otelsim::sink::decode::{decode, RefusalKind, RequestLimits, Signal, Wire};
use otelsim::sink::{SinkStats, Transport};
use proptest::prelude::*;
use prost::Message as _;
use rand::SeedableRng;
use std::io::Write as _;
use std::sync::OnceLock;

/// Allocations of a decode that are not reserved: the scanner's stack, error
/// messages and the like.
const DECODER_OVERHEAD: usize = 16 * 1024;

/// A real request of each signal and encoding.
struct Sample {
    signal: Signal,
    wire: Wire,
    body: Vec<u8>,
}

/// Real requests of a few realistic picks: traces, metrics and logs, as
/// protobuf and as JSON.
fn samples() -> &'static [Sample] {
    static S: OnceLock<Vec<Sample>> = OnceLock::new();
    S.get_or_init(|| {
        let opts = otelsim::plan::WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        };
        let prep = otelsim::run::prepare(&Default::default(), &opts).expect("bundled files");
        let resources = otelsim::encode::Resources::new(
            &prep.world,
            &[(
                "otelsim.run.id".into(),
                otelsim::model::AttrValue::str("fuzz"),
            )],
        );
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
        let t0 = 1_800_000_000_000_000_000;
        let mut traces = Vec::new();
        for name in [
            "new_claim_phone",
            "tool_retry_backoff",
            "request_blocked_invalid_payload",
        ] {
            let plan = &prep.plans[name];
            traces.extend(otelsim::run::generate_iteration(
                &prep.world,
                plan,
                t0,
                0,
                &mut rng,
            ));
        }
        let mut logs = Vec::new();
        for t in &traces {
            otelsim::logs::derive(&prep.world, t, &mut logs);
        }
        let mut aggregator = otelsim::metrics::Aggregator::new(
            otelsim::metrics::MetricsPlan::new(&prep.world, &prep.registry.semconv),
            otelsim::metrics::Temporality::Cumulative,
            t0 - 1_000_000_000,
        );
        for t in &traces {
            aggregator.record(&prep.world, t, t0);
        }
        let metrics = {
            let c = aggregator.collect(t0 + 1).expect("a collection");
            otelsim::encode::metrics::metrics_request(&c, &resources).0
        };
        let tr = otelsim::encode::traces_request(&traces, &resources);
        let lr = otelsim::encode::logs_request(&logs, &resources);
        let json = |v: &dyn erased::Json| v.to_json();
        vec![
            Sample {
                signal: Signal::Traces,
                wire: Wire::Protobuf,
                body: tr.encode_to_vec(),
            },
            Sample {
                signal: Signal::Metrics,
                wire: Wire::Protobuf,
                body: metrics.encode_to_vec(),
            },
            Sample {
                signal: Signal::Logs,
                wire: Wire::Protobuf,
                body: lr.encode_to_vec(),
            },
            Sample {
                signal: Signal::Traces,
                wire: Wire::Json,
                body: json(&tr),
            },
            Sample {
                signal: Signal::Metrics,
                wire: Wire::Json,
                body: json(&metrics),
            },
            Sample {
                signal: Signal::Logs,
                wire: Wire::Json,
                body: json(&lr),
            },
        ]
    })
}

/// Serialising the three request types behind one reference.
mod erased {
    pub trait Json {
        fn to_json(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Vec<u8> {
            serde_json::to_vec(self).expect("json")
        }
    }
}

/// Requests of random shape, built to decode: many empty or nearly empty
/// repeated messages (what amplifies most), nested attribute values, every
/// metric point type. Driven by a seed so proptest can shrink it.
mod shaped {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
    };
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        exponential_histogram_data_point::Buckets, metric::Data,
        summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogram,
        ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};
    use rand::{Rng, SeedableRng};

    type R = rand_pcg::Pcg64Mcg;

    fn n(rng: &mut R, most: usize) -> usize {
        // Mostly few, sometimes many.
        if rng.random_bool(0.2) {
            rng.random_range(0..=most)
        } else {
            rng.random_range(0..=most.min(3))
        }
    }

    fn value(rng: &mut R, depth: u32) -> Option<AnyValue> {
        let v = match rng.random_range(0..6) {
            0 => None,
            1 => Some(any_value::Value::StringValue("x".repeat(n(rng, 40)))),
            2 => Some(any_value::Value::IntValue(7)),
            3 if depth > 0 => Some(any_value::Value::ArrayValue(ArrayValue {
                // An element without a value has no OTLP/JSON form the
                // decoder's serde derives accept; give each one.
                values: (0..n(rng, 30))
                    .map(|_| match value(rng, depth - 1) {
                        Some(v) if v.value.is_some() => v,
                        _ => AnyValue {
                            value: Some(any_value::Value::BoolValue(true)),
                        },
                    })
                    .collect(),
            })),
            4 if depth > 0 => Some(any_value::Value::KvlistValue(KeyValueList {
                values: attrs(rng, depth - 1),
            })),
            _ => Some(any_value::Value::BytesValue(vec![1; n(rng, 8)])),
        };
        rng.random_bool(0.8).then_some(AnyValue { value: v })
    }

    fn attrs(rng: &mut R, depth: u32) -> Vec<KeyValue> {
        (0..n(rng, 20))
            .map(|_| KeyValue {
                key: "k".repeat(n(rng, 3)),
                value: value(rng, depth),
            })
            .collect()
    }

    fn resource(rng: &mut R) -> Option<Resource> {
        rng.random_bool(0.5).then(|| Resource {
            attributes: attrs(rng, 1),
            ..Default::default()
        })
    }

    fn scope(rng: &mut R) -> Option<InstrumentationScope> {
        rng.random_bool(0.5).then(|| InstrumentationScope {
            name: "otelsim.s".into(),
            attributes: attrs(rng, 0),
            ..Default::default()
        })
    }

    fn id(rng: &mut R, len: usize) -> Vec<u8> {
        if rng.random_bool(0.3) {
            Vec::new()
        } else {
            (0..len).map(|_| rng.random()).collect()
        }
    }

    pub fn traces(seed: u64) -> ExportTraceServiceRequest {
        let rng = &mut R::seed_from_u64(seed);
        ExportTraceServiceRequest {
            resource_spans: (0..n(rng, 60))
                .map(|_| ResourceSpans {
                    resource: resource(rng),
                    scope_spans: (0..n(rng, 10))
                        .map(|_| ScopeSpans {
                            scope: scope(rng),
                            spans: (0..n(rng, 100))
                                .map(|_| Span {
                                    trace_id: id(rng, 16),
                                    span_id: id(rng, 8),
                                    parent_span_id: id(rng, 8),
                                    attributes: attrs(rng, 2),
                                    events: (0..n(rng, 20))
                                        .map(|_| span::Event {
                                            attributes: attrs(rng, 0),
                                            ..Default::default()
                                        })
                                        .collect(),
                                    links: (0..n(rng, 20))
                                        .map(|_| span::Link {
                                            attributes: attrs(rng, 0),
                                            ..Default::default()
                                        })
                                        .collect(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    pub fn logs(seed: u64) -> ExportLogsServiceRequest {
        let rng = &mut R::seed_from_u64(seed);
        ExportLogsServiceRequest {
            resource_logs: (0..n(rng, 60))
                .map(|_| ResourceLogs {
                    resource: resource(rng),
                    scope_logs: (0..n(rng, 10))
                        .map(|_| ScopeLogs {
                            scope: scope(rng),
                            log_records: (0..n(rng, 100))
                                .map(|_| LogRecord {
                                    body: value(rng, 3),
                                    attributes: attrs(rng, 1),
                                    trace_id: id(rng, 16),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn exemplars(rng: &mut R) -> Vec<Exemplar> {
        (0..n(rng, 20))
            .map(|_| Exemplar {
                filtered_attributes: attrs(rng, 0),
                ..Default::default()
            })
            .collect()
    }

    fn data(rng: &mut R) -> Option<Data> {
        let points = n(rng, 100);
        Some(match rng.random_range(0..6) {
            0 => return None,
            1 => Data::Gauge(Gauge {
                data_points: (0..points)
                    .map(|_| NumberDataPoint {
                        attributes: attrs(rng, 0),
                        exemplars: exemplars(rng),
                        ..Default::default()
                    })
                    .collect(),
            }),
            2 => Data::Sum(Sum {
                data_points: (0..points).map(|_| NumberDataPoint::default()).collect(),
                ..Default::default()
            }),
            3 => Data::Histogram(Histogram {
                data_points: (0..points)
                    .map(|_| HistogramDataPoint {
                        bucket_counts: vec![1; n(rng, 50)],
                        explicit_bounds: vec![1.0; n(rng, 50)],
                        exemplars: exemplars(rng),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            4 => Data::ExponentialHistogram(ExponentialHistogram {
                data_points: (0..points)
                    .map(|_| ExponentialHistogramDataPoint {
                        positive: Some(Buckets {
                            offset: 0,
                            bucket_counts: vec![0; n(rng, 200)],
                        }),
                        negative: rng.random_bool(0.5).then(Buckets::default),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            _ => Data::Summary(Summary {
                data_points: (0..points)
                    .map(|_| SummaryDataPoint {
                        quantile_values: vec![ValueAtQuantile::default(); n(rng, 20)],
                        ..Default::default()
                    })
                    .collect(),
            }),
        })
    }

    pub fn metrics(seed: u64) -> ExportMetricsServiceRequest {
        let rng = &mut R::seed_from_u64(seed);
        ExportMetricsServiceRequest {
            resource_metrics: (0..n(rng, 100))
                .map(|_| ResourceMetrics {
                    resource: resource(rng),
                    scope_metrics: (0..n(rng, 10))
                        .map(|_| ScopeMetrics {
                            scope: scope(rng),
                            metrics: (0..n(rng, 50))
                                .map(|_| Metric {
                                    name: "m".into(),
                                    metadata: attrs(rng, 0),
                                    data: data(rng),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    /// OTLP/JSON made mostly of empty objects and arrays under OTLP member
    /// names (some escaped, some unknown): what a JSON body can amplify to.
    pub fn hostile_json(seed: u64) -> Vec<u8> {
        const NAMES: [&str; 14] = [
            "resourceSpans",
            "scopeSpans",
            "spans",
            "attributes",
            "events",
            "links",
            "resourceLogs",
            "scopeLogs",
            "logRecords",
            "values",
            "arrayValue",
            "sp\\u0061ns",
            "x",
            "dataPoints",
        ];
        fn object(rng: &mut R, depth: u32, out: &mut String) {
            out.push('{');
            for i in 0..n(rng, 6) {
                if i > 0 {
                    out.push(',');
                }
                let name = NAMES[rng.random_range(0..NAMES.len())];
                out.push_str(&format!("\"{name}\":"));
                if depth == 0 || rng.random_bool(0.2) {
                    out.push_str("\"v\"");
                } else if rng.random_bool(0.3) {
                    object(rng, depth - 1, out);
                } else {
                    out.push('[');
                    for j in 0..n(rng, 400) {
                        if j > 0 {
                            out.push(',');
                        }
                        if rng.random_bool(0.7) {
                            out.push_str("{}");
                        } else {
                            object(rng, depth - 1, out);
                        }
                    }
                    out.push(']');
                }
            }
            out.push('}');
        }
        let rng = &mut R::seed_from_u64(seed);
        let mut out = String::new();
        object(rng, 4, &mut out);
        out.into_bytes()
    }
}

/// A shaped request of signal `which` (0 traces, 1 metrics, 2 logs), as protobuf or JSON.
fn shaped_body(which: usize, seed: u64, json: bool) -> (Signal, Wire, Vec<u8>) {
    fn encode<T: prost::Message + serde::Serialize>(r: T, json: bool) -> Vec<u8> {
        if json {
            serde_json::to_vec(&r).expect("json")
        } else {
            r.encode_to_vec()
        }
    }
    let wire = if json { Wire::Json } else { Wire::Protobuf };
    match which {
        0 => (Signal::Traces, wire, encode(shaped::traces(seed), json)),
        1 => (Signal::Metrics, wire, encode(shaped::metrics(seed), json)),
        _ => (Signal::Logs, wire, encode(shaped::logs(seed), json)),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip write");
    enc.finish().expect("gzip finish")
}

fn mutate(base: &[u8], cut: usize, flips: &[(usize, u8)], insert: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for (i, v) in flips {
        if !b.is_empty() {
            let n = b.len();
            b[i % n] ^= v | 1;
        }
    }
    if !insert.is_empty() && !b.is_empty() {
        let at = cut % b.len();
        b.splice(at..at, insert.iter().copied());
    }
    b.truncate(b.len().saturating_sub(cut % 64));
    b
}

/// The servers' path for one body: decode within `limits` and a budget, then
/// record. Checks every bound the path promises and returns whether it was accepted.
fn check_decode(
    stats: &SinkStats,
    signal: Signal,
    wire: Wire,
    gzip: bool,
    body: &[u8],
    limits: &RequestLimits,
) -> Result<bool, TestCaseError> {
    let budget = Budget::new(256 << 20);
    let mut reservation = budget.reservation();
    let (decoded, peak) =
        peak_during(|| decode(signal, wire, gzip, body, limits, &mut reservation));
    prop_assert!(reservation.bytes() <= budget.total_bytes());
    let accepted = match decoded {
        Ok(d) => {
            let items = d.request.items();
            prop_assert!(items <= limits.max_items, "{items} items accepted");
            prop_assert!(d.shape.decoded_bytes <= limits.max_decoded_bytes);
            if wire == Wire::Protobuf {
                prop_assert_eq!(d.shape.items, items, "the scan counts exactly what decodes");
            }
            prop_assert!(
                peak <= reservation.bytes() + DECODER_OVERHEAD,
                "decoding took {peak} bytes, {} reserved ({:?})",
                reservation.bytes(),
                d.shape
            );
            stats.record(Transport::HttpProtobuf, d.payload_bytes, d.request);
            true
        }
        Err(refusal) => {
            prop_assert!(!refusal.message.is_empty());
            // Refused early: at most what it was allowed to take, plus the decoder.
            prop_assert!(
                peak <= reservation.bytes() + DECODER_OVERHEAD,
                "a refused decode took {peak} bytes, {} reserved ({:?})",
                reservation.bytes(),
                refusal
            );
            false
        }
    };
    drop(reservation);
    prop_assert_eq!(budget.available_bytes(), budget.total_bytes());
    Ok(accepted)
}

const DEFAULT_LIMITS: RequestLimits = RequestLimits {
    max_bytes: otelsim::sink::DEFAULT_MAX_REQUEST_BYTES,
    max_items: otelsim::sink::DEFAULT_MAX_REQUEST_ITEMS,
    max_decoded_bytes: otelsim::sink::DEFAULT_MAX_DECODED_BYTES,
};

fn limits() -> impl Strategy<Value = RequestLimits> {
    prop_oneof![
        Just(DEFAULT_LIMITS),
        (1usize..200_000, 0u64..300, 1usize..2_000_000).prop_map(|(b, i, d)| RequestLimits {
            max_bytes: b,
            max_items: i,
            max_decoded_bytes: d,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_refused_or_bounded(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        which in 0usize..6,
        gzipped in any::<bool>(),
        limits in limits(),
    ) {
        let s = &samples()[which];
        let stats = SinkStats::new(false);
        let body = if gzipped { gzip(&body) } else { body };
        check_decode(&stats, s.signal, s.wire, gzipped, &body, &limits)?;
        let _ = stats.snapshot().render_summary();
    }

}

proptest! {
    // Bigger requests, fewer cases.
    #![proptest_config(ProptestConfig { cases: 120, .. ProptestConfig::default() })]

    #[test]
    fn shaped_requests_are_refused_or_bounded(
        seed in any::<u64>(),
        which in 0usize..3,
        json in any::<bool>(),
        gzipped in any::<bool>(),
        limits in limits(),
    ) {
        let (signal, wire, body) = shaped_body(which, seed, json);
        let body = if gzipped { gzip(&body) } else { body };
        let stats = SinkStats::new(false);
        let accepted = check_decode(&stats, signal, wire, gzipped, &body, &limits)?;
        // What was built to decode is refused only for its size.
        if !accepted {
            let budget = Budget::new(256 << 20);
            let why = decode(signal, wire, gzipped, &body, &limits, &mut budget.reservation())
                .expect_err("refused again");
            prop_assert_eq!(why.kind, RefusalKind::TooLarge, "{}", why.message);
        }
    }

    #[test]
    fn hostile_json_is_refused_or_bounded(
        seed in any::<u64>(),
        which in 0usize..3,
        gzipped in any::<bool>(),
        limits in limits(),
    ) {
        let body = shaped::hostile_json(seed);
        let body = if gzipped { gzip(&body) } else { body };
        let signal = [Signal::Traces, Signal::Metrics, Signal::Logs][which];
        check_decode(&SinkStats::new(false), signal, Wire::Json, gzipped, &body, &limits)?;
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn mutated_real_requests_are_refused_or_bounded(
        which in 0usize..6,
        cut in 0usize..100_000,
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        insert in prop::collection::vec(any::<u8>(), 0..16),
        how in 0usize..3,
        limits in limits(),
    ) {
        let s = &samples()[which];
        let mutated = mutate(&s.body, cut, &flips, &insert);
        // Plain; gzip of the mutated body; or a mutated gzip stream.
        let (gzipped, body) = match how {
            0 => (false, mutated),
            1 => (true, gzip(&mutated)),
            _ => (true, mutate(&gzip(&s.body), cut, &flips, &insert)),
        };
        let stats = SinkStats::new(false);
        check_decode(&stats, s.signal, s.wire, gzipped, &body, &limits)?;
        // The per-run checks (duplicates, parents, nesting) run on whatever was accepted.
        let snap = stats.snapshot();
        for run in snap.runs.values() {
            prop_assert!(run.unique_spans + run.duplicate_spans + run.untracked_spans <= run.spans + 1);
        }
    }
}

#[test]
fn real_requests_pass_with_room_to_spare() {
    let stats = SinkStats::new(false);
    for s in samples() {
        for gzipped in [false, true] {
            let body = if gzipped {
                gzip(&s.body)
            } else {
                s.body.clone()
            };
            let budget = Budget::new(256 << 20);
            let mut r = budget.reservation();
            let d = decode(s.signal, s.wire, gzipped, &body, &DEFAULT_LIMITS, &mut r)
                .unwrap_or_else(|e| panic!("{:?} {:?}: {e:?}", s.signal, s.wire));
            // A request must be many times this size before the limits refuse it.
            let ratio = d.shape.decoded_bytes as f64 / s.body.len() as f64;
            // (Measured: about 4.3 for protobuf and 17 for JSON, against real
            // peaks of about 3 and 14.)
            let most = if s.wire == Wire::Protobuf { 8.0 } else { 25.0 };
            assert!(
                ratio < most,
                "{:?} {:?}: {} bytes decode to at most {} ({ratio:.1}x)",
                s.signal,
                s.wire,
                s.body.len(),
                d.shape.decoded_bytes
            );
            stats.record(Transport::HttpProtobuf, d.payload_bytes, d.request);
        }
    }
    let snap = stats.snapshot();
    assert!(snap.spans > 0 && snap.metric_points > 0 && snap.log_records > 0);
    assert_eq!(snap.invalid_id_spans, 0);
}

#[test]
fn a_refused_request_is_refused_for_the_right_reason() {
    let s = &samples()[0];
    let budget = Budget::new(256 << 20);
    let tight = RequestLimits {
        max_items: 3,
        ..DEFAULT_LIMITS
    };
    let err = decode(
        s.signal,
        s.wire,
        false,
        &s.body,
        &tight,
        &mut budget.reservation(),
    )
    .expect_err("more than 3 spans");
    assert_eq!(err.kind, RefusalKind::TooLarge);
    let err = decode(
        s.signal,
        s.wire,
        false,
        &s.body[..s.body.len() - 3],
        &DEFAULT_LIMITS,
        &mut budget.reservation(),
    )
    .expect_err("truncated");
    assert_eq!(err.kind, RefusalKind::Malformed);
}

#[test]
fn hostile_http_bodies_get_answers_and_the_sink_keeps_serving() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let url = |s: &str| format!("{}/v1/{s}", sink.http_endpoint());
    let client = reqwest::Client::new();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
    let mut sent = 0u64;
    rt.block_on(async {
        for i in 0..150usize {
            use rand::Rng as _;
            let s = &samples()[i % 6];
            let (ctype, signal) = match (s.wire, s.signal) {
                (Wire::Protobuf, _) => ("application/x-protobuf", s.signal),
                (Wire::Json, _) => ("application/json", s.signal),
            };
            let path = match signal {
                Signal::Traces => "traces",
                Signal::Metrics => "metrics",
                Signal::Logs => "logs",
            };
            let flips: Vec<(usize, u8)> = (0..rng.random_range(0..6))
                .map(|_| (rng.random::<u32>() as usize, rng.random()))
                .collect();
            let body = mutate(&s.body, rng.random::<u32>() as usize, &flips, &[]);
            let mut req = client.post(url(path)).header("content-type", ctype);
            if i % 7 == 0 {
                // Claims gzip, is not.
                req = req.header("content-encoding", "gzip");
            }
            let status = req.body(body).send().await.expect("an answer").status();
            assert!(
                status.is_success() || status.is_client_error(),
                "request {i}: {status}"
            );
            sent += 1;
        }
        // Still serving real requests after all that.
        let ok = client
            .post(url("traces"))
            .header("content-type", "application/x-protobuf")
            .body(samples()[0].body.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert!(ok.is_success());
    });
    let snap = sink.stats.snapshot();
    assert_eq!(
        snap.trace_requests + snap.logs_requests + snap.metrics_requests + snap.rejected_requests,
        sent + 1,
        "every request was either accepted or refused and counted"
    );
    rt.block_on(sink.shutdown());
}
