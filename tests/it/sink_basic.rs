//! End-to-end tests of `otelsim sink` over real loopback sockets: every
//! transport, the rejection paths, and the summary output.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point, metric, number_data_point, summary_data_point, Exemplar,
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use otelsim::sink::{self, RunningSink, SinkOptions, Transport};
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic::codec::CompressionEncoding;

/// Upper bound for any single network exchange in these tests.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A SIGTERM reaches every `run_until_signal` in the process, so the tests
/// that call it take turns.
static SIGNAL_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn str_kv(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![str_kv("service.name", "sink-test")],
        ..Default::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.into(),
        version: "0.1.0".into(),
        ..Default::default()
    })
}

/// Two spans of one trace in scope `otelsim.demo`; the child has ERROR
/// status and every attribute value type, so JSON quirks would show up.
fn sample_traces(trace_byte: u8) -> ExportTraceServiceRequest {
    let trace_id = vec![trace_byte; 16];
    let root = Span {
        trace_id: trace_id.clone(),
        span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
        name: "invoke_agent".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_500_000_000,
        attributes: vec![str_kv("gen_ai.operation.name", "invoke_agent")],
        flags: 0x301,
        ..Default::default()
    };
    let child = Span {
        trace_id: trace_id.clone(),
        span_id: vec![9, 10, 11, 12, 13, 14, 15, 16],
        parent_span_id: root.span_id.clone(),
        name: "execute_tool".into(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: 1_700_000_000_100_000_000,
        end_time_unix_nano: 1_700_000_000_200_000_000,
        attributes: vec![
            kv("int", any_value::Value::IntValue(-42)),
            kv("big", any_value::Value::IntValue(i64::MAX)),
            kv("double", any_value::Value::DoubleValue(2.5)),
            kv("bool", any_value::Value::BoolValue(true)),
            kv("bytes", any_value::Value::BytesValue(vec![0, 255, 7])),
            kv(
                "array",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(any_value::Value::StringValue("x".into())),
                    }],
                }),
            ),
            kv(
                "map",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![str_kv("inner", "y")],
                }),
            ),
        ],
        events: vec![span::Event {
            time_unix_nano: 1_700_000_000_150_000_000,
            name: "retry".into(),
            attributes: vec![str_kv("reason", "timeout")],
            dropped_attributes_count: 0,
        }],
        links: vec![span::Link {
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            ..Default::default()
        }],
        status: Some(Status {
            message: "tool failed".into(),
            code: status::StatusCode::Error as i32,
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope("otelsim.demo"),
                spans: vec![root, child],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn number_point(value: number_data_point::Value) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![str_kv("model", "m1")],
        start_time_unix_nano: 1_700_000_000_000_000_000,
        time_unix_nano: 1_700_000_001_000_000_000,
        value: Some(value),
        ..Default::default()
    }
}

/// Six data points spread over all five metric types.
fn sample_metrics() -> ExportMetricsServiceRequest {
    let metric = |name: &str, data: metric::Data| Metric {
        name: name.into(),
        unit: "1".into(),
        data: Some(data),
        ..Default::default()
    };
    let metrics = vec![
        metric(
            "gauge",
            metric::Data::Gauge(Gauge {
                data_points: vec![
                    number_point(number_data_point::Value::AsDouble(0.5)),
                    number_point(number_data_point::Value::AsInt(-3)),
                ],
            }),
        ),
        metric(
            "sum",
            metric::Data::Sum(Sum {
                data_points: vec![number_point(number_data_point::Value::AsInt(12))],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "histogram",
            metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: 1_700_000_001_000_000_000,
                    count: 3,
                    sum: Some(6.0),
                    bucket_counts: vec![1, 2],
                    explicit_bounds: vec![2.0],
                    min: Some(1.0),
                    max: Some(3.0),
                    exemplars: vec![Exemplar {
                        time_unix_nano: 1_700_000_000_500_000_000,
                        trace_id: vec![7; 16],
                        span_id: vec![8; 8],
                        value: Some(
                            opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(2.0),
                        ),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                aggregation_temporality: 1,
            }),
        ),
        metric(
            "exp_histogram",
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    count: 4,
                    scale: 2,
                    zero_count: 1,
                    positive: Some(exponential_histogram_data_point::Buckets {
                        offset: -1,
                        bucket_counts: vec![1, 2],
                    }),
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            }),
        ),
        metric(
            "summary",
            metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    count: 2,
                    sum: 3.0,
                    quantile_values: vec![summary_data_point::ValueAtQuantile {
                        quantile: 0.5,
                        value: 1.5,
                    }],
                    ..Default::default()
                }],
            }),
        ),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope("otelsim.demo"),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Three log records, one with a structured body and trace correlation.
