//! Hostile or extreme input and misbehaving receivers: clear errors, no panics,
//! no hangs, exact counters.

use crate::support::*;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
const T0: &str = "2026-01-01T00:00:00Z";

fn otelsim() -> Otelsim {
    Otelsim::new().limit(LIMIT)
}

fn scenario_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

fn validate(dir: &Path) -> (i32, String) {
    let out = otelsim().cli("validate --scenarios-dir").arg(dir).run();
    (out.status.code().unwrap_or(-1), text(&out))
}

#[test]
fn file_output_is_byte_identical_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for i in 0..4 {
        let f = dir.path().join(format!("{i}.jsonl"));
        otelsim()
            .seed(42)
            .start_time(T0)
            .output_file(&f)
            .cli("run --count 400 --interval 0")
            .run_ok();
        digests.push(std::fs::read(&f).unwrap());
    }
    assert!(digests[0].len() > 100_000);
    assert!(
        digests.iter().all(|d| *d == digests[0]),
        "every run writes the same bytes"
    );
}

#[test]
fn a_receiver_that_never_answers_cannot_hang_the_run() {
    // Accepts connections and reads, never responds.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = [0u8; 65536];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    let started = Instant::now();
    let t = otelsim()
        .cli("run --count 100000 --interval 0")
        .endpoint(format!("http://127.0.0.1:{port}"))
        .cli("--retry-budget 2s")
        .run_exit(3);
    assert!(t.contains("run stopped") && t.contains("failing"), "{t}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
    // Every generated span is accounted for: acknowledged + failed = generated.
    let line = t.lines().find(|l| l.contains(" acknowledged")).unwrap();
    assert!(line.contains("0 acknowledged"), "{line}");
}

#[test]
fn extreme_numbers_are_load_errors_not_overflows() {
    let dir = scenario_dir(&[
        ("huge_latency.yaml", "root:\n  type: vendor.a2a.orchestrate\n  latency: {distribution: constant, value_ms: 1e13}\n"),
        ("huge_backoff.yaml", "root:\n  type: vendor.mcp.tool.execute\n  latency: 10\n  retry: {max_attempts: 20, backoff_multiplier: 1000}\n"),
        ("huge_weight.yaml", "workload_weight: 1e308\nroot:\n  type: vendor.planner\n"),
        ("huge_interval.yaml", "interval_ms: 1e30\nroot:\n  type: vendor.planner\n"),
        ("huge_categorical.yaml", "root:\n  type: vendor.planner\n  attributes:\n    vendor.tier: {distribution: categorical, values: {a: 1e308, b: 1e308}}\n"),
    ]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 2, "{out}");
    for (file, msg) in [
        ("huge_latency.yaml", "too large"),
        ("huge_backoff.yaml", "backoff_multiplier"),
        ("huge_weight.yaml", "too large"),
        ("huge_interval.yaml", "longer than one day"),
        ("huge_categorical.yaml", "too large"),
    ] {
        assert!(
            out.lines().any(|l| l.contains(file) && l.contains(msg)),
            "{file}: `{msg}` missing in\n{out}"
        );
    }
    for bad in [
        ["--start-time", "0"],
        ["--start-time", "1e12"],
        ["--interval", "1e30"],
    ] {
        otelsim()
            .cli("run --count 1")
            .output_file("/dev/null")
            .args(bad)
            .run_exit(2);
    }
}

#[test]
fn long_latencies_within_limits_still_nest() {
    let dir = scenario_dir(&[(
        "slow.yaml",
        "root:\n  type: vendor.a2a.orchestrate\n  latency: {distribution: log_normal, median_ms: 5e7, sigma: 3}\n  children:\n    - type: vendor.llm.call\n      count: 5\n      latency: {distribution: log_normal, median_ms: 4e7, sigma: 3}\n",
    )]);
    let f = dir.path().join("o.jsonl");
    otelsim()
        .cli("scenario --name slow --count 20 --scenarios-dir")
        .arg(dir.path())
        .start_time(T0)
        .output_file(&f)
        .run_ok();
    let spans = spans_in(&f);
    // 20 iterations 500 ms apart (the default interval) on the virtual clock.
    let anchor = otelsim::settings::parse_start_time(T0).unwrap() + 19 * 500_000_000;
    for (_, trace) in by_trace(&spans) {
        let root = trace.iter().find(|s| s.parent.is_empty()).unwrap();
        assert!(root.end <= anchor);
        for s in &trace {
            assert!(s.start <= s.end);
            assert!(root.start <= s.start && s.end <= root.end);
        }
    }
}

#[test]
fn enums_hold_even_for_numeric_distributions_and_env_values() {
    let dir = scenario_dir(&[(
        "num.yaml",
        "root:\n  type: vendor.response.compose\n  latency: 20\n  attributes:\n    vendor.response.format: {distribution: uniform, min: 0, max: 5}\n",
    )]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("num.yaml:5") && out.contains("is an enum"),
        "{out}"
    );
    let f = dir.path().join("o.jsonl");
    otelsim()
        .cli("scenario --name num --count 20 --scenarios-dir")
        .arg(dir.path())
        .output_file(&f)
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=prod,team=obs",
        )
        .run_ok();
    for s in spans_in(&f) {
        assert!(["a2a_json", "a2a_stream"].contains(&s.attrs["vendor.response.format"].as_str()));
        assert_eq!(s.resource["deployment.environment.name"], "production");
        assert_eq!(s.resource["team"], "obs");
    }
}

