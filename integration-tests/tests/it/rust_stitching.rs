//! Stitching with the OpenTelemetry Rust SDK: the whole hybrid journey
//! Kubernetes → queue → function → queue → function → HTTP → Kubernetes,
//! exported by one SDK provider per service, with context carried the way
//! real instrumentation carries it (span links for queue hops, W3C
//! `traceparent` through HTTP headers), checked through SQL and the flow API.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Link, Span as _, SpanKind, TraceContextExt, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use seam_integration_tests::{Seam, rows};

use crate::rust_sdk::with_runtime;

/// One provider per service, exporting over gRPC like a real deployment.
struct Services {
    endpoint: String,
    providers: Vec<SdkTracerProvider>,
}

impl Services {
    fn tracer(&mut self, attrs: &[(&'static str, &'static str)]) -> SdkTracer {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(self.endpoint.clone())
            .build()
            .unwrap();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .with_resource(
                Resource::builder_empty()
                    .with_attributes(attrs.iter().map(|(k, v)| KeyValue::new(*k, *v)))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("journey");
        self.providers.push(provider);
        tracer
    }

    fn shutdown(self) {
        for p in self.providers {
            p.force_flush().unwrap();
            p.shutdown().unwrap();
        }
    }
}

fn k8s(service: &'static str, pod: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("service.name", service),
        ("k8s.namespace.name", "shop"),
        ("k8s.pod.name", pod),
        ("cloud.platform", "aws_eks"),
    ]
}

fn lambda(name: &'static str, instance: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("service.name", name),
        ("cloud.provider", "aws"),
        ("cloud.platform", "aws_lambda"),
        ("faas.name", name),
        ("faas.instance", instance),
    ]
}

fn sqs(queue: &'static str, operation: &'static str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("messaging.system", "aws_sqs"),
        KeyValue::new("messaging.operation.type", operation),
        KeyValue::new("messaging.destination.name", queue),
    ]
}

/// What the journey produced, as lowercase hex ids.
struct Journey {
    traces: [String; 3],
    checkout_send: String,
    invoice_process: String,
    mailer_client: String,
    notifications_server: String,
}

fn hex_of(cx: &opentelemetry::trace::SpanContext) -> (String, String) {
    (cx.trace_id().to_string(), cx.span_id().to_string())
}

/// `t0` plus `ms` milliseconds.
fn at(t0: SystemTime, ms: u64) -> SystemTime {
    t0 + Duration::from_millis(ms)
}

fn run_journey(endpoint: String) -> Journey {
    let mut services = Services {
        endpoint,
        providers: Vec::new(),
    };
    let checkout = services.tracer(&k8s("checkout", "checkout-7d9f8b-x2k4p"));
    let invoice = services.tracer(&lambda("invoice", "2026/11/24/[$LATEST]a1b2c3"));
    let mailer = services.tracer(&lambda("mailer", "2026/11/24/[$LATEST]d4e5f6"));
    let notifications = services.tracer(&k8s("notifications", "notifications-5c6d-q8w2e"));
    let t0 = SystemTime::now() - Duration::from_secs(120);

    // Trace 1 (Kubernetes): the checkout request sends to the orders queue.
    let root = checkout
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(t0)
        .start(&checkout);
    let cx = Context::current_with_span(root);
    let mut send = checkout
        .span_builder("orders send")
        .with_kind(SpanKind::Producer)
        .with_attributes(sqs("orders", "send"))
        .with_start_time(at(t0, 10))
        .start_with_context(&checkout, &cx);
    let send_cx = send.span_context().clone();
    send.end_with_timestamp(at(t0, 20));
    cx.span().end_with_timestamp(at(t0, 40));

    // Trace 2 (Lambda): the invoice function processes the message 1.5 s
    // later (a slow queue) and sends to the invoices queue.
    let process = invoice
        .span_builder("orders process")
        .with_kind(SpanKind::Consumer)
        .with_attributes(sqs("orders", "process"))
        .with_links(vec![Link::with_context(send_cx.clone())])
        .with_start_time(at(t0, 1_520))
        .start(&invoice);
    let process_cx = process.span_context().clone();
    let cx = Context::current_with_span(process);
    let mut send2 = invoice
        .span_builder("invoices send")
        .with_kind(SpanKind::Producer)
        .with_attributes(sqs("invoices", "send"))
        .with_start_time(at(t0, 1_530))
        .start_with_context(&invoice, &cx);
    let send2_cx = send2.span_context().clone();
    send2.end_with_timestamp(at(t0, 1_540));
    cx.span().end_with_timestamp(at(t0, 1_560));

    // Trace 3 (Lambda → Kubernetes): the mailer processes the invoice and
    // calls the notifications service over HTTP with a traceparent header.
    let process3 = mailer
        .span_builder("invoices process")
        .with_kind(SpanKind::Consumer)
        .with_attributes(sqs("invoices", "process"))
        .with_links(vec![Link::with_context(send2_cx)])
        .with_start_time(at(t0, 1_600))
        .start(&mailer);
    let cx = Context::current_with_span(process3);
    let client = mailer
        .span_builder("POST")
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("url.full", "http://notifications.shop.svc/notify"),
        ])
        .with_start_time(at(t0, 1_610))
        .start_with_context(&mailer, &cx);
    let client_cx = client.span_context().clone();
    let client_ctx = cx.with_span(client);
    let mut headers: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&client_ctx, &mut headers);
    assert!(headers.contains_key("traceparent"));

    // The Kubernetes service extracts the header, as its HTTP middleware does.
    let incoming = TraceContextPropagator::new().extract(&headers);
    let mut server = notifications
        .span_builder("POST /notify")
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("http.route", "/notify")])
        .with_start_time(at(t0, 1_625))
        .start_with_context(&notifications, &incoming);
    let server_cx = server.span_context().clone();
    server.end_with_timestamp(at(t0, 1_640));
    client_ctx.span().end_with_timestamp(at(t0, 1_650));
    cx.span().end_with_timestamp(at(t0, 1_660));
    services.shutdown();

    Journey {
        traces: [
            send_cx.trace_id().to_string(),
            process_cx.trace_id().to_string(),
            client_cx.trace_id().to_string(),
        ],
        checkout_send: hex_of(&send_cx).1,
        invoice_process: hex_of(&process_cx).1,
        mailer_client: hex_of(&client_cx).1,
        notifications_server: hex_of(&server_cx).1,
    }
}

