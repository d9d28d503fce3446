//! Transports: OTLP/gRPC, OTLP/HTTP (protobuf or JSON, optional gzip) and
//! OTLP/JSON lines to a file. One `send` per encoded batch, classified as
//! accepted (with partial-success rejections), transient, or permanent.

use super::grpc;
use super::{Body, ExportConfig, Protocol, Signal};
use crate::encode;
use anyhow::{anyhow, bail, Context as _, Result};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(super) enum Outcome {
    /// Accepted; `rejected` items were refused by the receiver (OTLP partial success).
    Ok { rejected: u64, message: String },
    /// Transient: retry after the hint or the backoff.
    Retry(String, Option<Duration>),
    /// Permanent: the batch fails.
    Fail(String),
    /// Permanent: the receiver refuses a request this large (gRPC OUT_OF_RANGE,
    /// HTTP 413); retrying the same bytes cannot succeed.
    TooLarge(String),
    /// The endpoint cannot be used at all (its TLS refused us): the batch fails
    /// and the run stops.
    Fatal(String),
    /// The receiver does not take this signal at all (HTTP 404/405 on its path,
    /// gRPC UNIMPLEMENTED): `answer` says what it answered where (`HTTP 405 on
    /// /v1/metrics`), `failure` is the message should the batch fail.
    NotAccepted { answer: String, failure: String },
}

/// The connections of one endpoint, taken in turn: request after request goes
/// to the next one.
pub(super) struct RoundRobin<T> {
    items: Vec<T>,
    next: AtomicUsize,
}

impl<T> RoundRobin<T> {
    /// `n` (at least 1) items made by `make`.
    fn new(n: usize, make: impl FnMut(usize) -> Result<T>) -> Result<RoundRobin<T>> {
        Ok(RoundRobin {
            items: (0..n.max(1)).map(make).collect::<Result<_>>()?,
            next: AtomicUsize::new(0),
        })
    }

    /// The next connection in turn.
    fn next(&self) -> &T {
        &self.items[self.next.fetch_add(1, Relaxed) % self.items.len()]
    }
}

#[derive(Clone)]
pub(super) enum Transport {
    Grpc {
        /// traces, metrics, logs: each its HTTP/2 connections (the same ones
        /// unless signal endpoints differ).
        connections: Arc<[Arc<RoundRobin<grpc::Connection>>; 3]>,
        /// The URL of each signal's endpoint, for diagnosis.
        urls: Arc<[String; 3]>,
        gzip: bool,
    },
    Http {
        /// Clients with a connection pool each, taken in turn.
        clients: Arc<RoundRobin<reqwest::Client>>,
        /// traces, metrics, logs
        urls: Arc<[String; 3]>,
        json: bool,
        gzip: bool,
        /// Scrubbed from error bodies before they are cut short (a collector may echo headers).
        secrets: Arc<super::Secrets>,
    },
    File {
        out: Arc<Mutex<std::io::BufWriter<std::fs::File>>>,
        /// For messages: which file failed.
        path: Arc<std::path::Path>,
    },
}

/// Normalises an endpoint to a URL with a scheme.
pub fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

/// The HTTP URL of a signal: `/v1/<signal>` appended unless the path already names one.
pub fn http_signal_url(endpoint: &str, signal: &str) -> String {
    let base = endpoint_url(endpoint);
    let trimmed = base.trim_end_matches('/');
    for s in ["traces", "metrics", "logs"] {
        if let Some(root) = trimmed.strip_suffix(&format!("/v1/{s}")) {
            return format!("{root}/v1/{signal}");
        }
    }
    format!("{trimmed}/v1/{signal}")
}

/// An endpoint as a URL: `http://` or `https://` (none means `http://`), with a
/// host; the error says what would be valid (never the URL's password).
fn parse_endpoint(endpoint: &str) -> Result<reqwest::Url> {
    let shown = super::redact_url(endpoint);
    let example =
        "expected a URL such as http://localhost:4317 (gRPC) or http://localhost:4318 (OTLP/HTTP)";
    let Ok(url) = reqwest::Url::parse(&endpoint_url(endpoint)) else {
        bail!("invalid OTLP endpoint `{shown}`: {example}");
    };
    if !matches!(url.scheme(), "http" | "https") {
        bail!(
            "invalid OTLP endpoint `{shown}`: the scheme `{}` is not http:// or https://; {example}",
            url.scheme()
        );
    }
    if url.host_str().is_none_or(str::is_empty) {
        bail!("invalid OTLP endpoint `{shown}`: no host; {example}");
    }
    Ok(url)
}

