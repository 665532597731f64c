use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Link;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use std::collections::HashSet;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use proptest::prelude::*;

use super::*;
use crate::view::{self, key_values};

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource(pairs: &[(&str, &str)]) -> Resource {
    Resource {
        attributes: pairs.iter().map(|(k, v)| kv(k, v)).collect(),
        ..Default::default()
    }
}

fn span(attrs: &[(&str, &str)]) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "op".into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_500_000_000,
        attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
        ..Default::default()
    }
}

fn run<'a>(span: &'a Span, ctx: &'a ResourceContext<'a>) -> Result<SpanRow<'a>, Rejection> {
    let mut dropped = 0;
    normalize(
        &view::Span::from(span),
        ctx,
        &ScopeContext::default(),
        Rules::default(),
        &mut dropped,
    )
}

#[test]
fn kubernetes_service_is_recognised() {
    let r = resource(&[
        ("service.name", "checkout"),
        ("k8s.pod.name", "checkout-7d9f-abc"),
        ("k8s.namespace.name", "shop"),
    ]);
    let ctx = ResourceContext::new(&key_values(&r.attributes));
    assert_eq!(ctx.platform, Platform::Kubernetes);
    assert_eq!(ctx.service_name, "checkout");
    assert_eq!(ctx.instance.as_deref(), Some("checkout-7d9f-abc"));
}

#[test]
fn lambda_function_is_recognised_and_named() {
    let r = resource(&[
        ("service.name", "unknown_service:python"),
        ("cloud.platform", "aws_lambda"),
        ("faas.name", "invoice"),
        ("faas.instance", "2021/06/28/[$LATEST]2f39"),
    ]);
    let ctx = ResourceContext::new(&key_values(&r.attributes));
    assert_eq!(ctx.platform, Platform::Faas);
    assert_eq!(
        ctx.service_name, "invoice",
        "a real function name beats the SDK's placeholder"
    );
    assert_eq!(ctx.instance.as_deref(), Some("2021/06/28/[$LATEST]2f39"));
}

#[test]
fn explicit_cloud_platform_beats_attribute_prefixes() {
    let r = resource(&[("cloud.platform", "gcp_cloud_run"), ("k8s.pod.name", "x")]);
    assert_eq!(
        ResourceContext::new(&key_values(&r.attributes)).platform,
        Platform::Faas
    );
    let r = resource(&[("cloud.platform", "aws_eks"), ("faas.name", "x")]);
    assert_eq!(
        ResourceContext::new(&key_values(&r.attributes)).platform,
        Platform::Kubernetes
    );
}

#[test]
fn fallbacks_for_platform_service_and_instance() {
    let r = resource(&[("container.id", "abc"), ("host.name", "node-1")]);
    let ctx = ResourceContext::new(&key_values(&r.attributes));
    assert_eq!(ctx.platform, Platform::Container);
    assert_eq!(ctx.service_name, "unknown_service");
    assert_eq!(ctx.instance.as_deref(), Some("node-1"));
    assert_eq!(
        ResourceContext::new(&key_values(&resource(&[("host.name", "vm")]).attributes)).platform,
        Platform::Host
    );
    assert_eq!(ResourceContext::new(&[]).platform, Platform::Unknown);
}

#[test]
fn both_messaging_generations_give_the_same_row() {
    let r = resource(&[("service.name", "billing")]);
    let ctx = ResourceContext::new(&key_values(&r.attributes));
    let current = span(&[
        ("messaging.system", "aws_sqs"),
        ("messaging.operation.type", "process"),
        ("messaging.destination.name", "orders"),
        ("messaging.message.id", "m-1"),
    ]);
    let legacy = span(&[
        ("messaging.system", "AWS.SQS"),
        ("messaging.operation", "deliver"),
        ("messaging.destination", "orders"),
        ("messaging.message_id", "m-1"),
    ]);
    let a = run(&current, &ctx).unwrap();
    let b = run(&legacy, &ctx).unwrap();
    for row in [&a, &b] {
        assert_eq!(row.messaging_system.as_deref(), Some("aws_sqs"));
        assert_eq!(row.messaging_operation.as_deref(), Some("process"));
        assert_eq!(row.messaging_destination.as_deref(), Some("orders"));
        assert_eq!(row.messaging_message_id.as_deref(), Some("m-1"));
    }
}

