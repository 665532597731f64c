//! The in-place reader against prost: on every request an encoder writes,
//! the same view; on anything else, either the same view or a hand-off to
//! prost, never a different answer.
//!
//! Views are compared by their `Debug` text, so that a NaN double equals
//! itself.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue as PbKeyValue, KeyValueList,
    any_value::Value as Pb,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event as PbEvent, Link as PbLink};
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans as PbResourceSpans, ScopeSpans as PbScopeSpans, Span as PbSpan,
    Status as PbStatus,
};
use proptest::prelude::*;

use super::*;

/// What prost makes of `bytes`, as a view, or its error.
fn prost_answer(bytes: &[u8]) -> Result<String, String> {
    ExportTraceServiceRequest::decode(bytes)
        .map(|decoded| format!("{:?}", Export::from(&decoded)))
        .map_err(|e| e.to_string())
}

/// What the pipeline sees: the in-place view, or prost's after a hand-off.
fn pipeline_answer(bytes: &[u8]) -> Result<String, String> {
    Export::decode_then(bytes, |e| format!("{e:?}")).map_err(|e| e.to_string())
}

fn in_place(bytes: &[u8]) -> Result<String, Unread> {
    read(bytes).map(|e| format!("{e:?}"))
}

fn kv(key: &str, value: Pb) -> PbKeyValue {
    PbKeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z.]{1,12}",
        any::<String>().prop_map(|s| s.chars().take(6).collect()),
    ]
}

fn arb_scalar() -> impl Strategy<Value = Pb> {
    prop_oneof![
        arb_text().prop_map(Pb::StringValue),
        any::<bool>().prop_map(Pb::BoolValue),
        any::<i64>().prop_map(Pb::IntValue),
        any::<f64>().prop_map(Pb::DoubleValue),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(Pb::BytesValue),
        any::<i32>().prop_map(Pb::StringValueStrindex),
    ]
}

fn arb_value() -> impl Strategy<Value = Option<AnyValue>> {
    let leaf = arb_scalar().prop_map(|v| AnyValue { value: Some(v) });
    let nested = leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|values| AnyValue {
                value: Some(Pb::ArrayValue(ArrayValue { values })),
            }),
            prop::collection::vec(("[a-z]{1,4}", inner), 0..3).prop_map(|kvs| AnyValue {
                value: Some(Pb::KvlistValue(KeyValueList {
                    values: kvs
                        .into_iter()
                        .map(|(key, v)| PbKeyValue {
                            key,
                            value: Some(v),
                            ..Default::default()
                        })
                        .collect(),
                })),
            }),
        ]
    });
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(AnyValue { value: None })),
        8 => nested.prop_map(Some),
    ]
}

fn arb_attributes() -> impl Strategy<Value = Vec<PbKeyValue>> {
    prop::collection::vec(
        (
            arb_text(),
            arb_value(),
            prop_oneof![3 => Just(0), 1 => any::<i32>()],
        ),
        0..5,
    )
    .prop_map(|kvs| {
        kvs.into_iter()
            .map(|(key, value, key_strindex)| PbKeyValue {
                key,
                value,
                key_strindex,
            })
            .collect()
    })
}

fn arb_id() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 16),
        prop::collection::vec(any::<u8>(), 8),
        prop::collection::vec(any::<u8>(), 0..20),
    ]
}

prop_compose! {
    fn arb_span()(
        (trace_id, span_id, parent_span_id) in (arb_id(), arb_id(), arb_id()),
        (trace_state, name) in (arb_text(), arb_text()),
        (kind, flags) in (any::<i32>(), any::<u32>()),
        (start, end) in (any::<u64>(), any::<u64>()),
        attributes in arb_attributes(),
        dropped in any::<u32>(),
        events in prop::collection::vec((any::<u64>(), arb_text(), arb_attributes()), 0..3),
        links in prop::collection::vec(
            (arb_id(), arb_id(), arb_text(), arb_attributes(), any::<u32>()), 0..3),
        status in prop::option::of((arb_text(), any::<i32>())),
    ) -> PbSpan {
        PbSpan {
            trace_id, span_id, trace_state, parent_span_id, flags, name, kind,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            dropped_attributes_count: dropped,
            events: events.into_iter().map(|(time_unix_nano, name, attributes)| PbEvent {
                time_unix_nano, name, attributes, dropped_attributes_count: dropped,
            }).collect(),
            dropped_events_count: dropped,
            links: links.into_iter().map(|(trace_id, span_id, trace_state, attributes, flags)| {
                PbLink { trace_id, span_id, trace_state, attributes, dropped_attributes_count: 0, flags }
            }).collect(),
            dropped_links_count: dropped,
            status: status.map(|(message, code)| PbStatus { message, code }),
        }
    }
}

