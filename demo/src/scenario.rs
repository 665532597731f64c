//! The demo's hybrid application, as pure generation: given a seed and the
//! current time, each call returns the OTLP requests one flow would make
//! its services export. Nothing here does IO or reads a clock, so a load
//! generator can reuse the same shapes at its own pace, and tests can check
//! them; the same seed and times always give the same bytes.
//!
//! ```text
//!  checkout (k8s) ──SQS orders──▶ invoice (Lambda)            link; slow hop: dwell 2.5-4 s
//!     │ └─HTTP─▶ payments (k8s)                                ordinary tracing
//!     ├──SNS order-events──▶ email-sender, analytics-ingest    one link each
//!     └──SQS refunds──▶ (nobody)                               unconsumed
//!  invoice (Lambda) ──HTTP──▶ customers (k8s)                  parent: sync crossing
//!  inventory (k8s) ──Kafka stock-updates ×3──▶ stock-projector one batch, three links
//!  reports (k8s) ──Pub/Sub report-requests──▶ report-renderer  Cloud Run; message id only
//!  (nobody) ──SQS audit──▶ audit-log (Lambda)                  orphan
//! ```
//!
//! Function instances live in small pools, so cold starts come and go as on
//! a real platform: new instances start cold (on demand, proactively
//! initialised, or provisioned), reused ones are warm.
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
/// How long before `now` a flow starts.
const FLOW_LEAD: u64 = 8 * S;

/// The kinds of flow the demo makes: each shows one way traces cross a
/// platform or a queue, and one thing Seam reports about it.
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
    /// Every kind, in the order a fresh generator first makes them.
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

    /// How often each kind comes after the first round, out of 24: the
    /// healthy kinds dominate, as in a real estate, while each problem kind
    /// (slow hop, lost message, orphan) still shows up about one flow in
    /// eight, so the views that list problems never stay empty for long.
    fn weight(self) -> u32 {
        match self {
            Self::SqsInvoice => 5,
            Self::SnsFanout | Self::FunctionCallsService => 3,
            Self::KafkaBatch | Self::PubsubLostContext => 2,
            Self::SlowQueue | Self::LostMessage | Self::BrokenPropagation => 3,
        }
    }
}

/// A function instance the demo reuses, as a platform keeps a warm one.
#[derive(Debug, Clone)]
struct Instance {
    id: String,
    provisioned: bool,
}

/// Makes flows. It owns the seeded randomness and the pools of warm
/// function instances, because whether an invocation is cold depends on
/// what came before it.
#[derive(Debug)]
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

/// A pod name shaped like a Deployment's (`<deployment>-<replicaset
/// hash>-<pod suffix>`), stable per service so pod-level views and the pod
/// cold-start heuristic see one long-lived pod, as in a steady cluster.
fn pod(service: &str) -> String {
    // FNV-1a: a fixed hash, so the name does not depend on the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| {
                let c = ALPHABET[(h % ALPHABET.len() as u64) as usize];
                h /= ALPHABET.len() as u64;
                char::from(c)
            })
            .collect()
    };
    let replicaset = pick(6);
    let suffix = pick(5);
    format!("{service}-{replicaset}-{suffix}")
}

/// How one function invocation runs: on which instance, and what its
/// start cost. Drawn before the spans are built so that the handler's
/// children can be placed after any cold-start delay.
struct Invocation {
    instance: Instance,
    /// The instance's first invocation.
    cold: bool,
    /// For an instance the platform initialised ahead of time: how long
    /// before this invocation its init span ended.
    init_gap: Option<u64>,
    /// Extra handler time of an on-demand cold start (lazy loading, first
    /// connections): the latency a user pays and Seam reports.
    penalty: u64,
}

impl Generator {
    /// A generator whose every id, value and choice follows from `seed`, so
    /// a run (or a failing test) can be reproduced exactly.
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

