//! The demo's hybrid application, as pure generation: given a seed and the
//! current time, each call returns the OTLP requests one user journey would
//! make its services export. Nothing here does IO, so the load generator
//! can reuse the same shapes and tests can check them.
//!
//! ```text
//!  checkout (k8s) ──SQS orders──▶ invoice (Lambda) ──HTTP──▶ customers (k8s)
//!        │  └──SNS order-events──▶ email-sender, analytics-ingest (Lambda)
//!        └──SQS refunds──▶ (nobody: a lost message)
//!  inventory (k8s) ──Kafka stock-updates ×3──▶ stock-projector (k8s, one batch)
//!  reports (k8s) ──Pub/Sub report-requests──▶ report-renderer (Cloud Run; context lost, message id kept)
//!  ??? ──SQS audit──▶ audit-log (Lambda; propagation broken: an orphan)
//! ```
//!
//! Attribute names are the OpenTelemetry semantic conventions' (messaging,
//! FaaS, Kubernetes, cloud, HTTP), with the values each system really uses.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::otlp::{SpanBuilder, SpanId, TraceId, kv, request, span};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// The kinds of journey the demo makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowKind {
    /// Checkout publishes to SQS; a Lambda processes it (span link).
    SqsInvoice,
    /// One SNS publish fanned out to two functions.
    SnsFanout,
    /// Three Kafka messages consumed as one batch (one link each).
    KafkaBatch,
    /// A Pub/Sub hop where context is lost and only the message id remains.
    PubsubLostContext,
    /// A function calling back into a Kubernetes service over HTTP.
    FunctionCallsService,
    /// Like `SqsInvoice`, but the message waits seconds in the queue.
    SlowQueue,
    /// A message sent to a queue nobody consumes.
    LostMessage,
    /// A consumer whose producer never propagated anything.
    BrokenPropagation,
}

impl FlowKind {
    pub const ALL: [Self; 8] = [
        Self::SqsInvoice,
        Self::SnsFanout,
        Self::KafkaBatch,
        Self::PubsubLostContext,
        Self::FunctionCallsService,
        Self::SlowQueue,
        Self::LostMessage,
        Self::BrokenPropagation,
    ];

    /// How often each kind comes after the first round, out of 16.
    fn weight(self) -> u32 {
        match self {
            Self::SqsInvoice => 4,
            Self::SnsFanout | Self::KafkaBatch | Self::PubsubLostContext => 2,
            Self::FunctionCallsService => 3,
            Self::SlowQueue | Self::LostMessage | Self::BrokenPropagation => 1,
        }
    }
}

/// A function instance the demo reuses, as a platform keeps a warm one.
#[derive(Debug, Clone)]
struct Instance {
    id: String,
    provisioned: bool,
}

/// Generates journeys; holds the seeded randomness and the warm instances.
pub struct Generator {
    rng: SmallRng,
    calls: u64,
    instances: HashMap<&'static str, Vec<Instance>>,
}

/// A Kubernetes service's resource.
fn k8s(service: &str, pod: &str) -> Vec<KeyValue> {
    vec![
        kv("service.name", service),
        kv("service.version", "1.14.2"),
        kv("k8s.namespace.name", "shop"),
        kv("k8s.deployment.name", service),
        kv("k8s.pod.name", pod),
        kv("cloud.provider", "aws"),
        kv("cloud.platform", "aws_eks"),
        kv("cloud.region", "eu-west-1"),
    ]
}

fn pod(service: &str) -> String {
    format!("{service}-7d9f8b-x2k4p")
}

