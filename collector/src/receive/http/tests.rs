use std::io::Write;

use http::Request;
use http_body_util::BodyExt;
use seam_store::Table;
use tower::ServiceExt;

use super::*;
use crate::ReceiverConfig;
use crate::pipeline::tests::{Fixture, request};

/// The router over a store in a temporary directory (kept by the fixture).
fn setup(config: ReceiverConfig) -> (Arc<Table>, Router, Fixture) {
    let f = Fixture::new();
    let pipeline = Arc::new(f.pipeline(config));
    (f.table.clone(), http_router(pipeline), f)
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (
        status,
        headers,
        resp.into_body().collect().await.unwrap().to_bytes(),
    )
}

fn post(content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut b = Request::post("/v1/traces").header(header::CONTENT_TYPE, content_type);
    if let Some(e) = encoding {
        b = b.header(header::CONTENT_ENCODING, e);
    }
    b.body(Body::from(body)).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn json_body(trace_id_hex: &str) -> Vec<u8> {
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"cart"}}}}]}},
        "scopeSpans":[{{"spans":[{{"traceId":"{trace_id_hex}","spanId":"eee19b7ec3c1b174","name":"GET /cart","kind":"SPAN_KIND_SERVER",
        "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000200000000"}}]}}]}}]}}"#
    )
    .into_bytes()
}

#[tokio::test]
async fn protobuf_export_is_stored_and_fully_successful() {
    let (table, router, _f) = setup(ReceiverConfig::default());
    let (status, headers, body) = send(
        &router,
        post("application/x-protobuf", None, request(3).encode_to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
    let resp = ExportTraceServiceResponse::decode(body).unwrap();
    assert_eq!(resp.partial_success, None);
    assert_eq!(table.snapshot().num_rows(), 3);
}

#[tokio::test]
async fn json_and_gzip_json_exports_are_stored() {
    let (table, router, _f) = setup(ReceiverConfig::default());
    let (status, headers, body) = send(
        &router,
        post(
            "application/json",
            None,
            json_body("5b8efff798038103d269b633813fc60c"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(&body[..], b"{}");
    let gz = gzip(&json_body("6b8efff798038103d269b633813fc60c"));
    let (status, _, _) = send(&router, post("application/json", Some("gzip"), gz)).await;
    assert_eq!(status, StatusCode::OK);
    let zs = zstd::encode_all(&json_body("7b8efff798038103d269b633813fc60c")[..], 3).unwrap();
    let (status, _, _) = send(&router, post("application/json", Some("zstd"), zs)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(table.snapshot().num_rows(), 3);
}

#[tokio::test]
async fn partial_success_in_both_encodings() {
    let (table, router, _f) = setup(ReceiverConfig::default());
    let mut req = request(2);
    req.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![9; 10];
    let (status, _, body) = send(
        &router,
        post("application/x-protobuf", None, req.encode_to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let partial = ExportTraceServiceResponse::decode(body)
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("expected 16 bytes, got 10"),
        "{}",
        partial.error_message
    );

    let (status, _, body) = send(&router, post("application/json", None, json_body("0011"))).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "1");
    assert!(
        v["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("trace_id")
    );
    assert_eq!(
        table.snapshot().num_rows(),
        1,
        "only the valid span of the first request"
    );
}

#[tokio::test]
async fn malformed_bodies_get_400_with_rpc_status_and_keep_earlier_data() {
    let (table, router, _f) = setup(ReceiverConfig::default());
    send(
        &router,
        post("application/x-protobuf", None, request(2).encode_to_vec()),
    )
    .await;

    let (status, headers, body) = send(
        &router,
        post("application/x-protobuf", None, vec![0xff, 0xff, 0xff]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
    let rpc = RpcStatus::decode(body).unwrap();
    assert_eq!(rpc.code, code::INVALID_ARGUMENT);
    assert!(
        rpc.message.contains("malformed OTLP protobuf"),
        "{}",
        rpc.message
    );

    let (status, headers, body) = send(
        &router,
        post("application/json", None, b"{\"resourceSpans\": [".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], code::INVALID_ARGUMENT);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("malformed OTLP JSON")
    );

    let (status, _, _) = send(
        &router,
        post(
            "application/json",
            Some("gzip"),
            b"not gzip at all".to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(table.snapshot().num_rows(), 2);
}

#[tokio::test]
async fn wrong_method_media_type_encoding_and_path() {
    let (_, router, _f) = setup(ReceiverConfig::default());
    let (status, headers, body) = send(
        &router,
        Request::get("/v1/traces").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "POST");
    assert!(String::from_utf8_lossy(&body).contains("POST"));

    let (status, _, body) = send(&router, post("text/plain", None, b"hello".to_vec())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(String::from_utf8_lossy(&body).contains("application/x-protobuf"));

    let (status, _, body) = send(
        &router,
        post("application/x-protobuf", Some("br"), vec![1, 2, 3]),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(String::from_utf8_lossy(&body).contains("Content-Encoding"));

    let (status, _, _) = send(&router, post("application/x-protobuf", None, vec![])).await;
    assert_eq!(status, StatusCode::OK, "an empty export is valid");

    let (status, _, _) = send(
        &router,
        Request::post("/v1/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oversized_bodies_get_413_before_and_after_decompression() {
    let config = ReceiverConfig {
        http_max_body_size: bytesize::ByteSize::kib(64),
        ..Default::default()
    };
    let (table, router, _f) = setup(config);
    let big = vec![b' '; 100 * 1024];
    let (status, _, body) = send(&router, post("application/json", None, big.clone())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(String::from_utf8_lossy(&body).contains("limit"));
    // 100 KiB of spaces compresses to well under the limit on the wire.
    let bomb = gzip(&big);
    assert!(bomb.len() < 64 * 1024);
    let (status, _, _) = send(&router, post("application/json", Some("gzip"), bomb)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, _) = send(
        &router,
        post("application/x-protobuf", None, request(1).encode_to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "still serving");
    assert_eq!(table.snapshot().num_rows(), 1);
}

/// Decompressing and decoding a large body does not hold the thread that
/// serves connections: on a runtime of one thread, another task keeps
/// running the whole time a body of many megabytes is decoded (here one
/// that fails to decode only at its last byte, so decoding is all the
/// export does).
#[tokio::test(flavor = "current_thread")]
async fn large_bodies_are_decoded_off_the_async_thread() {
    let (table, router, _f) = setup(ReceiverConfig::default());
    let spans: Vec<String> = (0..40_000u64)
        .map(|i| {
            format!(
                r#"{{"traceId":"{:032x}","spanId":"{:016x}","name":"op","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{{"key":"k","value":{{"stringValue":"{}"}}}}]}}"#,
                i + 1,
                i + 1,
                "v".repeat(100)
            )
        })
        .collect();
    let mut json = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
    .into_bytes();
    // Broken at the very end: the whole body is read before it fails.
    json.pop();
    json.extend_from_slice(b"?");
    let body = gzip(&json);
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    tokio::task::yield_now().await;
    let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
    let (status, _, _) = send(&router, post("application/json", Some("gzip"), body)).await;
    let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
    ticker.abort();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(table.snapshot().num_rows(), 0);
    // Had the decoding run on this thread, the ticker could only have run
    // at the few points the export awaits its body.
    assert!(
        during > 1_000,
        "the async thread ran other tasks {during} times while a {} MB body was decoded",
        json.len() >> 20
    );
}
