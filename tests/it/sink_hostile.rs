//! Hostile senders against the sink over real sockets: requests that decode to
//! far more than they weigh, spans with invalid ids, slow and idle connections,
//! too many connections, a full memory budget. Every answer is checked, and the
//! sink must keep serving real requests afterwards.

use std::convert::Infallible;
use std::future::Future as _;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Frame;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otelsim::sink::{self, RunningSink, SinkOptions, SinkStats, Transport};
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic::codegen::http;

use crate::support::*;

/// Upper bound of any one exchange in these tests.
const IO_LIMIT: Duration = Duration::from_secs(20);
const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip finish")
}

fn varint(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    prost::encoding::encode_varint(n as u64, &mut v);
    v
}

/// The reported request: 33 M empty `ResourceSpans` (66 MB, within the byte
/// limit) in 62 KiB of gzip.
fn empty_resources_bomb() -> Vec<u8> {
    gzip(&b"\x0a\x00".repeat(63 << 19))
}

/// 20,971,520 empty spans in one scope (42 MB) in 40 KiB of gzip.
fn empty_spans_bomb() -> Vec<u8> {
    let spans = b"\x12\x00".repeat(20_971_520);
    let mut scope = vec![0x12];
    scope.extend(varint(spans.len()));
    scope.extend(&spans);
    drop(spans);
    let mut body = vec![0x0a];
    body.extend(varint(scope.len()));
    body.extend(scope);
    gzip(&body)
}

fn span(trace: &[u8], id: &[u8], parent: &[u8]) -> Span {
    Span {
        trace_id: trace.to_vec(),
        span_id: id.to_vec(),
        parent_span_id: parent.to_vec(),
        name: "s".into(),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        ..Default::default()
    }
}

fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn a_valid_request() -> ExportTraceServiceRequest {
    traces(vec![span(&[7; 16], &[1; 8], &[])])
}

/// A whole response from a raw gRPC call: the grpc-status, its message, the body.
struct GrpcAnswer {
    status: i32,
    message: String,
    body: Vec<u8>,
}

/// A request body of one piece, or of pieces sent `gap` apart (a slow sender).
struct Pieces {
    pieces: std::collections::VecDeque<Bytes>,
    gap: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Pieces {
    fn whole(body: Vec<u8>) -> Self {
        Pieces {
            pieces: [Bytes::from(body)].into(),
            gap: Duration::ZERO,
            timer: None,
        }
    }

    fn trickle(first: Vec<u8>, then: usize, gap: Duration) -> Self {
        let mut pieces: std::collections::VecDeque<Bytes> = [Bytes::from(first)].into();
        pieces.extend((0..then).map(|_| Bytes::from_static(b"\x0a")));
        Pieces {
            pieces,
            gap,
            timer: None,
        }
    }
}

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(t) = &mut this.timer {
            std::task::ready!(t.as_mut().poll(cx));
            this.timer = None;
        }
        let Some(piece) = this.pieces.pop_front() else {
            return Poll::Ready(None);
        };
        if !this.gap.is_zero() {
            this.timer = Some(Box::pin(tokio::time::sleep(this.gap)));
        }
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }
}

/// One gRPC call with a hand-made body (tonic's client would compress and frame
/// it itself), over a real HTTP/2 connection.
async fn grpc_call(sink: &RunningSink, gzip: bool, body: Pieces) -> GrpcAnswer {
    let mut channel = tonic::transport::Endpoint::from_shared(sink.grpc_endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect gRPC");
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("{}{TRACES_PATH}", sink.grpc_endpoint()))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if gzip {
        req = req.header("grpc-encoding", "gzip");
    }
    let req = req.body(tonic::body::Body::new(body)).expect("request");
    use tonic::codegen::Service as _;
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .expect("channel ready");
    let resp = channel.call(req).await.expect("an HTTP/2 answer");
    let header =
        |h: &http::HeaderMap, k: &str| h.get(k).map(|v| v.to_str().unwrap_or_default().to_string());
    let mut status = header(resp.headers(), "grpc-status");
    let mut message = header(resp.headers(), "grpc-message");
    let mut body = resp.into_body();
    let mut data = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| hyper::body::Body::poll_frame(Pin::new(&mut body), cx)).await
    {
        let frame = frame.expect("response frame");
        if let Some(t) = frame.trailers_ref() {
            status = status.or(header(t, "grpc-status"));
            message = message.or(header(t, "grpc-message"));
        } else if let Ok(d) = frame.into_data() {
            data.extend_from_slice(&d);
        }
    }
    GrpcAnswer {
        status: status
            .expect("grpc-status")
            .parse()
            .expect("numeric status"),
        message: message.unwrap_or_default().replace("%20", " "),
        body: data,
    }
}

