//! Every malformed, oversized or unsupported export the receivers can get,
//! against the real server: each gets its status and a clear message, and
//! nothing accepted before is lost.

use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use seam_integration_tests::Seam;
use seam_integration_tests::reqwest::blocking_client;

use crate::common::{RpcStatus, count, post_protobuf, request};

fn small_limits() -> (Seam, tempfile::NamedTempFile) {
    let mut config = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        config,
        "receiver:\n  http_max_body_size: 65536\n  grpc_max_message_size: 65536"
    )
    .unwrap();
    let seam = Seam::start_with(&["--config", config.path().to_str().unwrap()], &[]);
    (seam, config)
}

fn post(
    seam: &Seam,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>, String) {
    let mut req = blocking_client()
        .post(seam.otlp_http_url())
        .header("content-type", content_type);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let r = req.body(body).send().expect("POST");
    let ct = r
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status().as_u16(), r.bytes().to_vec(), ct)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[test]
fn http_errors_have_their_status_and_keep_accepted_data() {
    let (seam, _config) = small_limits();
    let (status, _) = post_protobuf(&seam, &request(1, 20, "cart"));
    assert_eq!(status, 200);

    // Malformed protobuf: 400 with a protobuf google.rpc.Status.
    let (status, body, ct) = post(
        &seam,
        "application/x-protobuf",
        None,
        vec![0x0a, 0xff, 0xff, 0xff, 0x0f],
    );
    assert_eq!(status, 400);
    assert_eq!(ct, "application/x-protobuf");
    let rpc = RpcStatus::decode(&body[..]).expect("google.rpc.Status body");
    assert_eq!(rpc.code, 3, "INVALID_ARGUMENT");
    assert!(
        rpc.message.contains("malformed OTLP protobuf"),
        "{}",
        rpc.message
    );

    // Malformed JSON: 400 with a JSON google.rpc.Status.
    let (status, body, ct) = post(
        &seam,
        "application/json",
        None,
        br#"{"resourceSpans": [{"scopeSpans": 7}]}"#.to_vec(),
    );
    assert_eq!(status, 400);
    assert_eq!(ct, "application/json");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 3);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("malformed OTLP JSON"),
        "{v}"
    );

    // Invalid hex in an id makes the JSON itself invalid.
    let (status, _, _) = post(
        &seam,
        "application/json",
        None,
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"not-hex"}]}]}]}"#.to_vec(),
    );
    assert_eq!(status, 400);

    // A body that claims gzip but is not.
    let (status, body, _) = post(
        &seam,
        "application/x-protobuf",
        Some("gzip"),
        b"plain bytes".to_vec(),
    );
    assert_eq!(status, 400);
    assert!(
        RpcStatus::decode(&body[..])
            .unwrap()
            .message
            .contains("decompress")
    );

    // Unsupported media type and content encoding: 415.
    let (status, body, _) = post(&seam, "text/plain", None, b"span please".to_vec());
    assert_eq!(status, 415);
    assert!(String::from_utf8_lossy(&body).contains("application/x-protobuf"));
    let (status, body, _) = post(
        &seam,
        "application/x-protobuf",
        Some("br"),
        request(2, 1, "cart").encode_to_vec(),
    );
    assert_eq!(status, 415);
    assert!(String::from_utf8_lossy(&body).contains("Content-Encoding"));

    // Too large on the wire, and too large after decompression: 413.
    let (status, body, _) = post(&seam, "application/json", None, vec![b' '; 70_000]);
    assert_eq!(status, 413);
    assert!(
        String::from_utf8_lossy(&body).contains("65536"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let bomb = gzip(&vec![b' '; 10_000_000]);
    assert!(bomb.len() < 65_536);
    let (status, _, _) = post(&seam, "application/json", Some("gzip"), bomb);
    assert_eq!(status, 413);

    // Wrong method: 405 with Allow.
    let r = blocking_client().get(seam.otlp_http_url()).send().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers.get("allow").unwrap(), "POST");
    let r = blocking_client()
        .request(
            seam_integration_tests::reqwest::Method::PUT,
            seam.otlp_http_url(),
        )
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);

    // Still serving, nothing lost, nothing half-stored.
    let (status, _) = post_protobuf(&seam, &request(3, 5, "cart"));
    assert_eq!(status, 200);
    assert_eq!(count(&seam, ""), 25);
}

