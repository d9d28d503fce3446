//! The OTLP/gRPC client: unary `Export` calls over HTTP/2, driven with `h2`
//! directly. The sender's task writes a request onto its connection's stream
//! and reads the answer itself; only h2's connection task (the socket) sits
//! between. (A tonic channel passed every request through a buffer task,
//! hyper's dispatch task and a task per request body as well.)
//!
//! One [`Connection`] is one HTTP/2 connection, made when first used and made
//! again when it has died (GOAWAY, reset, EOF). Answers become a
//! [`tonic::Status`] as tonic would make them: `grpc-status` from the
//! trailers (or the headers of a trailers-only answer), else from the HTTP
//! status; h2 and connection errors by the gRPC spec's mapping.

use crate::tls::{ClientTls, ALPN_H2, HANDSHAKE_TIMEOUT};
use anyhow::{anyhow, bail, Context as _, Result};
use bytes::{Buf as _, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use prost::Message as _;
use std::io::Read as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::{Code, Status};

/// How long a TCP connect may take (what tonic's channel was given).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest export response read (tonic's default decoding limit).
const MAX_RESPONSE: usize = 4 << 20;

/// HTTP/2 settings of our side. Answers are a few bytes, so the receive windows
/// hardly matter; these are hyper's client defaults, which tonic used.
const STREAM_WINDOW: u32 = 2 << 20;
const CONNECTION_WINDOW: u32 = 5 << 20;
const MAX_FRAME: u32 = 16 << 10;

/// Headers HTTP/2 forbids (connection-specific ones): dropped from the
/// configured headers, as hyper did.
const CONNECTION_HEADERS: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Headers gRPC keeps for itself: dropped from the configured headers, as tonic did.
const RESERVED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-message-type"];

/// One gRPC endpoint: where to connect, how (TLS), and the headers of every
/// request. Shared by the endpoint's connections.
pub(super) struct Endpoint {
    scheme: Scheme,
    authority: Authority,
    /// Host (no IPv6 brackets) and port to connect to.
    host: String,
    port: u16,
    /// For `https://`: the client configuration (ALPN h2) and the server name to verify.
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    /// Every request's headers but `grpc-encoding`: the protocol's and the configured ones.
    headers: HeaderMap,
}

impl Endpoint {
    /// The endpoint of `parsed` (as `transport::parse_endpoint` read and checked
    /// it: `http://` or `https://`, with a host), with `tls` for `https://` and
    /// the configured `headers` as gRPC metadata.
    pub(super) fn new(
        parsed: &reqwest::Url,
        tls: &ClientTls,
        headers: &[(String, String)],
    ) -> Result<Self> {
        let shown = super::redact_url(parsed.as_str());
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| anyhow!("invalid gRPC endpoint `{shown}`: no host"))?;
        let port = parsed.port_or_known_default().unwrap_or(4317);
        let https = parsed.scheme() == "https";
        // Host and port as written (a default port left out): gRPC paths are the
        // services', a path in the endpoint is not used.
        let authority = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let authority = Authority::try_from(authority)
            .with_context(|| format!("invalid gRPC endpoint `{shown}`"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls = if https {
            let config = tls.rustls_config(&[ALPN_H2])?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| anyhow!("`{host}` is not a valid TLS server name"))?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Endpoint {
            scheme: if https { Scheme::HTTPS } else { Scheme::HTTP },
            authority,
            host,
            port,
            tls,
            headers: request_headers(headers)?,
        })
    }

    /// A new HTTP/2 connection, its connection task spawned.
    async fn connect(&self) -> Result<Live, Status> {
        let addr = (self.host.as_str(), self.port);
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                return Err(Status::unavailable(format!(
                    "cannot connect to {}: {e}",
                    self.authority
                )))
            }
            Err(_) => {
                return Err(Status::unavailable(format!(
                    "cannot connect to {}: timed out after {CONNECT_TIMEOUT:?}",
                    self.authority
                )))
            }
        };
        // Requests are written whole: nothing to gain from delaying small frames.
        let _ = tcp.set_nodelay(true);
        let Some((connector, name)) = &self.tls else {
            return handshake(tcp).await;
        };
        let tls =
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name.clone(), tcp))
                .await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    let mut s = Status::unavailable(format!("TLS handshake failed: {e}"));
                    // Kept for `crate::tls::problem`: a rejected certificate is not retried.
                    s.set_source(Arc::new(e));
                    return Err(s);
                }
                Err(_) => {
                    return Err(Status::unavailable(format!(
                        "TLS handshake timed out after {HANDSHAKE_TIMEOUT:?}"
                    )))
                }
            };
        if tls.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
            return Err(Status::unavailable(format!(
                "{} did not agree to HTTP/2 (ALPN h2) in the TLS handshake: is it a gRPC endpoint?",
                self.authority
            )));
        }
        handshake(tls).await
    }

    /// The request for `path`, its message compressed with gzip when `gzip`.
    fn request(&self, path: &'static str, gzip: bool) -> http::Request<()> {
        let uri = Uri::from_parts({
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(self.scheme.clone());
            parts.authority = Some(self.authority.clone());
            parts.path_and_query = Some(PathAndQuery::from_static(path));
            parts
        })
        // Scheme, authority and a static path: always a valid URI.
        .unwrap_or_default();
        let mut req = http::Request::new(());
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = uri;
        *req.headers_mut() = self.headers.clone();
        if gzip {
            req.headers_mut()
                .insert("grpc-encoding", HeaderValue::from_static("gzip"));
        }
        req
    }
}

