//! Delivering one request the way an exporter would: OTLP/gRPC, or
//! OTLP/HTTP with protobuf or JSON, optionally gzip-compressed, optionally
//! with a bearer token. Failures come back as a short code (`grpc
//! RESOURCE_EXHAUSTED`, `http 429`, `transport`) for the report.

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::LoadError;

/// Which OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Grpc,
    Http,
}

/// The body encoding of OTLP/HTTP (gRPC is always protobuf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Protobuf,
    Json,
}

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` of the receiver (the path `/v1/traces` is added
    /// for HTTP).
    pub endpoint: String,
    pub protocol: Protocol,
    pub encoding: Encoding,
    pub gzip: bool,
    pub token: Option<String>,
    pub timeout: Duration,
}

/// How an export ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged; `rejected` spans were refused by partial success.
    Acked { rejected: u64 },
    /// Not acknowledged, with a short code.
    Failed(String),
}

pub enum Sender {
    Grpc {
        client: TraceServiceClient<Channel>,
        token: Option<MetadataValue<tonic::metadata::Ascii>>,
    },
    Http {
        client: reqwest::Client,
        url: String,
        target: Target,
    },
}

impl Sender {
    /// A sender for `target`; gRPC connects lazily, so a server that is
    /// not up yet shows as `transport` failures, not as an error here.
    pub fn new(target: &Target) -> Result<Self, LoadError> {
        match target.protocol {
            Protocol::Grpc => {
                let channel = Endpoint::from_shared(target.endpoint.clone())
                    .map_err(|e| LoadError::Endpoint(format!("{}: {e}", target.endpoint)))?
                    .timeout(target.timeout)
                    .connect_lazy();
                let mut client = TraceServiceClient::new(channel)
                    .max_decoding_message_size(64 * 1024 * 1024)
                    .max_encoding_message_size(usize::MAX);
                if target.gzip {
                    client = client
                        .send_compressed(CompressionEncoding::Gzip)
                        .accept_compressed(CompressionEncoding::Gzip);
                }
                let token = match &target.token {
                    Some(t) => Some(
                        format!("Bearer {t}")
                            .parse()
                            .map_err(|_| LoadError::Endpoint("the token is not ASCII".into()))?,
                    ),
                    None => None,
                };
                Ok(Self::Grpc { client, token })
            }
            Protocol::Http => {
                let client = reqwest::Client::builder()
                    .timeout(target.timeout)
                    .build()
                    .map_err(|e| LoadError::Endpoint(e.to_string()))?;
                Ok(Self::Http {
                    client,
                    url: format!("{}/v1/traces", target.endpoint.trim_end_matches('/')),
                    target: target.clone(),
                })
            }
        }
    }

    pub async fn send(&mut self, request: ExportTraceServiceRequest) -> Outcome {
        match self {
            Self::Grpc { client, token } => {
                let mut call = tonic::Request::new(request);
                if let Some(token) = token {
                    call.metadata_mut().insert("authorization", token.clone());
                }
                match client.export(call).await {
                    Ok(answer) => Outcome::Acked {
                        rejected: answer
                            .into_inner()
                            .partial_success
                            .map_or(0, |p| p.rejected_spans.max(0) as u64),
                    },
                    Err(status) => Outcome::Failed(format!("grpc {}", grpc_name(status.code()))),
                }
            }
            Self::Http {
                client,
                url,
                target,
            } => {
                let (body, media) = match target.encoding {
                    Encoding::Protobuf => (request.encode_to_vec(), "application/x-protobuf"),
                    Encoding::Json => match serde_json::to_vec(&request) {
                        Ok(b) => (b, "application/json"),
                        Err(_) => return Outcome::Failed("encode".into()),
                    },
                };
                let mut post = client.post(url.as_str()).header("content-type", media);
                let body = if target.gzip {
                    let mut gz =
                        GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
                    if gz.write_all(&body).is_err() {
                        return Outcome::Failed("encode".into());
                    }
                    post = post.header("content-encoding", "gzip");
                    match gz.finish() {
                        Ok(b) => b,
                        Err(_) => return Outcome::Failed("encode".into()),
                    }
                } else {
                    body
                };
                if let Some(token) = &target.token {
                    post = post.bearer_auth(token);
                }
                match post.body(body).send().await {
                    Ok(answer) if answer.status().is_success() => {
                        // Partial success is in the body; the report counts
                        // rejected spans only for gRPC and protobuf answers.
                        let rejected = if target.encoding == Encoding::Protobuf {
                            answer
                                .bytes()
                                .await
                                .ok()
                                .and_then(|b| {
                                    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(b).ok()
                                })
                                .and_then(|r| r.partial_success)
                                .map_or(0, |p| p.rejected_spans.max(0) as u64)
                        } else {
                            0
                        };
                        Outcome::Acked { rejected }
                    }
                    Ok(answer) => Outcome::Failed(format!("http {}", answer.status().as_u16())),
                    Err(e) if e.is_timeout() => Outcome::Failed("timeout".into()),
                    Err(_) => Outcome::Failed("transport".into()),
                }
            }
        }
    }
}

/// The status name as the gRPC specification writes it.
fn grpc_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