/// Checks an endpoint before a run starts (an input error, not an export failure).
pub fn check_endpoint(endpoint: &str) -> Result<()> {
    parse_endpoint(endpoint).map(|_| ())
}

/// Checks export headers before a run starts: names valid for HTTP and gRPC,
/// values free of control characters (CR, LF). Messages name the key, never
/// the value.
pub fn check_headers(headers: &[(String, String)]) -> Result<()> {
    for (k, v) in headers {
        if k.is_empty() {
            bail!(
                "a header has an empty name: expected KEY=VALUE, e.g. authorization=Bearer <token>"
            );
        }
        if v.chars().any(|c| c.is_control()) {
            bail!("the value of header `{k}` contains a control character (CR, LF, tab or the like; the value is not shown): header values must be visible ASCII text");
        }
        let http = reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_ok()
            && reqwest::header::HeaderValue::from_str(v).is_ok();
        let grpc = tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(
            k.to_ascii_lowercase().as_bytes(),
        )
        .is_ok()
            && tonic::metadata::MetadataValue::<tonic::metadata::Ascii>::try_from(v.as_str())
                .is_ok();
        if !http || !grpc {
            bail!("header `{k}` is not a valid header: names are letters, digits and -_.!#$%&'*+^`|~ (not ending in -bin), values visible ASCII text (the value is not shown)");
        }
    }
    Ok(())
}

/// Connects once to fail fast, with one clear line, when nothing listens (or,
/// for `https://`, when the TLS handshake fails).
async fn preflight(endpoint: &str, protocol: Protocol, tls: &crate::tls::ClientTls) -> Result<()> {
    let url = parse_endpoint(endpoint)?;
    let shown = super::redact_url(endpoint);
    let endpoint = shown.as_str();
    let host = url
        .host_str()
        .ok_or_else(|| anyhow!("invalid OTLP endpoint `{endpoint}`: no host"))?
        .to_string();
    let port = url
        .port_or_known_default()
        .unwrap_or(if protocol == Protocol::Grpc {
            4317
        } else {
            4318
        });
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    match tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(tcp)) if crate::tls::is_https(endpoint) => handshake(tcp, endpoint, &host, protocol, tls).await,
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => bail!(
            "cannot reach the OTLP endpoint {endpoint} ({}): {e}. Start a receiver (`otelsim sink`, `make jaeger-up`) or point --endpoint at your collector, or use --output-file",
            protocol.as_str()
        ),
        Err(_) => bail!("cannot reach the OTLP endpoint {endpoint} ({}): connection timed out after 3 s", protocol.as_str()),
    }
}

/// The TLS handshake of the preflight check, with the settings the transport will use.
async fn handshake(
    tcp: tokio::net::TcpStream,
    endpoint: &str,
    host: &str,
    protocol: Protocol,
    tls: &crate::tls::ClientTls,
) -> Result<()> {
    let shown = super::redact_url(endpoint);
    let endpoint = shown.as_str();
    let alpn = if protocol == Protocol::Grpc {
        crate::tls::ALPN_H2
    } else {
        crate::tls::ALPN_HTTP1
    };
    crate::tls::check_handshake(tcp, host, tls.rustls_config(&[alpn])?)
        .await
        .with_context(|| {
            format!(
                "cannot connect to the OTLP endpoint {endpoint} ({})",
                protocol.as_str()
            )
        })
}

/// Configured headers as HTTP headers (auth tokens and the like).
fn http_headers(cfg: &ExportConfig) -> Result<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in &cfg.headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .with_context(|| format!("invalid header name `{k}`"))?;
        let value = reqwest::header::HeaderValue::from_str(v)
            .with_context(|| format!("invalid value for header `{k}`"))?;
        map.insert(name, value);
    }
    Ok(map)
}

