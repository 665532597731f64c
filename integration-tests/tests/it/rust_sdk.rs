//! The OpenTelemetry Rust SDK (`opentelemetry-otlp`) exporting over gRPC
//! (tonic) and HTTP/protobuf, as a Lambda-style function would.

use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, TraceContextExt, TraceFlags, TraceState, Tracer,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use seam_integration_tests::{Seam, rows};

use crate::common::{assert_span_shape, span_named};

/// What the function exported: its trace id and the id of the producer
/// span it links to (a span of another trace).
struct Exported {
    trace_id: String,
    linked_trace: String,
    linked_span: String,
}

fn export_function_trace(exporter: opentelemetry_otlp::SpanExporter) -> Exported {
    let resource = Resource::builder_empty()
        .with_attributes([
            KeyValue::new("cloud.provider", "aws"),
            KeyValue::new("cloud.platform", "aws_lambda"),
            KeyValue::new("faas.name", "invoice"),
            KeyValue::new("faas.instance", "2026/11/23/[$LATEST]8f1c"),
        ])
        .build();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("invoice-handler");

    let linked = SpanContext::new(
        opentelemetry::trace::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let mut handler = tracer
        .span_builder("orders process")
        .with_kind(SpanKind::Consumer)
        .with_attributes([
            // The older semantic-convention names, as many Lambda layers still send.
            KeyValue::new("messaging.system", "AmazonSQS"),
            KeyValue::new("messaging.operation", "process"),
            KeyValue::new("messaging.destination", "orders"),
            KeyValue::new("messaging.message_id", "msg-0001"),
            KeyValue::new("faas.trigger", "pubsub"),
            KeyValue::new("faas.execution", "c0ffee-1"),
            KeyValue::new("faas.coldstart", true),
        ])
        .with_links(vec![Link::with_context(linked.clone())])
        .start(&tracer);
    let trace_id = handler.span_context().trace_id().to_string();
    let cx = Context::current().with_remote_span_context(handler.span_context().clone());
    let mut write = tracer
        .span_builder("PutItem invoices")
        .with_kind(SpanKind::Client)
        .start_with_context(&tracer, &cx);
    write.set_attribute(KeyValue::new("db.system.name", "aws.dynamodb"));
    write.end();
    handler.end();
    provider.force_flush().expect("flush");
    provider.shutdown().expect("shutdown");
    Exported {
        trace_id,
        linked_trace: linked.trace_id().to_string(),
        linked_span: linked.span_id().to_string(),
    }
}

fn check(seam: &Seam, exported: &Exported) {
    let answer = seam.sql(&format!(
        "SELECT name, kind, service_name, platform, instance, cold_start, cold_start_type, messaging_system, \
                messaging_operation, messaging_destination, messaging_message_id, faas_trigger \
         FROM spans WHERE trace_id = '{}' AND kind = 'consumer'",
        exported.trace_id
    ));
    let rows = rows(&answer);
    assert_eq!(rows.len(), 1, "{answer}");
    let r = &rows[0];
    assert_eq!(
        r["service_name"], "invoice",
        "faas.name names a function without service.name"
    );
    assert_eq!(r["platform"], "faas");
    assert_eq!(r["instance"], "2026/11/23/[$LATEST]8f1c");
    assert_eq!(r["cold_start"], true);
    assert_eq!(r["cold_start_type"], "on_demand");
    assert_eq!(
        r["messaging_system"], "aws_sqs",
        "legacy spellings are normalized"
    );
    assert_eq!(r["messaging_operation"], "process");
    assert_eq!(r["messaging_destination"], "orders");
    assert_eq!(r["messaging_message_id"], "msg-0001");
    assert_eq!(r["faas_trigger"], "pubsub");

    let (status, trace) = seam.get(&format!("/api/v1/traces/{}", exported.trace_id));
    assert_eq!(status, 200, "{trace}");
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2);
    spans.iter().for_each(assert_span_shape);
    let handler = span_named(&trace, "orders process");
    assert_eq!(handler["kind"], "consumer");
    assert_eq!(handler["cold_start"], true);
    assert_eq!(handler["links"][0]["trace_id"], exported.linked_trace);
    assert_eq!(handler["links"][0]["span_id"], exported.linked_span);
    let write = span_named(&trace, "PutItem invoices");
    assert_eq!(write["parent_span_id"], handler["span_id"]);
    assert_eq!(write["attributes"]["db.system.name"], "aws.dynamodb");
}

/// Runs SDK code on a blocking thread inside a Tokio runtime: the SDK's
/// simple processor blocks on each export, and tonic and reqwest need the
/// runtime's reactor.
pub fn with_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { tokio::task::spawn_blocking(f).await.unwrap() })
}

#[test]
fn rust_sdk_over_grpc() {
    let seam = Seam::start();
    let endpoint = seam.grpc_url();
    let exported = with_runtime(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .unwrap();
        export_function_trace(exporter)
    });
    check(&seam, &exported);
}

#[test]
fn rust_sdk_over_http_protobuf() {
    let seam = Seam::start();
    let endpoint = seam.otlp_http_url();
    let exported = with_runtime(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .build()
            .unwrap();
        export_function_trace(exporter)
    });
    check(&seam, &exported);
}
