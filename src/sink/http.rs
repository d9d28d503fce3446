//! OTLP/HTTP receiver (protobuf and JSON bodies, optional gzip) on axum.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message as _;

use super::body::{drain, read_body, ReadError};
use super::decode::{Refusal, RefusalKind, Signal, Wire};
use super::intake::Intake;
use super::stats::{Accepted, RejectWith, Transport};

/// Media type for OTLP/HTTP protobuf, as sent and expected by exporters.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/x-protobuf";
/// Media type for OTLP/HTTP JSON.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The retry hint of a busy answer, in seconds.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// Routes `POST /v1/{traces,metrics,logs}`; axum answers other methods on
/// those paths with 405 and unknown paths with 404.
pub(super) fn router(intake: Arc<Intake>) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .route("/v1/logs", post(logs))
        .with_state(intake)
}

fn transport(wire: Wire) -> Transport {
    match wire {
        Wire::Protobuf => Transport::HttpProtobuf,
        Wire::Json => Transport::HttpJson,
    }
}

fn content_type(wire: Wire) -> &'static str {
    match wire {
        Wire::Protobuf => PROTOBUF_CONTENT_TYPE,
        Wire::Json => JSON_CONTENT_TYPE,
    }
}

async fn traces(State(st): State<Arc<Intake>>, headers: HeaderMap, body: Body) -> Response {
    handle(&st, Signal::Traces, &headers, body).await
}

async fn metrics(State(st): State<Arc<Intake>>, headers: HeaderMap, body: Body) -> Response {
    handle(&st, Signal::Metrics, &headers, body).await
}

async fn logs(State(st): State<Arc<Intake>>, headers: HeaderMap, body: Body) -> Response {
    handle(&st, Signal::Logs, &headers, body).await
}

async fn handle(st: &Intake, signal: Signal, headers: &HeaderMap, mut body: Body) -> Response {
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
    let Some(wire) = content_format(headers) else {
        st.refuse(Refusal::new(RefusalKind::Unsupported, "content type"));
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Type: use application/x-protobuf or application/json\n",
        );
    };
    let Ok(gzip) = content_encoding(headers) else {
        st.refuse(Refusal::new(RefusalKind::Unsupported, "content encoding"));
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Encoding: use gzip or none\n",
        );
    };
    let limit = st.limits.max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        let refusal = st.refuse(Refusal::too_large(limit));
        drain(body).await;
        return error_response(wire, refusal);
    }
    let hint = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let deadline = tokio::time::Instant::now() + st.body_timeout;
    let mut reservation = st.budget.reservation();
    let raw = match read_body(&mut body, limit, hint, deadline, &mut reservation).await {
        Ok(raw) => raw,
        Err(ReadError::TooLarge(refusal)) => {
            let refusal = st.refuse(refusal);
            drop(reservation);
            drain(body).await;
            return error_response(wire, refusal);
        }
        Err(ReadError::Refused(refusal)) => return error_response(wire, st.refuse(refusal)),
    };
    drop(body);
    match st
        .accept(signal, wire, gzip, raw, reservation, transport(wire))
        .await
    {
        Ok(accepted) => success(wire, &accepted),
        Err(refusal) => error_response(wire, refusal),
    }
}

/// Media type → body format; parameters such as `charset` are ignored.
fn content_format(headers: &HeaderMap) -> Option<Wire> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = value.split(';').next()?.trim();
    if mime.eq_ignore_ascii_case(PROTOBUF_CONTENT_TYPE)
        || mime.eq_ignore_ascii_case("application/protobuf")
    {
        Some(Wire::Protobuf)
    } else if mime.eq_ignore_ascii_case(JSON_CONTENT_TYPE) {
        Some(Wire::Json)
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

/// OTLP success: an empty Export*ServiceResponse in the request's encoding
/// (all three response messages encode identically when empty), or a trace
/// response with a partial success when spans were refused.
fn success(wire: Wire, accepted: &Accepted) -> Response {
    let refused = accepted.rejected;
    let body: Vec<u8> = match (wire, refused > 0) {
        // An empty message encodes to zero bytes.
        (Wire::Protobuf, false) => Vec::new(),
        (Wire::Json, false) => b"{}".to_vec(),
        (Wire::Protobuf, true) => ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: refused as i64,
                error_message: accepted.message.clone(),
            }),
        }
        .encode_to_vec(),
        (Wire::Json, true) => serde_json::json!({
            "partialSuccess": {
                "rejectedSpans": refused.to_string(),
                "errorMessage": accepted.message
            }
        })
        .to_string()
        .into_bytes(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type(wire))],
        body,
    )
        .into_response()
}

/// A refusal as OTLP/HTTP answers it: the status, and a `google.rpc.Status`
/// body in the request's encoding.
fn error_response(wire: Wire, refusal: Refusal) -> Response {
    let (status, code) = match refusal.kind {
        RefusalKind::Malformed => (StatusCode::BAD_REQUEST, tonic::Code::InvalidArgument),
        RefusalKind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, tonic::Code::InvalidArgument),
        RefusalKind::Busy => (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable),
        RefusalKind::Timeout => (StatusCode::REQUEST_TIMEOUT, tonic::Code::DeadlineExceeded),
        RefusalKind::Unsupported => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            tonic::Code::Unimplemented,
        ),
    };
    let code = code as i32;
    let body = match wire {
        Wire::Protobuf => tonic_types::Status {
            code,
            message: refusal.message,
            details: Vec::new(),
        }
        .encode_to_vec(),
        Wire::Json => serde_json::json!({ "code": code, "message": refusal.message })
            .to_string()
            .into_bytes(),
    };
    let mut resp = (status, [(header::CONTENT_TYPE, content_type(wire))], body).into_response();
    match refusal.kind {
        RefusalKind::Busy => {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, BUSY_RETRY_AFTER_SECS.into());
        }
        // The rest of a slow body is not read: the connection cannot carry another request.
        RefusalKind::Timeout => {
            resp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        _ => {}
    }
    resp
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
    #[test]
    fn content_type_parameters_are_ignored() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().expect("header"),
        );
        assert_eq!(content_format(&h), Some(Wire::Json));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().expect("header"));
        assert_eq!(content_format(&h), None);
        h.insert(header::CONTENT_ENCODING, "br".parse().expect("header"));
        assert!(content_encoding(&h).is_err());
    }
}