fn sample_logs() -> ExportLogsServiceRequest {
    let record = |text: &str| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        observed_time_unix_nano: 1_700_000_000_000_000_001,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(text.into())),
        }),
        ..Default::default()
    };
    let mut correlated = record("structured");
    correlated.body = Some(AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList {
            values: vec![str_kv("event", "tool_call")],
        })),
    });
    correlated.trace_id = vec![3; 16];
    correlated.span_id = vec![4; 8];
    correlated.event_name = "gen_ai.tool.call".into();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope("otelsim.demo"),
                log_records: vec![record("one"), record("two"), correlated],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

async fn start_sink(max_request_bytes: Option<usize>) -> RunningSink {
    let mut opts = SinkOptions::for_tests();
    if let Some(limit) = max_request_bytes {
        opts.max_request_bytes = limit;
    }
    sink::start(opts).await.expect("sink starts")
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `head` (request line + headers, without the blank line) and `body`
/// over a fresh connection, then reads the whole response.
async fn raw_http(addr: SocketAddr, head: &str, body: &[u8]) -> HttpResponse {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let head = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("write head");
        stream.write_all(body).await.expect("write body");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read response");
        raw
    };
    let raw = tokio::time::timeout(IO_TIMEOUT, exchange)
        .await
        .expect("HTTP exchange timed out");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response has a header block");
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII headers");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut resp = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[split + 4..];
    resp.body = if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len.parse().expect("content-length");
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    resp
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&data[..eol]).expect("chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex chunk size");
        data = &data[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

async fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    extra_headers: &[&str],
    body: &[u8],
) -> HttpResponse {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nContent-Type: {content_type}\r\nContent-Length: {}",
        body.len()
    );
    for h in extra_headers {
        head.push_str("\r\n");
        head.push_str(h);
    }
    raw_http(addr, &head, body).await
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip finish")
}

async fn grpc_trace_client(sink: &RunningSink) -> TraceServiceClient<tonic::transport::Channel> {
    tokio::time::timeout(
        IO_TIMEOUT,
        TraceServiceClient::connect(sink.grpc_endpoint()),
    )
    .await
    .expect("connect timed out")
    .expect("gRPC connect")
}