/// The one message of a gRPC response body.
fn unframe(body: &[u8]) -> &[u8] {
    assert!(body.len() >= 5, "{body:?}");
    &body[5..]
}

fn framed(compressed: bool, message: &[u8]) -> Vec<u8> {
    let mut b = vec![u8::from(compressed)];
    b.extend((message.len() as u32).to_be_bytes());
    b.extend(message);
    b
}

async fn post(
    sink: &RunningSink,
    content_type: &str,
    gzip: bool,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/traces", sink.http_endpoint()))
        .header("content-type", content_type)
        .body(body);
    if gzip {
        req = req.header("content-encoding", "gzip");
    }
    tokio::time::timeout(IO_LIMIT, req.send())
        .await
        .expect("answer in time")
        .expect("an HTTP answer")
}

async fn still_serving(sink: &RunningSink) {
    let resp = post(
        sink,
        "application/x-protobuf",
        false,
        a_valid_request().encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let answer = grpc_call(
        sink,
        false,
        Pieces::whole(framed(false, &a_valid_request().encode_to_vec())),
    )
    .await;
    assert_eq!(answer.status, 0, "{}", answer.message);
}

#[test]
fn amplifying_requests_are_refused_on_both_transports_and_the_sink_keeps_serving() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let resources = empty_resources_bomb();
    let spans = empty_spans_bomb();
    assert!(resources.len() < 70_000 && spans.len() < 50_000);
    rt.block_on(async {
        for bomb in [&resources, &spans] {
            let resp = post(&sink, "application/x-protobuf", true, bomb.clone()).await;
            assert_eq!(resp.status(), 413);
            let text = resp.text().await.expect("body");
            assert!(text.contains("send smaller batches"), "{text}");

            let answer = grpc_call(&sink, true, Pieces::whole(framed(true, bomb))).await;
            assert_eq!(answer.status, tonic::Code::InvalidArgument as i32);
            assert!(
                answer.message.contains("send smaller batches"),
                "{}",
                answer.message
            );
        }
        still_serving(&sink).await;
    });
    let snap = sink.stats.snapshot();
    assert_eq!(snap.rejected_by_reason["too_large"], 4, "{snap:?}");
    assert_eq!(snap.spans, 2, "only the two real spans were counted");
    rt.block_on(sink.shutdown());
}

/// Peak memory of the real sink binary under the amplification requests: the
/// issue measured 5.9 GB (HTTP) and 3.0 GB (gRPC); the target is under 100 MB.
#[test]
fn the_sink_binary_stays_small_under_amplifying_requests() {
    if !std::path::Path::new("/proc/self/status").exists() {
        return;
    }
    let (grpc_port, http_port) = (free_port(), free_port());
    let mut child = Otelsim::new()
        .args([
            "sink",
            "--grpc-addr",
            &format!("127.0.0.1:{grpc_port}"),
            "--http-addr",
            &format!("127.0.0.1:{http_port}"),
        ])
        .limit(Duration::from_secs(60))
        .spawn();
    let _stderr = child.stderr_lines();
    wait_port(http_port, Duration::from_secs(20));
    wait_port(grpc_port, Duration::from_secs(20));
    let pid = child.pid();
    let peak_kib = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("status of the sink")
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM")
    };
    let rt = runtime();
    let bomb = empty_resources_bomb();
    rt.block_on(async {
        let http = format!("http://127.0.0.1:{http_port}/v1/traces");
        for _ in 0..3 {
            let resp = reqwest::Client::new()
                .post(&http)
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "gzip")
                .body(bomb.clone())
                .send()
                .await
                .expect("answer");
            assert_eq!(resp.status(), 413);
        }
        let sink = RunningSinkAddr {
            grpc: format!("http://127.0.0.1:{grpc_port}"),
        };
        for _ in 0..3 {
            let status = sink.raw_grpc(framed(true, &bomb)).await;
            assert_eq!(status, tonic::Code::InvalidArgument as i32);
        }
    });
    let peak = peak_kib();
    child.signal("INT");
    let out = child.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
}

