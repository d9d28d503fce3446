//! A misbehaving collector: down at start, killed and restarted mid-run,
//! stalled, refusing with retry hints, accepting only partly. Every run is
//! bounded; counters must stay exact (what otelsim calls acknowledged is what
//! the receiver kept).

use crate::support::*;
use otelsim::sink::{self, Faults, RejectWith, SinkOptions};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

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
    let child = Otelsim::new()
        .cli("run --rate 100 --duration 6s")
        .endpoint(first.grpc_endpoint())
        .cli("--retry-budget 20s")
        .report(&rep)
        .arg("-q")
        .spawn();
    // Killed mid-run, once it has received part of the run.
    wait_until("the first collector to receive spans", LIMIT, || {
        first_stats.snapshot().spans > 0
    });
    std::mem::forget(first);
    doomed.shutdown_background();
    // The outage: no collector for 1.5 s (this pause is the scenario, not a wait).
    std::thread::sleep(Duration::from_millis(1500));
    let rt = runtime();
    let second = rt
        .block_on(sink::start(SinkOptions {
            grpc_addr: grpc,
            http_addr: http,
            ..SinkOptions::for_tests()
        }))
        .expect("rebind the same ports");
    let out = child.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = read_json(&rep);
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
    let t = Otelsim::new()
        .cli("run --rate 500 --duration 4s")
        .endpoint(format!("http://{addr}"))
        .cli("--retry-budget 3s")
        .report(&rep)
        .cli("--max-shortfall 1%")
        .run_exit(3);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(25), "bounded: took {took:?}");
    let r = read_json(&rep);
    for signal in ["spans", "log_records", "metric_points"] {
        let s = &r["report"]["export"][signal];
        assert_eq!(s["acked"], 0, "{signal}: {s}");
        assert_eq!(
            s["generated"], s["failed"],
            "{signal}: nothing generated is unaccounted for: {s}"
        );
    }
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
        Otelsim::new()
            .cli("run --count 30 --interval 0")
            .protocol(protocol)
            .endpoint(&endpoint)
            .report(&rep)
            .run_ok();
        assert!(
            started.elapsed() >= Duration::from_millis(1200),
            "{protocol}: the receiver's 1.2 s hint was waited for"
        );
        let r = read_json(&rep);
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
        // Refused items are export failures: exit 3, and the message says why.
        let t = Otelsim::new()
            .cli("run --count 80 --workers 2 --interval 0")
            .protocol(protocol)
            .endpoint(&endpoint)
            .report(&rep)
            .run_exit(3);
        assert!(t.contains("refused on purpose"), "{protocol}: {t}");
        let r = read_json(&rep);
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
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let t = Otelsim::new()
        .cli("run --count 5")
        .endpoint(&endpoint)
        .run_exit(3);
    assert!(t.contains("cannot reach the OTLP endpoint"), "{t}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // With --wait-for-endpoint, a collector that comes up a little later is used.
    let child = Otelsim::new()
        .cli("run --count 5 --interval 0")
        .endpoint(&endpoint)
        .cli("--wait-for-endpoint 20s")
        .spawn();
    // The collector is down for the run's first 1.5 s: this pause is the scenario.
    std::thread::sleep(Duration::from_millis(1500));
    let rt = runtime();
    let sink = rt
        .block_on(sink::start(SinkOptions {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            ..SinkOptions::for_tests()
        }))
        .unwrap();
    let out = child.wait();
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
    // Drops are export failures: exit 3.
    Otelsim::new()
        .cli("run --engine sdk --count 3000 --interval 0")
        .endpoint(sink.grpc_endpoint())
        .report(&rep)
        .run_exit(3);
    let r = read_json(&rep);
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
    let t = Otelsim::new()
        .cli("run --engine sdk --rate 50 --duration 2s")
        .endpoint(sink.grpc_endpoint())
        .run_ok();
    assert!(t.contains(" 0 dropped by the batch processor"), "{t}");
    rt.block_on(sink.shutdown());
}