#[tokio::test]
async fn traces_arrive_over_every_transport() {
    let sink = start_sink(None).await;
    assert_ne!(sink.grpc_addr.port(), 0);
    assert_ne!(sink.http_addr.port(), 0);
    assert!(sink.grpc_addr.ip().is_loopback() && sink.http_addr.ip().is_loopback());

    let mut client = grpc_trace_client(&sink).await;
    tokio::time::timeout(IO_TIMEOUT, client.export(sample_traces(1)))
        .await
        .expect("gRPC export timed out")
        .expect("gRPC export");
    // Same again with gzip, which the sink must accept.
    let mut gz_client = client.clone().send_compressed(CompressionEncoding::Gzip);
    tokio::time::timeout(IO_TIMEOUT, gz_client.export(sample_traces(2)))
        .await
        .expect("gzip gRPC export timed out")
        .expect("gzip gRPC export");

    let proto = sample_traces(3).encode_to_vec();
    let resp = post(
        sink.http_addr,
        "/v1/traces",
        "application/x-protobuf",
        &[],
        &proto,
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/x-protobuf"));
    ExportTraceServiceRequest::decode(&resp.body[..]).expect("protobuf response body");

    let json = serde_json::to_vec(&sample_traces(4)).expect("serialize JSON");
    let resp = post(sink.http_addr, "/v1/traces", "application/json", &[], &json).await;
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.body, b"{}");

    // gzip over HTTP too, for both body formats.
    let resp = post(
        sink.http_addr,
        "/v1/traces",
        "application/x-protobuf",
        &["Content-Encoding: gzip"],
        &gzip(&sample_traces(5).encode_to_vec()),
    )
    .await;
    assert_eq!(resp.status, 200);
    let resp = post(
        sink.http_addr,
        "/v1/traces",
        "application/json; charset=utf-8",
        &["Content-Encoding: gzip"],
        &gzip(&json),
    )
    .await;
    assert_eq!(resp.status, 200);

    let snap = sink.stats.snapshot();
    assert_eq!(snap.trace_requests, 6);
    assert_eq!(snap.spans, 12);
    assert_eq!(snap.error_spans, 6);
    assert_eq!(snap.traces_seen, 5, "trace ids 1..=5");
    assert_eq!(snap.spans_by_scenario.get("demo"), Some(&12));
    assert_eq!(snap.spans_by_name.get("execute_tool"), Some(&6));
    assert_eq!(snap.requests_by_transport.get("grpc"), Some(&2));
    assert_eq!(snap.requests_by_transport.get("http/protobuf"), Some(&2));
    assert_eq!(snap.requests_by_transport.get("http/json"), Some(&2));
    assert_eq!(snap.rejected_requests, 0);
    assert!(snap.bytes_received >= 6 * proto.len() as u64 / 2);

    // What arrived is exactly what was sent, whatever the transport.
    let kept = sink.stats.trace_requests();
    let transports: Vec<Transport> = kept.iter().map(|r| r.transport).collect();
    assert_eq!(
        transports,
        [
            Transport::Grpc,
            Transport::Grpc,
            Transport::HttpProtobuf,
            Transport::HttpJson,
            Transport::HttpProtobuf,
            Transport::HttpJson,
        ]
    );
    for (got, id) in kept.iter().zip([1u8, 2, 3, 4, 5, 4]) {
        assert_eq!(got.request, sample_traces(id), "{:?}", got.transport);
    }

    let summary = snap.render_summary();
    assert!(summary.contains("demo"), "{summary}");
    assert!(summary.contains("http/json"), "{summary}");
    sink.shutdown().await;
}

