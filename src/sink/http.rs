//! OTLP/HTTP receiver (protobuf and JSON bodies, optional gzip) on axum.

use std::borrow::Cow;
use std::io::Read as _;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::BytesMut;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

use super::otlp_json;
use super::stats::{RejectWith, SinkStats, Transport};

/// Media type for OTLP/HTTP protobuf, as sent and expected by exporters.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/x-protobuf";
/// Media type for OTLP/HTTP JSON.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Bodies above this are decompressed and decoded on the blocking pool so a
/// large request cannot stall the async workers serving everyone else.
const BLOCKING_THRESHOLD: usize = 256 * 1024;
/// Upper bound on up-front buffer reservation from a client's Content-Length.
const MAX_PREALLOC: usize = 4 * 1024 * 1024;
/// After refusing an oversized body we read (and discard) up to this much
/// more, so the client has finished sending and actually sees the 413
/// instead of a connection reset.
const DRAIN_MAX_BYTES: usize = 8 * 1024 * 1024;
const DRAIN_MAX_TIME: Duration = Duration::from_secs(2);

struct HttpState {
    stats: Arc<SinkStats>,
    max_request_bytes: usize,
}

/// Routes `POST /v1/{traces,metrics,logs}`; axum answers other methods on
/// those paths with 405 and unknown paths with 404.
pub(super) fn router(stats: Arc<SinkStats>, max_request_bytes: usize) -> Router {
    let state = Arc::new(HttpState {
        stats,
        max_request_bytes,
    });
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .route("/v1/logs", post(logs))
        .with_state(state)
}

#[derive(Clone, Copy, Debug)]
enum Signal {
    Traces,
    Metrics,
    Logs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn transport(self) -> Transport {
        match self {
            Format::Protobuf => Transport::HttpProtobuf,
            Format::Json => Transport::HttpJson,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => PROTOBUF_CONTENT_TYPE,
            Format::Json => JSON_CONTENT_TYPE,
        }
    }
}

async fn traces(State(st): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    handle(st, Signal::Traces, &headers, body).await
}

async fn metrics(State(st): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    handle(st, Signal::Metrics, &headers, body).await
}

async fn logs(State(st): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    handle(st, Signal::Logs, &headers, body).await
}

/// Why a request was refused; becomes the HTTP status and error body.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    message: String,
}

