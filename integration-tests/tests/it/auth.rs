//! Bearer tokens: separate ones for ingest and for the API, checked on
//! every receiver and endpoint except the health probes, never logged.

use std::collections::HashMap;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Tracer, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message;
use seam_integration_tests::Seam;
use seam_integration_tests::reqwest::blocking_client;

use crate::common::request;
use crate::rust_sdk::with_runtime;

const INGEST: &str = "ingest-Zk9q2";
const API: &str = "api-Hh71x";

fn export_with_sdk(exporter: opentelemetry_otlp::SpanExporter, name: &'static str) {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(
            Resource::builder_empty()
                .with_attributes([KeyValue::new("service.name", "authed")])
                .build(),
        )
        .build();
    provider.tracer("auth").in_span(name, |_| {});
    provider.force_flush().unwrap();
    provider.shutdown().unwrap();
}

fn span_count(seam: &Seam) -> u64 {
    let answer: serde_json::Value = blocking_client()
        .post(seam.api_url("/api/v1/sql"))
        .header("authorization", &format!("Bearer {API}"))
        .json(&serde_json::json!({"sql": "SELECT count(*) AS n FROM spans WHERE service_name = 'authed'"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    answer["rows"][0][0].as_u64().unwrap()
}

#[test]
fn ingest_and_api_require_their_own_tokens() {
    let seam = Seam::start_with(
        &[],
        &[("SEAM_INGEST_TOKEN", INGEST), ("SEAM_API_TOKEN", API)],
    );

    // OTLP/HTTP without a token, or with the API's: 401, nothing stored.
    for auth in [None, Some(API)] {
        let mut post = blocking_client()
            .post(seam.otlp_http_url())
            .header("content-type", "application/x-protobuf")
            .body(request(1, 3, "authed").encode_to_vec());
        if let Some(token) = auth {
            post = post.header("authorization", &format!("Bearer {token}"));
        }
        let answer = post.send().unwrap();
        assert_eq!(answer.status(), 401, "{auth:?}");
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
    }
    // OTLP/gRPC without a token: UNAUTHENTICATED.
    let url = seam.grpc_url();
    let code = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let mut client = TraceServiceClient::connect(url).await.unwrap();
            client
                .export(request(2, 3, "authed"))
                .await
                .unwrap_err()
                .code()
        });
    assert_eq!(code, tonic::Code::Unauthenticated);
    assert_eq!(span_count(&seam), 0);

    // The Rust SDK with the ingest token, over gRPC metadata and HTTP headers.
    let (grpc, http) = (seam.grpc_url(), seam.otlp_http_url());
    with_runtime(move || {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("authorization", format!("Bearer {INGEST}").parse().unwrap());
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(grpc)
            .with_metadata(metadata)
            .build()
            .unwrap();
        export_with_sdk(exporter, "over grpc");
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(http)
            .with_headers(HashMap::from([(
                "authorization".to_owned(),
                format!("Bearer {INGEST}"),
            )]))
            .build()
            .unwrap();
        export_with_sdk(exporter, "over http");
    });
    assert_eq!(span_count(&seam), 2);

    // The API: its own token, health probes open.
    let (status, body) = seam.get("/api/v1/search");
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("bearer token"),
        "{body}"
    );
    let with_ingest_token = blocking_client()
        .get(seam.api_url("/metrics"))
        .header("authorization", &format!("Bearer {INGEST}"))
        .send()
        .unwrap();
    assert_eq!(
        with_ingest_token.status(),
        401,
        "the ingest token does not open the API"
    );
    let metrics = blocking_client()
        .get(seam.api_url("/metrics"))
        .header("authorization", &format!("Bearer {API}"))
        .send()
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(seam.get("/healthz").0, 200);
    assert_eq!(seam.get("/readyz").0, 200);

    let logs = seam.logs();
    assert!(
        !logs.contains(INGEST) && !logs.contains(API),
        "a token was logged"
    );
}
