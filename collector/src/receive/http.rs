//! OTLP/HTTP: `POST /v1/traces` with protobuf or JSON bodies, gzip or zstd.
//!
//! Status codes follow the OTLP specification: 200 (with `partial_success`
//! when spans were rejected), 400 for a body that does not decode, 405, 413,
//! 415. Error bodies are a `google.rpc.Status` in the request's encoding so
//! the SDK exporters can log the message.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tokio::net::TcpListener;
use tracing::{debug, error, warn};

use crate::decode::{self, DecodeError, Encoding};
use crate::pipeline::{IngestError, IngestOutcome, Pipeline};
use crate::rpc_status::{self, RpcStatus, code};

/// The OTLP/HTTP routes.
pub fn http_router(pipeline: Arc<Pipeline>) -> Router {
    Router::new()
        .route("/v1/traces", post(export).fallback(method_not_allowed))
        .fallback(not_found)
        // The receiver enforces its own, configurable limit while reading.
        .layer(DefaultBodyLimit::disable())
        .with_state(pipeline)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn export(State(pipeline): State<Arc<Pipeline>>, headers: HeaderMap, body: Body) -> Response {
    let arrived = std::time::Instant::now();
    let response = answer(&pipeline, &headers, body).await;
    pipeline
        .metrics()
        .ack_latency
        .observe(arrived.elapsed().as_secs_f64());
    response
}

async fn answer(pipeline: &Arc<Pipeline>, headers: &HeaderMap, body: Body) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !pipeline
        .tokens()
        .allows(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))
    {
        let encoding = decode::encoding(content_type).unwrap_or(Encoding::Json);
        let mut response = status_body(
            encoding,
            StatusCode::UNAUTHORIZED,
            code::UNAUTHENTICATED,
            "a bearer token is required: send `Authorization: Bearer <token>`".into(),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    let encoding = match decode::encoding(content_type) {
        Ok(e) => e,
        Err(e) => {
            return failure(
                pipeline,
                Encoding::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &e,
            );
        }
    };
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let compression = match decode::compression(content_encoding) {
        Ok(c) => c,
        Err(e) => return failure(pipeline, encoding, StatusCode::UNSUPPORTED_MEDIA_TYPE, &e),
    };
    let limit = pipeline.config().http_limit();
    let wire = match axum::body::to_bytes(body, limit).await {
        Ok(wire) => wire,
        Err(_) => {
            let e = DecodeError::TooLarge { limit };
            return failure(pipeline, encoding, StatusCode::PAYLOAD_TOO_LARGE, &e);
        }
    };
    let turn = match pipeline.turn().await {
        Ok(turn) => turn,
        Err(busy) => return refusal(encoding, &busy),
    };
    // Decompressing, decoding JSON and storing (which syncs the log) are
    // the heavy part of an export: off the async workers, which serve
    // every connection, and under the turn that bounds them.
    let worker = pipeline.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let raw = decode::decompress(wire, compression, limit)?;
        // Protobuf bodies are read in place by the pipeline, and go to the
        // write-ahead log as they arrived.
        Ok(match encoding {
            Encoding::Protobuf => worker.ingest_protobuf(&raw),
            Encoding::Json => worker.ingest(&decode::decode_json(&raw)?),
        })
    })
    .await;
    drop(turn);
    let ingested = match stored {
        Ok(Ok(ingested)) => ingested,
        Ok(Err(e)) => {
            let status = match e {
                DecodeError::UnsupportedMediaType(_) | DecodeError::UnsupportedEncoding(_) => {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                }
                DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            return failure(pipeline, encoding, status, &e);
        }
        Err(e) => {
            error!(error = %e, "ingest task failed");
            return status_body(
                encoding,
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL,
                "ingest task failed".into(),
            );
        }
    };
    match ingested {
        Ok(outcome) => success(encoding, &outcome),
        // Counted as malformed by the pipeline, which read it.
        Err(IngestError::Malformed(e)) => {
            let error = DecodeError::Protobuf(e);
            debug!(%error, "refused an OTLP/HTTP export");
            status_body(
                encoding,
                StatusCode::BAD_REQUEST,
                code::INVALID_ARGUMENT,
                error.to_string(),
            )
        }
        Err(e) if e.is_pushback() => refusal(encoding, &e),
        Err(e) if e.retryable() => {
            pipeline.metrics().refused_unavailable.inc();
            error!(error = %e, "logging an OTLP/HTTP export failed; asking to retry");
            let mut response = status_body(
                encoding,
                StatusCode::SERVICE_UNAVAILABLE,
                code::UNAVAILABLE,
                format!("could not log the spans, retry: {e}"),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
            response
        }
        Err(e) => {
            error!(error = %e, "storing an OTLP/HTTP export failed");
            status_body(
                encoding,
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL,
                format!("could not store the spans: {e}"),
            )
        }
    }
}

/// Pushback: 429 with `Retry-After`, and a `RetryInfo` in the protobuf
/// body, which OTLP clients read as "retry this later".
fn refusal(encoding: Encoding, error: &IngestError) -> Response {
    warn!(%error, "pushing back on an OTLP/HTTP export");
    let mut response = match encoding {
        Encoding::Protobuf => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::CONTENT_TYPE, encoding.content_type())],
            Bytes::from(
                rpc_status::retry_after(code::RESOURCE_EXHAUSTED, error.to_string(), 1)
                    .encode_to_vec(),
            ),
        )
            .into_response(),
        Encoding::Json => status_body(
            encoding,
            StatusCode::TOO_MANY_REQUESTS,
            code::RESOURCE_EXHAUSTED,
            error.to_string(),
        ),
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    response
}

fn success(encoding: Encoding, outcome: &IngestOutcome) -> Response {
    let partial_success = outcome.partial_success();
    let body = match encoding {
        Encoding::Protobuf => {
            Bytes::from(ExportTraceServiceResponse { partial_success }.encode_to_vec())
        }
        Encoding::Json => {
            let json = match partial_success {
                None => serde_json::json!({}),
                // Int64 is a decimal string in the protobuf JSON mapping.
                Some(p) => serde_json::json!({"partialSuccess": {
                    "rejectedSpans": p.rejected_spans.to_string(),
                    "errorMessage": p.error_message,
                }}),
            };
            Bytes::from(json.to_string())
        }
    };
    ([(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
}

fn failure(
    pipeline: &Pipeline,
    encoding: Encoding,
    status: StatusCode,
    error: &DecodeError,
) -> Response {
    pipeline.record_malformed();
    debug!(%status, %error, "refused an OTLP/HTTP export");
    let rpc_code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        code::RESOURCE_EXHAUSTED
    } else {
        code::INVALID_ARGUMENT
    };
    status_body(encoding, status, rpc_code, error.to_string())
}

fn status_body(encoding: Encoding, status: StatusCode, code: i32, message: String) -> Response {
    let body = match encoding {
        Encoding::Protobuf => Bytes::from(
            RpcStatus {
                code,
                message,
                details: Vec::new(),
            }
            .encode_to_vec(),
        ),
        Encoding::Json => {
            Bytes::from(serde_json::json!({"code": code, "message": message}).to_string())
        }
    };
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    let mut response = status_body(
        Encoding::Json,
        StatusCode::METHOD_NOT_ALLOWED,
        code::UNIMPLEMENTED,
        "OTLP/HTTP exports must use POST".to_owned(),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn not_found() -> Response {
    status_body(
        Encoding::Json,
        StatusCode::NOT_FOUND,
        code::UNIMPLEMENTED,
        "unknown path: Seam receives traces at POST /v1/traces".to_owned(),
    )
}

#[cfg(test)]
mod tests;
