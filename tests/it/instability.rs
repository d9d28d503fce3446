//! The instability pack (seed 000) and `--output events-jsonl:PATH` with
//! `--labels PATH`: the seed's minimal schema, ground truth that matches the
//! events, the configured shares reproduced, and the same sessions over OTLP.

use crate::support::Otelsim;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const T0: &str = "2026-01-01T00:00:00Z";

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn events_have_exactly_the_seeds_minimal_schema() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("ev.jsonl");
    Otelsim::new()
        .args([
            "-q",
            "scenario",
            "-n",
            "simple_correction_loop",
            "--count",
            "3",
        ])
        .seed(4)
        .start_time(T0)
        .arg("--output")
        .arg(format!("events-jsonl:{}", ev.display()))
        .run_ok();
    let text = std::fs::read_to_string(&ev).unwrap();
    for line in text.lines() {
        assert!(
            line.starts_with("{\"timestamp\":"),
            "the seed's field order: {line}"
        );
        let v: Value = serde_json::from_str(line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec!["event_type", "payload", "span_id", "timestamp", "trace_id"];
        want.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(v["trace_id"].as_str().unwrap().len(), 32);
        assert_eq!(v["span_id"].as_str().unwrap().len(), 16);
        assert!(v["payload"]["latency_ms"].is_number());
    }
    // The readable correction loop: step, drift, correction, recover, steps, end.
    let events = lines(&ev);
    let first: Vec<&str> = events
        .iter()
        .filter(|e| e["trace_id"] == events[0]["trace_id"])
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    let pos = |t: &str| {
        first
            .iter()
            .position(|e| *e == t)
            .unwrap_or_else(|| panic!("{t} in {first:?}"))
    };
    assert_eq!(first[0], "start");
    assert!(pos("step") < pos("drift_like"));
    assert!(pos("drift_like") < pos("correction"));
    assert!(pos("correction") < pos("recover"));
    assert_eq!(*first.last().unwrap(), "end");
}

/// 5,000 noisy sessions: drift and correction frequencies and the outcome
/// shares the configured rates imply, within ±3 percentage points; every
/// label agrees with the events of its session.
#[test]
fn configured_frequencies_and_outcome_shares_are_reproduced() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("ev.jsonl");
    let labels = dir.path().join("labels.jsonl");
    Otelsim::new()
        .args([
            "-q",
            "scenario",
            "-n",
            "noisy_mixed_sessions",
            "--count",
            "5000",
        ])
        .seed(9)
        .start_time(T0)
        .arg("--output")
        .arg(format!("events-jsonl:{}", ev.display()))
        .arg("--labels")
        .arg(&labels)
        .run_ok();
    let labels = lines(&labels);
    assert_eq!(labels.len(), 5000);
    let n = labels.len() as f64;
    let share = |f: &dyn Fn(&Value) -> bool| labels.iter().filter(|l| f(l)).count() as f64 / n;
    let has = |l: &Value, kind: &str| {
        l["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == kind)
    };
    // noisy_mixed_sessions.yaml: drift 0.6, correction 0.5, recovery 0.7, fail 0.4.
    let drift = share(&|l| has(l, "drift"));
    assert!((drift - 0.6).abs() < 0.03, "drift {drift}");
    let corrected = labels.iter().filter(|l| has(l, "correction")).count() as f64
        / labels.iter().filter(|l| has(l, "drift")).count() as f64;
    assert!((corrected - 0.5).abs() < 0.03, "correction {corrected}");
    for (outcome, want) in [
        ("stable", 0.4),
        ("unstable", 0.18),
        ("recovered", 0.21),
        ("failed", 0.21),
    ] {
        let got = share(&|l| l["outcome"] == outcome);
        assert!((got - want).abs() < 0.03, "{outcome}: {got} vs {want}");
    }
    // Each label's episodes are the spans the events mark.
    let events = lines(&ev);
    let mut by_span: BTreeMap<&str, &Value> = BTreeMap::new();
    for e in &events {
        by_span.insert(e["span_id"].as_str().unwrap(), e);
    }
    for l in labels.iter().take(300) {
        for ep in l["episodes"].as_array().unwrap() {
            for id in ep["span_ids"].as_array().unwrap() {
                let e = by_span[id.as_str().unwrap()];
                assert_eq!(e["trace_id"], l["trace_id"]);
                let t = e["event_type"].as_str().unwrap();
                let ok = match ep["kind"].as_str().unwrap() {
                    "drift" => t == "drift_like" || t == "step",
                    "correction" => t == "correction",
                    "recovery" => t == "recover",
                    "failure" => t == "error",
                    other => panic!("unknown kind {other}"),
                };
                assert!(ok, "{t} in a {} episode", ep["kind"]);
            }
        }
        let recovered = l["outcome"] == "recovered";
        assert_eq!(has(l, "recovery"), recovered, "{l}");
    }
    // Noise: some steps write their arguments in another shape; siblings diverge.
    let shapes: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["event_type"] == "step")
        .filter_map(|e| match &e["payload"]["args"] {
            Value::Object(_) => Some("object"),
            Value::Array(_) => Some("list"),
            Value::String(_) => Some("string"),
            _ => None,
        })
        .collect();
    assert_eq!(shapes.len(), 3, "{shapes:?}");
    assert!(events.iter().any(|e| e["event_type"] == "branch"));
}

