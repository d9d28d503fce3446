//! A misbehaving collector: down at start, killed and restarted mid-run,
//! stalled, refusing with retry hints, accepting only partly. Every run is
//! bounded; counters must stay exact (what otelsim calls acknowledged is what
//! the receiver kept).

mod common;

use common::*;
use otelsim::sink::{self, Faults, RejectWith, SinkOptions};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

fn report(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sink_with(rt: &tokio::runtime::Runtime, faults: Faults) -> sink::RunningSink {
    rt.block_on(sink::start(SinkOptions {
        faults,
        ..SinkOptions::for_tests()
    }))
    .unwrap()
}

#[test]
fn a_collector_killed_and_restarted_mid_run_loses_nothing_acknowledged() {
    // The first collector lives on its own runtime: shutting that down drops every
    // connection and request in flight at once, as a killed process would.
    let doomed = runtime();
    let first = start_sink(&doomed);
    let (grpc, http) = (first.grpc_addr, first.http_addr);
    let first_stats = first.stats.clone();
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("run.json");
    let endpoint = first.grpc_endpoint();
    let child = std::process::Command::new(BIN)
        .args([
            "run",
            "--rate",
            "100",
            "--duration",
            "6s",
            "--endpoint",
            &endpoint,
            "--retry-budget",
            "20s",
            "--report",
            rep.to_str().unwrap(),
            "-q",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    std::mem::forget(first);
    doomed.shutdown_background();
    std::thread::sleep(Duration::from_millis(1500));
    let rt = runtime();
    let second = rt
        .block_on(sink::start(SinkOptions {
            grpc_addr: grpc,
            http_addr: http,
            ..SinkOptions::for_tests()
        }))
        .expect("rebind the same ports");
    let out = wait_with_limit(child, LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = report(&rep);
    let e = &r["report"]["export"];
    assert_eq!(e["spans"]["failed"], 0, "{e}");
    assert!(
        e["retries"].as_u64().unwrap() > 0,
        "the outage was noticed: {e}"
    );
    // A batch whose answer was lost with the first collector was retried to the
    // second: it may have arrived twice (at-least-once), never zero times.
    let id = r["report"]["run_id"].as_str().unwrap();
    let (a, b) = (first_stats.snapshot(), second.stats.snapshot());
    let mut traces: std::collections::BTreeMap<String, u64> = Default::default();
    let mut duplicated = 0;
    for snap in [&a, &b] {
        let run = &snap.runs[id];
        for (t, n) in &run.trace_spans {
            if traces.insert(t.clone(), *n).is_some() {
                duplicated += 1;
            }
        }
    }
    assert!(
        a.spans > 0 && b.spans > 0,
        "both collectors received part of the run"
    );
    let acked = r["report"]["acked_traces"].as_object().unwrap();
    assert_eq!(
        traces.len(),
        acked.len(),
        "every acknowledged trace arrived, nothing else"
    );
    for (t, n) in acked {
        assert_eq!(traces.get(t).copied(), n.as_u64(), "trace {t}");
    }
    let distinct: u64 = traces.values().sum();
    assert_eq!(distinct, e["spans"]["acked"].as_u64().unwrap());
    eprintln!("traces delivered twice across the restart: {duplicated}");
    rt.block_on(second.shutdown());
}

#[test]
fn a_stalled_collector_bounds_the_run_and_every_item_is_accounted_for() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(40) {
            if let Ok((c, _)) = listener.accept() {
                conns.push(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("run.json");
    let started = Instant::now();
    let out = otelsim(
        &[
            "run",
            "--rate",
            "500",
            "--duration",
            "4s",
            "--endpoint",
            &format!("http://{addr}"),
            "--retry-budget",
            "3s",
            "--report",
            rep.to_str().unwrap(),
            "--max-shortfall",
            "1%",
        ],
        &[],
        LIMIT,
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(took < Duration::from_secs(25), "bounded: took {took:?}");
    let r = report(&rep);
    for signal in ["spans", "log_records", "metric_points"] {
        let s = &r["report"]["export"][signal];
        assert_eq!(s["acked"], 0, "{signal}: {s}");
        assert_eq!(
            s["generated"], s["failed"],
            "{signal}: nothing generated is unaccounted for: {s}"
        );
    }
    let t = text(&out);
    assert!(
        t.contains("gave up after") || t.contains("failing for"),
        "{t}"
    );
    drop(held);
}

#[test]
fn retry_hints_are_honoured_over_grpc_and_http() {
    for (protocol, with) in [
        ("grpc", RejectWith::TooManyRequests),
        ("http/protobuf", RejectWith::TooManyRequests),
        ("http/protobuf", RejectWith::Unavailable),
    ] {
        let rt = runtime();
        let sink = sink_with(
            &rt,
            Faults {
                reject_first: 3,
                reject_with: with,
                retry_after: Some(Duration::from_millis(1200)),
                partial_first: 0,
            },
        );
        let endpoint = if protocol == "grpc" {
            sink.grpc_endpoint()
        } else {
            sink.http_endpoint()
        };
        let dir = tempfile::tempdir().unwrap();
        let rep = dir.path().join("run.json");
        let started = Instant::now();
        let out = otelsim(
            &[
                "run",
                "--count",
                "30",
                "--interval",
                "0",
                "--protocol",
                protocol,
                "--endpoint",
                &endpoint,
                "--report",
                rep.to_str().unwrap(),
            ],
            &[],
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(0), "{protocol}: {}", text(&out));
        assert!(
            started.elapsed() >= Duration::from_millis(1200),
            "{protocol}: the receiver's 1.2 s hint was waited for"
        );
        let r = report(&rep);
        let e = &r["report"]["export"];
        assert_eq!(e["retries"], 3, "{protocol}: {e}");
        assert_eq!(e["retry_hints"], 3, "{protocol}: {e}");
        let snap = sink.stats.snapshot();
        assert_eq!(snap.injected_rejections, 3);
        assert_eq!(e["spans"]["acked"].as_u64(), Some(snap.spans), "{protocol}");
        assert_eq!(e["spans"]["failed"], 0);
        rt.block_on(sink.shutdown());
    }
}

#[test]
fn partial_success_is_counted_exactly() {
    for protocol in ["grpc", "http/protobuf", "http/json"] {
        let rt = runtime();
        let sink = sink_with(
            &rt,
            Faults {
                partial_first: 2,
                ..Default::default()
            },
        );
        let endpoint = if protocol == "grpc" {
            sink.grpc_endpoint()
        } else {
            sink.http_endpoint()
        };
        let dir = tempfile::tempdir().unwrap();
        let rep = dir.path().join("run.json");
        let out = otelsim(
            &[
                "run",
                "--count",
                "80",
                "--workers",
                "2",
                "--interval",
                "0",
                "--protocol",
                protocol,
                "--endpoint",
                &endpoint,
                "--report",
                rep.to_str().unwrap(),
            ],
            &[],
            LIMIT,
        );
        // Refused items are export failures: exit 3, and the message says why.
        assert_eq!(out.status.code(), Some(3), "{protocol}: {}", text(&out));
        assert!(text(&out).contains("refused on purpose"), "{}", text(&out));
        let r = report(&rep);
        let e = &r["report"]["export"]["spans"];
        let snap = sink.stats.snapshot();
        assert_eq!(e["failed"], 2, "{protocol}: {e}");
        assert_eq!(e["acked"].as_u64(), Some(snap.spans), "{protocol}: {e}");
        assert_eq!(
            e["generated"].as_u64().unwrap(),
            snap.spans + 2,
            "{protocol}"
        );
        rt.block_on(sink.shutdown());
    }
}

#[test]
fn a_collector_down_at_start_fails_fast_or_is_waited_for() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let out = otelsim(
        &["run", "--count", "5", "--endpoint", &endpoint],
        &[],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("cannot reach the OTLP endpoint"));
    assert!(started.elapsed() < Duration::from_secs(10));
    // With --wait-for-endpoint, a collector that comes up a little later is used.
    let child = std::process::Command::new(BIN)
        .args([
            "run",
            "--count",
            "5",
            "--interval",
            "0",
            "--endpoint",
            &endpoint,
            "--wait-for-endpoint",
            "20s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let rt = runtime();
    let sink = rt
        .block_on(sink::start(SinkOptions {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            ..SinkOptions::for_tests()
        }))
        .unwrap();
    let out = wait_with_limit(child, LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(sink.stats.snapshot().spans > 0);
    rt.block_on(sink.shutdown());
}

#[test]
fn the_sdk_engine_reports_its_drops_honestly() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("sdk.json");
    // Unpaced: the SDK's queue (2048) overflows and it drops, as it does in production.
    let out = otelsim(
        &[
            "run",
            "--engine",
            "sdk",
            "--count",
            "3000",
            "--interval",
            "0",
            "--endpoint",
            &sink.grpc_endpoint(),
            "--report",
            rep.to_str().unwrap(),
        ],
        &[],
        LIMIT,
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "drops are export failures: {}",
        text(&out)
    );
    let r = report(&rep);
    let k = &r["report"]["sdk"];
    let offered = k["offered_spans"].as_u64().unwrap();
    let (exported, dropped) = (
        k["exported_spans"].as_u64().unwrap(),
        k["dropped_spans"].as_u64().unwrap(),
    );
    assert!(dropped > 0, "{k}");
    assert_eq!(
        offered,
        exported + dropped + k["failed_spans"].as_u64().unwrap(),
        "{k}"
    );
    assert_eq!(
        sink.stats.snapshot().spans,
        exported,
        "what the SDK exported is what arrived"
    );
    assert_eq!(
        r["report"]["export"]["spans"]["acked"].as_u64(),
        Some(exported)
    );
    assert_eq!(
        sink.stats.snapshot().log_records,
        0,
        "the SDK engine sends traces only"
    );
    rt.block_on(sink.shutdown());
    // Paced well below its limits, the SDK path loses nothing.
    let sink = start_sink(&rt);
    let out = otelsim(
        &[
            "run",
            "--engine",
            "sdk",
            "--rate",
            "50",
            "--duration",
            "2s",
            "--endpoint",
            &sink.grpc_endpoint(),
        ],
        &[],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(" 0 dropped by the batch processor"),
        "{}",
        text(&out)
    );
    rt.block_on(sink.shutdown());
}
