//! Builders and assertions the test modules share.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use seam_integration_tests::Seam;
use seam_integration_tests::reqwest::blocking_client;

pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// `n` spans of one trace from `service`, ids derived from `seed` so that
/// tests can send distinct traces.
pub fn request(seed: u8, n: usize, service: &str) -> ExportTraceServiceRequest {
    let start = 1_760_000_000_000_000_000u64;
    let spans = (0..n)
        .map(|i| Span {
            trace_id: trace_id(seed).to_vec(),
            span_id: ((u64::from(seed) << 32) | (i as u64 + 1))
                .to_be_bytes()
                .to_vec(),
            name: format!("op-{}", i % 7),
            kind: 2,
            start_time_unix_nano: start + i as u64 * 1_000,
            end_time_unix_nano: start + i as u64 * 1_000 + 500_000,
            attributes: vec![kv("http.route", &format!("/items/{}", i % 3))],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn trace_id(seed: u8) -> [u8; 16] {
    let mut id = [0x5e; 16];
    id[15] = seed;
    id
}

pub fn trace_hex(seed: u8) -> String {
    trace_id(seed).iter().map(|b| format!("{b:02x}")).collect()
}

/// POSTs a protobuf export and returns status and body.
pub fn post_protobuf(seam: &Seam, request: &ExportTraceServiceRequest) -> (u16, Vec<u8>) {
    let r = blocking_client()
        .post(seam.otlp_http_url())
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .expect("POST /v1/traces");
    (r.status().as_u16(), r.bytes().to_vec())
}

pub fn count(seam: &Seam, filter: &str) -> i64 {
    let answer = seam.sql(&format!("SELECT count(*) AS n FROM spans {filter}"));
    answer["rows"][0][0]
        .as_i64()
        .unwrap_or_else(|| panic!("count in {answer}"))
}

/// Asserts that `span` has every field of the span JSON in docs/contract.md §6, with
/// the documented types.
pub fn assert_span_shape(span: &serde_json::Value) {
    let obj = span
        .as_object()
        .unwrap_or_else(|| panic!("span is not an object: {span}"));
    for key in [
        "trace_id",
        "span_id",
        "parent_span_id",
        "name",
        "kind",
        "service_name",
        "platform",
        "instance",
        "start_unix_nano",
        "end_unix_nano",
        "duration_ns",
        "status",
        "attributes",
        "resource",
        "events",
        "links",
        "cold_start",
        "flow_id",
    ] {
        assert!(obj.contains_key(key), "span JSON lacks {key}: {span}");
    }
    let hex = |v: &serde_json::Value, len: usize| {
        let s = v.as_str().unwrap_or_else(|| panic!("id not a string: {v}"));
        assert_eq!(s.len(), len, "{s}");
        assert!(
            s.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{s}"
        );
    };
    hex(&span["trace_id"], 32);
    hex(&span["span_id"], 16);
    if !span["parent_span_id"].is_null() {
        hex(&span["parent_span_id"], 16);
    }
    assert!(
        ["server", "client", "producer", "consumer", "internal"]
            .contains(&span["kind"].as_str().unwrap()),
        "{span}"
    );
    let start: u64 = span["start_unix_nano"]
        .as_str()
        .expect("start as decimal string")
        .parse()
        .unwrap();
    let end: u64 = span["end_unix_nano"]
        .as_str()
        .expect("end as decimal string")
        .parse()
        .unwrap();
    assert_eq!(span["duration_ns"].as_u64().unwrap(), end - start);
    assert!(
        ["UNSET", "OK", "ERROR"].contains(&span["status"]["code"].as_str().unwrap()),
        "{span}"
    );
    assert!(span["status"]["message"].is_string());
    assert!(span["attributes"].is_object() && span["resource"].is_object());
    assert!(span["events"].is_array() && span["links"].is_array());
}

/// The span in a trace answer with this name.
pub fn span_named<'a>(trace: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    trace["spans"]
        .as_array()
        .expect("spans array")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name} in {trace}"))
}

/// `google.rpc.Status` with its details, as an OTLP client decodes an
/// error body or a gRPC status's details.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// A config file holding `yaml`, kept as long as the returned directory.
pub fn config_file(yaml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seam.yaml");
    std::fs::write(&path, yaml).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}