#[tokio::test]
async fn metrics_and_logs_are_counted() {
    let sink = start_sink(None).await;
    let endpoint = sink.grpc_endpoint();
    let mut metrics = MetricsServiceClient::connect(endpoint.clone())
        .await
        .expect("connect");
    tokio::time::timeout(IO_TIMEOUT, metrics.export(sample_metrics()))
        .await
        .expect("timed out")
        .expect("metrics export");
    let mut logs = LogsServiceClient::connect(endpoint).await.expect("connect");
    tokio::time::timeout(IO_TIMEOUT, logs.export(sample_logs()))
        .await
        .expect("timed out")
        .expect("logs export");

    let resp = post(
        sink.http_addr,
        "/v1/metrics",
        "application/json",
        &[],
        &serde_json::to_vec(&sample_metrics()).expect("json"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let resp = post(
        sink.http_addr,
        "/v1/logs",
        "application/x-protobuf",
        &[],
        &sample_logs().encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 200);

    let snap = sink.stats.snapshot();
    assert_eq!(snap.metrics_requests, 2);
    assert_eq!(snap.metric_points, 12);
    assert_eq!(snap.logs_requests, 2);
    assert_eq!(snap.log_records, 6);
    assert_eq!(snap.spans, 0);
    assert_eq!(sink.stats.metrics_requests(), vec![sample_metrics(); 2]);
    assert_eq!(sink.stats.logs_requests(), vec![sample_logs(); 2]);
    sink.shutdown().await;
}

#[tokio::test]
async fn bad_http_requests_are_refused_and_sink_keeps_serving() {
    const LIMIT: usize = 64 * 1024;
    let sink = start_sink(Some(LIMIT)).await;
    let addr = sink.http_addr;
    let mut expected_rejections = 0;

    for (ct, body) in [
        ("application/x-protobuf", &b"\xff\xff\xff\xff garbage"[..]),
        ("application/json", b"{not json"),
        (
            "application/json",
            b"{\"resourceSpans\":[{\"scopeSpans\":7}]}",
        ),
    ] {
        let resp = post(addr, "/v1/traces", ct, &[], body).await;
        assert_eq!(resp.status, 400, "{ct}: {body:?}");
        assert_eq!(resp.header("content-type"), Some(ct));
        expected_rejections += 1;
    }
    // Broken gzip is a malformed body as well.
    let resp = post(
        addr,
        "/v1/logs",
        "application/x-protobuf",
        &["Content-Encoding: gzip"],
        b"not gzip",
    )
    .await;
    assert_eq!(resp.status, 400);
    expected_rejections += 1;

    // Too large: declared length, chunked without a length, and a small
    // gzip body that inflates past the limit.
    let big = vec![b'a'; LIMIT + 1];
    let resp = post(addr, "/v1/traces", "application/x-protobuf", &[], &big).await;
    assert_eq!(resp.status, 413);
    let mut chunked = format!("{:x}\r\n", big.len()).into_bytes();
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let resp = raw_http(
        addr,
        "POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked",
        &chunked,
    )
    .await;
    assert_eq!(resp.status, 413);
    // A valid start (a resource with a schema URL as long as the rest), then
    // zeros: it can only be refused on its size.
    let mut inflated = vec![0x0a];
    prost::encoding::encode_varint((LIMIT * 8) as u64, &mut inflated);
    inflated.push(0x1a);
    prost::encoding::encode_varint((LIMIT * 8 - 5) as u64, &mut inflated);
    inflated.resize(LIMIT * 8, 0);
    let bomb = gzip(&inflated);
    assert!(bomb.len() < LIMIT);
    let resp = post(
        addr,
        "/v1/metrics",
        "application/x-protobuf",
        &["Content-Encoding: gzip"],
        &bomb,
    )
    .await;
    assert_eq!(resp.status, 413);
    expected_rejections += 3;

    // Unsupported media type / encoding.
    let resp = post(addr, "/v1/traces", "text/plain", &[], b"hello").await;
    assert_eq!(resp.status, 415);
    let resp = raw_http(addr, "POST /v1/traces HTTP/1.1\r\nContent-Length: 0", b"").await;
    assert_eq!(resp.status, 415, "missing content type");
    let resp = post(
        addr,
        "/v1/traces",
        "application/x-protobuf",
        &["Content-Encoding: br"],
        b"",
    )
    .await;
    assert_eq!(resp.status, 415);
    expected_rejections += 3;

    // Routing errors are not counted as rejected payloads.
    let resp = raw_http(addr, "GET /v1/traces HTTP/1.1", b"").await;
    assert_eq!(resp.status, 405);
    let resp = post(addr, "/v1/nothing", "application/x-protobuf", &[], b"").await;
    assert_eq!(resp.status, 404);

    // Still serving, on both transports.
    let resp = post(
        addr,
        "/v1/traces",
        "application/x-protobuf",
        &[],
        &sample_traces(9).encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 200);
    let mut client = grpc_trace_client(&sink).await;
    client.export(sample_traces(10)).await.expect("gRPC export");

    let snap = sink.stats.snapshot();
    assert_eq!(snap.rejected_requests, expected_rejections);
    assert_eq!(snap.trace_requests, 2);
    assert_eq!(snap.metrics_requests + snap.logs_requests, 0);
    assert_eq!(snap.spans, 4);
    sink.shutdown().await;
}

#[tokio::test]
async fn large_http_bodies_are_accepted_below_the_limit() {
    // Above the size at which the sink decodes on the blocking pool.
    let sink = start_sink(None).await;
    let mut big = sample_traces(1);
    big.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(str_kv("blob", &"b".repeat(1024 * 1024)));
    let proto = big.encode_to_vec();
    let resp = post(
        sink.http_addr,
        "/v1/traces",
        "application/x-protobuf",
        &[],
        &proto,
    )
    .await;
    assert_eq!(resp.status, 200);
    let json = serde_json::to_vec(&big).expect("json");
    let resp = post(
        sink.http_addr,
        "/v1/traces",
        "application/json",
        &["Content-Encoding: gzip"],
        &gzip(&json),
    )
    .await;
    assert_eq!(resp.status, 200);
    let snap = sink.stats.snapshot();
    assert_eq!(snap.spans, 4);
    assert_eq!(snap.bytes_received, (proto.len() + json.len()) as u64);
    assert_eq!(sink.stats.trace_requests()[1].request, big);
    sink.shutdown().await;
}

#[tokio::test]
async fn oversized_grpc_requests_are_refused() {
    const LIMIT: usize = 64 * 1024;
    let sink = start_sink(Some(LIMIT)).await;
    let mut client = grpc_trace_client(&sink).await;

    let mut big = sample_traces(1);
    big.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(str_kv("blob", &"a".repeat(LIMIT)));
    // Never retryable (OTLP retries OUT_OF_RANGE and RESOURCE_EXHAUSTED with a
    // hint): INVALID_ARGUMENT, with the limit in the message.
    let status = client.export(big.clone()).await.expect_err("over limit");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains(&LIMIT.to_string()), "{status:?}");

    // Compresses far below the limit but inflates past it.
    let mut gz_client = client.clone().send_compressed(CompressionEncoding::Gzip);
    let status = gz_client
        .export(big)
        .await
        .expect_err("inflates over limit");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains(&LIMIT.to_string()), "{status:?}");

    client
        .export(sample_traces(2))
        .await
        .expect("still serving");
    let snap = sink.stats.snapshot();
    assert_eq!(snap.rejected_requests, 2);
    assert_eq!(snap.rejected_by_reason["too_large"], 2);
    assert_eq!(snap.trace_requests, 1);
    sink.shutdown().await;
}