type ArbScope = (
    Option<(String, String, Vec<PbKeyValue>)>,
    Vec<PbSpan>,
    String,
);

fn arb_scope() -> impl Strategy<Value = ArbScope> {
    (
        prop::option::of((arb_text(), arb_text(), arb_attributes())),
        prop::collection::vec(arb_span(), 0..4),
        arb_text(),
    )
}

prop_compose! {
    fn arb_request()(
        resources in prop::collection::vec((
            prop::option::of(arb_attributes()),
            prop::collection::vec(arb_scope(), 0..3),
            arb_text(),
        ), 0..3),
    ) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: resources.into_iter().map(|(resource, scopes, schema_url)| PbResourceSpans {
                resource: resource.map(|attributes| Resource {
                    attributes, dropped_attributes_count: 3, entity_refs: Vec::new(),
                }),
                scope_spans: scopes.into_iter().map(|(scope, spans, schema_url)| PbScopeSpans {
                    scope: scope.map(|(name, version, attributes)| InstrumentationScope {
                        name, version, attributes, dropped_attributes_count: 1,
                    }),
                    spans,
                    schema_url,
                }).collect(),
                schema_url,
            }).collect(),
        }
    }
}

proptest! {
    /// Every request prost encodes is read in place, to prost's view.
    #[test]
    fn encoded_requests_read_as_prost_reads_them(request in arb_request()) {
        let bytes = request.encode_to_vec();
        let view = in_place(&bytes);
        prop_assert!(view.is_ok(), "an encoder's output was left to prost");
        prop_assert_eq!(view.unwrap(), format!("{:?}", Export::from(&request)));
    }

    /// Damaged bytes (cut, overwritten, spliced): the reader either agrees
    /// with prost or leaves the bytes to it; what the pipeline sees is
    /// always prost's answer.
    #[test]
    fn damaged_bytes_never_read_differently(
        request in arb_request(),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = request.encode_to_vec();
        for (at, byte, how) in damage {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match how {
                0 => bytes.truncate(i),
                1 => bytes[i] = byte,
                _ => bytes.insert(i, byte),
            }
        }
        let prost = prost_answer(&bytes);
        if let Ok(view) = in_place(&bytes) {
            prop_assert_eq!(Ok(view), prost.clone());
        }
        prop_assert_eq!(pipeline_answer(&bytes), prost);
    }
}

