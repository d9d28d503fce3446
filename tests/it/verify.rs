//! `otelsim verify`: a run report against what the sink saw of that run. Real
//! runs into the real sink; then the sink's findings are checked for real
//! duplicates and orphans, and a tampered sink report must be caught.

use crate::support::*;
use otelsim::sink::RunningSink;
use prost::Message as _;
use std::path::Path;

fn write_sink_report(sink: &RunningSink, path: &Path) {
    let json = serde_json::to_string_pretty(&sink.stats.snapshot()).unwrap();
    std::fs::write(path, json).unwrap();
}

/// A `run` of 300 picks into `sink` with a run report, then `extra`; it must succeed.
fn run_into(sink: &RunningSink, report: &Path, extra: &[&str]) {
    Otelsim::new()
        .cli("run --count 300 --interval 0")
        .endpoint(sink.grpc_endpoint())
        .report(report)
        .args(extra)
        .run_ok();
}

/// `otelsim verify RUN --sink-report SINK`, not yet run.
fn verify(run: &Path, sink: &Path) -> Otelsim {
    Otelsim::new()
        .arg("verify")
        .arg(run)
        .arg("--sink-report")
        .arg(sink)
}

#[test]
fn a_clean_run_verifies_and_a_tampered_sink_report_does_not() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let dir = tempfile::tempdir().unwrap();
    let (run, sinkf) = (dir.path().join("run.json"), dir.path().join("sink.json"));
    run_into(&sink, &run, &["--workers", "2"]);
    write_sink_report(&sink, &sinkf);
    let t = verify(&run, &sinkf).run_ok();
    assert!(
        t.contains("\nVERIFIED: everything acknowledged arrived once"),
        "{t}"
    );
    let r = read_json(&run);
    let id = r["report"]["run_id"].as_str().unwrap().to_string();
    let acked = r["report"]["export"]["spans"]["acked"].as_u64().unwrap();
    assert!(
        t.contains(&format!("{acked} acknowledged · {acked} received")),
        "{t}"
    );
    assert!(
        !t.contains(" 0 enum attribute(s) checked"),
        "enum keys are checked: {t}"
    );
    // Every run id appears on the resource of every signal the sink counted.
    let s = read_json(&sinkf);
    let seen = &s["runs"][&id];
    assert_eq!(seen["unique_spans"].as_u64(), Some(acked));
    assert_eq!(
        seen["log_records"].as_u64(),
        r["report"]["export"]["log_records"]["acked"].as_u64()
    );
    assert_eq!(
        seen["metric_points"].as_u64(),
        r["report"]["export"]["metric_points"]["acked"].as_u64()
    );

    // Tamper: one trace lost, one span short in another, and an enum value outside the conventions.
    let mut s = s;
    let traces = s["runs"][&id]["trace_spans"].as_object_mut().unwrap();
    let ids: Vec<String> = traces.keys().take(2).cloned().collect();
    let lost_n = traces.remove(&ids[0]).unwrap().as_u64().unwrap();
    let n = traces[&ids[1]].as_u64().unwrap();
    traces.insert(ids[1].clone(), (n - 1).into());
    let unique = s["runs"][&id]["unique_spans"].as_u64().unwrap();
    s["runs"][&id]["unique_spans"] = (unique - lost_n - 1).into();
    let values = s["runs"][&id]["attribute_values"].as_object_mut().unwrap();
    let outcome = values
        .get_mut("vendor.step.outcome")
        .expect("step.outcome values were seen")
        .as_object_mut()
        .unwrap();
    outcome.insert(
        "sort_of".into(),
        serde_json::json!({"count": 3, "example_trace": ids[1]}),
    );
    std::fs::write(&sinkf, serde_json::to_string(&s).unwrap()).unwrap();
    let out_json = dir.path().join("verdict.json");
    let t = verify(&run, &sinkf)
        .arg("--output")
        .arg(&out_json)
        .run_exit(5);
    assert!(t.contains("NOT VERIFIED"), "{t}");
    assert!(
        t.contains(&format!(
            "trace {}: {lost_n} span(s) acknowledged, none received",
            ids[0]
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "trace {}: {n} span(s) acknowledged, {} received",
            ids[1],
            n - 1
        )),
        "{t}"
    );
    assert!(
        t.contains("vendor.step.outcome = `sort_of` (3 span(s)); allowed:"),
        "{t}"
    );
    let v = read_json(&out_json);
    assert_eq!(v["missing_traces"], 1);
    assert_eq!(v["incomplete_traces"], 1);
    assert_eq!(v["invalid_enum_values"], 3);
    assert_eq!(v["ok"], false);
    rt.block_on(sink.shutdown());
}