impl Problem {
    fn bad_request(message: impl Into<String>) -> Self {
        Problem {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn too_large(limit: usize) -> Self {
        Problem {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("request body exceeds the sink's limit of {limit} bytes"),
        }
    }
}

async fn handle(st: Arc<HttpState>, signal: Signal, headers: &HeaderMap, body: Body) -> Response {
    if let Some((with, after)) = st.stats.take_rejection() {
        drain(body).await;
        let status = match with {
            RejectWith::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            RejectWith::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut resp = (
            status,
            "otelsim sink: refused on purpose (--reject-first)\n",
        )
            .into_response();
        if let Some(a) = after {
            // HTTP wants whole seconds: round up, so a sender waits at least as asked.
            let secs = a.as_secs() + u64::from(a.subsec_nanos() > 0);
            if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        return resp;
    }
    let Some(format) = content_format(headers) else {
        st.stats.record_rejected();
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Type: use application/x-protobuf or application/json\n",
        );
    };
    let gzip = match content_encoding(headers) {
        Ok(gzip) => gzip,
        Err(()) => {
            st.stats.record_rejected();
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported Content-Encoding: use gzip or none\n",
            );
        }
    };
    let limit = st.max_request_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        st.stats.record_rejected();
        drain(body).await;
        return error_response(format, Problem::too_large(limit));
    }
    let hint = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let raw = match read_limited(body, limit, hint).await {
        Ok(raw) => raw,
        Err(ReadError::TooLarge(rest)) => {
            st.stats.record_rejected();
            drain(rest).await;
            return error_response(format, Problem::too_large(limit));
        }
        Err(ReadError::Io(e)) => {
            st.stats.record_rejected();
            return error_response(
                format,
                Problem::bad_request(format!("reading request body: {e}")),
            );
        }
    };

    let result = if raw.len() > BLOCKING_THRESHOLD {
        let st2 = st.clone();
        tokio::task::spawn_blocking(move || process(&st2, signal, format, gzip, &raw))
            .await
            .unwrap_or_else(|e| {
                Err(Problem {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: format!("decoder task failed: {e}"),
                })
            })
    } else {
        process(&st, signal, format, gzip, &raw)
    };
    match result {
        Ok(refused) => success(format, refused),
        Err(problem) => {
            st.stats.record_rejected();
            error_response(format, problem)
        }
    }
}

/// Decompresses, decodes and records one request body.
fn process(
    st: &HttpState,
    signal: Signal,
    format: Format,
    gzip: bool,
    raw: &[u8],
) -> Result<u64, Problem> {
    let payload: Cow<'_, [u8]> = if gzip {
        Cow::Owned(gunzip_limited(raw, st.max_request_bytes)?)
    } else {
        Cow::Borrowed(raw)
    };
    let bytes = payload.len();
    let transport = format.transport();
    let invalid = |e: &dyn std::fmt::Display| {
        Problem::bad_request(format!("invalid {signal:?} payload: {e}"))
    };
    match (signal, format) {
        (Signal::Traces, Format::Protobuf) => {
            let req = ExportTraceServiceRequest::decode(&*payload).map_err(|e| invalid(&e))?;
            return Ok(st.stats.record_traces(transport, bytes, req));
        }
        (Signal::Traces, Format::Json) => {
            let req = otlp_json::decode_traces(&payload).map_err(|e| invalid(&e))?;
            return Ok(st.stats.record_traces(transport, bytes, req));
        }
        (Signal::Metrics, Format::Protobuf) => {
            let req = ExportMetricsServiceRequest::decode(&*payload).map_err(|e| invalid(&e))?;
            st.stats.record_metrics(transport, bytes, req);
        }
        (Signal::Metrics, Format::Json) => {
            let req = otlp_json::decode_metrics(&payload).map_err(|e| invalid(&e))?;
            st.stats.record_metrics(transport, bytes, req);
        }
        (Signal::Logs, Format::Protobuf) => {
            let req = ExportLogsServiceRequest::decode(&*payload).map_err(|e| invalid(&e))?;
            st.stats.record_logs(transport, bytes, req);
        }
        (Signal::Logs, Format::Json) => {
            let req = otlp_json::decode_logs(&payload).map_err(|e| invalid(&e))?;
            st.stats.record_logs(transport, bytes, req);
        }
    }
    Ok(0)
}

/// Media type → body format; parameters such as `charset` are ignored.
fn content_format(headers: &HeaderMap) -> Option<Format> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = value.split(';').next()?.trim();
    if mime.eq_ignore_ascii_case(PROTOBUF_CONTENT_TYPE)
        || mime.eq_ignore_ascii_case("application/protobuf")
    {
        Some(Format::Protobuf)
    } else if mime.eq_ignore_ascii_case(JSON_CONTENT_TYPE) {
        Some(Format::Json)
    } else {
        None
    }
}

/// `Ok(true)` for gzip, `Ok(false)` for none/identity, `Err` otherwise.
fn content_encoding(headers: &HeaderMap) -> Result<bool, ()> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let value = value.to_str().map_err(|_| ())?.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("identity") {
        Ok(false)
    } else if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") {
        Ok(true)
    } else {
        Err(())
    }
}

enum ReadError {
    /// Over the limit; carries the unread rest of the body for draining.
    TooLarge(Body),
    Io(axum::Error),
}

async fn next_data(body: &mut Body) -> Option<Result<Option<Bytes>, axum::Error>> {
    let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
    // Trailers frames carry no data; report them as `Ok(None)`.
    Some(frame.map(|f| f.into_data().ok()))
}