    /// A random (version 4) UUID, the shape SQS and SNS message ids and
    /// AWS request ids have.
    fn uuid(&mut self) -> String {
        let mut b: [u8; 16] = self.rng.random();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
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

    /// The next flow, for callers that want a realistic mix rather than one
    /// kind: the first eight calls make one of each kind (in
    /// [`FlowKind::ALL`] order), so a fresh demo shows everything at once;
    /// later ones are drawn with the kinds' weights.
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

    /// One flow of `kind`: one request per service and trace, as each SDK
    /// would export them. Every span ends at or before `now_unix_nano` (a
    /// wall-clock time), so the requests can be sent at once and look
    /// like a flow that just finished.
    pub fn flow(&mut self, kind: FlowKind, now_unix_nano: u64) -> Vec<ExportTraceServiceRequest> {
        // The longest flow (a slow queue hop after an on-demand cold start)
        // lasts under 6 s; starting it 8 s ago keeps it whole in the past.
        let t0 = now_unix_nano.saturating_sub(FLOW_LEAD);
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

    /// Picks a warm instance of `function`, or, about one time in four,
    /// a new one, so the cold-start views always have material: about a
    /// third of new instances were initialised proactively (an init span
    /// 15-60 s earlier) and one in ten is provisioned concurrency.
    fn invocation(&mut self, function: &'static str) -> Invocation {
        let warm = self.instances.get(function).map_or(0, Vec::len);
        if warm > 0 && !self.rng.random_bool(0.25) {
            let i = self.rng.random_range(0..warm);
            return Invocation {
                instance: self.instances[function][i].clone(),
                cold: false,
                init_gap: None,
                penalty: 0,
            };
        }
        let suffix: [u8; 16] = self.rng.random();
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let instance = Instance {
            id: format!("2026/11/24/[$LATEST]{hex}"),
            provisioned: self.rng.random_bool(0.1),
        };
        self.remember(function, instance.clone());
        let proactive = !instance.provisioned && self.rng.random_bool(1.0 / 3.0);
        let init_gap = proactive.then(|| self.between(15_000, 60_000) * MS);
        let on_demand = !proactive && !instance.provisioned;
        let penalty = if on_demand {
            self.between(300, 900) * MS
        } else {
            0
        };
        Invocation {
            instance,
            cold: true,
            init_gap,
            penalty,
        }
    }

    /// Adds a new instance to `function`'s warm pool.
    fn remember(&mut self, function: &'static str, instance: Instance) {
        let pool = self.instances.entry(function).or_default();
        pool.push(instance);
        if pool.len() > 6 {
            // The platform reclaims idle instances.
            pool.remove(0);
        }
    }

    /// A Cloud Run instance of `service` and whether it is new: reused
    /// while warm, new about one time in four. Cloud Run's instrumentation
    /// does not say when it starts cold, so a new instance shows only
    /// through Seam's first-invocation heuristic and a slower request.
    fn cloud_run_instance(&mut self, service: &'static str) -> (String, bool) {
        let warm = self.instances.get(service).map_or(0, Vec::len);
        if warm > 0 && !self.rng.random_bool(0.25) {
            let i = self.rng.random_range(0..warm);
            return (self.instances[service][i].id.clone(), false);
        }
        let bytes: [u8; 32] = self.rng.random();
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.remember(
            service,
            Instance {
                id: id.clone(),
                provisioned: false,
            },
        );
        (id, true)
    }

    fn lambda_resource(function: &str, instance: &Instance) -> Vec<KeyValue> {
        let mut r = vec![
            kv("service.name", function),
            kv("service.version", "2.3.0"),
            kv("cloud.provider", "aws"),
            kv("cloud.platform", "aws_lambda"),
            kv("cloud.region", "eu-west-1"),
            kv("cloud.account.id", "123456789012"),
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

    /// The request one Lambda invocation exports, as the AWS Lambda
    /// instrumentation shapes it: the `handler` span (the invocation span,
    /// lasting `penalty + work` from `start`) with `faas.invocation_id` and
    /// `faas.coldstart`, its `children`, and, on a proactively initialised
    /// instance, the "Initialization" span that ran long before, in a trace
    /// of its own.
    fn lambda_request(
        &mut self,
        function: &'static str,
        inv: &Invocation,
        start: u64,
        work: u64,
        handler: SpanBuilder,
        children: Vec<Span>,
    ) -> ExportTraceServiceRequest {
        let invocation_id = self.uuid();
        let mut spans = vec![
            handler
                .time(start, start + inv.penalty + work)
                .attr("faas.invocation_id", invocation_id)
                .attr("faas.coldstart", inv.cold)
                .attr(
                    "cloud.resource_id",
                    format!("arn:aws:lambda:eu-west-1:123456789012:function:{function}"),
                )
                .build(),
        ];
        spans.extend(children);
        if let Some(gap) = inv.init_gap {
            let init_end = start.saturating_sub(gap);
            let init_start = init_end.saturating_sub(self.between(200, 600) * MS);
            let (init_trace, init_id) = (self.trace_id(), self.span_id());
            spans.push(
                span(init_trace, init_id, "Initialization", SpanKind::Internal)
                    .time(init_start, init_end)
                    .build(),
            );
        }
        request(
            Self::lambda_resource(function, &inv.instance),
            "opentelemetry.instrumentation.aws_lambda",
            spans,
        )
    }

    /// A Lambda invocation with no child spans.
    fn lambda_only(
        &mut self,
        function: &'static str,
        start: u64,
        work: u64,
        handler: SpanBuilder,
    ) -> ExportTraceServiceRequest {
        let inv = self.invocation(function);
        self.lambda_request(function, &inv, start, work, handler, Vec::new())
    }

    /// An AWS request id as the SDKs record it in `aws.request_id`.
    fn aws_request_id(&mut self) -> String {
        self.uuid()
    }

    /// Checkout takes an order: charges payments (ordinary in-cluster
    /// tracing) and sends the order to SQS; the `invoice` Lambda processes
    /// it in a new trace linked to the send span, `dwell` after it ended.
    fn sqs_invoice(&mut self, t0: u64, dwell: u64) -> Vec<ExportTraceServiceRequest> {
        let (trace, root, send, charge, charged) = (
            self.trace_id(),
            self.span_id(),
            self.span_id(),
            self.span_id(),
            self.span_id(),
        );
        let message_id = self.uuid();
        let send_request_id = self.aws_request_id();
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
                    .attr("url.scheme", "http")
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
                    .attr(
                        "aws.sqs.queue_url",
                        "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
                    )
                    .attr("aws.request_id", send_request_id)
                    .attr("rpc.system", "aws-api")
                    .attr("rpc.service", "SQS")
                    .attr("rpc.method", "SendMessage")
                    .attr("server.address", "sqs.eu-west-1.amazonaws.com")
                    .build(),
                span(trace, charge, "POST", SpanKind::Client)
                    .parent(root)
                    .time(t0 + 50 * MS, t0 + 100 * MS)
                    .attr("http.request.method", "POST")
                    .attr("url.full", "http://payments.shop.svc/charges")
                    .attr("server.address", "payments.shop.svc")
                    .attr("http.response.status_code", 200i64)
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
        let inv = self.invocation("invoice");
        let put_start = start + inv.penalty + 10 * MS;
        let put_request_id = self.aws_request_id();
        let children = vec![
            span(itrace, put, "DynamoDB.PutItem", SpanKind::Client)
                .parent(process)
                .time(put_start, put_start + work - 20 * MS)
                .attr("rpc.system", "aws-api")
                .attr("rpc.service", "DynamoDB")
                .attr("rpc.method", "PutItem")
                .attr("db.system.name", "aws.dynamodb")
                .attr("aws.dynamodb.table_names", "invoices")
                .attr("aws.request_id", put_request_id)
                .attr("server.address", "dynamodb.eu-west-1.amazonaws.com")
                .build(),
        ];
        let handler = span(itrace, process, "orders process", SpanKind::Consumer)
            .attr("faas.trigger", "pubsub")
            .attr("messaging.system", "aws_sqs")
            .attr("messaging.operation.type", "process")
            .attr("messaging.destination.name", "orders")
            .attr("messaging.message.id", message_id)
            .link(trace, send);
        let invoice = self.lambda_request("invoice", &inv, start, work, handler, children);
        vec![checkout, payments, invoice]
    }

    /// Checkout publishes one order event to SNS; two subscribed Lambdas each
    /// process it in a trace of their own, linked to the publish span.
    fn sns_fanout(&mut self, t0: u64) -> Vec<ExportTraceServiceRequest> {
        let (trace, root, publish) = (self.trace_id(), self.span_id(), self.span_id());
        let message_id = self.uuid();
        let request_id = self.aws_request_id();
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
                    .attr("aws.request_id", request_id)
                    .attr("server.address", "sns.eu-west-1.amazonaws.com")
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
            out.push(self.lambda_only(function, start, work, handler));
        }
        out
    }

    /// Inventory sends three Kafka records; the projector consumes them as
    /// one batch whose process span links to each send span.
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
            let sku = self.between(1000, 9999);
            // The key picks the partition, as Kafka's default partitioner does.
            let partition = (sku % 6).to_string();
            let offset = i64::try_from(self.between(100_000, 900_000)).unwrap_or(i64::MAX);
            spans.push(
                span(trace, id, "stock-updates send", SpanKind::Producer)
                    .parent(root)
                    .time(t0 + (10 + 20 * i) * MS, t0 + (15 + 20 * i) * MS)
                    .attr("messaging.system", "kafka")
                    .attr("messaging.operation.type", "send")
                    .attr("messaging.destination.name", "stock-updates")
                    .attr("messaging.destination.partition.id", partition)
                    .attr("messaging.kafka.message.key", format!("sku-{sku}"))
                    .attr("messaging.kafka.offset", offset)
                    .attr("server.address", "kafka.shop.svc")
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

    /// Reports publishes to Pub/Sub; a push subscription calls Cloud Run
    /// without trace context, so only the message id connects the two.
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
        let (instance, new) = self.cloud_run_instance("report-renderer");
        let penalty = if new {
            self.between(500, 1_500) * MS
        } else {
            0
        };
        let work = penalty + self.between(300, 1_200) * MS;
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

    /// The `invoice` function, called over HTTP, calls the `customers`
    /// service on Kubernetes with context propagated: one trace whose
    /// client span (function) is the parent of a server span (pod), the
    /// synchronous kind of platform crossing.
    fn function_calls_service(&mut self, t0: u64) -> Vec<ExportTraceServiceRequest> {
        let (trace, root, client, server) = (
            self.trace_id(),
            self.span_id(),
            self.span_id(),
            self.span_id(),
        );
        let customer = self.between(1, 5000);
        let call = self.between(10, 40) * MS;
        let work = (self.between(60, 200) * MS).max(call + 40 * MS);
        let inv = self.invocation("invoice");
        // A cold start's delay comes before the handler's own work.
        let call_start = t0 + inv.penalty + 20 * MS;
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
                .attr("server.port", 80i64)
                .attr("http.response.status_code", 200i64)
                .build(),
        ];
        let handler = span(trace, root, "GET /invoices/{id}", SpanKind::Server)
            .attr("faas.trigger", "http")
            .attr("http.request.method", "GET")
            .attr("http.route", "/invoices/{id}")
            .attr("http.response.status_code", 200i64);
        let function = self.lambda_request("invoice", &inv, t0, work, handler, children);
        let service = request(
            k8s("customers", &pod("customers")),
            "io.opentelemetry.spring-webmvc-6.0",
            vec![
                span(trace, server, "GET /customers/{id}", SpanKind::Server)
                    .parent(client)
                    .time(call_start + 2 * MS, call_start + 2 * MS + call)
                    .attr("http.request.method", "GET")
                    .attr("http.route", "/customers/{id}")
                    .attr("url.path", format!("/customers/{customer}"))
                    .attr("http.response.status_code", 200i64)
                    .build(),
            ],
        );
        vec![function, service]
    }

    /// Checkout sends a refund to a queue nobody consumes: an unconsumed
    /// producer once the window closes.
    fn lost_message(&mut self, t0: u64) -> Vec<ExportTraceServiceRequest> {
        let (trace, root, send) = (self.trace_id(), self.span_id(), self.span_id());
        let message_id = self.uuid();
        let request_id = self.aws_request_id();
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
                    .attr("messaging.operation.name", "SendMessage")
                    .attr("messaging.destination.name", "refunds")
                    .attr("messaging.message.id", message_id)
                    .attr("aws.request_id", request_id)
                    .attr("server.address", "sqs.eu-west-1.amazonaws.com")
                    .build(),
            ],
        )]
    }

