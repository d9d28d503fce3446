//! The exporter, verify and flags that never lie: secrets never printed or
//! written, traces larger than a request split and acknowledged whole, refusals
//! for size not retried, a failing output file fatal at once, protocol
//! mismatches diagnosed on the first failure, rates kept whatever the workers,
//! spans whose resource a pipeline dropped matched by trace id, and flags that
//! could never work refused before a run starts. Real runs, real sockets.

use crate::support::*;
use otelsim::sink::{self, Faults, SinkOptions};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T0: &str = "2026-02-01T00:00:00Z";

fn sink_with(rt: &tokio::runtime::Runtime, opts: SinkOptions) -> sink::RunningSink {
    rt.block_on(sink::start(opts)).expect("start sink")
}

/// A scenario folder with one scenario, `big`: a trace of 1 + 60 + 60 × 50 =
/// 3,061 spans, six requests' worth.
fn big_scenario(dir: &Path) -> std::path::PathBuf {
    let d = dir.join("big");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("big.yaml"),
        "root:\n  type: vendor.a2a.orchestrate\n  children:\n    - type: vendor.task.execute\n      count: 60\n      children:\n        - type: vendor.llm.call\n          count: 50\n",
    )
    .unwrap();
    d
}

const BIG_SPANS: u64 = 3061;

// ---- secrets ----------------------------------------------------------------

#[test]
fn a_header_typo_never_prints_the_secret() {
    let t = Otelsim::new()
        .args(["--header", "authorization: Bearer s3cr3t-t0ken-flag"])
        .cli("run --count 1")
        .output_file("/dev/null")
        .run_exit(2);
    assert!(!t.contains("s3cr3t"), "{t}");
    assert!(t.contains("--header `authorization: <redacted>`"), "{t}");
    let t = Otelsim::new()
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization: Bearer s3cr3t-t0ken-env",
        )
        .cli("run --count 1")
        .output_file("/dev/null")
        .run_exit(2);
    assert!(!t.contains("s3cr3t"), "{t}");
    assert!(t.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{t}");
}

/// An HTTP/1.1 receiver that refuses every request with 400 and an error body
/// that echoes the request's headers, as some collectors do. Stops when `stop`
/// is set or after a minute.
fn echoing_receiver(stop: Arc<AtomicBool>) -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let _ = conn.set_nonblocking(false);
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut req = Vec::new();
            let mut buf = [0u8; 8192];
            // Headers, then as much body as Content-Length says (bounded).
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 1 << 20 {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req).into_owned();
            let Some(head_end) = text.find("\r\n\r\n") else {
                continue;
            };
            let head = &text[..head_end];
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let mut have = req.len() - head_end - 4;
            while have < length.min(64 << 20) {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => have += n,
                }
            }
            let headers: Vec<&str> = head.lines().skip(1).collect();
            let body = format!("bad request; you sent {}", headers.join(" | "));
            let _ = write!(
                conn,
                "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, handle)
}

#[test]
fn an_error_body_that_echoes_headers_is_scrubbed_everywhere() {
    let stop = Arc::new(AtomicBool::new(false));
    let (port, server) = echoing_receiver(stop.clone());
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("run.json");
    let out = Otelsim::new()
        .endpoint(format!("http://127.0.0.1:{port}"))
        .protocol("http/protobuf")
        .args(["--header", "authorization=Bearer s3cr3t-t0ken-echoed"])
        .cli("run --count 3 --interval 0")
        .report(&rep)
        .run();
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(
        t.contains("HTTP 400") && t.contains("authorization: <redacted>"),
        "the echo is shown, scrubbed: {t}"
    );
    let report = std::fs::read_to_string(&rep).unwrap();
    assert!(report.contains("<redacted>"), "{report}");
    for (what, s) in [("output", &t), ("report", &report)] {
        assert!(!s.contains("s3cr3t"), "the {what} holds the secret: {s}");
    }
}