#[test]
fn faas_fields_and_cold_start_flag() {
    let r = resource(&[("cloud.platform", "aws_lambda"), ("faas.name", "invoice")]);
    let ctx = ResourceContext::new(&key_values(&r.attributes));
    let mut s = span(&[("faas.trigger", "pubsub"), ("faas.execution", "req-1")]);
    s.attributes.push(KeyValue {
        key: "faas.coldstart".into(),
        value: Some(AnyValue {
            value: Some(Value::BoolValue(true)),
        }),
        ..Default::default()
    });
    let row = run(&s, &ctx).unwrap();
    assert_eq!(row.faas_trigger.as_deref(), Some("pubsub"));
    assert_eq!(row.faas_invocation_id.as_deref(), Some("req-1"));
    assert_eq!(row.cold_start, Some(true));
    assert_eq!(row.cold_start_type, Some(ColdStartType::OnDemand));
    assert_eq!(row.cold_start_source, Some(ColdStartSource::Attribute));
    let plain = span(&[]);
    let warm = run(&plain, &ctx).unwrap();
    assert_eq!(warm.cold_start, None, "unknown is not the same as warm");
    assert_eq!(warm.cold_start_source, None);

    // The platform's own word on how the instance started, from the
    // resource or the span, in AWS's spelling or ours.
    for (resource_value, span_value, want) in [
        (
            Some("provisioned-concurrency"),
            None,
            ColdStartType::Provisioned,
        ),
        (None, Some("snap-start"), ColdStartType::Snapstart),
        (Some("on-demand"), None, ColdStartType::OnDemand),
        (
            Some("snapstart"),
            Some("provisioned"),
            ColdStartType::Provisioned,
        ),
    ] {
        let mut pairs = vec![("cloud.platform", "aws_lambda")];
        pairs.extend(resource_value.map(|v| ("aws.lambda.initialization_type", v)));
        let r = resource(&pairs);
        let ctx = ResourceContext::new(&key_values(&r.attributes));
        let mut s = span(&[]);
        s.attributes
            .extend(span_value.map(|v| kv("faas.initialization_type", v)));
        s.attributes.push(coldstart_true());
        let row = run(&s, &ctx).unwrap();
        assert_eq!(
            row.cold_start_type,
            Some(want),
            "{resource_value:?} {span_value:?}"
        );
    }
}

fn coldstart_true() -> KeyValue {
    KeyValue {
        key: "faas.coldstart".into(),
        value: Some(AnyValue {
            value: Some(Value::BoolValue(true)),
        }),
        ..Default::default()
    }
}

#[test]
fn status_and_parent_are_carried() {
    let ctx = ResourceContext::new(&[]);
    let mut s = span(&[]);
    s.parent_span_id = vec![3; 8];
    s.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    let row = run(&s, &ctx).unwrap();
    assert_eq!(row.parent_span_id, Some(SpanId([3; 8])));
    assert_eq!(row.status_code, StatusCode::Error);
    assert_eq!(row.status_message, "boom");
    s.parent_span_id = vec![0; 8];
    assert_eq!(
        run(&s, &ctx).unwrap().parent_span_id,
        None,
        "zero parent means root"
    );
}

#[test]
fn invalid_ids_and_times_are_rejected_with_reasons() {
    let ctx = ResourceContext::new(&[]);
    let mut s = span(&[]);
    s.trace_id = vec![1; 15];
    assert_eq!(
        run(&s, &ctx).unwrap_err(),
        Rejection::TraceId(IdError::WrongLength {
            expected: 16,
            got: 15
        })
    );
    s.trace_id = vec![0; 16];
    assert_eq!(
        run(&s, &ctx).unwrap_err(),
        Rejection::TraceId(IdError::Zero)
    );
    s.trace_id = vec![1; 16];
    s.span_id = vec![];
    assert!(matches!(run(&s, &ctx).unwrap_err(), Rejection::SpanId(_)));
    s.span_id = vec![2; 8];
    s.parent_span_id = vec![1; 4];
    assert!(matches!(
        run(&s, &ctx).unwrap_err(),
        Rejection::ParentSpanId(_)
    ));
    s.parent_span_id = vec![];
    s.end_time_unix_nano = s.start_time_unix_nano - 5_000_000_000;
    assert!(matches!(
        run(&s, &ctx).unwrap_err(),
        Rejection::EndBeforeStart { .. }
    ));
    s.end_time_unix_nano = s.start_time_unix_nano - 1_000;
    let row = run(&s, &ctx).unwrap();
    assert_eq!(
        row.duration_ns(),
        0,
        "within tolerance: kept with duration 0"
    );
}