/// What a new invocation looks like: the instance, and whether it is the
/// instance's first one (so cold).
struct Invocation {
    instance: Instance,
    cold: bool,
    /// Set for a proactively initialised instance: when its init ran.
    init_gap: Option<u64>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
            calls: 0,
            instances: HashMap::new(),
        }
    }

    fn trace_id(&mut self) -> TraceId {
        let mut id: TraceId = self.rng.random();
        id[0] |= 1;
        id
    }

    fn span_id(&mut self) -> SpanId {
        let mut id: SpanId = self.rng.random();
        id[0] |= 1;
        id
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.rng.random_range(low..high)
    }

    fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.random();
        let h = |r: &[u8]| r.iter().map(|x| format!("{x:02x}")).collect::<String>();
        format!(
            "{}-{}-{}-{}-{}",
            h(&b[..4]),
            h(&b[4..6]),
            h(&b[6..8]),
            h(&b[8..10]),
            h(&b[10..])
        )
    }

    /// The next journey: the first eight calls make one of each kind, the
    /// rest are drawn with the kinds' weights.
    pub fn next_flow(&mut self, now_unix_nano: u64) -> (FlowKind, Vec<ExportTraceServiceRequest>) {
        let kind = if self.calls < FlowKind::ALL.len() as u64 {
            FlowKind::ALL[self.calls as usize]
        } else {
            let total: u32 = FlowKind::ALL.iter().map(|k| k.weight()).sum();
            let mut pick = self.rng.random_range(0..total);
            let mut chosen = FlowKind::SqsInvoice;
            for k in FlowKind::ALL {
                if pick < k.weight() {
                    chosen = k;
                    break;
                }
                pick -= k.weight();
            }
            chosen
        };
        self.calls += 1;
        (kind, self.flow(kind, now_unix_nano))
    }

    /// One journey of `kind`, ending at or before `now_unix_nano`.
    pub fn flow(&mut self, kind: FlowKind, now_unix_nano: u64) -> Vec<ExportTraceServiceRequest> {
        // Every journey starts 20 s ago, so a proactive instance's init can
        // sit 15 s before its first invocation and still be in the past.
        let t0 = now_unix_nano.saturating_sub(20 * S);
        match kind {
            FlowKind::SqsInvoice => {
                let dwell = self.between(50, 400) * MS;
                self.sqs_invoice(t0, dwell)
            }
            FlowKind::SlowQueue => {
                let dwell = self.between(2_500, 4_000) * MS;
                self.sqs_invoice(t0, dwell)
            }
            FlowKind::SnsFanout => self.sns_fanout(t0),
            FlowKind::KafkaBatch => self.kafka_batch(t0),
            FlowKind::PubsubLostContext => self.pubsub_lost_context(t0),
            FlowKind::FunctionCallsService => self.function_calls_service(t0),
            FlowKind::LostMessage => self.lost_message(t0),
            FlowKind::BrokenPropagation => self.broken_propagation(t0),
        }
    }

    /// Picks a warm instance, or starts a new one about one time in four.
    fn invocation(&mut self, function: &'static str) -> Invocation {
        let warm = self.instances.get(function).map_or(0, Vec::len);
        if warm > 0 && !self.rng.random_bool(0.25) {
            let i = self.rng.random_range(0..warm);
            return Invocation {
                instance: self.instances[function][i].clone(),
                cold: false,
                init_gap: None,
            };
        }
        let suffix: [u8; 16] = self.rng.random();
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let instance = Instance {
            id: format!("2026/11/24/[$LATEST]{hex}"),
            provisioned: self.rng.random_bool(0.1),
        };
        let pool = self.instances.entry(function).or_default();
        pool.push(instance.clone());
        if pool.len() > 6 {
            // The platform reclaims idle instances.
            pool.remove(0);
        }
        let proactive = !instance.provisioned && self.rng.random_bool(0.33);
        Invocation {
            instance,
            cold: true,
            init_gap: proactive.then(|| self.between(15, 19) * S),
        }
    }

    fn lambda_resource(function: &str, instance: &Instance) -> Vec<KeyValue> {
        let mut r = vec![
            kv("service.name", function),
            kv("cloud.provider", "aws"),
            kv("cloud.platform", "aws_lambda"),
            kv("cloud.region", "eu-west-1"),
            kv("faas.name", function),
            kv("faas.version", "$LATEST"),
            kv("faas.instance", instance.id.as_str()),
            kv("faas.max_memory", 536_870_912i64),
        ];
        if instance.provisioned {
            r.push(kv(
                "aws.lambda.initialization_type",
                "provisioned-concurrency",
            ));
        }
        r
    }

    /// A Lambda invocation's spans around its `handler` span: an init span first when
    /// the instance was warmed ahead of time, the handler span with
    /// `faas.coldstart`, and a cold start's penalty on its duration.
    fn lambda_invocation(
        &mut self,
        function: &'static str,
        start: u64,
        work: u64,
        handler: SpanBuilder,
        mut children: Vec<Span>,
    ) -> ExportTraceServiceRequest {
        let inv = self.invocation(function);
        let on_demand = inv.cold && inv.init_gap.is_none() && !inv.instance.provisioned;
        let penalty = if on_demand {
            self.between(300, 900) * MS
        } else {
            0
        };
        let invocation_id = self.uuid();
        let root_span = handler
            .time(start, start + penalty + work)
            .attr("faas.invocation_id", invocation_id.clone())
            .attr("faas.coldstart", inv.cold)
            .attr(
                "cloud.resource_id",
                format!("arn:aws:lambda:eu-west-1:123456789012:function:{function}"),
            )
            .build();
        let mut spans = vec![root_span];
        for child in &mut children {
            child.start_time_unix_nano += penalty;
            child.end_time_unix_nano += penalty;
        }
        spans.append(&mut children);
        if let Some(gap) = inv.init_gap {
            let init_end = start - gap;
            let init_trace = self.trace_id();
            let init_id = self.span_id();
            spans.push(
                span(init_trace, init_id, "Initialization", SpanKind::Internal)
                    .time(init_end - self.between(200, 600) * MS, init_end)
                    .build(),
            );
        }
        request(
            Self::lambda_resource(function, &inv.instance),
            "opentelemetry.instrumentation.aws_lambda",
            spans,
        )
    }

    fn sqs_invoice(&mut self, t0: u64, dwell: u64) -> Vec<ExportTraceServiceRequest> {
        let (trace, root, send, charge, charged) = (
            self.trace_id(),
            self.span_id(),
            self.span_id(),
            self.span_id(),
            self.span_id(),
        );
        let message_id = self.uuid();
        let send_end = t0 + 40 * MS;
        let checkout = request(
            k8s("checkout", &pod("checkout")),
            "io.opentelemetry.spring-webmvc-6.0",
            vec![
                span(trace, root, "POST /checkout", SpanKind::Server)
                    .time(t0, t0 + 120 * MS)
                    .attr("http.request.method", "POST")
                    .attr("http.route", "/checkout")
                    .attr("url.path", "/checkout")
                    .attr("http.response.status_code", 201i64)
                    .build(),
                span(trace, send, "orders send", SpanKind::Producer)
                    .parent(root)
                    .time(t0 + 30 * MS, send_end)
                    .attr("messaging.system", "aws_sqs")
                    .attr("messaging.operation.type", "send")
                    .attr("messaging.operation.name", "SendMessage")
                    .attr("messaging.destination.name", "orders")
                    .attr("messaging.message.id", message_id.clone())
                    .attr("server.address", "sqs.eu-west-1.amazonaws.com")
                    .build(),
                span(trace, charge, "POST", SpanKind::Client)
                    .parent(root)
                    .time(t0 + 50 * MS, t0 + 100 * MS)
                    .attr("http.request.method", "POST")
                    .attr("url.full", "http://payments.shop.svc/charges")
                    .attr("server.address", "payments.shop.svc")
                    .build(),
            ],
        );
        let payments = request(
            k8s("payments", &pod("payments")),
            "io.opentelemetry.spring-webmvc-6.0",
            vec![
                span(trace, charged, "POST /charges", SpanKind::Server)
                    .parent(charge)
                    .time(t0 + 55 * MS, t0 + 95 * MS)
                    .attr("http.request.method", "POST")
                    .attr("http.route", "/charges")
                    .attr("http.response.status_code", 200i64)
                    .build(),
            ],
        );
        let (itrace, process, put) = (self.trace_id(), self.span_id(), self.span_id());
        let start = send_end + dwell;
        let work = self.between(80, 300) * MS;
        let children = vec![
            span(itrace, put, "DynamoDB.PutItem", SpanKind::Client)
                .parent(process)
                .time(start + 10 * MS, start + work - 10 * MS)
                .attr("rpc.system", "aws-api")
                .attr("rpc.service", "DynamoDB")
                .attr("rpc.method", "PutItem")
                .attr("aws.dynamodb.table_names", "invoices")
                .build(),
        ];
        let handler = span(itrace, process, "orders process", SpanKind::Consumer)
            .attr("faas.trigger", "pubsub")
            .attr("messaging.system", "aws_sqs")
            .attr("messaging.operation.type", "process")
            .attr("messaging.destination.name", "orders")
            .attr("messaging.message.id", message_id.clone())
            .link(trace, send);
        let invoice = self.lambda_invocation("invoice", start, work, handler, children);
        vec![checkout, payments, invoice]
    }

    fn sns_fanout(&mut self, t0: u64) -> Vec<ExportTraceServiceRequest> {
        let (trace, root, publish) = (self.trace_id(), self.span_id(), self.span_id());
        let message_id = self.uuid();
        let publish_end = t0 + 25 * MS;
        let mut out = vec![request(
            k8s("checkout", &pod("checkout")),
            "io.opentelemetry.aws-sdk-2.2",
            vec![
                span(trace, root, "POST /orders/{id}/confirm", SpanKind::Server)
                    .time(t0, t0 + 60 * MS)
                    .attr("http.request.method", "POST")
                    .attr("http.route", "/orders/{id}/confirm")
                    .attr("http.response.status_code", 200i64)
                    .build(),
                span(trace, publish, "order-events publish", SpanKind::Producer)
                    .parent(root)
                    .time(t0 + 10 * MS, publish_end)
                    .attr("messaging.system", "aws_sns")
                    .attr("messaging.operation.type", "publish")
                    .attr("messaging.operation.name", "Publish")
                    .attr("messaging.destination.name", "order-events")
                    .attr("messaging.message.id", message_id.clone())
                    .build(),
            ],
        )];
        for function in ["email-sender", "analytics-ingest"] {
            let (ctrace, process) = (self.trace_id(), self.span_id());
            let start = publish_end + self.between(40, 250) * MS;
            let work = self.between(30, 200) * MS;
            let handler = span(ctrace, process, "order-events process", SpanKind::Consumer)
                .attr("faas.trigger", "pubsub")
                .attr("messaging.system", "aws_sns")
                .attr("messaging.operation.type", "process")
                .attr("messaging.destination.name", "order-events")
                .attr("messaging.message.id", message_id.clone())
                .link(trace, publish);
            out.push(self.lambda_invocation(function, start, work, handler, Vec::new()));
        }
        out
    }

    fn kafka_batch(&mut self, t0: u64) -> Vec<ExportTraceServiceRequest> {
        let (trace, root) = (self.trace_id(), self.span_id());
        let mut spans = vec![
            span(trace, root, "POST /stock", SpanKind::Server)
                .time(t0, t0 + 90 * MS)
                .attr("http.request.method", "POST")
                .attr("http.route", "/stock")
                .attr("http.response.status_code", 202i64)
                .build(),
        ];
        let mut sends = Vec::new();
        for i in 0..3u64 {
            let id = self.span_id();
            let sku = format!("sku-{}", self.between(1000, 9999));
            spans.push(
                span(trace, id, "stock-updates send", SpanKind::Producer)
                    .parent(root)
                    .time(t0 + (10 + 20 * i) * MS, t0 + (15 + 20 * i) * MS)
                    .attr("messaging.system", "kafka")
                    .attr("messaging.operation.type", "send")
                    .attr("messaging.destination.name", "stock-updates")
                    .attr("messaging.destination.partition.id", (i % 2).to_string())
                    .attr("messaging.kafka.message.key", sku)
                    .build(),
            );
            sends.push(id);
        }
        let (ctrace, process) = (self.trace_id(), self.span_id());
        let start = t0 + self.between(200, 700) * MS;
        let mut consumer = span(ctrace, process, "stock-updates process", SpanKind::Consumer)
            .time(start, start + self.between(20, 80) * MS)
            .attr("messaging.system", "kafka")
            .attr("messaging.operation.type", "process")
            .attr("messaging.destination.name", "stock-updates")
            .attr("messaging.consumer.group.name", "stock-projector")
            .attr("messaging.batch.message_count", 3i64);
        for id in sends {
            consumer = consumer.link(trace, id);
        }
        vec![
            request(
                k8s("inventory", &pod("inventory")),
                "io.opentelemetry.kafka-clients-2.6",
                spans,
            ),
            request(
                k8s("stock-projector", &pod("stock-projector")),
                "io.opentelemetry.kafka-clients-2.6",
                vec![consumer.build()],
            ),
        ]
    }

    fn pubsub_lost_context(&mut self, t0: u64) -> Vec<ExportTraceServiceRequest> {
        let (trace, root, publish) = (self.trace_id(), self.span_id(), self.span_id());
        let message_id = self
            .between(4_000_000_000_000, 4_999_999_999_999)
            .to_string();
        let publish_end = t0 + 35 * MS;
        let producer = request(
            k8s("reports", &pod("reports")),
            "opentelemetry.instrumentation.google_cloud_pubsub",
            vec![
                span(trace, root, "POST /reports", SpanKind::Server)
                    .time(t0, t0 + 70 * MS)
                    .attr("http.request.method", "POST")
                    .attr("http.route", "/reports")
                    .attr("http.response.status_code", 202i64)
                    .build(),
                span(
                    trace,
                    publish,
                    "report-requests publish",
                    SpanKind::Producer,
                )
                .parent(root)
                .time(t0 + 20 * MS, publish_end)
                .attr("messaging.system", "gcp_pubsub")
                .attr("messaging.operation.type", "publish")
                .attr("messaging.destination.name", "report-requests")
                .attr("messaging.message.id", message_id.clone())
                .build(),
            ],
        );
        // A push subscription calls Cloud Run without a traceparent: a new
        // trace, with the message id in the payload as the only thread.
        let (ctrace, server, process) = (self.trace_id(), self.span_id(), self.span_id());
        let start = publish_end + self.between(200, 800) * MS;
        let work = self.between(300, 1_200) * MS;
        let suffix: [u8; 8] = self.rng.random();
        let instance: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let consumer = request(
            vec![
                kv("service.name", "report-renderer"),
                kv("cloud.provider", "gcp"),
                kv("cloud.platform", "gcp_cloud_run"),
                kv("cloud.region", "europe-west1"),
                kv("faas.name", "report-renderer"),
                kv("faas.version", "report-renderer-00042-xiz"),
                kv("faas.instance", instance),
            ],
            "opentelemetry.instrumentation.flask",
            vec![
                span(ctrace, server, "POST /", SpanKind::Server)
                    .time(start, start + work)
                    .attr("http.request.method", "POST")
                    .attr("http.route", "/")
                    .attr("faas.trigger", "pubsub")
                    .attr("http.response.status_code", 204i64)
                    .build(),
                span(
                    ctrace,
                    process,
                    "report-requests process",
                    SpanKind::Consumer,
                )
                .parent(server)
                .time(start + 5 * MS, start + work - 5 * MS)
                .attr("messaging.system", "gcp_pubsub")
                .attr("messaging.operation.type", "process")
                .attr("messaging.destination.name", "report-requests")
                .attr("messaging.message.id", message_id)
                .build(),
            ],
        );
        vec![producer, consumer]
    }

    fn function_calls_service(&mut self, t0: u64) -> Vec<ExportTraceServiceRequest> {
        let (trace, root, client, server) = (
            self.trace_id(),
            self.span_id(),
            self.span_id(),
            self.span_id(),
        );
        let customer = self.between(1, 5000);
        let work = self.between(60, 200) * MS;
        let call_start = t0 + 20 * MS;
        let call = self.between(10, 40) * MS;
        let children = vec![
            span(trace, client, "GET", SpanKind::Client)
                .parent(root)
                .time(call_start, call_start + call + 4 * MS)
                .attr("http.request.method", "GET")
                .attr(
                    "url.full",
                    format!("http://customers.shop.svc/customers/{customer}"),
                )
                .attr("server.address", "customers.shop.svc")
                .attr("http.response.status_code", 200i64)
                .build(),
        ];
        let handler = span(trace, root, "GET /invoices/{id}", SpanKind::Server)
            .attr("faas.trigger", "http")
            .attr("http.request.method", "GET")
            .attr("http.route", "/invoices/{id}");
        let function =
            self.lambda_invocation("invoice", t0, work.max(call + 40 * MS), handler, children);
        // The function's cold-start penalty shifted its child; the server
        // span follows the client span it answers.
        let client_start = function.resource_spans[0].scope_spans[0].spans[1].start_time_unix_nano;
        let service = request(
            k8s("customers", &pod("customers")),
            "io.opentelemetry.spring-webmvc-6.0",
            vec![
                span(trace, server, "GET /customers/{id}", SpanKind::Server)
                    .parent(client)
                    .time(client_start + 2 * MS, client_start + 2 * MS + call)
                    .attr("http.request.method", "GET")
                    .attr("http.route", "/customers/{id}")
                    .attr("http.response.status_code", 200i64)
                    .build(),
            ],
        );
        vec![function, service]
    }

    fn lost_message(&mut self, t0: u64) -> Vec<ExportTraceServiceRequest> {
        let (trace, root, send) = (self.trace_id(), self.span_id(), self.span_id());
        let message_id = self.uuid();
        vec![request(
            k8s("checkout", &pod("checkout")),
            "io.opentelemetry.aws-sdk-2.2",
            vec![
                span(trace, root, "POST /refunds", SpanKind::Server)
                    .time(t0, t0 + 50 * MS)
                    .attr("http.request.method", "POST")
                    .attr("http.route", "/refunds")
                    .attr("http.response.status_code", 202i64)
                    .build(),
                span(trace, send, "refunds send", SpanKind::Producer)
                    .parent(root)
                    .time(t0 + 10 * MS, t0 + 20 * MS)
                    .attr("messaging.system", "aws_sqs")
                    .attr("messaging.operation.type", "send")
                    .attr("messaging.destination.name", "refunds")
                    .attr("messaging.message.id", message_id)
                    .build(),
            ],
        )]
    }

    fn broken_propagation(&mut self, t0: u64) -> Vec<ExportTraceServiceRequest> {
        let (trace, process) = (self.trace_id(), self.span_id());
        let message_id = self.uuid();
        let work = self.between(10, 60) * MS;
        let handler = span(trace, process, "audit process", SpanKind::Consumer)
            .attr("faas.trigger", "pubsub")
            .attr("messaging.system", "aws_sqs")
            .attr("messaging.operation.type", "process")
            .attr("messaging.destination.name", "audit")
            .attr("messaging.message.id", message_id);
        vec![self.lambda_invocation("audit-log", t0 + 300 * MS, work, handler, Vec::new())]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const NOW: u64 = 1_790_000_000 * S;

    fn spans(requests: &[ExportTraceServiceRequest]) -> Vec<&Span> {
        requests
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .collect()
    }

    fn named<'a>(requests: &'a [ExportTraceServiceRequest], name: &str) -> Vec<&'a Span> {
        spans(requests)
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    #[test]
    fn every_kind_makes_valid_spans_in_the_past() {
        let mut g = Generator::new(7);
        for kind in FlowKind::ALL {
            for _ in 0..20 {
                let requests = g.flow(kind, NOW);
                assert!(!requests.is_empty());
                for s in spans(&requests) {
                    assert_eq!(s.trace_id.len(), 16, "{kind:?}");
                    assert_eq!(s.span_id.len(), 8, "{kind:?}");
                    assert!(
                        s.trace_id.iter().any(|b| *b != 0) && s.span_id.iter().any(|b| *b != 0)
                    );
                    assert!(
                        s.end_time_unix_nano >= s.start_time_unix_nano,
                        "{kind:?} {}",
                        s.name
                    );
                    assert!(s.end_time_unix_nano <= NOW, "{kind:?} {}", s.name);
                    assert!(!s.name.is_empty());
                }
            }
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_journeys() {
        let (mut a, mut b) = (Generator::new(42), Generator::new(42));
        for _ in 0..30 {
            assert_eq!(a.next_flow(NOW), b.next_flow(NOW));
        }
    }

    #[test]
    fn the_first_round_has_every_kind() {
        let mut g = Generator::new(1);
        let kinds: HashSet<FlowKind> = (0..8).map(|_| g.next_flow(NOW).0).collect();
        assert_eq!(kinds.len(), 8);
    }

    #[test]
    fn queue_consumers_link_to_their_producers() {
        let mut g = Generator::new(3);
        let r = g.flow(FlowKind::SqsInvoice, NOW);
        let send = named(&r, "orders send")[0];
        let process = named(&r, "orders process")[0];
        assert_eq!(process.kind, SpanKind::Consumer as i32);
        assert_eq!(process.links.len(), 1);
        assert_eq!(process.links[0].trace_id, send.trace_id);
        assert_eq!(process.links[0].span_id, send.span_id);
        assert_ne!(process.trace_id, send.trace_id);

        let r = g.flow(FlowKind::KafkaBatch, NOW);
        let sends: HashSet<&Vec<u8>> = named(&r, "stock-updates send")
            .iter()
            .map(|s| &s.span_id)
            .collect();
        let batch = named(&r, "stock-updates process")[0];
        let linked: HashSet<&Vec<u8>> = batch.links.iter().map(|l| &l.span_id).collect();
        assert_eq!(sends.len(), 3);
        assert_eq!(linked, sends);
    }

    #[test]
    fn pubsub_keeps_only_the_message_id() {
        let mut g = Generator::new(5);
        let r = g.flow(FlowKind::PubsubLostContext, NOW);
        let publish = named(&r, "report-requests publish")[0];
        let process = named(&r, "report-requests process")[0];
        let id = |s: &Span| {
            s.attributes
                .iter()
                .find(|kv| kv.key == "messaging.message.id")
                .cloned()
        };
        assert!(id(publish).is_some());
        assert_eq!(id(publish), id(process));
        assert!(process.links.is_empty());
        assert_ne!(process.trace_id, publish.trace_id);
    }

    #[test]
    fn the_function_calls_back_as_the_parent_of_a_pod_span() {
        let mut g = Generator::new(9);
        let r = g.flow(FlowKind::FunctionCallsService, NOW);
        let client = named(&r, "GET")[0];
        let server = named(&r, "GET /customers/{id}")[0];
        assert_eq!(server.parent_span_id, client.span_id);
        assert_eq!(server.trace_id, client.trace_id);
        assert!(server.start_time_unix_nano >= client.start_time_unix_nano);
    }

    #[test]
    fn new_instances_start_cold_and_some_are_warmed_ahead() {
        let mut g = Generator::new(11);
        let (mut cold, mut warm, mut inits) = (0, 0, 0);
        for _ in 0..200 {
            let r = g.flow(FlowKind::SqsInvoice, NOW);
            let process = named(&r, "orders process")[0];
            let said = process
                .attributes
                .iter()
                .find(|kv| kv.key == "faas.coldstart")
                .and_then(|kv| kv.value.clone());
            match said.and_then(|v| v.value) {
                Some(opentelemetry_proto::tonic::common::v1::any_value::Value::BoolValue(true)) => {
                    cold += 1
                }
                Some(_) => warm += 1,
                None => panic!("no faas.coldstart"),
            }
            inits += named(&r, "Initialization").len();
        }
        assert!(cold > 10 && warm > 100, "cold {cold}, warm {warm}");
        assert!(inits > 0 && inits < cold, "init spans {inits}");
    }
}
