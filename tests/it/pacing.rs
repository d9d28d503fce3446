//! Open-loop pacing: the schedule's arithmetic on the virtual clock, a short real
//! run against the sink, and the shortfall gate.

use crate::support::*;
use std::collections::HashMap;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const T0: &str = "2026-02-01T00:00:00Z";

fn otelsim() -> Otelsim {
    Otelsim::new().limit(LIMIT)
}

#[test]
fn on_the_virtual_clock_picks_follow_the_schedule_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.jsonl");
    let out = otelsim()
        .cli("run --rate 50 --duration 20s")
        .seed(4)
        .start_time(T0)
        .output_file(&f)
        .cli("--no-metrics --no-logs")
        .run_ok();
    let spans = spans_in(&f);
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
    // The last pick (a session of several traces) may end past the 20 s: ≥ 50/s.
    let achieved: f64 = out
        .split("target 50 traces/s · achieved ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pacing line: {out}"));
    assert!((50.0..=50.3).contains(&achieved), "{out}");
}

#[test]
fn a_modest_real_rate_is_met_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let d = Otelsim::new()
        .cli("run --rate 300 --duration 3s")
        .seed(9)
        .report(&report)
        .cli("--max-shortfall 5%")
        .deliver("grpc");
    let r = read_json(&report);
    let p = &r["report"]["pacing"];
    let achieved = p["achieved_traces_per_s"].as_f64().unwrap();
    assert!(
        (achieved - 300.0).abs() / 300.0 < 0.05,
        "achieved {achieved} traces/s"
    );
    // The median pick is on time; the tail is whatever a shared CI machine's
    // scheduler makes it (a single 118 ms stall was seen), so only its
    // consistency is checked.
    let (p50, p99, max) = (
        p["lag_p50_ms"].as_f64().unwrap(),
        p["lag_p99_ms"].as_f64().unwrap(),
        p["lag_max_ms"].as_f64().unwrap(),
    );
    assert!(p50 < 50.0 && p50 <= p99 && p99 <= max, "{p}");
    // Late means more than 10 ms behind: the count of late picks agrees with the
    // median lag (how many are late is the scheduler's, when the machine is busy).
    let (late, picks) = (
        p["late_picks"].as_u64().unwrap(),
        p["picks"].as_u64().unwrap(),
    );
    if p50 < 9.0 {
        assert!(late * 2 < picks, "median on time, so most picks are: {p}");
    }
    if p50 > 11.0 {
        assert!(late * 2 > picks, "median late, so most picks are: {p}");
    }
    if max < 10.0 {
        assert_eq!(late, 0, "{p}");
    }
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
    let t = otelsim()
        .cli("run --rate 1000000 --duration 1s")
        .output_file("/dev/null")
        .cli("--no-metrics --no-logs --max-shortfall 1%")
        .run_exit(4);
    assert!(t.contains("exceeds --max-shortfall"), "{t}");
    otelsim().cli("run --rate 0 --count 1").run_exit(2);
    otelsim()
        .cli("run --count 1 --max-shortfall 150%")
        .run_exit(2);
}

/// Pick emission times (end of a session's last span) and trace counts, sorted.
fn picks_of(spans: &[Flat]) -> Vec<(u64, usize)> {
    let mut picks: HashMap<String, (u64, std::collections::HashSet<String>)> = HashMap::new();
    for s in spans {
        let e = picks
            .entry(s.attrs["vendor.session.id"].clone())
            .or_default();
        e.0 = e.0.max(s.end);
        e.1.insert(s.trace_id.clone());
    }
    let mut v: Vec<(u64, usize)> = picks.into_values().map(|(t, ts)| (t, ts.len())).collect();
    v.sort();
    v
}

#[test]
fn stages_ramp_and_hold_on_the_virtual_clock() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.jsonl");
    otelsim()
        .cli("run --stages 10s:100,10s:100")
        .seed(3)
        .start_time(T0)
        .output_file(&f)
        .cli("--no-metrics --no-logs")
        .run_ok();
    let t0 = otelsim::settings::parse_start_time(T0).unwrap();
    let picks = picks_of(&spans_in(&f));
    let traces_in = |a: f64, b: f64| -> usize {
        picks
            .iter()
            .filter(|(t, _)| {
                let s = (*t - t0) as f64 / 1e9;
                s >= a && s < b
            })
            .map(|p| p.1)
            .sum()
    };
    // 0 → 100/s over 10 s offers 500 traces (125 in the first 5 s), then 1000 over the hold.
    let (q1, ramp, hold) = (
        traces_in(0.0, 5.0),
        traces_in(0.0, 10.0),
        traces_in(10.0, 20.0),
    );
    assert!((118..=135).contains(&q1), "first 5 s: {q1}");
    assert!((495..=510).contains(&ramp), "ramp: {ramp}");
    assert!((990..=1010).contains(&hold), "hold: {hold}");
    assert!(
        picks.last().unwrap().0 < t0 + 20_000_000_000,
        "the shape ends the run"
    );
}