/// Every request's headers: the configured ones (names lower-cased, those
/// HTTP/2 or gRPC reserve dropped), then gRPC's own.
fn request_headers(configured: &[(String, String)]) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (k, v) in configured {
        let name = HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|_| anyhow!("invalid header name `{k}`"))?;
        if name.as_str().ends_with("-bin") {
            bail!("header `{k}`: binary (-bin) metadata is not supported");
        }
        let value =
            HeaderValue::from_str(v).map_err(|_| anyhow!("invalid value for header `{k}`"))?;
        if !CONNECTION_HEADERS.contains(&name.as_str())
            && !RESERVED_HEADERS.contains(&name.as_str())
        {
            headers.insert(name, value);
        }
    }
    headers.insert("content-type", HeaderValue::from_static("application/grpc"));
    headers.insert("te", HeaderValue::from_static("trailers"));
    if !headers.contains_key("user-agent") {
        let agent = concat!("otelsim/", env!("CARGO_PKG_VERSION"));
        headers.insert("user-agent", HeaderValue::from_static(agent));
    }
    Ok(headers)
}

/// The HTTP/2 handshake over `io`; the connection is then driven by a task of
/// its own, which marks it closed when it ends.
async fn handshake<T>(io: T) -> Result<Live, Status>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(from_h2)?;
    let closed = Arc::new(AtomicBool::new(false));
    let done = closed.clone();
    tokio::spawn(async move {
        // Its errors reach the requests on it.
        let _ = connection.await;
        done.store(true, Ordering::Release);
    });
    Ok(Live { send, closed })
}

/// An open HTTP/2 connection: the handle that opens streams on it, and
/// whether its connection task has ended.
struct Live {
    send: h2::client::SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
}

/// A request's message: protobuf, compressed with gzip when `gzip`; shared, not copied.
pub(super) struct Message {
    pub gzip: bool,
    pub payload: Bytes,
}

/// What the receiver answered to an export: the partial success it reported.
pub(super) struct Reply {
    /// Items it refused.
    pub rejected: i64,
    pub message: String,
}

/// One HTTP/2 connection to an endpoint, (re)made when needed.
pub(super) struct Connection {
    endpoint: Arc<Endpoint>,
    live: tokio::sync::Mutex<Option<Live>>,
}

impl Connection {
    /// A connection to `endpoint`, made when first used.
    pub(super) fn new(endpoint: Arc<Endpoint>) -> Connection {
        Connection {
            endpoint,
            live: tokio::sync::Mutex::new(None),
        }
    }