#[test]
fn url_credentials_are_never_printed_or_written() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("run.json");
    let with_user = |addr: std::net::SocketAddr| format!("http://alice:pa55-w0rd@{addr}");
    for (protocol, addr) in [("grpc", sink.grpc_addr), ("http/protobuf", sink.http_addr)] {
        let t = Otelsim::new()
            .endpoint(with_user(addr))
            .protocol(protocol)
            .cli("run --count 3 --interval 0")
            .report(&rep)
            .run_ok();
        let report = std::fs::read_to_string(&rep).unwrap();
        assert!(
            !t.contains("pa55-w0rd") && !report.contains("pa55-w0rd"),
            "{t}\n{report}"
        );
        let r = read_json(&rep);
        assert_eq!(
            r["settings"]["endpoint"],
            format!("http://alice:<redacted>@{addr}"),
            "{protocol}"
        );
    }
    // Unreachable: the one-line error names the endpoint without its password.
    let t = Otelsim::new()
        .endpoint(format!("http://alice:pa55-w0rd@127.0.0.1:{}", free_port()))
        .cli("run --count 1")
        .run_exit(3);
    assert!(!t.contains("pa55-w0rd"), "{t}");
    assert!(t.contains("alice:<redacted>@127.0.0.1"), "{t}");
    rt.block_on(sink.shutdown());
}

// ---- traces larger than a request --------------------------------------------

#[test]
fn a_trace_larger_than_a_request_is_split_and_acknowledged_whole() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = big_scenario(dir.path());
    for protocol in ["grpc", "http/protobuf"] {
        let rt = runtime();
        let sink = start_sink(&rt);
        let (rep, sinkf) = (dir.path().join("run.json"), dir.path().join("sink.json"));
        let endpoint = match protocol {
            "grpc" => sink.grpc_endpoint(),
            _ => sink.http_endpoint(),
        };
        Otelsim::new()
            .arg("--scenarios-dir")
            .arg(&scenarios)
            .endpoint(endpoint)
            .protocol(protocol)
            .cli("run --count 2 --interval 0 --workers 1 --no-logs")
            .report(&rep)
            .run_ok();
        let requests = sink.stats.trace_requests();
        let largest = requests
            .iter()
            .map(|r| flatten(std::slice::from_ref(&r.request)).len())
            .max()
            .unwrap();
        assert!(largest <= 512, "{protocol}: a request of {largest} spans");
        assert!(
            requests.len() >= 12,
            "{protocol}: {} requests",
            requests.len()
        );
        let r = read_json(&rep);
        let acked = r["report"]["acked_traces"].as_object().unwrap();
        assert_eq!(acked.len(), 2, "{protocol}: {acked:?}");
        assert!(
            acked.values().all(|n| n.as_u64() == Some(BIG_SPANS)),
            "{protocol}: each trace is listed once, with all its spans: {acked:?}"
        );
        let json = serde_json::to_string_pretty(&sink.stats.snapshot()).unwrap();
        std::fs::write(&sinkf, json).unwrap();
        let t = Otelsim::new()
            .arg("verify")
            .arg(&rep)
            .arg("--sink-report")
            .arg(&sinkf)
            .run_ok();
        assert!(
            t.contains("VERIFIED: everything acknowledged arrived"),
            "{t}"
        );
        rt.block_on(sink.shutdown());
    }
}

#[test]
fn a_split_trace_with_a_refused_part_is_not_listed_as_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = big_scenario(dir.path());
    let rt = runtime();
    // The first trace request (the first part of the first trace) loses a span.
    let sink = sink_with(
        &rt,
        SinkOptions {
            faults: Faults {
                partial_first: 1,
                ..Faults::default()
            },
            ..SinkOptions::for_tests()
        },
    );
    let rep = dir.path().join("run.json");
    let out = Otelsim::new()
        .arg("--scenarios-dir")
        .arg(&scenarios)
        .endpoint(sink.grpc_endpoint())
        .cli("run --count 2 --interval 0 --workers 1 --no-logs --no-metrics")
        .report(&rep)
        .run();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let r = read_json(&rep);
    assert_eq!(r["report"]["export"]["spans"]["failed"], 1);
    let acked = r["report"]["acked_traces"].as_object().unwrap();
    assert_eq!(
        acked.len(),
        1,
        "only the trace whose every part was acknowledged: {acked:?}"
    );
    assert_eq!(acked.values().next().unwrap().as_u64(), Some(BIG_SPANS));
    rt.block_on(sink.shutdown());
}

