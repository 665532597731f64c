//! Hand-written OTLP JSON, with every trap of the encoding, plain and gzip.

use std::io::Write;

use seam_integration_tests::reqwest::blocking_client;
use seam_integration_tests::{Seam, rows};

use crate::common::{assert_span_shape, count};

/// An export as a browser or a shell script would write it: uppercase hex
/// ids, 64-bit integers as strings and as numbers, enums as integers and as
/// names, base64 bytes, arrays and maps, and fields this version does not know.
fn body(trace_id: &str) -> String {
    format!(
        r#"{{
  "resourceSpans": [{{
    "resource": {{"attributes": [
      {{"key": "service.name", "value": {{"stringValue": "storefront"}}}},
      {{"key": "k8s.pod.name", "value": {{"stringValue": "storefront-5c7d-q8v2"}}}}
    ]}},
    "schemaUrl": "https://opentelemetry.io/schemas/1.27.0",
    "scopeSpans": [{{
      "scope": {{"name": "hand-written", "version": "0.1"}},
      "spans": [
        {{
          "traceId": "{trace_id}",
          "spanId": "EEE19B7EC3C1B174",
          "name": "GET /products/{{id}}",
          "kind": 2,
          "startTimeUnixNano": "1760000000000000000",
          "endTimeUnixNano": 1760000000250000000,
          "attributes": [
            {{"key": "http.route", "value": {{"stringValue": "/products/{{id}}"}}}},
            {{"key": "http.response.status_code", "value": {{"intValue": "200"}}}},
            {{"key": "retries", "value": {{"intValue": 2}}}},
            {{"key": "sampled.ratio", "value": {{"doubleValue": 0.25}}}},
            {{"key": "cache.hit", "value": {{"boolValue": true}}}},
            {{"key": "raw", "value": {{"bytesValue": "3q2+7w=="}}}},
            {{"key": "tags", "value": {{"arrayValue": {{"values": [{{"stringValue": "a"}}, {{"intValue": "1"}}]}}}}}}
          ],
          "status": {{"code": 1}},
          "futureField": {{"ignored": [1, 2, 3]}}
        }},
        {{
          "traceId": "{trace_id}",
          "spanId": "eee19b7ec3c1b175",
          "parentSpanId": "eee19b7ec3c1b174",
          "name": "SELECT products",
          "kind": "SPAN_KIND_CLIENT",
          "startTimeUnixNano": "1760000000010000000",
          "endTimeUnixNano": "1760000000020000000",
          "status": {{"code": "STATUS_CODE_ERROR", "message": "timeout"}},
          "events": [{{"timeUnixNano": "1760000000015000000", "name": "exception",
            "attributes": [{{"key": "exception.type", "value": {{"stringValue": "Timeout"}}}}]}}]
        }}
      ]
    }}]
  }}]
}}"#
    )
}

fn post_json(seam: &Seam, body: Vec<u8>, gzip: bool) -> (u16, serde_json::Value) {
    let mut req = blocking_client()
        .post(seam.otlp_http_url())
        .header("content-type", "application/json");
    if gzip {
        req = req.header("content-encoding", "gzip");
    }
    let r = req.body(body).send().expect("POST");
    let status = r.status().as_u16();
    (status, r.json().expect("JSON answer"))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn check(seam: &Seam, trace_id: &str) {
    let lower = trace_id.to_lowercase();
    let answer = seam.sql(&format!(
        "SELECT name, kind, status_code, status_message, attributes['http.route'] AS route, \
                attributes['http.response.status_code'] AS code, attributes['retries'] AS retries, \
                attributes['sampled.ratio'] AS ratio, attributes['cache.hit'] AS hit, attributes['raw'] AS raw, \
                attributes['tags'] AS tags, start_time, duration_ns \
         FROM spans WHERE trace_id = '{lower}' ORDER BY start_time"
    ));
    let rows = rows(&answer);
    assert_eq!(rows.len(), 2, "{answer}");
    let server = &rows[0];
    assert_eq!(server["kind"], "server");
    assert_eq!(server["status_code"], "OK");
    assert_eq!(server["route"], "/products/{id}");
    assert_eq!(server["code"], "200");
    assert_eq!(server["retries"], "2");
    assert_eq!(server["ratio"], "0.25");
    assert_eq!(server["hit"], "true");
    assert_eq!(server["raw"], "3q2+7w==");
    assert_eq!(server["tags"], r#"["a",1]"#);
    assert_eq!(server["duration_ns"], 250_000_000);
    assert!(
        server["start_time"]
            .as_str()
            .unwrap()
            .starts_with("2025-10-09T08:53:20"),
        "{}",
        server["start_time"]
    );
    let client = &rows[1];
    assert_eq!(client["kind"], "client");
    assert_eq!(client["status_code"], "ERROR");
    assert_eq!(client["status_message"], "timeout");

    let (status, trace) = seam.get(&format!("/api/v1/traces/{lower}"));
    assert_eq!(status, 200);
    let spans = trace["spans"].as_array().unwrap();
    spans.iter().for_each(assert_span_shape);
    let client = spans
        .iter()
        .find(|s| s["name"] == "SELECT products")
        .unwrap();
    assert_eq!(client["parent_span_id"], "eee19b7ec3c1b174");
    assert_eq!(client["events"][0]["name"], "exception");
    assert_eq!(client["events"][0]["time_unix_nano"], "1760000000015000000");
    assert_eq!(client["resource"]["k8s.pod.name"], "storefront-5c7d-q8v2");
    assert_eq!(client["platform"], "kubernetes");
}

#[test]
fn hand_written_json_plain_and_gzip() {
    let seam = Seam::start();
    let plain_id = "5B8EFFF798038103D269B633813FC60C";
    let (status, answer) = post_json(&seam, body(plain_id).into_bytes(), false);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({}),
        "full success leaves partialSuccess unset"
    );
    check(&seam, plain_id);

    let gzip_id = "6B8EFFF798038103D269B633813FC60C";
    let (status, answer) = post_json(&seam, gzip(body(gzip_id).as_bytes()), true);
    assert_eq!(status, 200, "{answer}");
    check(&seam, gzip_id);
}

#[test]
fn invalid_spans_are_rejected_one_by_one() {
    let seam = Seam::start();
    // The second span's id is 7 bytes; the first is fine and must be kept.
    let text =
        body("7B8EFFF798038103D269B633813FC60C").replace("eee19b7ec3c1b175", "eee19b7ec3c1b1");
    let (status, answer) = post_json(&seam, text.into_bytes(), false);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "1");
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("span_id") && message.contains("got 7"),
        "{message}"
    );
    assert_eq!(
        count(&seam, "WHERE trace_id = '7b8efff798038103d269b633813fc60c'"),
        1
    );
}