#[test]
fn grpc_errors_keep_accepted_data() {
    let (seam, _config) = small_limits();
    let url = seam.grpc_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = TraceServiceClient::connect(url.clone()).await.unwrap();
        let ok = client
            .export(request(1, 10, "cart"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ok.partial_success, None);

        // Over the 64 KiB message limit.
        let mut big = request(2, 400, "cart");
        for span in &mut big.resource_spans[0].scope_spans[0].spans {
            span.name = "x".repeat(300);
        }
        let err = client.export(big).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
        assert!(
            err.message().contains("the limit is: 65536 bytes"),
            "{err:?}"
        );

        // gzip-compressed, with one invalid span among valid ones.
        let mut gz = TraceServiceClient::connect(url)
            .await
            .unwrap()
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
        let mut mixed = request(3, 4, "cart");
        mixed.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![0; 16];
        let partial = gz
            .export(mixed)
            .await
            .unwrap()
            .into_inner()
            .partial_success
            .expect("partial success");
        assert_eq!(partial.rejected_spans, 1);
        assert!(
            partial.error_message.contains("all zeroes"),
            "{}",
            partial.error_message
        );
    });
    assert_eq!(count(&seam, ""), 13);
}

/// The largest request the limits let through, built to grow once
/// normalized: a resource of 256 attributes of 32 KiB, carried by each of
/// 20,000 spans (160 GiB of rows if nothing stopped it), and span names of
/// 2 MiB. The spans past `limits.max_request_memory` are rejected, the
/// names are cut, and the server keeps serving within memory.
#[test]
fn the_worst_request_is_cut_down_and_the_server_keeps_serving() {
    let seam = Seam::start();
    let value = "v".repeat(32 * 1024);
    let attributes: Vec<String> = (0..256)
        .map(|i| format!(r#"{{"key":"attr.{i:03}","value":{{"stringValue":"{value}"}}}}"#))
        .collect();
    let long_name = "n".repeat(2 * 1024 * 1024);
    let spans: Vec<String> = (0..20_000u64)
        .map(|i| {
            let name = if i < 2 { long_name.as_str() } else { "op" };
            format!(
                r#"{{"traceId":"{:032x}","spanId":"{:016x}","name":"{name}","kind":2,"startTimeUnixNano":"1760000000000000000","endTimeUnixNano":"1760000000000001000"}}"#,
                i / 100 + 1,
                i + 1
            )
        })
        .collect();
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"heavy"}}}},{}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        attributes.join(","),
        spans.join(",")
    );
    assert!(body.len() < 20 * 1024 * 1024, "{} bytes", body.len());
    let (status, answer, _) = post(&seam, "application/json", None, body.into_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    let rejected: u64 = answer["partialSuccess"]["rejectedSpans"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(message.contains("limits.max_request_memory"), "{message}");
    assert!(message.len() < 1024, "the message quotes no 2 MiB name");
    let accepted = 20_000 - rejected;
    // 256 MiB of rows of a bit over 8 MiB each.
    assert!((25..=32).contains(&accepted), "{accepted} accepted");
    assert_eq!(count(&seam, "") as u64, accepted);
    let longest = seam.sql("SELECT max(length(name)) FROM spans");
    assert_eq!(longest["rows"][0][0], 32 * 1024, "names cut at the limit");
    assert!(seam.metric("seam_receiver_strings_truncated_total") >= 2.0);

    // The server keeps serving, within memory.
    let (status, _) = post_protobuf(&seam, &request(3, 10, "after"));
    assert_eq!(status, 200);
    assert_eq!(count(&seam, "WHERE service_name = 'after'"), 10);
    let (status, _) = seam.get("/readyz");
    assert_eq!(status, 200);
    let peak = seam.peak_rss();
    assert!(
        peak < 2 * 1024 * 1024 * 1024,
        "{peak} bytes resident at the peak"
    );
}
