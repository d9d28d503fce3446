//! OTLP/gRPC receiver: the three collector services on one tonic server.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::codec::CompressionEncoding;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::transport::server::{Router, Server};
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use super::stats::{RejectWith, SinkStats, Transport};

/// Implements all three services; the generated servers share it via `Arc`.
struct Receiver {
    stats: Arc<SinkStats>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        refuse_if_asked(&self.stats)?;
        let req = request.into_inner();
        let refused = self
            .stats
            .record_traces(Transport::Grpc, req.encoded_len(), req);
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (refused > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: refused as i64,
                error_message: PARTIAL_MESSAGE.into(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        refuse_if_asked(&self.stats)?;
        let req = request.into_inner();
        self.stats
            .record_metrics(Transport::Grpc, req.encoded_len(), req);
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        refuse_if_asked(&self.stats)?;
        let req = request.into_inner();
        self.stats
            .record_logs(Transport::Grpc, req.encoded_len(), req);
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

/// The message of an injected partial success.
pub(super) const PARTIAL_MESSAGE: &str = "otelsim sink: refused on purpose (--partial-first)";

/// An injected refusal, with a RetryInfo hint when one is configured.
fn refuse_if_asked(stats: &SinkStats) -> Result<(), Status> {
    let Some((with, after)) = stats.take_rejection() else {
        return Ok(());
    };
    let code = match with {
        RejectWith::TooManyRequests => tonic::Code::ResourceExhausted,
        RejectWith::Unavailable => tonic::Code::Unavailable,
    };
    let message = "otelsim sink: refused on purpose (--reject-first)";
    let details = after.map_or_else(ErrorDetails::new, |d| {
        ErrorDetails::with_retry_info(Some(d))
    });
    Err(Status::with_error_details(code, message, details))
}

/// Builds the tonic router on `server` (plain or TLS) with gzip accepted and the
/// decode limit set.
pub(super) fn router(
    mut server: Server,
    stats: Arc<SinkStats>,
    max_request_bytes: usize,
) -> Router {
    let receiver = Arc::new(Receiver {
        stats: stats.clone(),
    });
    let traces = TraceServiceServer::from_arc(receiver.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_request_bytes);
    let metrics = MetricsServiceServer::from_arc(receiver.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_request_bytes);
    let logs = LogsServiceServer::from_arc(receiver)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_request_bytes);
    server
        .add_service(CountRejections::new(traces, stats.clone()))
        .add_service(CountRejections::new(metrics, stats.clone()))
        .add_service(CountRejections::new(logs, stats))
}

/// Wraps a generated service to count requests tonic refuses before our
/// handler runs (over the size limit, undecodable protobuf, bad compression).
/// Our handlers never fail, so any non-OK `grpc-status` in the response
/// headers (tonic's trailers-only error form) is such a rejection.
#[derive(Clone)]
struct CountRejections<S> {
    inner: S,
    stats: Arc<SinkStats>,
}

impl<S> CountRejections<S> {
    fn new(inner: S, stats: Arc<SinkStats>) -> Self {
        CountRejections { inner, stats }
    }
}

impl<S: NamedService> NamedService for CountRejections<S> {
    const NAME: &'static str = S::NAME;
}

type GrpcRequest = http::Request<tonic::body::Body>;
type GrpcResponse = http::Response<tonic::body::Body>;

impl<S> tonic::codegen::Service<GrpcRequest> for CountRejections<S>
where
    S: tonic::codegen::Service<GrpcRequest, Response = GrpcResponse, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = GrpcResponse;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<GrpcResponse, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: GrpcRequest) -> Self::Future {
        let fut = self.inner.call(req);
        let stats = self.stats.clone();
        Box::pin(async move {
            let resp = fut.await?;
            let failed = resp
                .headers()
                .get("grpc-status")
                .is_some_and(|s| s.as_bytes() != b"0");
            if failed {
                stats.record_rejected();
            }
            Ok(resp)
        })
    }
}