fn one_span(span: PbSpan) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![PbResourceSpans {
            scope_spans: vec![PbScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A request around one span message given as raw bytes.
fn request_around(span: &[u8]) -> Vec<u8> {
    let mut scope = Vec::new();
    prost::encoding::bytes::encode(2, &span.to_vec(), &mut scope);
    let mut resource_spans = Vec::new();
    prost::encoding::bytes::encode(2, &scope, &mut resource_spans);
    let mut request = Vec::new();
    prost::encoding::bytes::encode(1, &resource_spans, &mut request);
    request
}

#[test]
fn a_status_sent_twice_is_left_to_prost_which_merges_it() {
    let mut bytes = PbSpan {
        status: Some(PbStatus {
            message: "first".into(),
            code: 2,
        }),
        ..Default::default()
    }
    .encode_to_vec();
    bytes.extend(
        PbSpan {
            status: Some(PbStatus {
                message: String::new(),
                code: 1,
            }),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let request = request_around(&bytes);
    assert_eq!(read(&request), Err(Unread));
    let status = Export::decode_then(&request, |view| {
        let status = view.resource_spans[0].scope_spans[0].spans[0]
            .status
            .clone()
            .unwrap();
        (status.message.to_owned(), status.code)
    })
    .unwrap();
    assert_eq!(status, ("first".to_owned(), 1), "merged field by field");
}

#[test]
fn a_scalar_sent_twice_keeps_the_last() {
    let mut bytes = PbSpan {
        name: "first".into(),
        ..Default::default()
    }
    .encode_to_vec();
    bytes.extend(
        PbSpan {
            name: "second".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let request = request_around(&bytes);
    let view = read(&request).unwrap();
    assert_eq!(
        view.resource_spans[0].scope_spans[0].spans[0].name,
        "second"
    );
    assert_eq!(Ok(format!("{view:?}")), prost_answer(&request));
}

#[test]
fn unknown_fields_are_skipped_in_every_message() {
    let span = PbSpan {
        name: "op".into(),
        attributes: vec![kv("k", Pb::StringValue("v".into()))],
        ..Default::default()
    };
    // Field 99 as each wire type: varint, fixed64, bytes, fixed32.
    let unknown: &[u8] = &[
        0x98, 0x06, 0x01, 0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 0x9a, 0x06, 0x02, b'h', b'i', 0x9d,
        0x06, 1, 2, 3, 4,
    ];
    let mut bytes = span.encode_to_vec();
    bytes.extend_from_slice(unknown);
    let mut request = request_around(&bytes);
    request.extend_from_slice(unknown);
    let view = read(&request).unwrap();
    assert_eq!(view.resource_spans[0].scope_spans[0].spans[0].name, "op");
    assert_eq!(Ok(format!("{view:?}")), prost_answer(&request));
}

#[test]
fn what_prost_refuses_is_refused_with_its_error() {
    let mut bytes = PbSpan {
        name: "ok".into(),
        ..Default::default()
    }
    .encode_to_vec();
    // The name's bytes replaced by invalid UTF-8 of the same length.
    let at = bytes.windows(2).position(|w| w == b"ok").unwrap();
    bytes[at..at + 2].copy_from_slice(&[0xff, 0xfe]);
    let request = request_around(&bytes);
    assert_eq!(read(&request), Err(Unread));
    let err = Export::decode_then(&request, |_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("UTF-8"), "{err}");
    // A known field with the wrong wire type: the name as a varint.
    let request = request_around(&[0x28, 0x01]);
    assert_eq!(read(&request), Err(Unread));
    assert!(Export::decode_then(&request, |_| ()).is_err());
    // Cut in the middle of a span.
    let full = one_span(PbSpan {
        name: "op".into(),
        ..Default::default()
    })
    .encode_to_vec();
    assert_eq!(read(&full[..full.len() - 1]), Err(Unread));
    assert!(Export::decode_then(&full[..full.len() - 1], |_| ()).is_err());
}

#[test]
fn rare_messages_are_left_to_prost_and_read_the_same() {
    // Entity references on the resource.
    let request = ExportTraceServiceRequest {
        resource_spans: vec![PbResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", Pb::StringValue("api".into()))],
                dropped_attributes_count: 0,
                entity_refs: vec![EntityRef {
                    r#type: "service".into(),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }],
    };
    let bytes = request.encode_to_vec();
    assert_eq!(read(&bytes), Err(Unread));
    assert_eq!(
        pipeline_answer(&bytes),
        Ok(format!("{:?}", Export::from(&request)))
    );
}

#[test]
fn nested_values_deeper_than_prost_allows_are_left_to_it() {
    let mut value = AnyValue {
        value: Some(Pb::IntValue(1)),
    };
    for _ in 0..60 {
        value = AnyValue {
            value: Some(Pb::ArrayValue(ArrayValue {
                values: vec![value],
            })),
        };
    }
    let span = PbSpan {
        attributes: vec![PbKeyValue {
            key: "deep".into(),
            value: Some(value),
            ..Default::default()
        }],
        ..Default::default()
    };
    let bytes = one_span(span).encode_to_vec();
    assert_eq!(read(&bytes), Err(Unread));
    // 60 arrays are 121 messages: prost refuses the request.
    assert!(Export::decode_then(&bytes, |_| ()).is_err());
}

#[test]
fn attributes_of_the_short_form_are_checked_as_utf8_key_and_value_alike() {
    let with = |key: &str, value: &str| {
        one_span(PbSpan {
            name: "op".into(),
            attributes: vec![kv(key, Pb::StringValue(value.into()))],
            ..Default::default()
        })
        .encode_to_vec()
    };
    // Characters of several bytes on both sides read as prost reads them.
    let request = with("clé", "naïve ☃");
    let view = read(&request).unwrap();
    let attribute = &view.resource_spans[0].scope_spans[0].spans[0].attributes[0];
    assert_eq!(attribute.key, "clé");
    assert!(matches!(attribute.value, Value::String("naïve ☃")));
    assert_eq!(Ok(format!("{view:?}")), prost_answer(&request));
    // A key cut inside a character, a value cut inside one, and a value
    // that starts with a lone continuation byte: each refused, whichever
    // side of the four bytes between them the damage is on.
    for (key, value) in [("ké", "ab"), ("ab", "ké"), ("ab", "é")] {
        let mut request = with(key, value);
        let at = match (key, value) {
            ("ké", _) => {
                request
                    .windows(2)
                    .position(|w| w == "é".as_bytes())
                    .unwrap()
                    + 1
            }
            (_, "ké") => {
                request
                    .windows(2)
                    .rposition(|w| w == "é".as_bytes())
                    .unwrap()
                    + 1
            }
            _ => request
                .windows(2)
                .rposition(|w| w == "é".as_bytes())
                .unwrap(),
        };
        // Replace one byte of the character with an ASCII letter: the
        // lengths stay, the text is no longer UTF-8.
        request[at] = b'x';
        assert_eq!(read(&request), Err(Unread), "{key:?} {value:?}");
        assert!(prost_answer(&request).is_err(), "{key:?} {value:?}");
    }
}