#[test]
fn backfill_spreads_the_picks_over_the_past_window() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("b.jsonl");
    let before = now_ns();
    otelsim()
        .cli("run --backfill 1h --count 200")
        .output_file(&f)
        .cli("--no-metrics --no-logs")
        .run_ok();
    let spans = spans_in(&f);
    let picks = picks_of(&spans);
    assert_eq!(picks.len(), 200);
    let hour = 3_600_000_000_000u64;
    let first = picks[0].0;
    let last = picks.last().unwrap().0;
    assert!(
        first + 60_000_000_000 > before - hour && first < before - hour + 60_000_000_000,
        "the first pick is an hour ago"
    );
    assert!(
        last <= now_ns() && last > before - 60_000_000_000,
        "the last pick is about now"
    );
    assert!(
        spans.iter().all(|s| s.end <= now_ns()),
        "nothing in the future"
    );
}

#[test]
fn realtime_exports_each_span_when_it_ends() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let started = now_ns();
    otelsim()
        .cli("run --realtime --rate 20 --duration 2s")
        .endpoint(sink.grpc_endpoint())
        .cli("--no-metrics --no-logs --tags data-plane")
        .run_ok();
    let requests = sink.stats.trace_requests();
    let mut prev_max_end = 0u64;
    let mut traces = std::collections::HashSet::new();
    for r in &requests {
        let spans = flatten(std::slice::from_ref(&r.request));
        let min_start = spans.iter().map(|s| s.start).min().unwrap();
        assert!(
            min_start >= started,
            "picks start when due, not in the past"
        );
        // Spans go out in end-time order (one linger window of slack, 200 ms).
        let min_end = spans.iter().map(|s| s.end).min().unwrap();
        assert!(
            min_end + 300_000_000 >= prev_max_end,
            "out of order by more than the linger time"
        );
        prev_max_end = prev_max_end.max(spans.iter().map(|s| s.end).max().unwrap());
        traces.extend(spans.iter().map(|s| s.trace_id.clone()));
    }
    assert!(
        requests.len() > traces.len() / 2 && requests.len() >= 5,
        "spans are sent as they end, not a trace per request: {} requests for {} traces",
        requests.len(),
        traces.len()
    );
    assert_eq!(
        sink.stats
            .snapshot()
            .runs
            .values()
            .map(|r| r.problem_counts.len())
            .sum::<usize>(),
        0,
        "every trace arrives complete"
    );
    rt.block_on(sink.shutdown());
}

#[test]
fn workers_share_a_real_rate() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("w.json");
    otelsim()
        .cli("run --rate 3000 --unit spans --workers 2 --duration 3s")
        .endpoint(sink.grpc_endpoint())
        .report(&rep)
        .cli("--max-shortfall 5%")
        .run_ok();
    let r = read_json(&rep);
    let p = &r["report"]["pacing"];
    assert_eq!(r["report"]["workers"], 2);
    assert_eq!(p["unit"], "spans");
    let achieved = p["achieved_per_s"].as_f64().unwrap();
    assert!((achieved - 3000.0).abs() / 3000.0 < 0.05, "{p}");
    assert_eq!(
        r["report"]["export"]["spans"]["acked"].as_u64(),
        Some(sink.stats.snapshot().spans)
    );
    rt.block_on(sink.shutdown());
}

#[test]
fn a_receiver_on_this_host_leaves_it_a_core() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("w.json");
    otelsim()
        .cli("run --count 40 --interval 0 --seed 3")
        .endpoint(sink.grpc_endpoint())
        .report(&rep)
        .run_ok();
    let r = read_json(&rep);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(r["report"]["workers"], (cores - 1).max(1));
    assert_eq!(
        r["report"]["export"]["spans"]["acked"].as_u64(),
        Some(sink.stats.snapshot().spans)
    );
}

#[test]
fn load_profiles_are_validated_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("load.yaml");
    std::fs::write(&f, "unit: spans\nstages:\n  - { duration: 30s, target: 10 }\n  - { duration: soon, target: 5 }\nburst: { factor: 2, duration: 10s }\n").unwrap();
    let t = otelsim()
        .cli("run --load-profile")
        .arg(&f)
        .output_file("/dev/null")
        .run_exit(2);
    assert!(
        t.contains("load.yaml:4:") && t.contains("stages[1].duration"),
        "{t}"
    );
    assert!(t.contains("load.yaml:5:") && t.contains("every"), "{t}");
    std::fs::write(
        &f,
        "unit: spans\nstages:\n  - { duration: 2s, target: 2000 }\n",
    )
    .unwrap();
    let rep = dir.path().join("r.json");
    otelsim()
        .cli("run --load-profile")
        .arg(&f)
        .start_time(T0)
        .output_file("/dev/null")
        .report(&rep)
        .run_ok();
    let r = read_json(&rep);
    let spans = r["report"]["export"]["spans"]["generated"]
        .as_u64()
        .unwrap();
    assert!(
        (1950..=2100).contains(&spans),
        "a 2 s ramp to 2000 spans/s offers 2000 spans: {spans}"
    );
    for bad in [["--stages", "10s:x"], ["--burst", "2x:5s/1s"]] {
        otelsim().cli("run --rate 5").args(bad).run_exit(2);
    }
}
