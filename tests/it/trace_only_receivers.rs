//! Receivers that accept only traces (LLM-observability UIs answer 405 on
//! `/v1/metrics` and `/v1/logs`), a receiver whose first answer is slow, and
//! `--trace-flow`. The receiver is a small OTLP/HTTP server in the test, on
//! 127.0.0.1, that counts the spans it kept.

use crate::support::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T0: &str = "2026-03-01T00:00:00Z";

/// What the receiver does and what it got.
#[derive(Default)]
struct Got {
    /// Answer 405 on `/v1/metrics` and `/v1/logs` (else 200).
    traces_only: bool,
    /// Serve no `/v1/traces` (404).
    no_traces: bool,
    /// A cold start: the first `/v1/traces` answer comes this long after its
    /// request, and requests that arrive meanwhile wait for it too.
    cold_for: Option<Duration>,
    /// When the first `/v1/traces` request arrived.
    first_seen: Mutex<Option<Instant>>,
    /// Distinct (trace id, span id) of the spans answered with 200.
    spans: Mutex<HashSet<(Vec<u8>, Vec<u8>)>>,
    /// Requests answered 405.
    refused: AtomicU64,
    /// Requests of other signals answered 200.
    other_accepted: AtomicU64,
}

/// `/v1/traces`: 200 with an empty `ExportTraceServiceResponse` (after the
/// first request's delay, if any), counting the spans.
async fn traces(State(got): State<Arc<Got>>, body: Bytes) -> Response {
    let first = *got
        .first_seen
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    if let Some(d) = got.cold_for {
        tokio::time::sleep_until((first + d).into()).await;
    }
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut spans = got.spans.lock().unwrap();
    for s in req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
    {
        spans.insert((s.trace_id.clone(), s.span_id.clone()));
    }
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

/// `/v1/metrics` and `/v1/logs`: 405 for a traces-only receiver, else 200 with
/// an empty body (no partial success).
async fn other(State(got): State<Arc<Got>>) -> Response {
    if got.traces_only {
        got.refused.fetch_add(1, Relaxed);
        StatusCode::METHOD_NOT_ALLOWED.into_response()
    } else {
        got.other_accepted.fetch_add(1, Relaxed);
        (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Vec::new(),
        )
            .into_response()
    }
}

/// The receiver, serving on its own runtime until dropped.
struct Receiver {
    endpoint: String,
    got: Arc<Got>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(got: Got) -> Receiver {
        let rt = runtime();
        let got = Arc::new(got);
        let mut app = Router::new();
        if !got.no_traces {
            app = app.route("/v1/traces", post(traces));
        }
        let app = app
            .route("/v1/metrics", post(other))
            .route("/v1/logs", post(other))
            .with_state(got.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            endpoint: format!("http://{addr}"),
            got,
            _rt: rt,
        }
    }

    fn spans(&self) -> u64 {
        self.got.spans.lock().unwrap().len() as u64
    }
}

/// `otelsim run` against the receiver over OTLP/HTTP, with a report.
fn run_against(r: &Receiver, rep: &std::path::Path, extra: &str) -> Otelsim {
    Otelsim::new()
        .cli("run --count 20 --interval 0")
        .seed(11)
        .endpoint(&r.endpoint)
        .protocol("http/protobuf")
        .report(rep)
        .cli(extra)
        .limit(Duration::from_secs(60))
}

fn warning(signal: &str) -> String {
    format!(
        "otelsim: the receiver does not accept {signal} (HTTP 405 on /v1/{signal}); {signal} are off for this run"
    )
}

#[test]
fn metrics_and_logs_refused_with_405_are_turned_off_and_every_trace_arrives() {
    let r = Receiver::start(Got {
        traces_only: true,
        ..Got::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("run.json");
    let out = run_against(&r, &rep, "").run_ok();
    for signal in ["metrics", "logs"] {
        assert_eq!(
            out.matches(&warning(signal)).count(),
            1,
            "one warning for {signal}:\n{out}"
        );
    }
    let report = read_json(&rep);
    let e = &report["report"]["export"];
    // Every span arrived: what the receiver kept is what otelsim generated and calls acknowledged.
    let spans = &e["spans"];
    assert!(spans["generated"].as_u64().unwrap() > 0, "{spans}");
    assert_eq!(spans["acked"], spans["generated"], "{spans}");
    assert_eq!(spans["failed"], 0, "{spans}");
    assert_eq!(spans["turned_off"], serde_json::Value::Null, "{spans}");
    assert_eq!(r.spans(), spans["acked"].as_u64().unwrap());
    // Metrics and logs: none lost silently, each counted as dropped, with the reason.
    for (key, signal, what) in [
        ("metric_points", "metrics", "metric points"),
        ("log_records", "logs", "log records"),
    ] {
        let c = &e[key];
        let generated = c["generated"].as_u64().unwrap();
        assert!(generated > 0, "{key}: {c}");
        assert_eq!(c["dropped_by_receiver"], generated, "{key}: {c}");
        assert_eq!(c["acked"], 0, "{key}: {c}");
        assert_eq!(c["failed"], 0, "{key}: {c}");
        let why = format!("the receiver does not accept {signal} (HTTP 405 on /v1/{signal})");
        assert_eq!(c["turned_off"], why.as_str(), "{key}: {c}");
        // The summary says how many were not delivered, and why.
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{what}:")))
            .unwrap_or_else(|| panic!("no {what} line:\n{out}"));
        assert!(
            line.contains(&format!("{generated} not delivered: {why}")),
            "{line}"
        );
    }
    assert!(r.got.refused.load(Relaxed) >= 2, "both signals were tried");
    assert_eq!(e["first_error"], serde_json::Value::Null, "no failure: {e}");
}

#[test]
fn a_signal_asked_for_by_name_that_the_receiver_refuses_fails_the_run() {
    let r = Receiver::start(Got {
        traces_only: true,
        ..Got::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("run.json");
    let out = run_against(&r, &rep, "--metrics").run_exit(3);
    assert!(!out.contains(&warning("metrics")), "{out}");
    // Logs were not asked for by name: still turned off, not failed.
    assert_eq!(out.matches(&warning("logs")).count(), 1, "{out}");
    let e = &read_json(&rep)["report"]["export"];
    let m = &e["metric_points"];
    assert!(m["failed"].as_u64().unwrap() > 0, "{m}");
    assert_eq!(m["failed"], m["generated"], "{m}");
    assert_eq!(m["dropped_by_receiver"], 0, "{m}");
    assert!(
        e["first_error"].as_str().unwrap().starts_with(
            "the receiver does not accept metrics (HTTP 405 on /v1/metrics), and --metrics asks for them: HTTP 405 from http://127.0.0.1:"
        ),
        "{e}"
    );
    assert_eq!(e["log_records"]["failed"], 0, "{e}");
    assert_eq!(e["spans"]["acked"], e["spans"]["generated"], "{e}");
}

#[test]
fn traces_the_receiver_does_not_accept_fail_the_run() {
    let r = Receiver::start(Got {
        traces_only: true,
        no_traces: true,
        ..Got::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("run.json");
    let out = run_against(&r, &rep, "").run_exit(3);
    assert!(!out.contains("traces are off"), "{out}");
    let e = &read_json(&rep)["report"]["export"];
    assert_eq!(e["spans"]["acked"], 0, "{e}");
    assert_eq!(e["spans"]["failed"], e["spans"]["generated"], "{e}");
    assert_eq!(e["spans"]["dropped_by_receiver"], 0, "{e}");
    assert!(
        e["first_error"].as_str().unwrap().starts_with(
            "the receiver does not accept traces (HTTP 404 on /v1/traces): HTTP 404 from"
        ),
        "{e}"
    );
}

/// A gRPC receiver that serves the trace service only: the others are UNIMPLEMENTED.
struct GrpcTraces(Arc<Got>);

#[tonic::async_trait]
impl TraceService for GrpcTraces {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.spans.lock().unwrap();
        for s in request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            spans.insert((s.trace_id.clone(), s.span_id.clone()));
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[test]
fn over_grpc_unimplemented_services_are_turned_off_too() {
    let rt = runtime();
    let got = Arc::new(Got::default());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(GrpcTraces(got.clone())))
            .serve_with_incoming(incoming),
    );
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("run.json");
    let out = Otelsim::new()
        .cli("run --count 10 --interval 0")
        .seed(3)
        .endpoint(format!("http://{addr}"))
        .report(&rep)
        .limit(Duration::from_secs(60))
        .run_ok();
    for (signal, service) in [("metrics", "MetricsService"), ("logs", "LogsService")] {
        let warning = format!("otelsim: the receiver does not accept {signal} (gRPC UNIMPLEMENTED for {service}/Export); {signal} are off for this run");
        assert_eq!(out.matches(&warning).count(), 1, "{out}");
    }
    let e = &read_json(&rep)["report"]["export"];
    assert_eq!(e["spans"]["acked"], e["spans"]["generated"], "{e}");
    assert_eq!(
        got.spans.lock().unwrap().len() as u64,
        e["spans"]["acked"].as_u64().unwrap()
    );
    for key in ["metric_points", "log_records"] {
        assert_eq!(e[key]["dropped_by_receiver"], e[key]["generated"], "{e}");
    }
}

/// A run against a receiver that starts cold: everything arrives, and the
/// slow first answer was retried.
fn survives_a_cold_start(cold_for: Duration, flags: &str) {
    let started = Instant::now();
    let r = Receiver::start(Got {
        cold_for: Some(cold_for),
        ..Got::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("run.json");
    let out = run_against(&r, &rep, flags)
        .limit(Duration::from_secs(18))
        .run_ok();
    let report = read_json(&rep);
    let e = &report["report"]["export"];
    assert!(
        e["retries"].as_u64().unwrap() >= 1,
        "the slow answer was retried: {e}"
    );
    for key in ["spans", "metric_points", "log_records"] {
        let c = &e[key];
        assert!(c["generated"].as_u64().unwrap() > 0, "{key}: {c}");
        assert_eq!(c["acked"], c["generated"], "{key}: {c}\n{out}");
        assert_eq!(c["failed"], 0, "{key}: {c}");
    }
    assert_eq!(r.spans(), e["spans"]["acked"].as_u64().unwrap());
    assert!(r.got.other_accepted.load(Relaxed) >= 2);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_first_answer_slower_than_the_request_timeout_is_retried_and_everything_arrives() {
    survives_a_cold_start(Duration::from_secs(3), "--request-timeout 1s");
}

#[test]
fn a_slow_first_answer_costs_none_of_the_retry_budget() {
    // The first attempt times out after 2 s; the retry still has the whole 2 s
    // budget, and the receiver answers at 2.5 s.
    survives_a_cold_start(
        Duration::from_millis(2500),
        "--request-timeout 2s --retry-budget 2s",
    );
}

#[test]
fn the_request_timeout_is_recorded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("run.json");
    let file = dir.path().join("out.jsonl");
    Otelsim::new()
        .cli("run --count 1 --interval 0")
        .output_file(&file)
        .report(&rep)
        .env("OTELSIM_REQUEST_TIMEOUT", "45s")
        .run_ok();
    let settings = &read_json(&rep)["settings"];
    assert_eq!(settings["request_timeout_s"], 45.0, "{settings}");
    assert_eq!(settings["trace_flow"], "linked", "{settings}");
    let bad = Otelsim::new()
        .cli("run --count 1 --request-timeout 0s")
        .output_file(&file)
        .run_exit(2);
    assert!(
        bad.contains("--request-timeout: must be between 1ms and 1h"),
        "{bad}"
    );
}

/// Distinct trace ids per request (`vendor.request.id`) in an `--output otlp-json` file.
fn traces_per_request(file: &std::path::Path) -> HashMap<String, HashSet<String>> {
    let mut per: HashMap<String, HashSet<String>> = HashMap::new();
    for s in spans_in(file) {
        let id = s
            .attrs
            .get("vendor.request.id")
            .unwrap_or_else(|| panic!("{} has no vendor.request.id", s.name))
            .clone();
        per.entry(id).or_default().insert(s.trace_id);
    }
    per
}

#[test]
fn trace_flow_makes_a_request_one_trace_or_three_linked_ones() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = |flow: &str, config: Option<&std::path::Path>| {
        let file = dir.path().join(format!("{flow}.jsonl"));
        let mut o = Otelsim::new()
            .cli("scenario --name new_claim_phone --count 3")
            .seed(5)
            .start_time(T0)
            .arg("--output")
            .arg(format!("otlp-json:{}", file.display()))
            .cli(&format!("--trace-flow {flow}"));
        if let Some(c) = config {
            o = o.arg("--config").arg(c);
        }
        o.run_ok();
        traces_per_request(&file)
    };
    let single = scenario("single", None);
    assert_eq!(single.len(), 3, "{single:?}");
    assert!(single.values().all(|t| t.len() == 1), "{single:?}");
    // `linked` beats a config that asks for single traces.
    let cfg = std::fs::read_to_string(repo().join("config/config.yaml")).unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        cfg.replacen(
            "control_plane:\n",
            "control_plane:\n  trace_flow_mode: single\n",
            1,
        ),
    )
    .unwrap();
    let linked = scenario("linked", Some(&config));
    assert_eq!(linked.len(), 3, "{linked:?}");
    assert!(linked.values().all(|t| t.len() == 3), "{linked:?}");
    let bad = Otelsim::new()
        .cli("scenario --name new_claim_phone --trace-flow double")
        .run_exit(2);
    assert!(bad.contains("single") && bad.contains("linked"), "{bad}");
}