impl Transport {
    pub(super) async fn new(cfg: &ExportConfig) -> Result<Transport> {
        if let Some(path) = &cfg.output_file {
            let f = std::fs::File::create(path)
                .with_context(|| format!("cannot create output file {}", path.display()))?;
            return Ok(Transport::File {
                out: Arc::new(Mutex::new(std::io::BufWriter::new(f))),
                path: Arc::from(path.as_path()),
            });
        }
        let signal = |i: usize| cfg.signal_endpoints[i].clone();
        let traces_endpoint = signal(0).unwrap_or_else(|| cfg.endpoint.clone());
        let waiting_since = std::time::Instant::now();
        loop {
            match preflight(&traces_endpoint, cfg.protocol, &cfg.tls).await {
                Ok(()) => break,
                Err(e) => match cfg.wait_for_endpoint {
                    Some(w) if waiting_since.elapsed() < w => {
                        tokio::time::sleep(Duration::from_millis(200)).await
                    }
                    Some(w) => bail!("{e} (waited {w:?} with --wait-for-endpoint)"),
                    None => return Err(e),
                },
            }
        }
        if cfg.tls.insecure {
            eprintln!(
                "otelsim: warning: --insecure: the endpoint's TLS certificate is not verified"
            );
        }
        Self::connect(cfg)
    }

    fn connect(cfg: &ExportConfig) -> Result<Transport> {
        let signal = |i: usize| cfg.signal_endpoints[i].clone();
        Ok(match cfg.protocol {
            Protocol::Grpc => {
                // Each endpoint's connections, made when first used.
                let connections = |url: &str| -> Result<Arc<RoundRobin<grpc::Connection>>> {
                    let endpoint = Arc::new(grpc::Endpoint::new(
                        &parse_endpoint(url)?,
                        &cfg.tls,
                        &cfg.headers,
                    )?);
                    Ok(Arc::new(RoundRobin::new(cfg.connections, |_| {
                        Ok(grpc::Connection::new(endpoint.clone()))
                    })?))
                };
                let base = connections(&cfg.endpoint)?;
                let pick = |i: usize| -> Result<Arc<RoundRobin<grpc::Connection>>> {
                    match &cfg.signal_endpoints[i] {
                        Some(url) => connections(url),
                        None => Ok(base.clone()),
                    }
                };
                let url = |i: usize| endpoint_url(signal(i).as_deref().unwrap_or(&cfg.endpoint));
                Transport::Grpc {
                    connections: Arc::new([pick(0)?, pick(1)?, pick(2)?]),
                    urls: Arc::new([url(0), url(1), url(2)]),
                    gzip: cfg.gzip,
                }
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                let url = |i: usize, name: &str| match signal(i) {
                    Some(u) => endpoint_url(&u),
                    None => http_signal_url(&cfg.endpoint, name),
                };
                let urls = [url(0, "traces"), url(1, "metrics"), url(2, "logs")];
                let headers = http_headers(cfg)?;
                let tls = urls
                    .iter()
                    .any(|u| crate::tls::is_https(u))
                    .then(|| cfg.tls.rustls_config(&[crate::tls::ALPN_HTTP1]))
                    .transpose()?;
                // A client per connection: each has its own pool, so they cannot share one.
                let client = |_| -> Result<reqwest::Client> {
                    let mut client = reqwest::Client::builder()
                        .default_headers(headers.clone())
                        .timeout(cfg.request_timeout)
                        .connect_timeout(Duration::from_secs(3));
                    if let Some(tls) = &tls {
                        client = client.use_preconfigured_tls(tls.clone());
                    }
                    client.build().context("cannot build the HTTP client")
                };
                Transport::Http {
                    clients: Arc::new(RoundRobin::new(cfg.connections, client)?),
                    urls: Arc::new(urls),
                    json: cfg.protocol == Protocol::HttpJson,
                    gzip: cfg.gzip,
                    secrets: Arc::new(super::Secrets::of(cfg)),
                }
            }
        })
    }

    /// Whether trace batches may come pre-encoded in protobuf wire format.
    pub(super) fn takes_wire(&self) -> bool {
        matches!(
            self,
            Transport::Grpc { .. } | Transport::Http { json: false, .. }
        )
    }

    /// `body` compressed, once for all its attempts, when this transport sends
    /// it gzipped: a wire-format request to an endpoint (`None`: sent as it is,
    /// or compressed per attempt).
    pub(super) fn gzip_once(&self, body: &Body) -> Option<Body> {
        let gzip = match self {
            Transport::Grpc { gzip, .. } => *gzip,
            Transport::Http { gzip, json, .. } => *gzip && !*json,
            Transport::File { .. } => false,
        };
        let (signal, raw) = match body {
            Body::TracesWire(b) => (Signal::Traces, b),
            Body::LogsWire(b) => (Signal::Logs, b),
            _ => return None,
        };
        gzip.then(|| Body::Gzipped {
            signal,
            payload: gzip_bytes(raw).into(),
            raw_len: raw.len() as u64,
        })
    }