    /// A handle ready to open a stream: on the open connection, else on a new
    /// one (a connection that died is made again before anything is sent).
    async fn ready(&self) -> Result<h2::client::SendRequest<Bytes>, Status> {
        let mut live = self.live.lock().await;
        if let Some(l) = live.as_ref().filter(|l| !l.closed.load(Ordering::Acquire)) {
            // Fails at once if the connection is gone (a GOAWAY came, say).
            if let Ok(send) = l.send.clone().ready().await {
                return Ok(send);
            }
        }
        *live = None;
        let fresh = self.endpoint.connect().await?;
        let send = fresh.send.clone().ready().await.map_err(from_h2)?;
        *live = Some(fresh);
        Ok(send)
    }

    /// One unary call of `path` (a service's `Export`) with `message`.
    pub(super) async fn export(
        &self,
        path: &'static str,
        message: Message,
    ) -> Result<Reply, Status> {
        let mut send = self.ready().await?;
        let request = self.endpoint.request(path, message.gzip);
        let (response, mut stream) = send.send_request(request, false).map_err(from_h2)?;
        // The 5-byte gRPC prefix (compressed flag, big-endian length), then the bytes themselves.
        let mut prefix = [0u8; 5];
        prefix[0] = u8::from(message.gzip);
        // The caller keeps messages far below 4 GiB.
        prefix[1..].copy_from_slice(&(message.payload.len() as u32).to_be_bytes());
        stream
            .send_data(Bytes::copy_from_slice(&prefix), false)
            .map_err(from_h2)?;
        stream.send_data(message.payload, true).map_err(from_h2)?;
        let answer = read_answer(response).await;
        // Kept until the answer: dropping it early could cancel the stream.
        drop(stream);
        answer
    }
}

/// Reads an answer: its headers, its message and its trailers.
async fn read_answer(response: h2::client::ResponseFuture) -> Result<Reply, Status> {
    let (head, mut body) = response.await.map_err(from_h2)?.into_parts();
    // Trailers-only: the status in the headers, no message.
    if let Some(status) = status_in(&head.headers) {
        return Err(match status.code() {
            Code::Ok => missing_message(),
            _ => status,
        });
    }
    // Not a gRPC answer (a proxy's or a plain HTTP server's): the HTTP status says what.
    if head.status != http::StatusCode::OK {
        return Err(from_http_status(head.status));
    }
    let mut data = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(from_h2)?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if data.len() + chunk.len() > MAX_RESPONSE + 5 {
            return Err(Status::internal(format!(
                "the export response is over the {MAX_RESPONSE} bytes read"
            )));
        }
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.map_err(from_h2)?;
    match trailers.as_ref().and_then(status_in) {
        Some(s) if s.code() == Code::Ok => {}
        Some(s) => return Err(s),
        None => {
            return Err(Status::unknown(
                "protocol error: missing grpc-status trailer, stream was terminated without a final status",
            ))
        }
    }
    decode_reply(data.freeze(), &head.headers)
}

/// The export response in a gRPC message body (prefix, then protobuf).
fn decode_reply(mut data: Bytes, headers: &HeaderMap) -> Result<Reply, Status> {
    if data.is_empty() {
        return Err(missing_message());
    }
    if data.len() < 5 {
        return Err(Status::internal(
            "truncated gRPC message in the export response",
        ));
    }
    let compressed = data.get_u8();
    let len = data.get_u32() as usize;
    if data.len() < len {
        return Err(Status::internal(
            "truncated gRPC message in the export response",
        ));
    }
    let raw = data.split_to(len);
    let message = match compressed {
        0 => raw,
        1 if headers.get("grpc-encoding").is_some_and(|e| e == "gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .take(MAX_RESPONSE as u64)
                .read_to_end(&mut out)
                .map_err(|e| {
                    Status::internal(format!("cannot decompress the export response: {e}"))
                })?;
            out.into()
        }
        _ => {
            return Err(Status::internal(
                "the export response is compressed in an encoding otelsim did not ask for",
            ))
        }
    };
    let response = ExportResponse::decode(message)
        .map_err(|e| Status::internal(format!("cannot decode the export response: {e}")))?;
    let ps = response.partial_success.unwrap_or_default();
    Ok(Reply {
        rejected: ps.rejected,
        message: ps.error_message,
    })
}

