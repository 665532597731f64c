//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.

use std::future::Future;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use seam_model::BearerTokens;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};
use tracing::{error, warn};

use crate::pipeline::Pipeline;
use crate::rpc_status;

/// The TraceService implementation.
pub struct GrpcReceiver {
    pipeline: Arc<Pipeline>,
    tokens: BearerTokens,
}

impl GrpcReceiver {
    /// The tonic service with Seam's limits: gzip (and zstd) accepted,
    /// messages over `receiver.grpc_max_message_size` refused by tonic
    /// before they are decoded.
    pub fn service(pipeline: Arc<Pipeline>) -> TraceServiceServer<Self> {
        let limit = pipeline.config().grpc_limit();
        let tokens = pipeline.tokens().clone();
        TraceServiceServer::new(Self { pipeline, tokens })
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(limit)
    }
}

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        if !self.tokens.allows(authorization) {
            return Err(Status::unauthenticated(
                "a bearer token is required: send `authorization: Bearer <token>`",
            ));
        }
        // Ingest syncs the write-ahead log: off the async workers, so a slow
        // disk delays this export, not every connection.
        let pipeline = self.pipeline.clone();
        let request = request.into_inner();
        let ingested = match self.pipeline.turn().await {
            Ok(_turn) => tokio::task::spawn_blocking(move || pipeline.ingest(&request))
                .await
                .map_err(|e| Status::internal(format!("ingest task failed: {e}")))?,
            Err(busy) => Err(busy),
        };
        match ingested {
            Ok(outcome) => Ok(Response::new(ExportTraceServiceResponse {
                partial_success: outcome.partial_success(),
            })),
            Err(e) if e.is_pushback() => {
                warn!(error = %e, "pushing back on an OTLP/gRPC export");
                let details =
                    rpc_status::retry_after(rpc_status::code::RESOURCE_EXHAUSTED, e.to_string(), 1);
                Err(Status::with_details(
                    tonic::Code::ResourceExhausted,
                    e.to_string(),
                    bytes::Bytes::from(prost::Message::encode_to_vec(&details)),
                ))
            }
            Err(e) if e.retryable() => {
                error!(error = %e, "logging an OTLP/gRPC export failed; asking to retry");
                Err(Status::unavailable(format!(
                    "could not log the spans, retry: {e}"
                )))
            }
            Err(e) => {
                error!(error = %e, "storing an OTLP/gRPC export failed");
                Err(Status::internal(format!("could not store the spans: {e}")))
            }
        }
    }
}

/// Serves OTLP/gRPC on `listener` until `shutdown` resolves, then finishes
/// in-flight exports.
///
/// With `tls` (a PEM certificate chain and key) connections are TLS only.
pub async fn serve_grpc(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    tls: Option<(Vec<u8>, Vec<u8>)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let mut server = tonic::transport::Server::builder();
    if let Some((cert, key)) = tls {
        server = server.tls_config(
            tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(cert, key)),
        )?;
    }
    server
        .add_service(GrpcReceiver::service(pipeline))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}