#[test]
fn invalid_links_are_dropped_and_counted() {
    let ctx = ResourceContext::new(&[]);
    let mut s = span(&[]);
    s.links = vec![
        Link {
            trace_id: vec![7; 16],
            span_id: vec![8; 8],
            ..Default::default()
        },
        Link {
            trace_id: vec![7; 3],
            span_id: vec![8; 8],
            ..Default::default()
        },
    ];
    let mut dropped = 0;
    let row = normalize(
        &view::Span::from(&s),
        &ctx,
        &ScopeContext::default(),
        Rules::default(),
        &mut dropped,
    )
    .unwrap();
    assert_eq!(row.links.len(), 1);
    assert_eq!(dropped, 1);
}

fn any_id(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), max..=max),
        1 => prop::collection::vec(any::<u8>(), 0..=max + 4),
        1 => Just(vec![0u8; max]),
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("k8s.pod.name".to_owned()),
        Just("faas.name".to_owned()),
        Just("faas.instance".to_owned()),
        Just("service.name".to_owned()),
        Just("cloud.platform".to_owned()),
        Just("host.name".to_owned()),
        Just("container.id".to_owned()),
        Just("messaging.system".to_owned()),
        Just("messaging.operation".to_owned()),
        "[a-z.]{1,12}",
    ]
}

fn arb_attrs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            arb_key(),
            prop_oneof![
                Just("aws_lambda".to_owned()),
                Just(String::new()),
                ".{0,12}"
            ],
        ),
        0..8,
    )
}

fn to_kvs(pairs: &[(String, String)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, v)).collect()
}

proptest! {
    /// A span is accepted exactly when its ids are valid and its times are
    /// plausible; accepted rows keep ids, times and every attribute in order.
    #[test]
    fn accepts_exactly_the_valid_spans(
        trace_id in any_id(16),
        span_id in any_id(8),
        start in any::<u64>(),
        delta in -2_000_000_000i64..2_000_000_000i64,
        span_attrs in arb_attrs(),
        res_attrs in arb_attrs(),
    ) {
        let r = Resource { attributes: to_kvs(&res_attrs), ..Default::default() };
        let ctx = ResourceContext::new(&key_values(&r.attributes));
        let s = Span {
            trace_id: trace_id.clone(),
            span_id: span_id.clone(),
            start_time_unix_nano: start,
            end_time_unix_nano: start.saturating_add_signed(delta),
            attributes: to_kvs(&span_attrs),
            ..Default::default()
        };
        let valid_ids = trace_id.len() == 16 && trace_id.iter().any(|b| *b != 0)
            && span_id.len() == 8 && span_id.iter().any(|b| *b != 0);
        let (s_ns, e_ns) = (nanos(s.start_time_unix_nano), nanos(s.end_time_unix_nano));
        let valid_times = e_ns >= s_ns || s_ns - e_ns <= Rules::default().end_before_start_tolerance_ns;
        let result = run(&s, &ctx);
        prop_assert_eq!(result.is_ok(), valid_ids && valid_times, "{:?}", result.as_ref().err());
        if let Ok(row) = result {
            prop_assert_eq!(&row.trace_id.0[..], &trace_id[..]);
            prop_assert_eq!(&row.span_id.0[..], &span_id[..]);
            // A span ending a little before it starts is kept with no duration.
            prop_assert_eq!(row.end_time_unix_nano, e_ns.max(s_ns));
            prop_assert_eq!(row.duration_ns(), e_ns.saturating_sub(s_ns).max(0));
            prop_assert_eq!(row.start_time_unix_nano, s_ns);
            let keys: Vec<&str> = row.attributes.iter().map(|(k, _)| k.as_ref()).collect();
            let want: Vec<&str> = span_attrs.iter().map(|(k, _)| k.as_str()).collect();
            prop_assert_eq!(keys, want);
            prop_assert_eq!(row.resource_attributes.len(), res_attrs.len());
        }
    }

    /// Service name is never empty, and platform follows the documented
    /// precedence whatever else the resource carries.
    #[test]
    fn resource_derivations_follow_the_rules(res_attrs in arb_attrs()) {
        let r = Resource { attributes: to_kvs(&res_attrs), ..Default::default() };
        let ctx = ResourceContext::new(&key_values(&r.attributes));
        prop_assert!(!ctx.service_name.is_empty());
        let cloud = res_attrs.iter().find(|(k, _)| k == "cloud.platform").map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let has = |p: &str| res_attrs.iter().any(|(k, _)| k.starts_with(p));
        match cloud {
            Some("aws_lambda") => prop_assert_eq!(ctx.platform, Platform::Faas),
            _ if cloud.is_none() && has("k8s.") => prop_assert_eq!(ctx.platform, Platform::Kubernetes),
            _ if cloud.is_none() && !has("k8s.") && has("faas.") => prop_assert_eq!(ctx.platform, Platform::Faas),
            _ => {}
        }
        let named = res_attrs.iter().find(|(k, _)| k == "service.name").map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        if let Some(name) = named.filter(|n| !n.starts_with("unknown_service")) {
            prop_assert_eq!(ctx.service_name.as_ref(), name);
        }
    }
}