    pub(super) fn flush(&self) {
        if let Transport::File { out, .. } = self {
            if let Ok(mut w) = out.lock() {
                let _ = w.flush();
            }
        }
    }

    /// The URL a request of this body goes to (`None` for a file).
    pub(super) fn url_of(&self, body: &Body) -> Option<&str> {
        let urls = match self {
            Transport::Grpc { urls, .. } | Transport::Http { urls, .. } => urls,
            Transport::File { .. } => return None,
        };
        Some(&urls[body.signal().index()])
    }

    /// Sends one batch once; `bytes` receives the bytes put on the wire.
    pub(super) async fn send(&self, body: &Body, bytes: &mut u64) -> Outcome {
        match self {
            Transport::File { out, path } => write_line(out, path, body, bytes),
            Transport::Grpc {
                connections, gzip, ..
            } => {
                let signal = body.signal();
                let connection = connections[signal.index()].next();
                let service = match signal {
                    Signal::Traces => "TraceService",
                    Signal::Metrics => "MetricsService",
                    Signal::Logs => "LogsService",
                };
                match grpc_send(connection, *gzip, body, bytes).await {
                    Outcome::NotAccepted { answer, failure } => Outcome::NotAccepted {
                        answer: format!("{answer} for {service}/Export"),
                        failure,
                    },
                    o => o,
                }
            }
            Transport::Http {
                clients,
                urls,
                json,
                gzip,
                secrets,
            } => http_send(clients.next(), urls, (*json, *gzip), secrets, body, bytes).await,
        }
    }
}

/// One OTLP/JSON line (the Collector file exporter's format). A write error
/// stops the run: the next line would fail the same way.
fn write_line(
    f: &Mutex<std::io::BufWriter<std::fs::File>>,
    path: &std::path::Path,
    body: &Body,
    bytes: &mut u64,
) -> Outcome {
    let line = match body {
        Body::Traces(r) => encode::to_json_line(r),
        Body::TracesWire(_) | Body::LogsWire(_) | Body::Gzipped { .. } => {
            return Outcome::Fail("internal: wire-encoded requests cannot go to a JSON file".into())
        }
        Body::Metrics(r) => encode::to_json_line(r),
        Body::Logs(r) => encode::to_json_line(r),
    };
    *bytes += line.len() as u64 + 1;
    let Ok(mut w) = f.lock() else {
        return Outcome::Fail("output file lock poisoned".into());
    };
    // Flushed per line so a write error is charged to the items it lost.
    match writeln!(w, "{line}").and_then(|()| w.flush()) {
        Ok(()) => Outcome::Ok {
            rejected: 0,
            message: String::new(),
        },
        Err(e) => Outcome::Fatal(format!("cannot write {}: {e}", path.display())),
    }
}

/// The URL of a request's signal and its body, protobuf or JSON, and whether
/// that body is compressed already. Pre-encoded bodies are shared, not copied
/// (a retry sends the same bytes).
fn http_request<'u>(
    urls: &'u [String; 3],
    json: bool,
    body: &Body,
) -> Result<(&'u str, bytes::Bytes, bool), Outcome> {
    fn encoded<M: prost::Message + serde::Serialize>(r: &M, json: bool) -> bytes::Bytes {
        if json {
            encode::to_json_line(r).into_bytes().into()
        } else {
            r.encode_to_vec().into()
        }
    }
    Ok(match body {
        Body::TracesWire(b) if !json => (&urls[0], b.clone(), false),
        Body::LogsWire(b) if !json => (&urls[2], b.clone(), false),
        Body::Gzipped {
            signal, payload, ..
        } if !json => (&urls[signal.index()], payload.clone(), true),
        Body::TracesWire(_) | Body::LogsWire(_) | Body::Gzipped { .. } => {
            return Err(Outcome::Fail(
                "internal: wire-encoded traces cannot be sent as JSON".into(),
            ))
        }
        Body::Traces(r) => (&urls[0], encoded(r, json), false),
        Body::Metrics(r) => (&urls[1], encoded(r, json), false),
        Body::Logs(r) => (&urls[2], encoded(r, json), false),
    })
}