/// What tonic answered to an OK status with no message.
fn missing_message() -> Status {
    Status::internal("Missing response message.")
}

/// `Export{Trace,Metrics,Logs}ServiceResponse`: each is `{1: partial_success
/// {1: rejected count, 2: error_message}}`, so one message decodes any.
#[derive(Clone, PartialEq, prost::Message)]
struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// The gRPC status in headers or trailers, if they carry one: the code, the
/// message (percent-decoded) and the details (`grpc-status-details-bin`, for
/// the receiver's retry hint).
fn status_in(headers: &HeaderMap) -> Option<Status> {
    let code = Code::from_bytes(headers.get("grpc-status")?.as_bytes());
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    let details = headers
        .get("grpc-status-details-bin")
        .and_then(|d| base64_decode(d.as_bytes()))
        .unwrap_or_default();
    Some(Status::with_details(code, message, details.into()))
}

/// A non-gRPC answer's HTTP status as a gRPC status (the gRPC spec's mapping,
/// and tonic's words, which the protocol diagnosis reads).
fn from_http_status(status: http::StatusCode) -> Status {
    let code = match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(
        code,
        format!(
            "grpc-status header missing, mapped from HTTP status code {}",
            status.as_u16()
        ),
    )
}

/// An h2 error as a gRPC status. A stream the receiver reset maps by the gRPC
/// spec (REFUSED_STREAM: UNAVAILABLE, CANCEL: CANCELLED, …); a connection that
/// went away or broke is UNAVAILABLE (retried on a new connection).
fn from_h2(e: h2::Error) -> Status {
    use h2::Reason;
    let code = if e.is_io() || e.is_go_away() {
        Code::Unavailable
    } else if e.is_reset() {
        match e.reason() {
            Some(Reason::REFUSED_STREAM) => Code::Unavailable,
            Some(Reason::CANCEL) => Code::Cancelled,
            Some(Reason::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
            Some(Reason::INADEQUATE_SECURITY) => Code::PermissionDenied,
            _ => Code::Internal,
        }
    } else {
        Code::Unknown
    };
    let mut status = Status::new(code, format!("h2 protocol error: {e}"));
    if let Some(io) = e.into_io() {
        // HTTP/2 keeps an I/O error's text only, which `crate::tls::problem`
        // reads: a TLS alert after the handshake (mTLS refused) is not retried.
        status.set_source(Arc::new(io));
    }
    status
}

/// `%XX` escapes decoded (what gRPC does to `grpc-message`); anything else kept.
fn percent_decode(s: &[u8]) -> String {
    percent_encoding::percent_decode(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Standard base64, padded or not (gRPC's binary headers); `None` if it is not.
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine as _;
    const ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    ANY_PADDING.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(percent_decode(b"too%20large%3A 5%"), "too large: 5%");
        assert_eq!(percent_decode(b"caf%C3%A9%2"), "café%2");
    }

    #[test]
    fn status_details_decode_padded_or_not() {
        for (text, bytes) in [
            (&b"aGVsbG8="[..], &b"hello"[..]),
            (b"aGVsbG8", b"hello"),
            (b"aGk=", b"hi"),
            (b"aGk", b"hi"),
            (b"", b""),
            (b"/+8=", b"\xff\xef"),
        ] {
            assert_eq!(base64_decode(text).as_deref(), Some(bytes), "{text:?}");
        }
        assert_eq!(base64_decode(b"a*bc"), None);
        assert_eq!(base64_decode(b"abcde"), None);
    }

    #[test]
    fn a_status_in_headers_carries_code_message_and_details() {
        let mut h = HeaderMap::new();
        assert!(status_in(&h).is_none());
        h.insert("grpc-status", HeaderValue::from_static("8"));
        h.insert("grpc-message", HeaderValue::from_static("slow%20down"));
        h.insert("grpc-status-details-bin", HeaderValue::from_static("aGk"));
        let s = status_in(&h).unwrap();
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(s.message(), "slow down");
        assert_eq!(s.details(), b"hi");
        // Garbage details are dropped, not fatal.
        h.insert("grpc-status-details-bin", HeaderValue::from_static("*"));
        assert!(status_in(&h).unwrap().details().is_empty());
    }

    #[test]
    fn plain_http_answers_map_as_the_grpc_spec_says() {
        let code = |n: u16| from_http_status(http::StatusCode::from_u16(n).unwrap()).code();
        assert_eq!(code(404), Code::Unimplemented);
        assert_eq!(code(503), Code::Unavailable);
        assert_eq!(code(429), Code::Unavailable);
        assert_eq!(code(401), Code::Unauthenticated);
        assert_eq!(code(500), Code::Unknown);
        let s = from_http_status(http::StatusCode::METHOD_NOT_ALLOWED);
        assert!(s.message().ends_with("mapped from HTTP status code 405"));
    }

    #[test]
    fn replies_decode_plain_or_gzipped_and_garbage_is_an_error() {
        let reply = ExportResponse {
            partial_success: Some(PartialSuccess {
                rejected: 3,
                error_message: "bad spans".into(),
            }),
        }
        .encode_to_vec();
        let framed = |flag: u8, body: &[u8]| {
            let mut b = vec![flag];
            b.extend_from_slice(&(body.len() as u32).to_be_bytes());
            b.extend_from_slice(body);
            Bytes::from(b)
        };
        let r = decode_reply(framed(0, &reply), &HeaderMap::new()).unwrap();
        assert_eq!((r.rejected, r.message.as_str()), (3, "bad spans"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &reply).unwrap();
        let mut h = HeaderMap::new();
        h.insert("grpc-encoding", HeaderValue::from_static("gzip"));
        let r = decode_reply(framed(1, &gz.finish().unwrap()), &h).unwrap();
        assert_eq!(r.rejected, 3);
        // Compressed without saying how, truncated, empty: errors, never a panic.
        assert!(decode_reply(framed(1, &reply), &HeaderMap::new()).is_err());
        assert!(decode_reply(framed(0, &reply).slice(..6), &HeaderMap::new()).is_err());
        assert!(decode_reply(Bytes::new(), &HeaderMap::new()).is_err());
        assert!(decode_reply(framed(0, b"\xff\xff"), &HeaderMap::new()).is_err());
    }

    #[test]
    fn the_authority_is_the_endpoints_host_and_port_as_written() {
        let tls = ClientTls::default();
        for (url, authority, host, port) in [
            (
                "http://collector.example",
                "collector.example",
                "collector.example",
                80,
            ),
            (
                "http://collector.example:4317/ignored",
                "collector.example:4317",
                "collector.example",
                4317,
            ),
            ("http://[::1]:4317", "[::1]:4317", "::1", 4317),
            (
                "http://user:pw@10.0.0.1:4317",
                "10.0.0.1:4317",
                "10.0.0.1",
                4317,
            ),
        ] {
            let e = Endpoint::new(&reqwest::Url::parse(url).unwrap(), &tls, &[]).unwrap();
            assert_eq!(e.authority.as_str(), authority, "{url}");
            assert_eq!((e.host.as_str(), e.port), (host, port), "{url}");
            assert!(e.tls.is_none());
            let req = e.request("/s/Export", true);
            assert_eq!(
                req.uri().to_string(),
                format!("http://{authority}/s/Export")
            );
            assert_eq!(req.headers()["grpc-encoding"], "gzip");
        }
    }

    #[test]
    fn configured_headers_keep_grpc_and_http2_rules() {
        let configured = [
            ("Authorization".to_string(), "Bearer x".to_string()),
            ("connection".to_string(), "close".to_string()),
            ("content-type".to_string(), "text/plain".to_string()),
            ("grpc-status".to_string(), "0".to_string()),
        ];
        let h = request_headers(&configured).unwrap();
        assert_eq!(h["authorization"], "Bearer x");
        assert_eq!(h["content-type"], "application/grpc");
        assert_eq!(h["te"], "trailers");
        assert!(!h.contains_key("connection") && !h.contains_key("grpc-status"));
        assert!(h["user-agent"].to_str().unwrap().starts_with("otelsim/"));
    }
}