#[test]
fn a_hybrid_journey_of_three_traces_is_one_flow() {
    let seam = Seam::start();
    let endpoint = seam.grpc_url();
    let j = with_runtime(move || run_journey(endpoint));
    let mut sorted = j.traces.clone();
    sorted.sort();

    let answer = seam.sql(
        "SELECT kind, stitched_by, producer_span_id, consumer_span_id, producer_service, consumer_service, \
                producer_platform, consumer_platform, system, destination, latency_ns, flagged, clock_skew, flow_id \
         FROM boundaries ORDER BY consumer_time",
    );
    let b = rows(&answer);
    assert_eq!(b.len(), 3, "{answer}");
    assert_eq!(b[0]["stitched_by"], "link");
    assert_eq!(b[0]["producer_span_id"], j.checkout_send);
    assert_eq!(b[0]["consumer_span_id"], j.invoice_process);
    assert_eq!(b[0]["producer_platform"], "kubernetes");
    assert_eq!(b[0]["consumer_platform"], "faas");
    assert_eq!(
        b[0]["latency_ns"], 1_500_000_000,
        "consumer start − producer end"
    );
    assert_eq!(b[0]["flagged"], true, "above the 1 s default threshold");
    assert_eq!(b[1]["destination"], "invoices");
    assert_eq!(b[1]["latency_ns"], 60_000_000);
    assert_eq!(b[1]["flagged"], false);
    assert_eq!(
        (b[2]["kind"].as_str(), b[2]["stitched_by"].as_str()),
        (Some("sync"), Some("parent"))
    );
    assert_eq!(b[2]["producer_span_id"], j.mailer_client);
    assert_eq!(b[2]["consumer_span_id"], j.notifications_server);
    assert_eq!(b[2]["consumer_service"], "notifications");
    assert_eq!(
        b[2]["latency_ns"], 15_000_000,
        "server start − client start"
    );
    for row in &b {
        assert_eq!(
            row["flow_id"],
            sorted[0].as_str(),
            "one flow id: the smallest trace id"
        );
        assert_eq!(row["clock_skew"], false);
    }

    let flows = rows(&seam.sql(&format!(
        "SELECT trace_count, span_count, boundary_count, flagged_boundaries, services FROM flows WHERE flow_id = '{}'",
        sorted[0]
    )));
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["trace_count"], 3);
    assert_eq!(flows[0]["span_count"], 7);
    assert_eq!(flows[0]["boundary_count"], 3);
    assert_eq!(flows[0]["flagged_boundaries"], 1);
    assert_eq!(
        flows[0]["services"],
        serde_json::json!(["checkout", "invoice", "mailer", "notifications"])
    );

    // Any member trace leads to the whole flow.
    for trace in &j.traces {
        let (status, flow) = seam.get(&format!("/api/v1/traces/{trace}/flow"));
        assert_eq!(status, 200, "{flow}");
        assert_eq!(flow["flow_id"], sorted[0].as_str());
        assert_eq!(flow["trace_ids"], serde_json::json!(sorted));
        assert_eq!(flow["spans"].as_array().unwrap().len(), 7);
        assert_eq!(flow["boundaries"].as_array().unwrap().len(), 3);
        assert!(
            flow["spans"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["flow_id"] == sorted[0].as_str())
        );
    }
    let every_span = rows(&seam.sql("SELECT DISTINCT flow_id FROM spans"));
    assert_eq!(
        every_span.len(),
        1,
        "every span of the three traces is under the flow"
    );

    // The slow hop is what a flagged search finds.
    let (status, found) = seam.get("/api/v1/search?flagged=true");
    assert_eq!(status, 200, "{found}");
    let ids: Vec<&str> = found["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    let mut want = vec![j.traces[0].as_str(), j.traces[1].as_str()];
    want.sort();
    let mut got = ids.clone();
    got.sort();
    assert_eq!(got, want);
}