/// Just enough of a sink's address for `grpc_call`'s raw path against a process.
struct RunningSinkAddr {
    grpc: String,
}

impl RunningSinkAddr {
    async fn raw_grpc(&self, body: Vec<u8>) -> i32 {
        let mut channel = tonic::transport::Endpoint::from_shared(self.grpc.clone())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("{}{TRACES_PATH}", self.grpc))
            .header("content-type", "application/grpc")
            .header("grpc-encoding", "gzip")
            .header("te", "trailers")
            .body(tonic::body::Body::new(Pieces::whole(body)))
            .expect("request");
        use tonic::codegen::Service as _;
        std::future::poll_fn(|cx| channel.poll_ready(cx))
            .await
            .expect("ready");
        let resp = channel.call(req).await.expect("answer");
        resp.headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .expect("a trailers-only refusal")
    }
}

#[test]
fn spans_with_invalid_ids_get_a_partial_success_with_a_message() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let request = traces(vec![
        span(&[1; 16], &[1; 8], &[]),
        span(&[1; 16], &[2; 8], &[1; 8]),
        span(&[1; 15], &[3; 8], &[]),
        span(&[0; 16], &[4; 8], &[]),
        span(&[1; 16], &[0; 8], &[]),
        span(&[1; 16], &[6; 8], &[1; 7]),
    ]);
    rt.block_on(async {
        let check = |rejected: i64, message: &str| {
            assert_eq!(rejected, 4);
            assert!(message.contains("4 span(s)"), "{message}");
            assert!(message.contains("16-byte trace_id"), "{message}");
        };
        let resp = post(
            &sink,
            "application/x-protobuf",
            false,
            request.encode_to_vec(),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let answer = ExportTraceServiceResponse::decode(resp.bytes().await.expect("body"))
            .expect("response")
            .partial_success
            .expect("partial success");
        check(answer.rejected_spans, &answer.error_message);

        let json = serde_json::to_vec(&request).expect("json");
        let resp = post(&sink, "application/json", false, json).await;
        assert_eq!(resp.status(), 200);
        let v: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json answer");
        let rejected: i64 = v["partialSuccess"]["rejectedSpans"]
            .as_str()
            .expect("int64 as string")
            .parse()
            .expect("number");
        check(
            rejected,
            v["partialSuccess"]["errorMessage"]
                .as_str()
                .expect("message"),
        );

        let answer = grpc_call(
            &sink,
            false,
            Pieces::whole(framed(false, &request.encode_to_vec())),
        )
        .await;
        assert_eq!(answer.status, 0);
        let p = ExportTraceServiceResponse::decode(unframe(&answer.body))
            .expect("response")
            .partial_success
            .expect("partial success");
        check(p.rejected_spans, &p.error_message);
    });
    let snap = sink.stats.snapshot();
    assert_eq!(snap.invalid_id_spans, 12);
    assert_eq!(snap.spans, 6, "two valid spans per request");
    assert_eq!(
        snap.traces_seen, 1,
        "no trace was guessed for an invalid id"
    );
    assert!(
        snap.render_summary()
            .contains("spans refused for invalid ids: 12"),
        "{}",
        snap.render_summary()
    );
    rt.block_on(sink.shutdown());
}

fn quick_timeouts() -> SinkOptions {
    SinkOptions {
        header_timeout: Duration::from_millis(800),
        body_timeout: Duration::from_millis(800),
        idle_timeout: Duration::from_millis(1500),
        ..SinkOptions::for_tests()
    }
}