/// One OTLP/HTTP request; 429 and 5xx gateway answers are retried (with the
/// receiver's `Retry-After`), a rejected certificate is fatal.
async fn http_send(
    client: &reqwest::Client,
    urls: &[String; 3],
    (json, gzip): (bool, bool),
    secrets: &super::Secrets,
    body: &Body,
    bytes: &mut u64,
) -> Outcome {
    let (url, raw, gzipped) = match http_request(urls, json, body) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let ctype = if json {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    let mut req = client.post(url).header("content-type", ctype);
    if gzip || gzipped {
        req = req.header("content-encoding", "gzip");
    }
    let payload = if gzip && !gzipped {
        bytes::Bytes::from(gzip_bytes(&raw))
    } else {
        raw
    };
    *bytes += payload.len() as u64;
    let shown = super::redact_url(url);
    let resp = match req.body(payload).send().await {
        Ok(resp) => resp,
        Err(e) => {
            return match crate::tls::problem(&e) {
                // A rejected certificate stays rejected: no retries.
                Some(p) => Outcome::Fatal(format!("HTTP request to {shown} failed: {p}")),
                None => Outcome::Retry(format!("HTTP request to {shown} failed: {e}"), None),
            };
        }
    };
    let code = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)));
    match code {
        200..=299 => {
            let data = resp.bytes().await.unwrap_or_default();
            let (rejected, message) = http_partial_success(&data, json, body);
            Outcome::Ok { rejected, message }
        }
        429 | 502 | 503 | 504 => Outcome::Retry(format!("HTTP {code} from {shown}"), retry_after),
        // No such path, or no POST on it: a receiver that serves other signals only.
        404 | 405 => {
            let body = resp.bytes().await.unwrap_or_default();
            let path =
                reqwest::Url::parse(url).map_or_else(|_| shown.clone(), |u| u.path().to_string());
            let said = readable(&body, secrets);
            Outcome::NotAccepted {
                answer: format!("HTTP {code} on {path}"),
                failure: if said.trim().is_empty() {
                    format!("HTTP {code} from {shown}")
                } else {
                    format!("HTTP {code} from {shown}: {said}")
                },
            }
        }
        413 => {
            let body = resp.bytes().await.unwrap_or_default();
            Outcome::TooLarge(format!(
                "HTTP 413 from {shown}: {}",
                readable(&body, secrets)
            ))
        }
        _ => {
            let body = resp.bytes().await.unwrap_or_default();
            Outcome::Fail(format!(
                "HTTP {code} from {shown}: {}",
                readable(&body, secrets)
            ))
        }
    }
}

fn classify(status: tonic::Status) -> Outcome {
    use tonic::Code;
    if let Some(p) = crate::tls::problem(&status) {
        // A rejected certificate stays rejected: no retries.
        return Outcome::Fatal(format!("gRPC {:?}: {p}", status.code()));
    }
    let msg = format!("gRPC {:?}: {}", status.code(), status.message());
    match status.code() {
        // grpc-go's RESOURCE_EXHAUSTED "received message larger than max" and
        // otelsim sink's INVALID_ARGUMENT "exceeds the sink's limit": too large, as OUT_OF_RANGE.
        Code::ResourceExhausted | Code::InvalidArgument if says_too_large(status.message()) => {
            Outcome::TooLarge(msg)
        }
        Code::Unavailable
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::DataLoss
        | Code::Unknown => Outcome::Retry(msg, crate::rpc_status::retry_delay(status.details())),
        // What tonic answers to a message over its size limit.
        Code::OutOfRange => Outcome::TooLarge(msg),
        // No such service here (also a plain HTTP 404, by the gRPC spec's mapping).
        Code::Unimplemented => Outcome::NotAccepted {
            answer: "gRPC UNIMPLEMENTED".into(),
            failure: msg,
        },
        _ => Outcome::Fail(msg),
    }
}

/// Whether a gRPC status message says the request was over the receiver's size limit.
fn says_too_large(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("larger than max")
        || m.contains("too large")
        || (m.contains("exceeds") && m.contains("limit"))
}

/// The path of a signal's `Export` method.
fn grpc_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    }
}