/// One seeded run, three views: OTLP into the sink, agent-trace and
/// events-jsonl carry the same sessions, spans, event types and durations.
#[test]
fn otlp_agent_trace_and_events_jsonl_agree() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("ev.jsonl");
    let traces = dir.path().join("traces");
    let got = Otelsim::new()
        .args(["-q", "run", "--tags", "instability", "--count", "40"])
        .seed(21)
        .start_time(T0)
        .arg("--output")
        .arg("otlp")
        .arg("--output")
        .arg(format!("events-jsonl:{}", ev.display()))
        .arg("--output")
        .arg(format!("agent-trace:{}", traces.display()))
        .deliver("grpc");
    let events = lines(&ev);
    assert_eq!(events.len(), got.spans.len(), "one line per span");
    let otlp: BTreeMap<(String, String), (String, f64)> = got
        .spans
        .iter()
        .map(|s| {
            (
                (s.trace_id.clone(), s.span_id.clone()),
                (
                    s.attrs["vendor.instability.event"].clone(),
                    ((s.end - s.start) as f64 / 1e3).round() / 1e3,
                ),
            )
        })
        .collect();
    let written: BTreeMap<(String, String), (String, f64)> = events
        .iter()
        .map(|e| {
            (
                (
                    e["trace_id"].as_str().unwrap().to_string(),
                    e["span_id"].as_str().unwrap().to_string(),
                ),
                (
                    e["event_type"].as_str().unwrap().to_string(),
                    e["payload"]["latency_ms"].as_f64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(written, otlp, "same ids, event types and latencies");
    // agent-trace: a folder per session, its duration the root span's.
    let sessions: BTreeSet<String> = got
        .spans
        .iter()
        .map(|s| s.attrs["gen_ai.conversation.id"].clone())
        .collect();
    let folders: BTreeSet<String> = std::fs::read_dir(&traces)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .trim_start_matches("session-")
                .to_string()
        })
        .collect();
    assert_eq!(folders, sessions);
    for s in got.spans.iter().filter(|s| s.parent.is_empty()) {
        let id = &s.attrs["gen_ai.conversation.id"];
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(traces.join(format!("session-{id}/metadata.json"))).unwrap(),
        )
        .unwrap();
        let ms = ((s.end - s.start) as f64 / 1e3).round() / 1e3;
        assert_eq!(meta["duration_ms"].as_f64().unwrap(), ms);
        assert_eq!(
            meta["outcome"] == "error",
            s.attrs["vendor.instability.outcome"] == "failed",
            "{meta}"
        );
    }
}

#[test]
fn a_full_disk_is_exit_3_with_what_was_written() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full on this system");
        return;
    }
    let out = Otelsim::new()
        .args(["scenario", "-n", "simple_correction_loop", "--count", "3"])
        .seed(1)
        .start_time(T0)
        .args(["--output", "events-jsonl:/dev/full"])
        .run_exit(3);
    assert!(
        out.contains("events-jsonl: cannot write /dev/full"),
        "{out}"
    );
    assert!(
        out.contains("0 line(s) of 0 session(s) were written before it"),
        "{out}"
    );
}

#[test]
fn labels_need_events_jsonl_and_bad_knobs_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let err = Otelsim::new()
        .args(["scenario", "-n", "simple_correction_loop", "--output-file"])
        .arg(dir.path().join("o.jsonl"))
        .arg("--labels")
        .arg(dir.path().join("l.jsonl"))
        .run_exit(2);
    assert!(
        err.contains("--labels") && err.contains("events-jsonl"),
        "{err}"
    );
    let defs = dir.path().join("defs");
    std::fs::create_dir_all(&defs).unwrap();
    std::fs::write(
        defs.join("bad.yaml"),
        "name: bad\ninstability:\n  noise: loud\n  drift_rate: 1.5\n  turns: 2\n",
    )
    .unwrap();
    let out = Otelsim::new()
        .arg("validate")
        .arg("--scenarios-dir")
        .arg(&defs)
        .run();
    let text = crate::support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("bad.yaml:3:10")
            && text.contains("instability.noise")
            && text.contains("low, medium, high"),
        "{text}"
    );
    assert!(
        text.contains("bad.yaml:4:15") && text.contains("instability.drift_rate"),
        "{text}"
    );
    assert!(
        text.contains("bad.yaml:5:10") && text.contains("instability.turns"),
        "{text}"
    );
}