    /// A Lambda processes a message whose producer never exports anything:
    /// a consumer with no link, no parent and an unmatched message id.
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
        vec![self.lambda_only("audit-log", t0 + 300 * MS, work, handler)]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;

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

    fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Any> {
        attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
        match attr(attributes, key) {
            Some(Any::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    /// The request holding the span named `name`, with its resource.
    fn request_of<'a>(
        requests: &'a [ExportTraceServiceRequest],
        name: &str,
    ) -> &'a ExportTraceServiceRequest {
        requests
            .iter()
            .find(|r| {
                r.resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .flat_map(|s| &s.spans)
                    .any(|s| s.name == name)
            })
            .unwrap()
    }

    fn resource(request: &ExportTraceServiceRequest) -> &[KeyValue] {
        &request.resource_spans[0]
            .resource
            .as_ref()
            .unwrap()
            .attributes
    }

    #[test]
    fn every_kind_makes_valid_spans_in_the_past() {
        let mut g = Generator::new(7);
        for kind in FlowKind::ALL {
            for _ in 0..50 {
                let requests = g.flow(kind, NOW);
                assert!(!requests.is_empty());
                for r in &requests {
                    // One resource (one service) per request, as an SDK sends.
                    assert_eq!(r.resource_spans.len(), 1, "{kind:?}");
                    assert!(text(resource(r), "service.name").is_some(), "{kind:?}");
                }
                for s in spans(&requests) {
                    assert_eq!(s.trace_id.len(), 16, "{kind:?}");
                    assert_eq!(s.span_id.len(), 8, "{kind:?}");
                    assert!(s.trace_id.iter().any(|b| *b != 0), "{kind:?}");
                    assert!(s.span_id.iter().any(|b| *b != 0), "{kind:?}");
                    assert!(s.parent_span_id.is_empty() || s.parent_span_id.len() == 8);
                    for l in &s.links {
                        assert_eq!((l.trace_id.len(), l.span_id.len()), (16, 8));
                    }
                    assert!(s.start_time_unix_nano > 0, "{kind:?} {}", s.name);
                    assert!(
                        s.end_time_unix_nano >= s.start_time_unix_nano,
                        "{kind:?} {}",
                        s.name
                    );
                    assert!(s.end_time_unix_nano <= NOW, "{kind:?} {}", s.name);
                    assert!(NOW - s.start_time_unix_nano < 2 * 60 * S, "{kind:?}");
                    assert!(!s.name.is_empty());
                }
            }
        }
    }

    #[test]
    fn parents_are_in_the_same_trace_and_enclose_nothing_later() {
        let mut g = Generator::new(8);
        for kind in FlowKind::ALL {
            let requests = g.flow(kind, NOW);
            let all = spans(&requests);
            for s in &all {
                if s.parent_span_id.is_empty() {
                    continue;
                }
                let parent = all
                    .iter()
                    .find(|p| p.span_id == s.parent_span_id)
                    .unwrap_or_else(|| panic!("{kind:?}: {} has no parent", s.name));
                assert_eq!(parent.trace_id, s.trace_id, "{kind:?} {}", s.name);
                assert!(s.start_time_unix_nano >= parent.start_time_unix_nano);
            }
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_flows() {
        let (mut a, mut b) = (Generator::new(42), Generator::new(42));
        for _ in 0..50 {
            assert_eq!(a.next_flow(NOW), b.next_flow(NOW));
        }
        let mut c = Generator::new(43);
        assert_ne!(Generator::new(42).next_flow(NOW), c.next_flow(NOW));
    }

    #[test]
    fn the_first_round_has_every_kind_and_problems_keep_coming() {
        let mut g = Generator::new(1);
        let kinds: HashSet<FlowKind> = (0..8).map(|_| g.next_flow(NOW).0).collect();
        assert_eq!(kinds.len(), 8);
        let later: Vec<FlowKind> = (0..800).map(|_| g.next_flow(NOW).0).collect();
        for problem in [
            FlowKind::SlowQueue,
            FlowKind::LostMessage,
            FlowKind::BrokenPropagation,
        ] {
            let n = later.iter().filter(|k| **k == problem).count();
            assert!((50..150).contains(&n), "{problem:?}: {n} in 800");
        }
    }

    #[test]
    fn the_sqs_consumer_links_to_the_producer_after_its_dwell() {
        let mut g = Generator::new(3);
        for (kind, dwell) in [
            (FlowKind::SqsInvoice, 50 * MS..400 * MS),
            (FlowKind::SlowQueue, 2_500 * MS..4_000 * MS),
        ] {
            let r = g.flow(kind, NOW);
            let send = named(&r, "orders send")[0];
            let process = named(&r, "orders process")[0];
            assert_eq!(send.kind, SpanKind::Producer as i32);
            assert_eq!(process.kind, SpanKind::Consumer as i32);
            assert!(process.parent_span_id.is_empty());
            assert_eq!(process.links.len(), 1);
            assert_eq!(process.links[0].trace_id, send.trace_id);
            assert_eq!(process.links[0].span_id, send.span_id);
            assert_ne!(process.trace_id, send.trace_id);
            let waited = process.start_time_unix_nano - send.end_time_unix_nano;
            assert!(dwell.contains(&waited), "{kind:?}: {waited}");
            assert_eq!(
                text(&send.attributes, "messaging.message.id"),
                text(&process.attributes, "messaging.message.id")
            );
            assert_eq!(text(&process.attributes, "faas.trigger"), Some("pubsub"));
            let put = named(&r, "DynamoDB.PutItem")[0];
            assert_eq!(put.parent_span_id, process.span_id);
            let lambda = resource(request_of(&r, "orders process"));
            assert_eq!(text(lambda, "cloud.platform"), Some("aws_lambda"));
            assert_eq!(text(lambda, "faas.name"), Some("invoice"));
            let checkout = resource(request_of(&r, "orders send"));
            assert_eq!(text(checkout, "cloud.platform"), Some("aws_eks"));
            assert_eq!(text(checkout, "k8s.namespace.name"), Some("shop"));
        }
    }

    #[test]
    fn the_sns_fanout_reaches_two_functions() {
        let mut g = Generator::new(4);
        let r = g.flow(FlowKind::SnsFanout, NOW);
        let publish = named(&r, "order-events publish")[0];
        let processes = named(&r, "order-events process");
        assert_eq!(processes.len(), 2);
        let mut functions = HashSet::new();
        for p in processes {
            assert_eq!(p.links.len(), 1);
            assert_eq!(p.links[0].span_id, publish.span_id);
            assert_ne!(p.trace_id, publish.trace_id);
            assert_eq!(
                text(&p.attributes, "messaging.message.id"),
                text(&publish.attributes, "messaging.message.id")
            );
            let req = r
                .iter()
                .find(|q| q.resource_spans[0].scope_spans[0].spans.contains(p))
                .unwrap();
            functions.insert(text(resource(req), "faas.name").unwrap().to_owned());
        }
        assert_eq!(
            functions,
            HashSet::from(["email-sender".to_owned(), "analytics-ingest".to_owned()])
        );
    }

    #[test]
    fn the_kafka_batch_links_each_record() {
        let mut g = Generator::new(5);
        let r = g.flow(FlowKind::KafkaBatch, NOW);
        let sends = named(&r, "stock-updates send");
        let batch = named(&r, "stock-updates process")[0];
        assert_eq!(sends.len(), 3);
        let sent: HashSet<(&Vec<u8>, &Vec<u8>)> =
            sends.iter().map(|s| (&s.trace_id, &s.span_id)).collect();
        let linked: HashSet<(&Vec<u8>, &Vec<u8>)> = batch
            .links
            .iter()
            .map(|l| (&l.trace_id, &l.span_id))
            .collect();
        assert_eq!(batch.links.len(), 3);
        assert_eq!(linked, sent);
        assert_eq!(
            attr(&batch.attributes, "messaging.batch.message_count"),
            Some(&Any::IntValue(3))
        );
        assert_ne!(batch.trace_id, sends[0].trace_id);
    }

    #[test]
    fn pubsub_keeps_only_the_message_id() {
        let mut g = Generator::new(5);
        let r = g.flow(FlowKind::PubsubLostContext, NOW);
        let publish = named(&r, "report-requests publish")[0];
        let process = named(&r, "report-requests process")[0];
        let root = named(&r, "POST /")[0];
        let id = text(&publish.attributes, "messaging.message.id").unwrap();
        assert!(id.len() >= 10 && id.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(Some(id), text(&process.attributes, "messaging.message.id"));
        for s in [process, root] {
            assert!(s.links.is_empty());
            assert_ne!(s.trace_id, publish.trace_id);
            assert_ne!(s.parent_span_id, publish.span_id);
        }
        assert!(root.parent_span_id.is_empty());
        assert_eq!(process.parent_span_id, root.span_id);
        let run = resource(request_of(&r, "POST /"));
        assert_eq!(text(run, "cloud.platform"), Some("gcp_cloud_run"));
    }

    #[test]
    fn the_function_calls_back_as_the_parent_of_a_pod_span() {
        let mut g = Generator::new(9);
        for _ in 0..20 {
            let r = g.flow(FlowKind::FunctionCallsService, NOW);
            let client = named(&r, "GET")[0];
            let server = named(&r, "GET /customers/{id}")[0];
            assert_eq!(server.parent_span_id, client.span_id);
            assert_eq!(server.trace_id, client.trace_id);
            assert!(server.start_time_unix_nano >= client.start_time_unix_nano);
            assert!(server.end_time_unix_nano <= client.end_time_unix_nano);
            let function = resource(request_of(&r, "GET"));
            assert_eq!(text(function, "cloud.platform"), Some("aws_lambda"));
            let pod = resource(request_of(&r, "GET /customers/{id}"));
            assert_eq!(text(pod, "k8s.deployment.name"), Some("customers"));
        }
    }

    #[test]
    fn lost_and_orphaned_messages_have_no_partner() {
        let mut g = Generator::new(10);
        let r = g.flow(FlowKind::LostMessage, NOW);
        assert_eq!(spans(&r).len(), 2);
        assert!(
            spans(&r)
                .iter()
                .all(|s| s.kind != SpanKind::Consumer as i32)
        );
        let send = named(&r, "refunds send")[0];
        assert_eq!(
            text(&send.attributes, "messaging.destination.name"),
            Some("refunds")
        );

        let r = g.flow(FlowKind::BrokenPropagation, NOW);
        let process = named(&r, "audit process")[0];
        assert!(process.links.is_empty() && process.parent_span_id.is_empty());
        assert!(text(&process.attributes, "messaging.message.id").is_some());
        assert_eq!(text(resource(&r[0]), "faas.name"), Some("audit-log"));
    }

    #[test]
    fn pods_have_stable_distinct_names() {
        assert_eq!(pod("checkout"), pod("checkout"));
        assert_ne!(pod("checkout"), pod("payments"));
        assert!(pod("checkout").starts_with("checkout-"));
    }

    #[test]
    fn new_instances_start_cold_and_some_are_warmed_ahead() {
        let mut g = Generator::new(11);
        let (mut cold, mut warm, mut inits, mut provisioned) = (0, 0, 0, 0);
        let mut seen = HashSet::new();
        for _ in 0..400 {
            let r = g.flow(FlowKind::SqsInvoice, NOW);
            let process = named(&r, "orders process")[0];
            let lambda = resource(request_of(&r, "orders process"));
            let instance = text(lambda, "faas.instance").unwrap().to_owned();
            assert!(instance.starts_with("2026/11/24/[$LATEST]"));
            assert_eq!(instance.len(), "2026/11/24/[$LATEST]".len() + 32);
            let first = seen.insert(instance);
            let said = attr(&process.attributes, "faas.coldstart");
            assert_eq!(said, Some(&Any::BoolValue(first)));
            if first {
                cold += 1;
            } else {
                warm += 1;
            }
            if text(lambda, "aws.lambda.initialization_type") == Some("provisioned-concurrency") {
                provisioned += usize::from(first);
            }
            for init in named(&r, "Initialization") {
                assert!(first, "an init span only precedes a first invocation");
                assert_eq!(init.kind, SpanKind::Internal as i32);
                let gap = process.start_time_unix_nano - init.end_time_unix_nano;
                assert!((15 * S..60 * S).contains(&gap), "gap {gap}");
                inits += 1;
            }
        }
        assert!(cold > 40 && warm > 200, "cold {cold}, warm {warm}");
        assert!(
            inits > 5 && inits < cold / 2,
            "init spans {inits} of {cold}"
        );
        assert!(provisioned > 0 && provisioned < cold / 4, "{provisioned}");
    }
}