/// One request of `resources`, each a resource's pairs and its spans.
fn request(resources: Vec<(Resource, Vec<Span>)>) -> ExportTraceServiceRequest {
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
    ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|(resource, spans)| ResourceSpans {
                resource: Some(resource),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

fn child(id: u8, parent: u8, kind: i32, start: u64, end: u64, attrs: &[(&str, &str)]) -> Span {
    Span {
        span_id: vec![id; 8],
        parent_span_id: if parent == 0 {
            Vec::new()
        } else {
            vec![parent; 8]
        },
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        ..span(attrs)
    }
}

fn contexts(request: &ExportTraceServiceRequest) -> Vec<ResourceContext<'_>> {
    request
        .resource_spans
        .iter()
        .map(|r| ResourceContext::new(&key_values(&r.resource.as_ref().unwrap().attributes)))
        .collect()
}

#[test]
fn a_span_inside_its_function_instance_is_nested_not_an_invocation() {
    let lambda = resource(&[
        ("service.name", "worker"),
        ("cloud.platform", "aws_lambda"),
        ("faas.instance", "i-1"),
    ]);
    let pod = resource(&[("service.name", "checkout"), ("k8s.pod.name", "p-1")]);
    let req = request(vec![
        (
            lambda,
            vec![
                // The SQS `process` child first, as a batch processor sends it.
                child(3, 2, 5, 20, 80, &[("faas.trigger", "pubsub")]),
                child(2, 0, 2, 10, 100, &[("faas.coldstart", "true")]),
                // Outside its parent's time: an invocation of its own.
                child(4, 2, 5, 90, 200, &[("faas.trigger", "pubsub")]),
                // A database call inside it is just a span.
                child(5, 2, 3, 30, 40, &[("db.system", "dynamodb")]),
            ],
        ),
        (pod, vec![child(6, 5, 2, 20, 30, &[])]),
    ]);
    let export = view::Export::from(&req);
    let resources = contexts(&req);
    let nested = nesting::nested_spans(&export, &resources);
    assert_eq!(nested, HashSet::from([(0, 0, 0)]));
}

#[test]
fn the_wire_call_beneath_a_messaging_span_is_transport() {
    let pod = resource(&[("service.name", "billing"), ("k8s.pod.name", "p-1")]);
    let req = request(vec![(
        pod,
        vec![
            child(
                3,
                2,
                3,
                20,
                30,
                &[
                    ("rpc.method", "SendMessage"),
                    ("messaging.system", "aws.sqs"),
                ],
            ),
            child(2, 1, 4, 10, 40, &[("messaging.system", "aws.sqs")]),
            // A CLIENT span under a plain handler span is not.
            child(5, 1, 3, 50, 60, &[("messaging.system", "aws.sqs")]),
            // Nor are calls made while processing a message: an HTTP call,
            // or a send of the next message.
            child(
                7,
                0,
                5,
                100,
                200,
                &[
                    ("messaging.system", "aws.sqs"),
                    ("messaging.operation", "process"),
                ],
            ),
            child(8, 7, 3, 110, 120, &[("http.request.method", "POST")]),
            child(
                9,
                7,
                3,
                130,
                140,
                &[("rpc.system", "aws-api"), ("rpc.method", "SendMessage")],
            ),
            // Nor an HTTP call under a send.
            child(6, 2, 3, 15, 18, &[("http.request.method", "GET")]),
        ],
    )]);
    let export = view::Export::from(&req);
    assert_eq!(
        transport::transport_spans(&export),
        HashSet::from([(0, 0, 0)])
    );
}

#[test]
fn a_trace_takes_its_instance_from_its_spans_when_the_resource_has_none() {
    let host = resource(&[
        ("service.name", "orders"),
        ("cloud.platform", "azure_functions"),
    ]);
    let req = request(vec![(
        host,
        vec![
            child(2, 0, 2, 10, 100, &[]),
            child(3, 2, 5, 20, 90, &[("faas.instance", "host-7")]),
        ],
    )]);
    let export = view::Export::from(&req);
    let resources = contexts(&req);
    let instances = nesting::span_instances(&export, &resources);
    assert_eq!(
        instances.get(&(0, &[1u8; 16][..])).map(|c| c.as_ref()),
        Some("host-7")
    );
}