#[test]
fn a_request_refused_as_too_large_is_not_retried_and_says_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = big_scenario(dir.path());
    let rt = runtime();
    let sink = sink_with(
        &rt,
        SinkOptions {
            max_request_bytes: 100_000,
            ..SinkOptions::for_tests()
        },
    );
    for (protocol, endpoint, answer) in [
        ("grpc", sink.grpc_endpoint(), "InvalidArgument"),
        ("http/protobuf", sink.http_endpoint(), "HTTP 413"),
    ] {
        let rep = dir.path().join("run.json");
        let started = Instant::now();
        let out = Otelsim::new()
            .arg("--scenarios-dir")
            .arg(&scenarios)
            .endpoint(endpoint)
            .protocol(protocol)
            .cli("run --count 1 --interval 0 --no-logs --no-metrics")
            .report(&rep)
            .run();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(3), "{t}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{protocol}: retried? {t}"
        );
        let r = read_json(&rep);
        let e = &r["report"]["export"];
        assert_eq!(e["retries"], 0, "{protocol}: {e}");
        assert_eq!(
            e["spans"]["failed"].as_u64(),
            Some(BIG_SPANS),
            "{protocol}: {e}"
        );
        let first = e["first_error"].as_str().unwrap();
        assert!(
            first.contains("as too large, not retried")
                && first.contains(" KB (")
                && first.contains(" spans)")
                && first.contains(answer),
            "{protocol}: {first}"
        );
    }
    rt.block_on(sink.shutdown());
}

// ---- a failing output file --------------------------------------------------

#[test]
fn a_failing_output_file_stops_an_unbounded_run_at_once() {
    if !Path::new("/dev/full").exists() {
        eprintln!("SKIPPED: no /dev/full on this system");
        return;
    }
    let out = Otelsim::new()
        .cli("run --rate 200")
        .output_file("/dev/full")
        .arg("-q")
        .limit(Duration::from_secs(60))
        .run();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(
        t.contains("stopping the run: cannot write /dev/full: No space left on device"),
        "{t}"
    );
}

// ---- protocol mismatches ----------------------------------------------------

#[test]
fn a_protocol_sent_to_the_other_port_is_diagnosed_at_once_even_quietly() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let cases = [
        // gRPC to the OTLP/HTTP port.
        (
            "grpc",
            sink.http_endpoint(),
            "and the endpoint answered HTTP/1.1",
            "did you mean --protocol http/protobuf",
        ),
        // OTLP/HTTP to the gRPC port.
        (
            "http/protobuf",
            sink.grpc_endpoint(),
            "and the endpoint answered HTTP/2 only",
            "did you mean --protocol grpc",
        ),
    ];
    for (protocol, endpoint, answered, hint) in cases {
        let started = Instant::now();
        let out = Otelsim::new()
            .endpoint(&endpoint)
            .protocol(protocol)
            .cli("run --rate 50 -q")
            .limit(Duration::from_secs(60))
            .run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{protocol}: {stderr}");
        assert!(
            stderr.contains(answered) && stderr.contains(hint),
            "{protocol}: {stderr}"
        );
        // Not retried for the 15 s budget: it is diagnosed on the first failure.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{protocol}: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(sink.stats.snapshot().spans, 0);
    rt.block_on(sink.shutdown());
}

// ---- rates ------------------------------------------------------------------

#[test]
fn many_workers_keep_the_rate_within_one_percent() {
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("run.json");
    for workers in ["1024", "128", "1"] {
        // On the virtual clock: every worker's slots, and nothing but the schedule, decide.
        Otelsim::new()
            .cli("run --rate 1000 --duration 10s --no-metrics --no-logs --max-shortfall 1%")
            .args(["--workers", workers])
            .seed(8)
            .start_time(T0)
            .output_file("/dev/null")
            .report(&rep)
            .run_ok();
        let p = read_json(&rep)["report"]["pacing"].clone();
        let achieved = p["achieved_units"].as_f64().unwrap();
        assert!(
            (achieved / 10_000.0 - 1.0).abs() < 0.01,
            "{workers} workers: {p}"
        );
    }
    // On the wall clock too (a loaded machine may fall short; it must never run ahead).
    let rt = runtime();
    let sink = start_sink(&rt);
    Otelsim::new()
        .cli("run --rate 1000 --duration 3s --workers 256 --no-metrics --no-logs")
        .endpoint(sink.grpc_endpoint())
        .report(&rep)
        .run_ok();
    let p = read_json(&rep)["report"]["pacing"].clone();
    let (achieved, target) = (
        p["achieved_units"].as_f64().unwrap(),
        p["target_units"].as_f64().unwrap(),
    );
    assert!(achieved <= target * 1.01, "{p}");
    rt.block_on(sink.shutdown());
}