#[test]
fn a_write_error_fails_the_run_instead_of_claiming_delivery() {
    if !Path::new("/dev/full").exists() {
        eprintln!("SKIPPED: no /dev/full on this system");
        return;
    }
    let t = otelsim()
        .cli("scenario --name request_blocked_rate_limited")
        .output_file("/dev/full")
        .run_exit(3);
    assert!(t.contains("0 written"), "{t}");
}

#[test]
fn explicit_retries_use_their_latency_stay_sequential_and_propagate_child_failures() {
    let dir = scenario_dir(&[(
        "r.yaml",
        "root:\n  type: vendor.a2a.orchestrate\n  latency: 10\n  children:\n    - type: vendor.mcp.tool.execute\n      parallel: true\n      latency: {distribution: constant, value_ms: 800}\n      retry: {max_attempts: 3, force_initial_failure: true, success_rate_per_attempt: [0, 1], backoff_base_ms: 100}\n      children:\n        - type: vendor.custom.lookup\n          latency: 5\n          error: 1.0\n",
    )]);
    let f = dir.path().join("o.jsonl");
    otelsim()
        .cli("scenario --name r --count 5 --scenarios-dir")
        .arg(dir.path())
        .output_file(&f)
        .start_time(T0)
        .run_ok();
    let spans = spans_in(&f);
    for call in spans
        .iter()
        .filter(|s| s.class == "vendor.mcp.tool.execute")
    {
        let mut attempts: Vec<&Flat> = spans.iter().filter(|s| s.parent == call.span_id).collect();
        attempts.sort_by_key(|s| s.start);
        assert_eq!(attempts.len(), 2);
        for a in &attempts {
            let ms = (a.end - a.start) as f64 / 1e6;
            assert!(
                ms >= 799.0,
                "attempt lasts its declared latency, got {ms} ms"
            );
        }
        assert!(
            attempts[1].start >= attempts[0].end + 80_000_000,
            "backoff gap between attempts"
        );
        // The second attempt succeeded on its own, but its child failed: the attempt, the call and the root fail.
        assert_eq!(attempts[1].status, 2);
        assert_eq!(call.status, 2);
        let root = spans.iter().find(|s| s.span_id == call.parent).unwrap();
        assert_eq!(root.status, 2);
        assert_eq!(root.attrs["vendor.a2a.outcome"], "error");
    }
}

#[test]
fn gzip_over_http_is_really_compressed() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let t = otelsim()
        .cli("run --count 50 --interval 0")
        .protocol("http/protobuf")
        .endpoint(sink.http_endpoint())
        .arg("--gzip")
        .run_ok();
    let sent: u64 = t
        .lines()
        .find(|l| l.contains(" bytes"))
        .and_then(|l| l.split(" bytes").next())
        .and_then(|r| r.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let snap = sink.stats.snapshot();
    assert!(snap.spans > 0);
    assert!(
        sent * 3 < snap.bytes_received,
        "sent {sent} bytes on the wire for {} uncompressed",
        snap.bytes_received
    );
    rt.block_on(sink.shutdown());
}

#[cfg(unix)]
#[test]
fn symlink_loops_in_the_scenarios_folder_terminate() {
    let dir = scenario_dir(&[("one.yaml", "root:\n  type: vendor.planner\n")]);
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop_a")).unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop_b")).unwrap();
    let (code, out) = validate(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 scenario,"), "{out}");
}

#[test]
fn a_traces_endpoint_applies_to_traces_only() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let base = format!("http://{}", sink.http_addr);
    let traces = format!("{base}/v1/traces");
    otelsim()
        .cli("run --count 20 --interval 0")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &base)
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces)
        .run_ok();
    let snap = sink.stats.snapshot();
    assert!(
        snap.spans > 0 && snap.metric_points > 0 && snap.log_records > 0,
        "{snap:?}"
    );
    assert_eq!(snap.rejected_requests, 0);
    rt.block_on(sink.shutdown());
}
