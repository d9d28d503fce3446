//! The OTLP/gRPC client, which drives HTTP/2 itself (src/export/grpc.rs):
//! connections made again after the receiver restarts or closes them, gRPC
//! statuses read from trailers-only answers and from trailers, and
//! `--connections N` taken in turn. Real runs against the `otelsim sink`
//! binary, the in-process sink, or a small HTTP/2 server here, all on 127.0.0.1.

use crate::support::*;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otelsim::sink::{self, SinkOptions};
use prost::Message as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the test server answers a request (numbered from 0 in arrival order).
#[derive(Clone)]
enum Answer {
    /// An export response with this partial success, its message split over
    /// two DATA frames, then `grpc-status: 0` in the trailers.
    Accept { rejected: i64 },
    /// Trailers-only: the status in the response headers, no body.
    TrailersOnly {
        code: u32,
        /// Sent as it is: percent-encode it where gRPC would.
        message: &'static str,
        /// An encoded `google.rpc.Status`, sent base64 in `grpc-status-details-bin`.
        details: Option<Vec<u8>>,
    },
}

/// What the test server saw.
#[derive(Default)]
struct Seen {
    /// Requests on each connection that sent any (in order of acceptance).
    per_connection: Vec<u64>,
    requests: u64,
    /// Spans in the requests it accepted, less those it said it rejected.
    kept_spans: u64,
    /// The path, `grpc-encoding` and `authorization` of the last request.
    last: (String, String, String),
}

/// A gRPC server of the trace service on 127.0.0.1, h2 directly: answers
/// request `n` with `answer(n)`.
fn h2_server(
    rt: &tokio::runtime::Runtime,
    answer: impl Fn(u64) -> Answer + Send + Sync + 'static,
) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind the test server");
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let answer = Arc::new(answer);
    let state = seen.clone();
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (seen, answer) = (state.clone(), answer.clone());
            tokio::spawn(async move {
                // The preflight check connects and sends nothing: no handshake.
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                let index = {
                    let mut s = seen.lock().unwrap();
                    s.per_connection.push(0);
                    s.per_connection.len() - 1
                };
                while let Some(Ok((req, respond))) = conn.accept().await {
                    let (seen, answer) = (seen.clone(), answer.clone());
                    tokio::spawn(async move {
                        let _ = serve(req, respond, index, &seen, &*answer).await;
                    });
                }
            });
        }
    });
    (addr, seen)
}

async fn serve(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    connection: usize,
    seen: &Mutex<Seen>,
    answer: &(dyn Fn(u64) -> Answer + Send + Sync),
) -> Result<(), h2::Error> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let last = (
        req.uri().path().to_string(),
        header("grpc-encoding"),
        header("authorization"),
    );
    let mut body = req.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    assert!(data.len() >= 5, "a gRPC message has a 5-byte prefix");
    let len = u32::from_be_bytes(data[1..5].try_into().unwrap()) as usize;
    assert_eq!(len, data.len() - 5, "one whole message");
    let message = if data[0] == 1 {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[5..]), &mut out)
            .expect("gzip");
        out
    } else {
        data[5..].to_vec()
    };
    let spans: u64 = ExportTraceServiceRequest::decode(&message[..])
        .expect("an export request")
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum();
    let n = {
        let mut s = seen.lock().unwrap();
        s.per_connection[connection] += 1;
        s.requests += 1;
        s.last = last;
        s.requests - 1
    };
    let grpc = |status: &str| {
        http::Response::builder()
            .status(200)
            .header("content-type", "application/grpc")
            .header("grpc-status", status)
    };
    match answer(n) {
        Answer::Accept { rejected } => {
            seen.lock().unwrap().kept_spans += spans - rejected as u64;
            let response = http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            let mut stream = respond.send_response(response, false)?;
            let reply = ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message: if rejected > 0 {
                        "refused some".into()
                    } else {
                        String::new()
                    },
                }),
            }
            .encode_to_vec();
            let mut framed = vec![0];
            framed.extend_from_slice(&(reply.len() as u32).to_be_bytes());
            framed.extend_from_slice(&reply);
            // Split inside the prefix: the client must join frames.
            let framed = Bytes::from(framed);
            stream.send_data(framed.slice(..3), false)?;
            stream.send_data(framed.slice(3..), false)?;
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            stream.send_trailers(trailers)?;
        }
        Answer::TrailersOnly {
            code,
            message,
            details,
        } => {
            let mut response = grpc(&code.to_string()).header("grpc-message", message);
            if let Some(d) = details {
                // Unpadded, as gRPC sends binary headers.
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&d);
                response = response.header("grpc-status-details-bin", encoded);
            }
            respond.send_response(response.body(()).unwrap(), true)?;
        }
    }
    Ok(())
}