#[test]
fn with_serde_json_round_trips_through_the_sink_decoder() {
    let traces = sample_traces(1);
    let json = serde_json::to_vec(&traces).expect("serialize");
    assert_eq!(
        sink::otlp_json::decode_traces(&json).expect("decode"),
        traces
    );
    let metrics = sample_metrics();
    let json = serde_json::to_vec(&metrics).expect("serialize");
    assert_eq!(
        sink::otlp_json::decode_metrics(&json).expect("decode"),
        metrics
    );
    let logs = sample_logs();
    let json = serde_json::to_vec(&logs).expect("serialize");
    assert_eq!(sink::otlp_json::decode_logs(&json).expect("decode"), logs);

    // The derive writes OTLP/JSON ids as hex and camelCase keys.
    let text = serde_json::to_string(&traces).expect("serialize");
    assert!(
        text.contains(r#""traceId":"01010101010101010101010101010101""#),
        "{text}"
    );
    assert!(
        text.contains(r#""parentSpanId":"0102030405060708""#),
        "{text}"
    );
    assert!(
        text.contains(r#""startTimeUnixNano":"1700000000000000000""#),
        "{text}"
    );
    assert!(text.contains(r#""intValue":"-42""#), "{text}");
}

#[test]
fn spec_shaped_json_decodes() {
    // Hand-written the way the OTLP spec (and the collector) encodes it:
    // 64-bit integers as strings, enums as integers, defaults omitted.
    let body = br#"{
      "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{
          "scope": {"name": "otelsim.new_claim_phone"},
          "spans": [{
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "eee19b7ec3c1b174",
            "name": "chat",
            "kind": 3,
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": 1544712661000000000,
            "attributes": [{"key": "n", "value": {"intValue": 5}}],
            "status": {"code": 2}
          }]
        }]
      }]
    }"#;
    let req = sink::otlp_json::decode_traces(body).expect("decode");
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id.len(), 16);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
    assert_eq!(
        sink::scenario_of(req.resource_spans[0].scope_spans[0].scope.as_ref()),
        "new_claim_phone"
    );
}