/// Collects the body, refusing as soon as it grows past `limit`.
async fn read_limited(mut body: Body, limit: usize, size_hint: usize) -> Result<Bytes, ReadError> {
    let mut buf = BytesMut::with_capacity(size_hint.min(limit).min(MAX_PREALLOC));
    while let Some(item) = next_data(&mut body).await {
        let Some(data) = item.map_err(ReadError::Io)? else {
            continue;
        };
        if data.len() > limit - buf.len() {
            return Err(ReadError::TooLarge(body));
        }
        if buf.is_empty() && size_hint == data.len() {
            // Common case: the whole body arrives as one frame; skip the copy.
            return finish_single(body, data, limit).await;
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Completes a read whose first frame already held the declared length.
async fn finish_single(mut body: Body, first: Bytes, limit: usize) -> Result<Bytes, ReadError> {
    let mut buf: Option<BytesMut> = None;
    while let Some(item) = next_data(&mut body).await {
        let Some(data) = item.map_err(ReadError::Io)? else {
            continue;
        };
        let b = buf.get_or_insert_with(|| BytesMut::from(&first[..]));
        if data.len() > limit - b.len() {
            return Err(ReadError::TooLarge(body));
        }
        b.extend_from_slice(&data);
    }
    Ok(buf.map_or(first, BytesMut::freeze))
}

/// Reads and discards a bounded amount of the remaining body.
async fn drain(mut body: Body) {
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, async {
        let mut seen = 0usize;
        while let Some(Ok(data)) = next_data(&mut body).await {
            seen = seen.saturating_add(data.map_or(0, |d| d.len()));
            if seen > DRAIN_MAX_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Gunzips with the size limit applied to the output, reading in bounded
/// chunks so a compression bomb costs at most `limit` bytes of memory.
fn gunzip_limited(compressed: &[u8], limit: usize) -> Result<Vec<u8>, Problem> {
    const CHUNK: usize = 64 * 1024;
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut out: Vec<u8> = Vec::with_capacity(
        compressed
            .len()
            .saturating_mul(4)
            .min(limit)
            .min(MAX_PREALLOC),
    );
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Problem::bad_request(format!("invalid gzip body: {e}"))),
        };
        if n > limit - out.len() {
            return Err(Problem::too_large(limit));
        }
        if out.capacity() - out.len() < n {
            // Grow geometrically but never past the limit.
            let want = (out.capacity() * 2).max(out.len() + n).min(limit);
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
    Ok(out)
}

/// OTLP success: an empty Export*ServiceResponse in the request's encoding
/// (all three response messages encode identically when empty), or a trace
/// response with a partial success when `refused` spans were refused.
fn success(format: Format, refused: u64) -> Response {
    let partial = (refused > 0).then(|| ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: refused as i64,
            error_message: super::grpc::PARTIAL_MESSAGE.into(),
        }),
    });
    let body: Vec<u8> = match (format, partial) {
        // An empty message encodes to zero bytes.
        (Format::Protobuf, None) => Vec::new(),
        (Format::Json, None) => b"{}".to_vec(),
        (Format::Protobuf, Some(p)) => p.encode_to_vec(),
        (Format::Json, Some(_)) => serde_json::json!({
            "partialSuccess": {
                "rejectedSpans": refused.to_string(),
                "errorMessage": super::grpc::PARTIAL_MESSAGE
            }
        })
        .to_string()
        .into_bytes(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}

fn error_response(format: Format, problem: Problem) -> Response {
    let code = match problem.status {
        StatusCode::BAD_REQUEST => tonic::Code::InvalidArgument,
        StatusCode::PAYLOAD_TOO_LARGE => tonic::Code::ResourceExhausted,
        _ => tonic::Code::Internal,
    } as i32;
    let body = match format {
        // `google.rpc.Status`, which OTLP/HTTP uses for error bodies.
        Format::Protobuf => tonic_types::Status {
            code,
            message: problem.message,
            details: Vec::new(),
        }
        .encode_to_vec(),
        Format::Json => serde_json::json!({ "code": code, "message": problem.message })
            .to_string()
            .into_bytes(),
    };
    (
        problem.status,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).expect("gzip write");
        enc.finish().expect("gzip finish")
    }

    #[test]
    fn gunzip_enforces_the_decompressed_limit() {
        let bomb = gzip(&vec![0u8; 1_000_000]);
        assert!(bomb.len() < 10_000);
        let err = gunzip_limited(&bomb, 999_999).expect_err("over limit");
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        let ok = gunzip_limited(&bomb, 1_000_000).expect("at limit");
        assert_eq!(ok.len(), 1_000_000);
        assert!(ok.capacity() <= 1_000_000);
        let err = gunzip_limited(b"not gzip at all", 100).expect_err("garbage");
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn content_type_parameters_are_ignored() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().expect("header"),
        );
        assert_eq!(content_format(&h), Some(Format::Json));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().expect("header"));
        assert_eq!(content_format(&h), None);
        h.insert(header::CONTENT_ENCODING, "br".parse().expect("header"));
        assert!(content_encoding(&h).is_err());
    }
}
