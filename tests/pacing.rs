//! Open-loop pacing: the schedule's arithmetic on the virtual clock, a short real
//! run against the sink, and the shortfall gate.

mod common;

use common::*;
use std::collections::HashMap;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const T0: &str = "2026-02-01T00:00:00Z";

#[test]
fn on_the_virtual_clock_picks_follow_the_schedule_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.jsonl");
    let out = otelsim(
        &[
            "run",
            "--rate",
            "50",
            "--duration",
            "20s",
            "--seed",
            "4",
            "--start-time",
            T0,
            "--output-file",
            f.to_str().unwrap(),
            "--no-metrics",
            "--no-logs",
        ],
        &[],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out));
    let spans = flatten(&read_output_file(&f));
    // One pick = one session; its emission time is the end of its last span.
    let mut picks: HashMap<String, (u64, std::collections::HashSet<String>)> = HashMap::new();
    for s in &spans {
        let e = picks
            .entry(s.attrs["vendor.session.id"].clone())
            .or_default();
        e.0 = e.0.max(s.end);
        e.1.insert(s.trace_id.clone());
    }
    let mut picks: Vec<(u64, usize)> = picks
        .into_values()
        .map(|(t, traces)| (t, traces.len()))
        .collect();
    picks.sort();
    let t0 = otelsim::settings::parse_start_time(T0).unwrap();
    assert_eq!(picks[0].0, t0, "the first pick is due at the start");
    let traces: usize = picks.iter().map(|p| p.1).sum();
    for w in picks.windows(2) {
        let expected = (w[0].1 as f64 / 50.0 * 1e9) as i64;
        let gap = (w[1].0 - w[0].0) as i64;
        assert!(
            (gap - expected).abs() <= 1,
            "gap {gap} ns after a pick of {} traces, expected {expected}",
            w[0].1
        );
    }
    let last_due = picks.last().unwrap().0;
    assert!(
        last_due < t0 + 20_000_000_000,
        "no pick is due after the duration"
    );
    assert!(
        (995..=1012).contains(&traces),
        "≈ 50 traces/s × 20 s, got {traces}"
    );
    assert!(
        text(&out).contains("target 50 traces/s · achieved 50.0 traces/s"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_modest_real_rate_is_met_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let d = deliver(
        "grpc",
        &[
            "run",
            "--rate",
            "300",
            "--duration",
            "3s",
            "--seed",
            "9",
            "--report",
            report.to_str().unwrap(),
            "--max-shortfall",
            "5%",
        ],
        &[],
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let p = &r["report"]["pacing"];
    let achieved = p["achieved_traces_per_s"].as_f64().unwrap();
    assert!(
        (achieved - 300.0).abs() / 300.0 < 0.05,
        "achieved {achieved} traces/s"
    );
    assert!(p["lag_p99_ms"].as_f64().unwrap() < 100.0, "{p}");
    assert_eq!(
        r["report"]["export"]["spans"]["acked"].as_u64().unwrap(),
        d.snapshot.spans,
        "the report's acknowledged spans are what the sink got"
    );
    assert!(
        (p["target_per_s"].as_f64().unwrap() - 300.0).abs() < 1e-6,
        "{p}"
    );
    assert_eq!(p["unit"], "traces");
}

#[test]
fn a_shortfall_beyond_the_limit_fails_the_run() {
    let out = otelsim(
        &[
            "run",
            "--rate",
            "1000000",
            "--duration",
            "1s",
            "--output-file",
            "/dev/null",
            "--no-metrics",
            "--no-logs",
            "--max-shortfall",
            "1%",
        ],
        &[],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("exceeds --max-shortfall"),
        "{}",
        text(&out)
    );
    let out = otelsim(&["run", "--rate", "0", "--count", "1"], &[], LIMIT);
    assert_eq!(out.status.code(), Some(2));
    let out = otelsim(
        &["run", "--count", "1", "--max-shortfall", "150%"],
        &[],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
}