/// Reads until the peer closes (or resets) the connection; what it sent first.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn slow_senders_are_cut_off_within_the_timeouts() {
    let rt = runtime();
    let sink = rt
        .block_on(sink::start(quick_timeouts()))
        .expect("start sink");
    rt.block_on(async {
        // Headers at a byte every 200 ms: closed after the header timeout, with
        // most of the header never sent.
        let slow = TcpStream::connect(sink.http_addr).await.expect("connect");
        let started = Instant::now();
        let (mut rd, mut wr) = slow.into_split();
        let writer = tokio::spawn(async move {
            wr.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n").await.ok();
            for b in b"Content-Type: application/x-protobuf\r\n".iter().cycle().take(200) {
                if wr.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(IO_LIMIT, rd.read_to_end(&mut answer)).await;
        let took = started.elapsed();
        writer.abort();
        assert!(took < Duration::from_secs(5), "slow headers held for {took:?}");

        // A body at a byte every 200 ms: 408, then closed.
        let mut slow = TcpStream::connect(sink.http_addr).await.expect("connect");
        slow.write_all(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n",
        )
        .await
        .expect("write head");
        let started = Instant::now();
        let (mut rd, mut wr) = slow.into_split();
        let writer = tokio::spawn(async move {
            for _ in 0..1000 {
                if wr.write_all(b"\x0a").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(IO_LIMIT, rd.read_to_end(&mut answer)).await;
        let took = started.elapsed();
        writer.abort();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(took < Duration::from_secs(5), "slow body held for {took:?}");

        // gRPC: a body at a byte every 200 ms gets DEADLINE_EXCEEDED.
        let mut first = vec![0u8];
        first.extend(1000u32.to_be_bytes());
        let started = Instant::now();
        let answer = grpc_call(
            &sink,
            false,
            Pieces::trickle(first, 1000, Duration::from_millis(200)),
        )
        .await;
        assert_eq!(answer.status, tonic::Code::DeadlineExceeded as i32, "{}", answer.message);
        assert!(started.elapsed() < Duration::from_secs(5));

        // gRPC: a client that never sends the HTTP/2 preface is closed when idle.
        let mut mute = TcpStream::connect(sink.grpc_addr).await.expect("connect");
        let started = Instant::now();
        let _ = tokio::time::timeout(IO_LIMIT, read_until_closed(&mut mute)).await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1400) && took < Duration::from_secs(5),
            "closed after {took:?}"
        );
        still_serving(&sink).await;
    });
    let snap = sink.stats.snapshot();
    assert_eq!(snap.rejected_by_reason["timeout"], 2, "{snap:?}");
    assert!(snap.timed_out_connections >= 2, "{snap:?}");
    rt.block_on(sink.shutdown());
}

#[test]
fn idle_connections_are_closed() {
    const EACH: usize = 50;
    let rt = runtime();
    let sink = rt
        .block_on(sink::start(quick_timeouts()))
        .expect("start sink");
    rt.block_on(async {
        let started = Instant::now();
        let mut waits = Vec::new();
        for addr in [sink.http_addr, sink.grpc_addr] {
            for _ in 0..EACH {
                let mut c = TcpStream::connect(addr).await.expect("connect");
                waits.push(tokio::spawn(async move {
                    tokio::time::timeout(IO_LIMIT, read_until_closed(&mut c))
                        .await
                        .is_ok()
                }));
            }
        }
        for w in waits {
            assert!(w.await.expect("task"), "a connection stayed open");
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(6), "held for {took:?}");
    });
    let snap = sink.stats.snapshot();
    assert_eq!(snap.timed_out_connections, 2 * EACH as u64, "{snap:?}");
    rt.block_on(sink.shutdown());
}

#[test]
fn connections_past_the_cap_are_closed_at_once() {
    let rt = runtime();
    let sink = rt
        .block_on(sink::start(SinkOptions {
            max_connections: 3,
            ..SinkOptions::for_tests()
        }))
        .expect("start sink");
    rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..3 {
            let c = TcpStream::connect(sink.http_addr).await.expect("connect");
            wait_accepted(c.local_addr().expect("local"), sink.http_addr);
            held.push(c);
        }
        let mut extra = TcpStream::connect(sink.http_addr).await.expect("connect");
        let closed = tokio::time::timeout(IO_LIMIT, read_until_closed(&mut extra)).await;
        assert_eq!(closed.expect("closed at once"), Vec::<u8>::new());
        // A place frees up when a connection goes.
        drop(held.pop());
        let deadline = Instant::now() + IO_LIMIT;
        loop {
            let resp = reqwest::Client::new()
                .post(format!("{}/v1/traces", sink.http_endpoint()))
                .header("content-type", "application/x-protobuf")
                .body(a_valid_request().encode_to_vec())
                .send()
                .await;
            if resp.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "no place freed up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert!(sink.stats.snapshot().refused_connections >= 1);
    rt.block_on(sink.shutdown());
}

/// The send queue of the socket from `local` to `remote` and its receive
/// queue: bytes not yet acknowledged by the peer, bytes not yet read by the
/// application (Linux /proc/net/tcp; `None` when the socket is not listed).
fn queues(local: std::net::SocketAddr, remote: std::net::SocketAddr) -> Option<(u64, u64)> {
    let port = |p: u16| format!(":{p:04X}");
    let (l, r) = (port(local.port()), port(remote.port()));
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().find_map(|line| {
        let c: Vec<&str> = line.split_whitespace().collect();
        // sl local remote st tx_queue:rx_queue ...
        if c.len() <= 4 || !c[1].ends_with(&l) || !c[2].ends_with(&r) {
            return None;
        }
        let (tx, rx) = c[4].split_once(':')?;
        Some((
            u64::from_str_radix(tx, 16).ok()?,
            u64::from_str_radix(rx, 16).ok()?,
        ))
    })
}

// Timing-dependent: on a loaded 2-core machine the hog's reservation sometimes
// never shows (the fresh-clone CI run failed with "the hog never filled the
// budget" once in three); run it alone with `cargo test --test it -- --ignored
// a_full_memory_budget` until the sink reports its reservations so the test can
// wait for them instead of probing.
#[test]
#[ignore = "flaky under load; see the comment above"]
fn a_full_memory_budget_gets_retryable_answers_then_frees_up() {
    if !std::path::Path::new("/proc/net/tcp").exists() {
        return;
    }
    let rt = runtime();
    let sink = rt
        .block_on(sink::start(SinkOptions {
            max_in_flight_bytes: 512 * 1024,
            body_timeout: Duration::from_secs(60),
            ..SinkOptions::for_tests()
        }))
        .expect("start sink");
    rt.block_on(async {
        // One sender holds the budget: 500 KB of a 1 MB body, then nothing.
        let mut hog = TcpStream::connect(sink.http_addr).await.expect("connect");
        hog.write_all(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000000\r\n\r\n",
        )
        .await
        .expect("head");
        hog.write_all(&vec![0x0a; 500_000]).await.expect("half");
        // Probe only once the sink has read all of it (and so reserved it):
        // a probe racing the hog could make the hog wait for room and give up.
        let hog_addr = hog.local_addr().expect("local");
        wait_until("the sink to read the hog's bytes", IO_LIMIT, || {
            let sent = queues(hog_addr, sink.http_addr).is_some_and(|(tx, _)| tx == 0);
            let read = queues(sink.http_addr, hog_addr).is_some_and(|(_, rx)| rx == 0);
            sent && read
        });
        let mut probe = a_valid_request();
        probe.resource_spans[0].schema_url = "u".repeat(100_000);
        // Another request finds no room: 503 with a retry hint, over HTTP...
        let deadline = Instant::now() + IO_LIMIT;
        let resp = loop {
            let resp = post(&sink, "application/x-protobuf", false, probe.encode_to_vec()).await;
            if resp.status() != 200 {
                break resp;
            }
            // Read, but not reserved yet (the reservation follows each piece).
            assert!(Instant::now() < deadline, "the hog never filled the budget");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let status = resp.status();
        let retry_after = resp.headers().get("retry-after").cloned();
        assert_eq!(status, 503, "{:?}", resp.text().await);
        assert_eq!(retry_after.as_ref().map(|v| v.as_bytes()), Some(&b"1"[..]));
        // ... and RESOURCE_EXHAUSTED with RetryInfo over gRPC.
        let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(
            sink.grpc_endpoint(),
        )
        .await
        .expect("client");
        let mut big = a_valid_request();
        big.resource_spans[0].schema_url = "u".repeat(200_000);
        let status = client.export(big.clone()).await.expect_err("busy");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert_eq!(
            otelsim::rpc_status::retry_delay(status.details()),
            Some(Duration::from_secs(1))
        );
        // Once the hog is gone, there is room again.
        drop(hog);
        let deadline = Instant::now() + IO_LIMIT;
        while client.export(big.clone()).await.is_err() {
            assert!(Instant::now() < deadline, "the budget was not given back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let snap = sink.stats.snapshot();
    assert!(snap.rejected_by_reason["busy"] >= 2, "{snap:?}");
    rt.block_on(sink.shutdown());
}

#[test]
fn distinct_trace_ids_are_counted_in_bounded_memory() {
    let stats = SinkStats::new(false);
    let n = sink::DISTINCT_EXACT as u64 * 3;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let spans = chunk
            .iter()
            .map(|i| {
                let mut t = [1u8; 16];
                t[..8].copy_from_slice(&i.to_le_bytes());
                span(&t, &[1; 8], &[])
            })
            .collect();
        stats.record_traces(Transport::Grpc, 0, traces(spans));
    }
    let snap = stats.snapshot();
    assert!(snap.traces_seen_estimated);
    let err = (snap.traces_seen as f64 - n as f64).abs() / n as f64;
    assert!(err < 0.01, "{} for {n}", snap.traces_seen);
    assert!(
        snap.render_summary().contains("(estimated"),
        "{}",
        snap.render_summary()
    );
}

#[test]
fn telemetry_without_a_run_id_is_tracked_as_its_own_run() {
    let rt = runtime();
    let sink = start_sink(&rt);
    // A resource-less ResourceSpans beside one with a run id, as a collector may forward them.
    let mut request = traces(vec![
        span(&[3; 16], &[1; 8], &[]),
        span(&[3; 16], &[2; 8], &[1; 8]),
    ]);
    let mut with_run = traces(vec![span(&[4; 16], &[1; 8], &[])]).resource_spans;
    with_run[0].resource = Some(opentelemetry_proto::tonic::resource::v1::Resource {
        attributes: vec![opentelemetry_proto::tonic::common::v1::KeyValue {
            key: "otelsim.run.id".into(),
            value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(
                    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                        "run-a".into(),
                    ),
                ),
            }),
        }],
        ..Default::default()
    });
    request.resource_spans.extend(with_run);
    let logs = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord {
                        trace_id: vec![3; 16],
                        ..Default::default()
                    };
                    3
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    rt.block_on(async {
        let resp = post(
            &sink,
            "application/x-protobuf",
            false,
            request.encode_to_vec(),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/logs", sink.http_endpoint()))
            .header("content-type", "application/x-protobuf")
            .body(logs.encode_to_vec())
            .send()
            .await
            .expect("logs");
        assert_eq!(resp.status(), 200);
    });
    let snap = sink.stats.snapshot();
    let none = &snap.runs[sink::runs::UNATTRIBUTED_RUN];
    let trace = hex::encode([3u8; 16]);
    assert_eq!(none.spans, 2);
    assert_eq!(none.unique_spans, 2);
    assert_eq!(none.trace_spans[&trace], 2);
    assert_eq!(none.trace_log_records[&trace], 3);
    assert_eq!(
        none.problem_counts.get("orphan_span"),
        None,
        "parents are checked too"
    );
    assert_eq!(snap.runs["run-a"].spans, 1);
    assert_eq!(
        (snap.spans_without_run_id, snap.log_records_without_run_id),
        (2, 3)
    );
    let summary = snap.render_summary();
    assert!(
        summary.contains("without a run id:  2 spans, 0 metric points, 3 log records"),
        "{summary}"
    );
    rt.block_on(sink.shutdown());
}