#[test]
fn the_sink_finds_real_duplicates_and_orphans() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let dir = tempfile::tempdir().unwrap();
    let (run, sinkf) = (dir.path().join("run.json"), dir.path().join("sink.json"));
    // The same seed, start time and run id twice: every span arrives twice.
    let same = [
        "--seed",
        "5",
        "--start-time",
        "2026-03-01T00:00:00Z",
        "--run-id",
        "dup-run",
        "--no-metrics",
        "--no-logs",
    ];
    run_into(&sink, &run, &same);
    run_into(&sink, &run, &same);
    // And a span whose parent never comes, sent by hand under the same run id.
    let req = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
        resource_spans: vec![orphan_resource_spans("dup-run")],
    };
    post_traces(&rt, &sink, &req);
    write_sink_report(&sink, &sinkf);
    let t = verify(&run, &sinkf).run_exit(5);
    assert!(t.contains("duplicate_spans: 1"), "{t}");
    assert!(t.contains("orphan_span: 1"), "{t}");
    assert!(t.contains("parent 0000000000000bad never arrived"), "{t}");
    let s = read_json(&sinkf);
    let seen = &s["runs"]["dup-run"];
    assert_eq!(
        seen["duplicate_spans"],
        seen["unique_spans"].as_u64().unwrap() - 1
    );
    rt.block_on(sink.shutdown());
}

#[test]
fn verify_explains_unusable_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.json");
    let sinkf = dir.path().join("sink.json");
    std::fs::write(&run, "{}").unwrap();
    std::fs::write(&sinkf, "{\"runs\":{}}").unwrap();
    let t = verify(&run, &sinkf).run_exit(2);
    assert!(t.contains("is not a run report"), "{t}");
    std::fs::write(
        &run,
        r#"{"report":{"run_id":"abc","export":{"spans":{"acked":1,"failed":0},"metric_points":{"acked":0,"failed":0},"log_records":{"acked":0,"failed":0}}}}"#,
    )
    .unwrap();
    // A run the sink never saw is a total loss, not unusable input.
    let t = verify(&run, &sinkf).run_exit(5);
    assert!(t.contains("the sink saw nothing of this run"), "{t}");
    assert!(t.contains("missing_spans"), "{t}");
    let t = verify(&run, &dir.path().join("missing.json")).run_exit(2);
    assert!(t.contains("cannot read the sink report"), "{t}");
}

fn orphan_resource_spans(run_id: &str) -> opentelemetry_proto::tonic::trace::v1::ResourceSpans {
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![KeyValue {
                key: "otelsim.run.id".into(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(run_id.into())),
                }),
            }],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: vec![Span {
                trace_id: vec![0xab; 16],
                span_id: vec![1; 8],
                parent_span_id: vec![0, 0, 0, 0, 0, 0, 0x0b, 0xad],
                name: "lonely".into(),
                start_time_unix_nano: 1,
                end_time_unix_nano: 2,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn a_sink_at_its_tracking_limit_gives_a_partial_verdict_without_false_findings() {
    let rt = runtime();
    let sink = rt
        .block_on(otelsim::sink::start(otelsim::sink::SinkOptions {
            max_tracked_spans: 100,
            ..otelsim::sink::SinkOptions::for_tests()
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (run, sinkf) = (dir.path().join("run.json"), dir.path().join("sink.json"));
    run_into(&sink, &run, &["--workers", "2"]);
    write_sink_report(&sink, &sinkf);
    let s = read_json(&sinkf);
    let id = read_json(&run)["report"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(s["runs"][&id]["untracked_spans"].as_u64().unwrap() > 0);
    // Whole traces or none: the cap never cuts a trace, so no orphan appears.
    assert!(
        s["runs"][&id]["problem_counts"]
            .as_object()
            .unwrap()
            .is_empty(),
        "{}",
        s["runs"][&id]["problem_counts"]
    );
    let t = verify(&run, &sinkf).run_exit(5);
    assert!(t.contains("PARTIALLY VERIFIED"), "{t}");
    verify(&run, &sinkf).arg("--allow-partial").run_ok();
    rt.block_on(sink.shutdown());
}

#[test]
fn a_parent_that_lost_its_run_id_still_counts_as_arrived() {
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let rt = runtime();
    let sink = start_sink(&rt);
    // The child carries the run id; its parent comes through a pipeline that
    // dropped the resource, and a third span's parent never comes at all.
    let parent_without_resource = ResourceSpans {
        resource: None,
        scope_spans: vec![ScopeSpans {
            spans: vec![Span {
                trace_id: vec![0xab; 16],
                span_id: vec![0, 0, 0, 0, 0, 0, 0x0b, 0xad],
                name: "parent".into(),
                start_time_unix_nano: 1,
                end_time_unix_nano: 3,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut really_lonely = orphan_resource_spans("split-run");
    let s = &mut really_lonely.scope_spans[0].spans[0];
    s.span_id = vec![2; 8];
    s.parent_span_id = vec![9; 8];
    let req = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
        resource_spans: vec![
            orphan_resource_spans("split-run"),
            parent_without_resource,
            really_lonely,
        ],
    };
    post_traces(&rt, &sink, &req);
    let snap = sink.stats.snapshot();
    let run = &snap.runs["split-run"];
    assert_eq!(run.problem_counts.get("orphan_span"), Some(&1), "{run:?}");
    assert!(run
        .problems
        .iter()
        .all(|p| p.span_id != hex::encode([1u8; 8])));
    rt.block_on(sink.shutdown());
}

/// Posts a trace request to the sink's OTLP/HTTP port; it must be accepted.
fn post_traces(
    rt: &tokio::runtime::Runtime,
    sink: &otelsim::sink::RunningSink,
    req: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) {
    let url = format!("{}/v1/traces", sink.http_endpoint());
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-protobuf")
            .body(req.encode_to_vec())
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(status.is_success());
}