/// An encoded `google.rpc.Status` asking to retry after `delay`.
fn retry_info(delay: Duration) -> Vec<u8> {
    use tonic_types::{ErrorDetails, StatusExt as _};
    tonic::Status::with_error_details(
        tonic::Code::Unavailable,
        "busy",
        ErrorDetails::with_retry_info(Some(delay)),
    )
    .details()
    .to_vec()
}

/// The export section of a run report.
fn export(report: &Path) -> serde_json::Value {
    read_json(report)["report"]["export"].clone()
}

/// A traces-only run of `count` picks over gRPC to `endpoint`, not yet run.
fn traces_run(endpoint: &str, count: u32, report: &Path) -> Otelsim {
    Otelsim::new()
        .cli(&format!(
            "run -q --count {count} --interval 0 --no-metrics --no-logs"
        ))
        .endpoint(endpoint)
        .protocol("grpc")
        .seed(3)
        .report(report)
        .limit(Duration::from_secs(60))
}

#[test]
fn a_refusal_in_a_trailers_only_answer_fails_the_batch_with_its_decoded_message() {
    let rt = runtime();
    let (addr, seen) = h2_server(&rt, |_| Answer::TrailersOnly {
        code: 3,
        message: "span%20id%20is%20all%20zeros%3A refused",
        details: None,
    });
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let out = traces_run(&format!("http://{addr}"), 1, &report).run();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let e = export(&report);
    // INVALID_ARGUMENT is permanent: no retry, every span failed.
    assert_eq!(e["retries"], 0, "{e}");
    assert_eq!(e["spans"]["acked"], 0, "{e}");
    assert_eq!(e["spans"]["failed"], e["spans"]["generated"], "{e}");
    assert_eq!(
        seen.lock().unwrap().requests,
        e["spans"]["requests_sent"].as_u64().unwrap()
    );
    let first = e["first_error"].as_str().unwrap();
    assert!(
        first.contains("gRPC InvalidArgument: span id is all zeros: refused"),
        "{first}"
    );
}

#[test]
fn a_retry_hint_in_a_trailers_only_answer_is_waited_for_then_the_batch_is_accepted() {
    let rt = runtime();
    let hint = Duration::from_millis(700);
    let details = retry_info(hint);
    let (addr, seen) = h2_server(&rt, move |n| match n {
        0 => Answer::TrailersOnly {
            code: 14,
            message: "busy",
            details: Some(details.clone()),
        },
        _ => Answer::Accept { rejected: 0 },
    });
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let started = Instant::now();
    traces_run(&format!("http://{addr}"), 5, &report).run_ok();
    assert!(started.elapsed() >= hint, "the hint was waited for");
    let e = export(&report);
    assert_eq!(
        (e["retries"].as_u64(), e["retry_hints"].as_u64()),
        (Some(1), Some(1)),
        "{e}"
    );
    assert_eq!(e["spans"]["acked"], e["spans"]["generated"], "{e}");
    assert_eq!(
        Some(seen.lock().unwrap().kept_spans),
        e["spans"]["acked"].as_u64()
    );
}

#[test]
fn partial_success_split_over_data_frames_and_headers_reach_the_receiver() {
    let rt = runtime();
    let (addr, seen) = h2_server(&rt, |n| Answer::Accept {
        rejected: if n == 0 { 2 } else { 0 },
    });
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    traces_run(&format!("http://{addr}"), 20, &report)
        .cli("--gzip --header authorization=Bearer-t0ken")
        .run_exit(3);
    let e = export(&report);
    let generated = e["spans"]["generated"].as_u64().unwrap();
    assert_eq!(e["spans"]["failed"], 2, "{e}");
    assert_eq!(e["spans"]["acked"].as_u64(), Some(generated - 2), "{e}");
    let s = seen.lock().unwrap();
    assert_eq!(s.kept_spans, generated - 2);
    let (path, encoding, auth) = &s.last;
    assert_eq!(
        path,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    );
    assert_eq!((encoding.as_str(), auth.as_str()), ("gzip", "Bearer-t0ken"));
}

