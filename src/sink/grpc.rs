//! OTLP/gRPC receiver: the `Export` call of the three collector services,
//! served on tonic's HTTP/2 server (TLS, connection handling) but read and
//! decoded by the sink itself. tonic's generated servers gunzip and decode a
//! message in full before the handler sees it, so a small gzip body of empty
//! messages would take gigabytes; here the body goes through the same bounded
//! path as OTLP/HTTP ([`super::decode`]).
//!
//! A unary gRPC request body is one message: a flag byte (1 = compressed with
//! the `grpc-encoding`), its length as four big-endian bytes, then the bytes.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use hyper::body::Frame;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::transport::server::{Router, Server};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use super::body::{read_body, ReadError};
use super::decode::{Refusal, RefusalKind, Signal, Wire};
use super::intake::Intake;
use super::stats::{Accepted, RejectWith, SinkStats, Transport};

/// The retry hint of a busy answer.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Length of the prefix before a gRPC message: the flag and the length.
const PREFIX: usize = 5;

/// Adds the three services to `server` (plain or TLS).
pub(super) fn router(mut server: Server, intake: Arc<Intake>) -> Router {
    server
        .add_service(Export::<TraceService>::new(intake.clone()))
        .add_service(Export::<MetricsService>::new(intake.clone()))
        .add_service(Export::<LogsService>::new(intake))
}

/// One OTLP collector service: its gRPC name and what it carries.
trait OtlpService {
    const NAME: &'static str;
    const SIGNAL: Signal;
}

struct TraceService;
struct MetricsService;
struct LogsService;

impl OtlpService for TraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const SIGNAL: Signal = Signal::Traces;
}

impl OtlpService for MetricsService {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const SIGNAL: Signal = Signal::Metrics;
}

impl OtlpService for LogsService {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const SIGNAL: Signal = Signal::Logs;
}

/// The tower service of one OTLP service.
struct Export<S> {
    intake: Arc<Intake>,
    service: PhantomData<fn() -> S>,
}

impl<S> Export<S> {
    fn new(intake: Arc<Intake>) -> Self {
        Export {
            intake,
            service: PhantomData,
        }
    }
}

impl<S> Clone for Export<S> {
    fn clone(&self) -> Self {
        Export::new(self.intake.clone())
    }
}

impl<S: OtlpService> NamedService for Export<S> {
    const NAME: &'static str = S::NAME;
}

type GrpcRequest = http::Request<tonic::body::Body>;
type GrpcResponse = http::Response<tonic::body::Body>;

impl<S: OtlpService> tonic::codegen::Service<GrpcRequest> for Export<S> {
    type Response = GrpcResponse;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<GrpcResponse, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: GrpcRequest) -> Self::Future {
        let intake = self.intake.clone();
        Box::pin(async move {
            Ok(match export(&intake, S::SIGNAL, req).await {
                Ok(message) => ok_response(message),
                Err(status) => status.into_http(),
            })
        })
    }
}

/// One `Export` call: the encoded response message, or why it was refused.
async fn export(st: &Intake, signal: Signal, req: GrpcRequest) -> Result<Vec<u8>, Status> {
    if !req.uri().path().ends_with("/Export") {
        return Err(Status::unimplemented(format!(
            "{} has no method {}; OTLP services have Export only",
            req.uri().path().rsplit('/').nth(1).unwrap_or_default(),
            req.uri().path().rsplit('/').next().unwrap_or_default()
        )));
    }
    refuse_if_asked(&st.stats)?;
    let gzip = match req
        .headers()
        .get("grpc-encoding")
        .map(|v| v.to_str().unwrap_or("?").trim())
    {
        None | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            let r = st.refuse(Refusal::new(
                RefusalKind::Unsupported,
                format!("grpc-encoding `{other}` is not supported: use gzip or identity"),
            ));
            return Err(status(r));
        }
    };
    let hint = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = req.into_body();
    let limit = st.limits.max_bytes;
    let deadline = tokio::time::Instant::now() + st.body_timeout;
    let mut reservation = st.budget.reservation();
    let raw = match read_body(&mut body, limit + PREFIX, hint, deadline, &mut reservation).await {
        Ok(raw) => raw,
        Err(ReadError::TooLarge(_)) => return Err(status(st.refuse(Refusal::too_large(limit)))),
        Err(ReadError::Refused(r)) => return Err(status(st.refuse(r))),
    };
    drop(body);
    let (compressed, message) = unframe(raw, gzip).map_err(|r| status(st.refuse(r)))?;
    st.accept(
        signal,
        Wire::Protobuf,
        compressed,
        message,
        reservation,
        Transport::Grpc,
    )
    .await
    .map(|accepted| response(signal, &accepted))
    .map_err(status)
}