#[tokio::test]
async fn bind_failure_names_the_address_and_shutdown_releases_ports() {
    let sink = start_sink(None).await;
    let taken = sink.http_addr;
    let opts = SinkOptions {
        http_addr: taken,
        ..SinkOptions::for_tests()
    };
    let err = sink::start(opts).await.expect_err("port is taken");
    let msg = format!("{err:#}");
    assert!(msg.contains(&taken.to_string()), "{msg}");

    sink.shutdown().await;
    let refused = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(taken))
        .await
        .expect("connect attempt timed out");
    assert!(refused.is_err(), "HTTP port still accepting after shutdown");
}

#[tokio::test]
async fn run_until_signal_stops_at_the_time_limit_and_writes_json() {
    let _turn = SIGNAL_TESTS.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("summary.json");
    let opts = SinkOptions {
        keep_requests: false,
        ..SinkOptions::for_tests()
    };
    let started = std::time::Instant::now();
    let snap = tokio::time::timeout(
        IO_TIMEOUT,
        sink::run_until_signal(opts, Some(path.clone()), Some(Duration::from_millis(200))),
    )
    .await
    .expect("time limit honoured")
    .expect("run_until_signal");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(snap, sink::SinkSnapshot::default());
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("summary written")).expect("JSON");
    assert_eq!(written["spans"], 0);
    assert!(written["requests_by_transport"].is_object());
}

#[tokio::test]
async fn run_until_signal_stops_on_sigterm() {
    let _turn = SIGNAL_TESTS.lock().await;
    // Fixed free ports (briefly reserved) so the test can tell when the sink
    // is up; the handler is installed before the listeners are bound.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
    };
    let opts = SinkOptions {
        grpc_addr: free(),
        http_addr: free(),
        ..SinkOptions::for_tests()
    };
    let http_addr = opts.http_addr;
    let run = tokio::spawn(sink::run_until_signal(opts, None, None));
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    while TcpStream::connect(http_addr).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "sink never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = post(
        http_addr,
        "/v1/traces",
        "application/x-protobuf",
        &[],
        &sample_traces(1).encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 200);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -TERM {}", std::process::id()))
        .status()
        .expect("run kill");
    assert!(status.success());
    let snap = tokio::time::timeout(IO_TIMEOUT, run)
        .await
        .expect("stopped after SIGTERM")
        .expect("task")
        .expect("run_until_signal");
    assert_eq!(snap.spans, 2);
}

#[tokio::test]
async fn shutdown_is_prompt_with_connected_clients() {
    let sink = start_sink(None).await;
    // Connected but silent, a kept-alive HTTP/1.1 connection, and a live
    // gRPC channel: none of them may hold shutdown up.
    let _silent_http = TcpStream::connect(sink.http_addr).await.expect("connect");
    let mut client = grpc_trace_client(&sink).await;
    client.export(sample_traces(1)).await.expect("export");
    let mut kept_alive = TcpStream::connect(sink.http_addr).await.expect("connect");
    let body = sample_traces(2).encode_to_vec();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: sink\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    kept_alive.write_all(head.as_bytes()).await.expect("write");
    kept_alive.write_all(&body).await.expect("write");
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(IO_TIMEOUT, kept_alive.read(&mut buf))
        .await
        .expect("response timed out")
        .expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let started = std::time::Instant::now();
    sink.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn shutdown_is_bounded_with_a_half_open_grpc_connection() {
    // A TCP connection that never sends the HTTP/2 preface stalls tonic's
    // graceful shutdown; the sink gives up on it after its grace period.
    let sink = start_sink(None).await;
    let silent_grpc = TcpStream::connect(sink.grpc_addr).await.expect("connect");
    // Accepted by the server (not just queued), so the slow path is really exercised.
    let (client, server) = (silent_grpc.local_addr().expect("local"), sink.grpc_addr);
    tokio::task::spawn_blocking(move || crate::support::wait_accepted(client, server))
        .await
        .expect("wait for accept");
    let started = std::time::Instant::now();
    tokio::time::timeout(IO_TIMEOUT, sink.shutdown())
        .await
        .expect("shutdown finished");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