/// One gRPC export of any signal. Pre-encoded requests go out as they are
/// (their bytes shared, not copied); the others are encoded here.
async fn grpc_send(
    connection: &grpc::Connection,
    gzip: bool,
    body: &Body,
    bytes: &mut u64,
) -> Outcome {
    // Counted before compression.
    let (raw_len, message) = match body {
        Body::TracesWire(b) | Body::LogsWire(b) => (b.len() as u64, grpc_message(b.clone(), gzip)),
        Body::Gzipped {
            payload, raw_len, ..
        } => (
            *raw_len,
            grpc::Message {
                gzip: true,
                payload: payload.clone(),
            },
        ),
        Body::Traces(r) => encoded_message(r, gzip),
        Body::Metrics(r) => encoded_message(r, gzip),
        Body::Logs(r) => encoded_message(r, gzip),
    };
    *bytes += raw_len;
    if message.payload.len() > MAX_GRPC_MESSAGE {
        return classify(tonic::Status::out_of_range(format!(
            "encoded message length too large: found {} bytes, the limit is: {MAX_GRPC_MESSAGE} bytes",
            message.payload.len()
        )));
    }
    match connection.export(grpc_path(body.signal()), message).await {
        Ok(reply) => Outcome::Ok {
            rejected: reply.rejected.max(0) as u64,
            message: reply.message,
        },
        Err(s) => classify(s),
    }
}

/// `raw` as a gRPC message, compressed when `gzip`.
fn grpc_message(raw: bytes::Bytes, gzip: bool) -> grpc::Message {
    grpc::Message {
        gzip,
        payload: if gzip { gzip_bytes(&raw).into() } else { raw },
    }
}

/// A prost request as a gRPC message, with its size before compression.
fn encoded_message(request: &impl prost::Message, gzip: bool) -> (u64, grpc::Message) {
    let raw = bytes::Bytes::from(request.encode_to_vec());
    (raw.len() as u64, grpc_message(raw, gzip))
}

/// The largest gRPC message sent.
const MAX_GRPC_MESSAGE: usize = 64 << 20;

/// A response body for an error message: its text (scrubbed of secrets, then
/// cut short) when it is text, else its size.
fn readable(body: &[u8], secrets: &super::Secrets) -> String {
    match std::str::from_utf8(body) {
        Ok(t) if t.chars().all(|c| !c.is_control() || c == '\n') => {
            secrets.scrub(t).chars().take(200).collect()
        }
        _ => format!("({} bytes of binary body)", body.len()),
    }
}

fn gzip_bytes(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// Rejected items from an OTLP/HTTP response body (protobuf or JSON); 0 when absent.
fn http_partial_success(data: &[u8], json: bool, body: &Body) -> (u64, String) {
    if data.is_empty() {
        return (0, String::new());
    }
    let signal = body.signal();
    let field = match signal {
        Signal::Traces => "rejectedSpans",
        Signal::Metrics => "rejectedDataPoints",
        Signal::Logs => "rejectedLogRecords",
    };
    if json {
        let v: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
        let ps = &v["partialSuccess"];
        let rejected = match &ps[field] {
            serde_json::Value::String(s) => s.parse().unwrap_or(0),
            n => n.as_u64().unwrap_or(0),
        };
        return (
            rejected,
            ps["errorMessage"].as_str().unwrap_or_default().to_string(),
        );
    }
    let decoded = match signal {
        Signal::Traces => ExportTraceServiceResponse::decode(data)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_spans, p.error_message)),
        Signal::Metrics => ExportMetricsServiceResponse::decode(data)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_data_points, p.error_message)),
        Signal::Logs => ExportLogsServiceResponse::decode(data)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_log_records, p.error_message)),
    };
    decoded.map_or((0, String::new()), |(n, m)| (n.max(0) as u64, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_refusals_are_told_from_other_errors_whatever_the_receiver() {
        let too_large = [
            tonic::Status::out_of_range("decoded message length too large"),
            tonic::Status::resource_exhausted(
                "grpc: received message larger than max (35000000 vs. 4194304)",
            ),
            tonic::Status::invalid_argument("request body exceeds the sink's limit of 100 bytes"),
        ];
        for s in too_large {
            assert!(matches!(classify(s), Outcome::TooLarge(_)));
        }
        assert!(matches!(
            classify(tonic::Status::resource_exhausted("slow down")),
            Outcome::Retry(..)
        ));
        assert!(matches!(
            classify(tonic::Status::invalid_argument("bad span id")),
            Outcome::Fail(_)
        ));
    }

    #[test]
    fn a_service_the_receiver_lacks_is_told_from_a_failure() {
        match classify(tonic::Status::unimplemented("unknown service")) {
            Outcome::NotAccepted { answer, failure } => {
                assert_eq!(answer, "gRPC UNIMPLEMENTED");
                assert!(failure.contains("unknown service"), "{failure}");
            }
            _ => panic!("UNIMPLEMENTED is not an ordinary failure"),
        }
        assert!(matches!(
            classify(tonic::Status::permission_denied("no")),
            Outcome::Fail(_)
        ));
    }
}
