//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use seam_model::BearerTokens;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tracing::{error, warn};

use crate::pipeline::{IngestError, Pipeline};
use crate::rpc_status;

/// The one method of `opentelemetry.proto.collector.trace.v1.TraceService`.
const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// An export as it arrived: its protobuf bytes, decompressed. The
/// pipeline reads the request in place from them and the write-ahead log
/// keeps them as they are.
pub struct Received(pub Bytes);

/// The protobuf codec of the generated TraceService server, except that
/// the decoder keeps the message's bytes for the pipeline to read (this is
/// why the service below is written out rather than generated).
#[derive(Debug, Clone, Copy, Default)]
struct ReceivedCodec;

struct ReceivedDecoder;

struct ResponseEncoder;

impl Codec for ReceivedCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Received;
    type Encoder = ResponseEncoder;
    type Decoder = ReceivedDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ReceivedDecoder
    }
}

impl Decoder for ReceivedDecoder {
    type Item = Received;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Received>, Status> {
        Ok(Some(Received(buf.copy_to_bytes(buf.remaining()))))
    }
}

impl Encoder for ResponseEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }
}

/// The TraceService: checks the token, then ingests off the async workers.
pub struct GrpcReceiver {
    pipeline: Arc<Pipeline>,
    tokens: BearerTokens,
}

/// The tonic service with Seam's limits: gzip accepted, messages over
/// `receiver.grpc_max_message_size` refused by tonic before they are
/// decoded.
#[derive(Clone)]
pub struct TraceServer {
    receiver: Arc<GrpcReceiver>,
    max_message: usize,
}

impl NamedService for TraceServer {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for TraceServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let receiver = self.receiver.clone();
        let max_message = self.max_message;
        Box::pin(async move {
            if request.uri().path() != EXPORT {
                return Ok(
                    Status::unimplemented("only TraceService/Export is served here").into_http(),
                );
            }
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(ReceivedCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(max_message), None);
            Ok(grpc.unary(Export(receiver), request).await)
        })
    }
}

struct Export(Arc<GrpcReceiver>);

impl UnaryService<Received> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Response<ExportTraceServiceResponse>, Status>;

    fn call(&mut self, request: Request<Received>) -> Self::Future {
        let receiver = self.0.clone();
        Box::pin(async move { receiver.export(request).await })
    }
}

impl GrpcReceiver {
    pub fn service(pipeline: Arc<Pipeline>) -> TraceServer {
        let max_message = pipeline.config().grpc_limit();
        let tokens = pipeline.tokens().clone();
        TraceServer {
            receiver: Arc::new(Self { pipeline, tokens }),
            max_message,
        }
    }

    async fn export(
        &self,
        request: Request<Received>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let arrived = std::time::Instant::now();
        let answer = self.answer(request).await;
        self.pipeline
            .metrics()
            .ack_latency
            .observe(arrived.elapsed().as_secs_f64());
        answer
    }

    async fn answer(
        &self,
        request: Request<Received>,
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
        let Received(bytes) = request.into_inner();
        let ingested = match self.pipeline.turn().await {
            Ok(_turn) => tokio::task::spawn_blocking(move || pipeline.ingest_protobuf(&bytes))
                .await
                .map_err(|e| Status::internal(format!("ingest task failed: {e}")))?,
            Err(busy) => Err(busy),
        };
        match ingested {
            Ok(outcome) => Ok(Response::new(ExportTraceServiceResponse {
                partial_success: outcome.partial_success(),
            })),
            Err(IngestError::Malformed(e)) => Err(Status::invalid_argument(format!(
                "the request is not a valid OTLP protobuf message: {e}"
            ))),
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
                self.pipeline.metrics().refused_unavailable.inc();
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