#[test]
fn an_overshoot_fails_the_gate_and_a_cap_is_said() {
    // One pick of several spans against a target of one span: far above it.
    let t = Otelsim::new()
        .cli("run --rate 1 --unit spans --duration 1s --no-metrics --no-logs --max-shortfall 1%")
        .seed(8)
        .start_time(T0)
        .output_file("/dev/null")
        .run_exit(4);
    assert!(
        t.contains("above the target, beyond --max-shortfall 1.00%"),
        "{t}"
    );
    let t = Otelsim::new()
        .cli("run --count 2 --interval 0 --workers 100000")
        .output_file("/dev/null")
        .run_ok();
    assert!(t.contains("--workers 100000 is capped at 1024"), "{t}");
}

// ---- flags that could never work ----------------------------------------------

#[test]
fn flags_that_could_never_work_are_input_errors() {
    let run = |args: &[&str]| Otelsim::new().args(args).cli("run --count 1").run_exit(2);
    let t = run(&["--header", "=x"]);
    assert!(t.contains("empty name"), "{t}");
    let t = run(&["--header", "x-token=abc\r\nx-evil: 1"]);
    assert!(
        t.contains("control character") && !t.contains("x-evil"),
        "{t}"
    );
    let t = run(&["--endpoint", "not a url"]);
    assert!(t.contains("invalid OTLP endpoint `not a url`"), "{t}");
    let t = run(&["--endpoint", "ftp://collector:4317"]);
    assert!(
        t.contains("the scheme `ftp` is not http:// or https://"),
        "{t}"
    );
    let long = "r".repeat(129);
    let t = Otelsim::new()
        .cli("run --count 1 --run-id")
        .arg(&long)
        .output_file("/dev/null")
        .run_exit(2);
    assert!(
        t.contains("--run-id must be 1 to 128 bytes long (it is 129)"),
        "{t}"
    );
    let t = Otelsim::new()
        .cli("sink --max-request-bytes 0 --duration 1s")
        .run_exit(2);
    assert!(t.contains("--max-request-bytes must be at least 1"), "{t}");
    let started = Instant::now();
    let t = Otelsim::new()
        .cli("sink --summary-file /nonexistent-dir/sink.json --duration 30s")
        .arg("--grpc-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--http-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .run_exit(2);
    assert!(
        t.contains("cannot write --summary-file /nonexistent-dir/sink.json"),
        "{t}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "found at start"
    );
}

// ---- verify: spans whose resource a pipeline dropped ---------------------------

#[test]
fn spans_without_a_run_id_are_matched_by_trace_id() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let dir = tempfile::tempdir().unwrap();
    let (run, sinkf) = (dir.path().join("run.json"), dir.path().join("sink.json"));
    Otelsim::new()
        .cli("run --count 200 --interval 0 --no-metrics --no-logs")
        .endpoint(sink.grpc_endpoint())
        .report(&run)
        .run_ok();
    let mut s = serde_json::to_value(sink.stats.snapshot()).unwrap();
    rt.block_on(sink.shutdown());
    let id = read_json(&run)["report"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // As a pipeline that forwards some resources empty: a third of the traces
    // lose their run id and land in the sink's "(no run id)" group.
    let traces = s["runs"][&id]["trace_spans"].as_object().unwrap().clone();
    let moved: Vec<(String, u64)> = traces
        .iter()
        .step_by(3)
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    let moved_spans: u64 = moved.iter().map(|m| m.1).sum();
    let mut none =
        serde_json::json!({"spans": 0, "unique_spans": 0, "traces": 0, "trace_spans": {}});
    for (k, n) in &moved {
        s["runs"][&id]["trace_spans"]
            .as_object_mut()
            .unwrap()
            .remove(k);
        none["trace_spans"][k] = (*n).into();
    }
    // And spans of someone else's, which are no business of this run.
    none["trace_spans"]["00000000000000000000000000000abc"] = 7.into();
    none["unique_spans"] = (moved_spans + 7).into();
    let seen = &mut s["runs"][&id];
    seen["unique_spans"] = (seen["unique_spans"].as_u64().unwrap() - moved_spans).into();
    seen["traces"] = (seen["traces"].as_u64().unwrap() - moved.len() as u64).into();
    s["runs"]["(no run id)"] = none;
    std::fs::write(&sinkf, serde_json::to_string(&s).unwrap()).unwrap();
    let verify = || verify_against(&run, &sinkf);
    let t = verify().run_ok();
    assert!(
        t.contains(&format!(
            "note: {moved_spans} spans arrived without otelsim.run.id (resource dropped by the pipeline) and were matched by trace id"
        )),
        "{t}"
    );
    assert!(t.contains("VERIFIED"), "{t}");
    // A real loss is reported as itself: one trace gone from both groups.
    let (lost, lost_n) = moved[0].clone();
    s["runs"]["(no run id)"]["trace_spans"]
        .as_object_mut()
        .unwrap()
        .remove(&lost);
    std::fs::write(&sinkf, serde_json::to_string(&s).unwrap()).unwrap();
    let t = verify().run_exit(5);
    assert!(
        t.contains(&format!(
            "trace {lost}: {lost_n} span(s) acknowledged, none received"
        )),
        "{t}"
    );
    assert!(t.contains("missing_trace: 1\n"), "{t}");
}

#[test]
fn log_records_without_a_run_id_are_matched_by_trace_id() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let dir = tempfile::tempdir().unwrap();
    let (run, sinkf) = (dir.path().join("run.json"), dir.path().join("sink.json"));
    Otelsim::new()
        .cli("run --count 100 --interval 0 --no-metrics")
        .endpoint(sink.grpc_endpoint())
        .report(&run)
        .run_ok();
    // Log records per trace, as the sink received them.
    let mut per_trace: std::collections::BTreeMap<String, u64> = Default::default();
    for req in sink.stats.logs_requests() {
        for rl in &req.resource_logs {
            for sl in &rl.scope_logs {
                for r in &sl.log_records {
                    *per_trace.entry(hex::encode(&r.trace_id)).or_default() += 1;
                }
            }
        }
    }
    let mut s = serde_json::to_value(sink.stats.snapshot()).unwrap();
    rt.block_on(sink.shutdown());
    let id = read_json(&run)["report"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // As a pipeline that forwards some log resources empty: the records of every
    // third trace lose their run id.
    let moved: Vec<(String, u64)> = per_trace.into_iter().step_by(3).collect();
    let moved_records: u64 = moved.iter().map(|m| m.1).sum();
    assert!(moved_records > 0);
    let mut none = serde_json::json!({"log_records": moved_records, "trace_log_records": {}});
    for (k, n) in &moved {
        none["trace_log_records"][k] = (*n).into();
    }
    let seen = &mut s["runs"][&id];
    seen["log_records"] = (seen["log_records"].as_u64().unwrap() - moved_records).into();
    s["runs"]["(no run id)"] = none;
    std::fs::write(&sinkf, serde_json::to_string(&s).unwrap()).unwrap();
    let verify = || verify_against(&run, &sinkf);
    let t = verify().run_ok();
    assert!(
        t.contains(&format!(
            "note: {moved_records} log records arrived without otelsim.run.id and were matched by trace id"
        )),
        "{t}"
    );
    assert!(t.contains("VERIFIED"), "{t}");
    // Records of traces the run never acknowledged are not the run's: a loss stays a loss.
    let lost = moved[0].0.clone();
    let n = s["runs"]["(no run id)"]["trace_log_records"][&lost].clone();
    s["runs"]["(no run id)"]["trace_log_records"]
        .as_object_mut()
        .unwrap()
        .remove(&lost);
    s["runs"]["(no run id)"]["trace_log_records"]["000000000000000000000000000000ab"] = n;
    std::fs::write(&sinkf, serde_json::to_string(&s).unwrap()).unwrap();
    let t = verify().run_exit(5);
    assert!(t.contains("missing_log_records: 1"), "{t}");
}

/// `otelsim verify RUN --sink-report SINK`.
fn verify_against(run: &Path, sink_report: &Path) -> Otelsim {
    Otelsim::new()
        .arg("verify")
        .arg(run)
        .arg("--sink-report")
        .arg(sink_report)
}