/// The one message of a unary request body: whether it is compressed, and its bytes.
fn unframe(raw: Bytes, gzip: bool) -> Result<(bool, Bytes), Refusal> {
    let malformed = |m: &str| Refusal::new(RefusalKind::Malformed, m);
    if raw.len() < PREFIX {
        return Err(malformed("the request carries no gRPC message"));
    }
    let compressed = match raw[0] {
        0 => false,
        1 if gzip => true,
        1 => {
            return Err(malformed(
                "a compressed message needs a grpc-encoding header",
            ))
        }
        _ => return Err(malformed("invalid gRPC message flag")),
    };
    let len = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]) as usize;
    if raw.len() - PREFIX != len {
        return Err(malformed(
            "a unary call carries exactly one message of the length its prefix declares",
        ));
    }
    Ok((compressed, raw.slice(PREFIX..)))
}

/// The status a refusal is answered with; a busy one carries a retry hint.
fn status(r: Refusal) -> Status {
    match r.kind {
        // OTLP: a request that can never be accepted gets a code senders do not retry.
        RefusalKind::Malformed | RefusalKind::TooLarge => Status::invalid_argument(r.message),
        RefusalKind::Busy => Status::with_error_details(
            Code::ResourceExhausted,
            r.message,
            ErrorDetails::with_retry_info(Some(BUSY_RETRY_AFTER)),
        ),
        RefusalKind::Timeout => Status::deadline_exceeded(r.message),
        RefusalKind::Unsupported => Status::unimplemented(r.message),
    }
}

/// The encoded Export*ServiceResponse: empty, or a trace partial success.
fn response(signal: Signal, accepted: &Accepted) -> Vec<u8> {
    if signal != Signal::Traces || accepted.rejected == 0 {
        // The three response messages encode identically when empty: to nothing.
        return Vec::new();
    }
    ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: accepted.rejected as i64,
            error_message: accepted.message.clone(),
        }),
    }
    .encode_to_vec()
}

/// A successful unary answer: the framed message, then `grpc-status: 0` in trailers.
fn ok_response(message: Vec<u8>) -> GrpcResponse {
    let mut frame = BytesMut::with_capacity(PREFIX + message.len());
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.extend_from_slice(&message);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let mut resp = http::Response::new(tonic::body::Body::new(Unary {
        data: Some(frame.freeze()),
        trailers: Some(trailers),
    }));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    resp
}

/// A response body of one data frame and then trailers.
struct Unary {
    data: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl hyper::body::Body for Unary {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(data) = this.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

/// An injected refusal, with a RetryInfo hint when one is configured.
fn refuse_if_asked(stats: &SinkStats) -> Result<(), Status> {
    let Some((with, after)) = stats.take_rejection() else {
        return Ok(());
    };
    let code = match with {
        RejectWith::TooManyRequests => Code::ResourceExhausted,
        RejectWith::Unavailable => Code::Unavailable,
    };
    let message = "otelsim sink: refused on purpose (--reject-first)";
    let details = after.map_or_else(ErrorDetails::new, |d| {
        ErrorDetails::with_retry_info(Some(d))
    });
    Err(Status::with_error_details(code, message, details))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unary_body_is_one_whole_message() {
        let framed = |flag: u8, len: u32, body: &[u8]| {
            let mut b = vec![flag];
            b.extend(len.to_be_bytes());
            b.extend(body);
            Bytes::from(b)
        };
        assert_eq!(
            unframe(framed(0, 3, b"abc"), false).expect("plain"),
            (false, Bytes::from_static(b"abc"))
        );
        assert!(unframe(framed(1, 3, b"abc"), true).expect("gzip").0);
        for (raw, gzip) in [
            (framed(1, 3, b"abc"), false),
            (framed(2, 3, b"abc"), true),
            (framed(0, 4, b"abc"), false),
            (framed(0, 2, b"abc"), false),
            (Bytes::from_static(b"\x00\x00"), false),
        ] {
            let err = unframe(raw.clone(), gzip).expect_err("malformed");
            assert_eq!(err.kind, RefusalKind::Malformed, "{raw:?}");
        }
    }
}