#[test]
fn three_connections_take_requests_in_turn_and_every_span_is_counted_once() {
    let rt = runtime();
    let (addr, seen) = h2_server(&rt, |_| Answer::Accept { rejected: 0 });
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    traces_run(&format!("http://{addr}"), 1500, &report)
        .cli("--connections 3")
        .run_ok();
    let e = export(&report);
    let requests = e["spans"]["requests_sent"].as_u64().unwrap();
    assert_eq!(e["retries"], 0, "{e}");
    let s = seen.lock().unwrap();
    let used: Vec<u64> = s
        .per_connection
        .iter()
        .copied()
        .filter(|&n| n > 0)
        .collect();
    assert_eq!(used.len(), 3, "{:?}", s.per_connection);
    assert_eq!(used.iter().sum::<u64>(), requests);
    // In turn: no connection more than one request ahead of another.
    let (min, max) = (used.iter().min().unwrap(), used.iter().max().unwrap());
    assert!(max - min <= 1, "{used:?}");
    assert!(requests >= 30, "too few requests to tell: {requests}");
    assert_eq!(e["spans"]["acked"], e["spans"]["generated"], "{e}");
    assert_eq!(Some(s.kept_spans), e["spans"]["acked"].as_u64());
}

/// The `otelsim sink` binary on `grpc` (HTTP on any port), for `duration`;
/// returns once it listens.
fn sink_binary(grpc: u16, duration: &str, summary: &Path) -> Running {
    let child = Otelsim::new()
        .cli(&format!(
            "sink --grpc-addr 127.0.0.1:{grpc} --http-addr 127.0.0.1:0 --duration {duration}"
        ))
        .arg("--summary-file")
        .arg(summary)
        .limit(Duration::from_secs(60))
        .spawn();
    wait_port(grpc, Duration::from_secs(30));
    child
}

#[test]
fn a_sink_binary_that_stops_and_comes_back_gets_a_new_connection_and_nothing_acked_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (first_summary, second_summary) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let port = free_port();
    // The first sink stops by itself (gracefully: GOAWAY) a second and a half in.
    let first = sink_binary(port, "1500ms", &first_summary);
    let report = dir.path().join("r.json");
    let run = Otelsim::new()
        .cli("run -q --rate 40 --duration 5s --no-metrics --no-logs --retry-budget 20s")
        .endpoint(format!("http://127.0.0.1:{port}"))
        .protocol("grpc")
        .seed(9)
        .report(&report)
        .limit(Duration::from_secs(60))
        .spawn();
    let out = first.wait();
    assert!(out.status.success(), "first sink: {}", text(&out));
    let mut second = sink_binary(port, "60s", &second_summary);
    let out = run.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    second.signal("TERM");
    let out = second.wait();
    assert!(out.status.success(), "second sink: {}", text(&out));
    let e = export(&report);
    let acked = e["spans"]["acked"].as_u64().unwrap();
    assert_eq!(e["spans"]["failed"], 0, "{e}");
    assert_eq!(e["spans"]["acked"], e["spans"]["generated"], "{e}");
    let spans = |p: &Path| read_json(p)["spans"].as_u64().unwrap();
    let (a, b) = (spans(&first_summary), spans(&second_summary));
    assert!(
        a > 0 && b > 0,
        "both sinks received part of the run: {a} + {b}"
    );
    // At least once: an answer lost with the first sink means a batch sent twice.
    assert!(a + b >= acked, "{a} + {b} < {acked}");
}

#[test]
fn a_connection_the_receiver_closed_while_idle_is_made_again_without_a_retry() {
    let rt = runtime();
    let sink = rt
        .block_on(sink::start(SinkOptions {
            idle_timeout: Duration::from_millis(200),
            ..SinkOptions::for_tests()
        }))
        .expect("start sink");
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    // A request every 600 ms: each finds its connection closed by the sink's idle timeout.
    Otelsim::new()
        .cli("run -q --count 5 --interval 600 --no-metrics --no-logs")
        .endpoint(sink.grpc_endpoint())
        .protocol("grpc")
        .seed(4)
        .report(&report)
        .limit(Duration::from_secs(60))
        .run_ok();
    let e = export(&report);
    assert!(e["spans"]["requests_sent"].as_u64().unwrap() >= 5, "{e}");
    assert_eq!(e["retries"], 0, "{e}");
    assert_eq!(e["spans"]["acked"], e["spans"]["generated"], "{e}");
    let snap = sink.stats.snapshot();
    assert_eq!(Some(snap.spans), e["spans"]["acked"].as_u64());
    assert!(
        snap.timed_out_connections >= 4,
        "the sink closed idle connections: {}",
        snap.timed_out_connections
    );
    rt.block_on(sink.shutdown());
}
