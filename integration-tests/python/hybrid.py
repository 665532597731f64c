"""A hybrid application (Kubernetes services, AWS Lambda and Cloud Run
functions, queues and topics between them) exported to Seam with the
official OpenTelemetry Python SDK, for the black-box stitching tests.

Usage:
  hybrid.py --protocol grpc|http --endpoint URL --scenario NAME [--scenario NAME ...]
            [--phase producer|consumer|all] [--state FILE]

Every simulated service has a TracerProvider of its own with its own
Resource (Kubernetes: k8s.pod.name, k8s.namespace.name,
cloud.platform=aws_eks; Lambda: cloud.provider=aws, cloud.platform=aws_lambda,
faas.name, faas.instance; Cloud Run: cloud.platform=gcp_cloud_run). Spans are
exported synchronously (SimpleSpanProcessor), so when the script prints, Seam
has acknowledged every span; if any export failed it exits with status 1.

Context is propagated the way applications do it: a `parent` stitch injects
the producer span's context with the W3C TraceContext propagator into the
message attributes (a dict) and extracts it on the consumer side; a link is
`Link(producer_span.get_span_context())`.

Every span has explicit start and end times (nanoseconds) relative to a base
time a few minutes in the past, so the latencies Seam computes are exact;
the offsets are given per scenario below.

Phases: `producer` emits the producer side of the chosen scenarios only,
`consumer` the consumer side only, `all` (the default) both. The span ids
of the producer side are chosen before either side is emitted and kept in
--state FILE together with the base time and the propagated message
attributes, so the two phases can run in either order, long apart, or
across a server restart: the phase that runs first creates FILE, the other
reads it (and adds its own ids).

Prints one JSON object: scenario name -> the ids it produced (lowercase hex,
32 characters for trace ids, 16 for span ids), with the ids of the other
phase too when they were in the state file.

Scenarios and their exact timings (P = producer span, C = consumer span):
  sqs_link     checkout (k8s) SERVER "POST /checkout" > PRODUCER "orders send"
               (aws_sqs, orders); invoice (Lambda) root CONSUMER "orders
               process" linking P, faas.trigger=pubsub; C.start = P.end + 200 ms
  parent       orders-api (k8s) PRODUCER "payments publish" (rabbitmq);
               payment-worker (Lambda) CONSUMER "payments process", child of
               P through the message attributes; C.start = P.end + 300 ms
  correlation  reports (k8s) PRODUCER "report-requests publish" (gcp_pubsub,
               message id 4523198744123); report-renderer (Cloud Run) root
               SERVER "POST /" (faas.trigger=pubsub) > CONSUMER
               "report-requests process" with the same message id, no link,
               no parent; C.start = P.end + 405 ms
  fanout       checkout PRODUCER "order-events publish" (aws_sns) >
               email-sender (+100 ms) and analytics-ingest (+150 ms), each a
               Lambda CONSUMER in its own trace, linking P
  batch        inventory (k8s) three PRODUCER "stock-updates send" (kafka) in
               one trace, ending at +15, +25, +35 ms; stock-projector (k8s)
               one CONSUMER with three links, messaging.batch.message_count=3,
               starting at +285 ms: latencies 270, 260, 250 ms
  sync         checkout CLIENT "POST" (+10 ms) > pricing (Lambda) SERVER
               "POST /price" (+50 ms, faas.trigger=http) > CLIENT "GET"
               (+100 ms) > catalog (k8s) SERVER "GET /items/{id}" (+130 ms);
               one trace, sync latencies 40 ms and 30 ms
  multihop     checkout > SQS orders (link, 200 ms) > invoice (Lambda) > SQS
               invoices (link, 500 ms) > mailer (Lambda) > CLIENT "POST"
               (+900 ms) > notifications (k8s) SERVER "POST /notify"
               (+920 ms, sync 20 ms); three traces
  skew         sqs_link into `skewed`, C.start = P.end - 500 ms
  slow         sqs_link into `slow-orders`, C.start = P.end + 3 s
  legacy       checkout PRODUCER with the old attribute names
               (messaging.destination=legacy-q, messaging.message_id,
               messaging.operation=publish, messaging.system=AmazonSQS);
               invoice CONSUMER in a new trace (messaging.system=aws.sqs,
               messaging.operation=process, same message id), no link;
               C.start = P.end + 150 ms
  orphan       audit-log (Lambda) CONSUMER "audit process" (aws_sqs, audit)
               of a message nobody produced
  unconsumed   checkout PRODUCER "refunds send" (aws_sqs, refunds), never
               consumed
  redelivery   checkout PRODUCER "jobs send" (aws_sqs, jobs); job-runner
               (Lambda) consumes it twice, in two traces, both linking P:
               at P.end + 100 ms and 30 s later
  coldstart_attr         thumbnailer: SERVER "GET /thumb" with faas.coldstart=true,
                         then one with faas.coldstart=false 5 s later
  coldstart_init         resizer: "Initialization" (800 ms) ends 50 ms before the
                         first invocation (1200 ms); a second (200 ms) 10 s later
  coldstart_proactive    warmer: "Initialization" ends 30 s before the invocation
  coldstart_provisioned  steady: aws.lambda.initialization_type=
                         provisioned-concurrency and faas.coldstart=true
  coldstart_heuristic    fresh: a new faas.instance, two invocations without any
                         cold-start evidence; api-gateway: a new pod, two
                         requests. The consumer phase adds a third invocation
                         on the same instance (for a restart in between).

The producer phase of the cold-start scenarios emits all their spans except
coldstart_heuristic's third invocation, which is its consumer phase.
"""

import argparse
import json
import os
import sys
import time
import uuid

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

MS = 1_000_000
S = 1_000_000_000

SCENARIOS = [
    "sqs_link",
    "parent",
    "correlation",
    "fanout",
    "batch",
    "sync",
    "multihop",
    "skew",
    "slow",
    "legacy",
    "orphan",
    "unconsumed",
    "redelivery",
    "coldstart_attr",
    "coldstart_init",
    "coldstart_proactive",
    "coldstart_provisioned",
    "coldstart_heuristic",
]

PROPAGATOR = TraceContextTextMapPropagator()


class CheckedExporter:
    """Wraps an OTLP exporter and counts the exports that did not succeed
    (a failed result or an exception), so the script can fail loudly."""

    failures = 0

    def __init__(self, inner):
        self.inner = inner

    def export(self, spans):
        try:
            result = self.inner.export(spans)
        except Exception as e:  # noqa: BLE001 - any failure counts
            print(f"export raised {e!r}", file=sys.stderr)
            CheckedExporter.failures += 1
            raise
        if result is not SpanExportResult.SUCCESS:
            CheckedExporter.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


class PlannedIds(IdGenerator):
    """Random ids, except for the next span when its ids were chosen in
    advance: the producer side of a hop must have the ids the consumer side
    already linked to when the consumer phase ran first."""

    def __init__(self):
        self.random = RandomIdGenerator()
        self.trace_id = None
        self.span_id = None

    def generate_trace_id(self):
        planned, self.trace_id = self.trace_id, None
        return planned if planned is not None else self.random.generate_trace_id()

    def generate_span_id(self):
        planned, self.span_id = self.span_id, None
        return planned if planned is not None else self.random.generate_span_id()


def new_trace_id():
    return format(RandomIdGenerator().generate_trace_id(), "032x")


def new_span_id():
    return format(RandomIdGenerator().generate_span_id(), "016x")


def hexes(span):
    c = span.get_span_context()
    return format(c.trace_id, "032x"), format(c.span_id, "016x")


def remote_context(trace_hex, span_hex):
    """The span context of a span of another process, as a link target or a
    propagation source."""
    return SpanContext(
        trace_id=int(trace_hex, 16),
        span_id=int(span_hex, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def messaging(system, operation, destination, message_id=None):
    """Messaging attributes with the current semantic-convention names."""
    attrs = {
        "messaging.system": system,
        "messaging.operation.type": operation,
        "messaging.destination.name": destination,
    }
    if message_id is not None:
        attrs["messaging.message.id"] = message_id
    return attrs


def legacy_messaging(system, operation, destination, message_id):
    """The same with the names of semantic conventions before 1.24."""
    return {
        "messaging.system": system,
        "messaging.operation": operation,
        "messaging.destination": destination,
        "messaging.message_id": message_id,
    }


def http_server(method, route, status=200):
    return {
        "http.request.method": method,
        "http.route": route,
        "url.path": route,
        "http.response.status_code": status,
    }


def http_client(method, url, status=200):
    return {
        "http.request.method": method,
        "url.full": url,
        "server.address": url.split("/")[2],
        "http.response.status_code": status,
    }


class Run:
    """The services of one script run and the state shared by its phases."""

    def __init__(self, protocol, endpoint, phase, state):
        self.protocol = protocol
        self.endpoint = endpoint
        self.phase = phase
        self.state = state
        # A few minutes ago, so that every span, even 60 s after the base, is
        # in the past; kept in the state so that both phases agree.
        self.t0 = state.setdefault("t0", time.time_ns() - 5 * 60 * S)
        self.scenarios = state.setdefault("scenarios", {})
        self.ids_generator = PlannedIds()
        self.providers = {}
        # One pod or instance per service for the whole run, unless given.
        self.default_instances = {}

    # -- phases ---------------------------------------------------------

    def produces(self):
        return self.phase in ("all", "producer")

    def consumes(self):
        return self.phase in ("all", "consumer")

    def ids(self, scenario):
        return self.scenarios.setdefault(scenario, {})

    # -- services -------------------------------------------------------

    def exporter(self):
        if self.protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(endpoint=self.endpoint, insecure=True)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=self.endpoint.rstrip("/") + "/v1/traces")

    def tracer(self, key, attributes):
        """One TracerProvider per simulated service (per resource)."""
        if key not in self.providers:
            provider = TracerProvider(
                resource=Resource.create(attributes), id_generator=self.ids_generator
            )
            provider.add_span_processor(SimpleSpanProcessor(CheckedExporter(self.exporter())))
            self.providers[key] = provider
        return self.providers[key].get_tracer("seam.hybrid", "1.0.0")

    def k8s(self, service, pod=None):
        pod = pod or self.default_instances.setdefault(
            ("k8s", service), f"{service}-6b7c9d-{uuid.uuid4().hex[:5]}"
        )
        return self.tracer(
            ("k8s", service, pod),
            {
                "service.name": service,
                "service.namespace": "shop",
                "k8s.namespace.name": "shop",
                "k8s.deployment.name": service,
                "k8s.pod.name": pod,
                "k8s.cluster.name": "prod-eu",
                "cloud.provider": "aws",
                "cloud.platform": "aws_eks",
            },
        )

    def lambda_(self, name, instance=None, **extra):
        instance = instance or self.default_instances.setdefault(
            ("lambda", name), f"2026/11/24/[$LATEST]{uuid.uuid4().hex}"
        )
        attributes = {
            "service.name": name,
            "cloud.provider": "aws",
            "cloud.platform": "aws_lambda",
            "cloud.region": "eu-west-1",
            "faas.name": name,
            "faas.version": "$LATEST",
            "faas.instance": instance,
            "faas.max_memory": 536870912,
        }
        attributes.update(extra)
        return self.tracer(("lambda", name, instance, tuple(sorted(extra.items()))), attributes)

    def cloud_run(self, name):
        instance = self.default_instances.setdefault(("cloud_run", name), uuid.uuid4().hex * 2)
        return self.tracer(
            ("cloud_run", name, instance),
            {
                "service.name": name,
                "cloud.provider": "gcp",
                "cloud.platform": "gcp_cloud_run",
                "cloud.region": "europe-west1",
                "faas.name": name,
                "faas.version": f"{name}-00042-xuv",
                "faas.instance": instance,
            },
        )

    def shutdown(self):
        for provider in self.providers.values():
            provider.shutdown()

    # -- spans ----------------------------------------------------------

    def start(self, tracer, name, kind, start, parent=None, attributes=None, links=(), ids=None):
        """Starts a span at `start` (ns). `parent` is a span, a Context, or
        None for a new trace; `ids` is (trace hex or None, span hex) when the
        span's ids were chosen in advance."""
        if parent is None:
            context = Context()
        elif isinstance(parent, Context):
            context = parent
        else:
            context = trace.set_span_in_context(parent, Context())
        if ids is not None:
            trace_hex, span_hex = ids
            self.ids_generator.trace_id = int(trace_hex, 16) if trace_hex else None
            self.ids_generator.span_id = int(span_hex, 16)
        span = tracer.start_span(
            name,
            context=context,
            kind=kind,
            attributes=attributes or {},
            links=list(links),
            start_time=start,
        )
        self.ids_generator.trace_id = self.ids_generator.span_id = None
        if ids is not None:
            want = (ids[0] or hexes(span)[0], ids[1])
            assert hexes(span) == want, f"planned ids {want}, got {hexes(span)}"
        return span

    def span(self, tracer, name, kind, start, end, **kw):
        """A span that starts and ends at once (exported when it ends)."""
        span = self.start(tracer, name, kind, start, **kw)
        span.end(end_time=end)
        return span


def plan(ids, key, kind="span"):
    """The id kept under `key`, chosen now if neither phase chose it yet."""
    if key not in ids:
        ids[key] = new_trace_id() if kind == "trace" else new_span_id()
    return ids[key]


def plan_message_id(ids, key="message_id"):
    if key not in ids:
        ids[key] = str(uuid.uuid4())
    return ids[key]


def carrier_for(ids, key, trace_key, span_key):
    """The message attributes the producer side injected its context into;
    when the consumer side runs first, the same W3C headers injected from the
    producer's planned span context."""
    if key not in ids:
        carrier = {}
        span = NonRecordingSpan(remote_context(ids[trace_key], ids[span_key]))
        PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span, Context()))
        ids[key] = carrier
    return ids[key]


def inject(ids, key, span):
    carrier = {}
    PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span, Context()))
    ids[key] = carrier


# -- scenarios ----------------------------------------------------------


def link_hop(run, name, destination, dwell):
    """checkout (k8s) sends to SQS; the invoice Lambda processes the message
    in a new trace that links to the send span."""
    ids, t0 = run.ids(name), run.t0
    p_trace = plan(ids, "producer_trace", "trace")
    p_root = plan(ids, "producer_root")
    p_span = plan(ids, "producer_span")
    message_id = plan_message_id(ids)
    p_start, p_end = t0 + 20 * MS, t0 + 40 * MS
    if run.produces():
        checkout = run.k8s("checkout")
        root = run.start(
            checkout, "POST /checkout", SpanKind.SERVER, t0,
            attributes=http_server("POST", "/checkout", 201), ids=(p_trace, p_root),
        )
        run.span(
            checkout, f"{destination} send", SpanKind.PRODUCER, p_start, p_end, parent=root,
            attributes=messaging("aws_sqs", "send", destination, message_id), ids=(None, p_span),
        )
        root.end(end_time=t0 + 120 * MS)
    if run.consumes():
        start = p_end + dwell
        attributes = messaging("aws_sqs", "process", destination, message_id)
        attributes.update({"faas.trigger": "pubsub", "faas.invocation_id": str(uuid.uuid4())})
        c = run.span(
            run.lambda_("invoice"), f"{destination} process", SpanKind.CONSUMER, start,
            start + 60 * MS, attributes=attributes, links=[Link(remote_context(p_trace, p_span))],
        )
        ids["consumer_trace"], ids["consumer_span"] = hexes(c)


def parent_hop(run, name):
    ids, t0 = run.ids(name), run.t0
    p_trace = plan(ids, "producer_trace", "trace")
    p_span = plan(ids, "producer_span")
    message_id = plan_message_id(ids)
    p_end = t0 + 30 * MS
    if run.produces():
        p = run.start(
            run.k8s("orders-api"), "payments publish", SpanKind.PRODUCER, t0,
            attributes=messaging("rabbitmq", "publish", "payments", message_id), ids=(p_trace, p_span),
        )
        # The context travels in the message's attributes (AMQP headers).
        inject(ids, "message_attributes", p)
        p.end(end_time=p_end)
    if run.consumes():
        carrier = carrier_for(ids, "message_attributes", "producer_trace", "producer_span")
        parent = PROPAGATOR.extract(carrier, context=Context())
        start = p_end + 300 * MS
        attributes = messaging("rabbitmq", "process", "payments", message_id)
        attributes["faas.trigger"] = "pubsub"
        c = run.span(
            run.lambda_("payment-worker"), "payments process", SpanKind.CONSUMER, start,
            start + 80 * MS, parent=parent, attributes=attributes,
        )
        ids["consumer_trace"], ids["consumer_span"] = hexes(c)


def correlation_hop(run, name):
    ids, t0 = run.ids(name), run.t0
    p_trace = plan(ids, "producer_trace", "trace")
    p_span = plan(ids, "producer_span")
    message_id = ids.setdefault("message_id", "4523198744123")
    p_end = t0 + 25 * MS
    if run.produces():
        run.span(
            run.k8s("reports"), "report-requests publish", SpanKind.PRODUCER, t0, p_end,
            attributes=messaging("gcp_pubsub", "publish", "report-requests", message_id),
            ids=(p_trace, p_span),
        )
    if run.consumes():
        # A push subscription: the context did not survive, only the id did.
        renderer = run.cloud_run("report-renderer")
        start = p_end + 400 * MS
        attributes = http_server("POST", "/")
        attributes["faas.trigger"] = "pubsub"
        root = run.start(renderer, "POST /", SpanKind.SERVER, start, attributes=attributes)
        c = run.span(
            renderer, "report-requests process", SpanKind.CONSUMER, start + 5 * MS, start + 90 * MS,
            parent=root, attributes=messaging("gcp_pubsub", "process", "report-requests", message_id),
        )
        root.end(end_time=start + 100 * MS)
        ids["consumer_trace"], ids["consumer_span"] = hexes(c)
        ids["consumer_root"] = hexes(root)[1]


def fanout(run, name):
    ids, t0 = run.ids(name), run.t0
    p_trace = plan(ids, "producer_trace", "trace")
    p_root = plan(ids, "producer_root")
    p_span = plan(ids, "producer_span")
    message_id = plan_message_id(ids)
    p_end = t0 + 30 * MS
    if run.produces():
        checkout = run.k8s("checkout")
        root = run.start(
            checkout, "POST /checkout", SpanKind.SERVER, t0,
            attributes=http_server("POST", "/checkout", 201), ids=(p_trace, p_root),
        )
        run.span(
            checkout, "order-events publish", SpanKind.PRODUCER, t0 + 10 * MS, p_end, parent=root,
            attributes=messaging("aws_sns", "publish", "order-events", message_id), ids=(None, p_span),
        )
        root.end(end_time=t0 + 100 * MS)
    if run.consumes():
        consumers = ids.setdefault("consumers", {})
        for service, dwell in (("email-sender", 100 * MS), ("analytics-ingest", 150 * MS)):
            start = p_end + dwell
            attributes = messaging("aws_sns", "process", "order-events", message_id)
            attributes["faas.trigger"] = "pubsub"
            c = run.span(
                run.lambda_(service), "order-events process", SpanKind.CONSUMER, start,
                start + 70 * MS, attributes=attributes, links=[Link(remote_context(p_trace, p_span))],
            )
            trace_hex, span_hex = hexes(c)
            consumers[service] = {"consumer_trace": trace_hex, "consumer_span": span_hex}


def batch(run, name):
    ids, t0 = run.ids(name), run.t0
    p_trace = plan(ids, "producer_trace", "trace")
    p_root = plan(ids, "producer_root")
    spans = ids.setdefault("producer_spans", [new_span_id() for _ in range(3)])
    ends = [t0 + (15 + 10 * i) * MS for i in range(3)]
    if run.produces():
        inventory = run.k8s("inventory")
        root = run.start(
            inventory, "POST /stock", SpanKind.SERVER, t0,
            attributes=http_server("POST", "/stock", 202), ids=(p_trace, p_root),
        )
        for i, (span_hex, end) in enumerate(zip(spans, ends)):
            attributes = messaging("kafka", "send", "stock-updates")
            attributes["messaging.kafka.message.key"] = f"sku-{i}"
            run.span(
                inventory, "stock-updates send", SpanKind.PRODUCER, end - 5 * MS, end, parent=root,
                attributes=attributes, ids=(None, span_hex),
            )
        root.end(end_time=t0 + 100 * MS)
    if run.consumes():
        start = ends[-1] + 250 * MS
        attributes = messaging("kafka", "process", "stock-updates")
        attributes["messaging.batch.message_count"] = 3
        attributes["messaging.consumer.group.name"] = "stock-projector"
        c = run.span(
            run.k8s("stock-projector"), "stock-updates process", SpanKind.CONSUMER, start,
            start + 40 * MS, attributes=attributes,
            links=[Link(remote_context(p_trace, s)) for s in spans],
        )
        ids["consumer_trace"], ids["consumer_span"] = hexes(c)


def sync(run, name):
    """checkout (k8s) calls the pricing Lambda over HTTP, which calls catalog
    (k8s): one trace, two calls that cross platforms."""
    ids, t0 = run.ids(name), run.t0
    trace_hex = plan(ids, "trace", "trace")
    root_span = plan(ids, "checkout_root")
    client_span = plan(ids, "checkout_client")
    if run.produces():
        checkout = run.k8s("checkout")
        root = run.start(
            checkout, "POST /checkout", SpanKind.SERVER, t0,
            attributes=http_server("POST", "/checkout"), ids=(trace_hex, root_span),
        )
        client = run.start(
            checkout, "POST", SpanKind.CLIENT, t0 + 10 * MS, parent=root,
            attributes=http_client("POST", "https://pricing.lambda-url.eu-west-1.on.aws/price"),
            ids=(None, client_span),
        )
        inject(ids, "pricing_headers", client)
        client.end(end_time=t0 + 310 * MS)
        root.end(end_time=t0 + 400 * MS)
    if run.consumes():
        pricing = run.lambda_("pricing")
        headers = carrier_for(ids, "pricing_headers", "trace", "checkout_client")
        attributes = http_server("POST", "/price")
        attributes.update({"faas.trigger": "http", "faas.invocation_id": str(uuid.uuid4())})
        server = run.start(
            pricing, "POST /price", SpanKind.SERVER, t0 + 50 * MS,
            parent=PROPAGATOR.extract(headers, context=Context()), attributes=attributes,
        )
        call = run.start(
            pricing, "GET", SpanKind.CLIENT, t0 + 100 * MS, parent=server,
            attributes=http_client("GET", "http://catalog.shop.svc.cluster.local/items/42"),
        )
        catalog_headers = {}
        PROPAGATOR.inject(catalog_headers, context=trace.set_span_in_context(call, Context()))
        callee = run.span(
            run.k8s("catalog"), "GET /items/{id}", SpanKind.SERVER, t0 + 130 * MS, t0 + 190 * MS,
            parent=PROPAGATOR.extract(catalog_headers, context=Context()),
            attributes=http_server("GET", "/items/{id}"),
        )
        call.end(end_time=t0 + 200 * MS)
        server.end(end_time=t0 + 290 * MS)
        ids["pricing_server"] = hexes(server)[1]
        ids["pricing_client"] = hexes(call)[1]
        ids["catalog_server"] = hexes(callee)[1]


def multihop(run, name):
    """checkout > SQS orders > invoice Lambda > SQS invoices > mailer Lambda >
    HTTP > notifications (k8s): three traces, one flow."""
    ids, t0 = run.ids(name), run.t0
    p_trace = plan(ids, "producer_trace", "trace")
    p_root = plan(ids, "producer_root")
    p_span = plan(ids, "producer_span")
    orders_id = plan_message_id(ids, "orders_message_id")
    invoices_id = plan_message_id(ids, "invoices_message_id")
    if run.produces():
        checkout = run.k8s("checkout")
        root = run.start(
            checkout, "POST /checkout", SpanKind.SERVER, t0,
            attributes=http_server("POST", "/checkout", 201), ids=(p_trace, p_root),
        )
        run.span(
            checkout, "orders send", SpanKind.PRODUCER, t0 + 20 * MS, t0 + 40 * MS, parent=root,
            attributes=messaging("aws_sqs", "send", "orders", orders_id), ids=(None, p_span),
        )
        root.end(end_time=t0 + 150 * MS)
    if run.consumes():
        invoice = run.lambda_("invoice")
        attributes = messaging("aws_sqs", "process", "orders", orders_id)
        attributes["faas.trigger"] = "pubsub"
        c1 = run.start(
            invoice, "orders process", SpanKind.CONSUMER, t0 + 240 * MS,
            attributes=attributes, links=[Link(remote_context(p_trace, p_span))],
        )
        p2 = run.span(
            invoice, "invoices send", SpanKind.PRODUCER, t0 + 300 * MS, t0 + 320 * MS, parent=c1,
            attributes=messaging("aws_sqs", "send", "invoices", invoices_id),
        )
        c1.end(end_time=t0 + 400 * MS)

        mailer = run.lambda_("mailer")
        attributes = messaging("aws_sqs", "process", "invoices", invoices_id)
        attributes["faas.trigger"] = "pubsub"
        c2 = run.start(
            mailer, "invoices process", SpanKind.CONSUMER, t0 + 820 * MS,
            attributes=attributes, links=[Link(p2.get_span_context())],
        )
        call = run.start(
            mailer, "POST", SpanKind.CLIENT, t0 + 900 * MS, parent=c2,
            attributes=http_client("POST", "http://notifications.shop.svc.cluster.local/notify", 202),
        )
        headers = {}
        PROPAGATOR.inject(headers, context=trace.set_span_in_context(call, Context()))
        callee = run.span(
            run.k8s("notifications"), "POST /notify", SpanKind.SERVER, t0 + 920 * MS, t0 + 980 * MS,
            parent=PROPAGATOR.extract(headers, context=Context()),
            attributes=http_server("POST", "/notify", 202),
        )
        call.end(end_time=t0 + 1000 * MS)
        c2.end(end_time=t0 + 1100 * MS)
        ids["invoice_trace"], ids["invoice_consumer_span"] = hexes(c1)
        ids["invoice_producer_span"] = hexes(p2)[1]
        ids["mailer_trace"], ids["mailer_consumer_span"] = hexes(c2)
        ids["mailer_client_span"] = hexes(call)[1]
        ids["notifications_server_span"] = hexes(callee)[1]
        ids["trace_ids"] = [p_trace, ids["invoice_trace"], ids["mailer_trace"]]


def legacy(run, name):
    ids, t0 = run.ids(name), run.t0
    p_trace = plan(ids, "producer_trace", "trace")
    p_span = plan(ids, "producer_span")
    message_id = ids.setdefault("message_id", f"L1-{uuid.uuid4().hex[:12]}")
    p_end = t0 + 20 * MS
    if run.produces():
        run.span(
            run.k8s("checkout"), "legacy-q publish", SpanKind.PRODUCER, t0, p_end,
            attributes=legacy_messaging("AmazonSQS", "publish", "legacy-q", message_id),
            ids=(p_trace, p_span),
        )
    if run.consumes():
        start = p_end + 150 * MS
        c = run.span(
            run.lambda_("invoice"), "legacy-q process", SpanKind.CONSUMER, start, start + 30 * MS,
            attributes=legacy_messaging("aws.sqs", "process", "legacy-q", message_id),
        )
        ids["consumer_trace"], ids["consumer_span"] = hexes(c)


def orphan(run, name):
    ids, t0 = run.ids(name), run.t0
    message_id = plan_message_id(ids)
    if run.consumes():
        attributes = messaging("aws_sqs", "process", "audit", message_id)
        attributes["faas.trigger"] = "pubsub"
        c = run.span(
            run.lambda_("audit-log"), "audit process", SpanKind.CONSUMER, t0, t0 + 10 * MS,
            attributes=attributes,
        )
        ids["consumer_trace"], ids["consumer_span"] = hexes(c)


def unconsumed(run, name):
    ids, t0 = run.ids(name), run.t0
    p_trace = plan(ids, "producer_trace", "trace")
    p_span = plan(ids, "producer_span")
    message_id = plan_message_id(ids)
    if run.produces():
        run.span(
            run.k8s("checkout"), "refunds send", SpanKind.PRODUCER, t0, t0 + 15 * MS,
            attributes=messaging("aws_sqs", "send", "refunds", message_id), ids=(p_trace, p_span),
        )


def redelivery(run, name):
    ids, t0 = run.ids(name), run.t0
    p_trace = plan(ids, "producer_trace", "trace")
    p_span = plan(ids, "producer_span")
    message_id = plan_message_id(ids)
    p_end = t0 + 20 * MS
    if run.produces():
        run.span(
            run.k8s("checkout"), "jobs send", SpanKind.PRODUCER, t0, p_end,
            attributes=messaging("aws_sqs", "send", "jobs", message_id), ids=(p_trace, p_span),
        )
    if run.consumes():
        runner = run.lambda_("job-runner")
        for key, start in (("consumer", p_end + 100 * MS), ("redelivered", p_end + 100 * MS + 30 * S)):
            attributes = messaging("aws_sqs", "process", "jobs", message_id)
            attributes.update({"faas.trigger": "pubsub", "faas.invocation_id": str(uuid.uuid4())})
            c = run.span(
                runner, "jobs process", SpanKind.CONSUMER, start, start + 50 * MS,
                attributes=attributes, links=[Link(remote_context(p_trace, p_span))],
            )
            ids[f"{key}_trace"], ids[f"{key}_span"] = hexes(c)


def invoke(run, tracer, name, start, duration, **attributes):
    """One function invocation: a root SERVER span triggered over HTTP."""
    attributes.setdefault("faas.trigger", "http")
    attributes.setdefault("faas.invocation_id", str(uuid.uuid4()))
    route = name.split(" ", 1)[1]
    attributes.update(http_server(name.split(" ", 1)[0], route))
    span = run.span(tracer, name, SpanKind.SERVER, start, start + duration, attributes=attributes)
    trace_hex, span_hex = hexes(span)
    return {"trace": trace_hex, "span": span_hex}


def init_span(run, tracer, end, duration):
    span = run.span(tracer, "Initialization", SpanKind.INTERNAL, end - duration, end)
    trace_hex, span_hex = hexes(span)
    return {"trace": trace_hex, "span": span_hex}


def coldstart(run, name):
    ids, t0 = run.ids(name), run.t0
    instance = ids.setdefault("instance", f"2026/11/24/[$LATEST]{uuid.uuid4().hex}")
    if name == "coldstart_heuristic":
        pod = ids.setdefault("pod", f"api-gateway-{uuid.uuid4().hex[:10]}-{uuid.uuid4().hex[:5]}")
        fresh = run.lambda_("fresh", instance)
        if run.produces():
            ids["first"] = invoke(run, fresh, "GET /fresh", t0, 700 * MS)
            ids["second"] = invoke(run, fresh, "GET /fresh", t0 + 2 * S, 100 * MS)
            gateway = run.k8s("api-gateway", pod)
            for key, start in (("pod_first", t0), ("pod_second", t0 + 1 * S)):
                span = run.span(
                    gateway, "GET /api", SpanKind.SERVER, start, start + 30 * MS,
                    attributes=http_server("GET", "/api"),
                )
                trace_hex, span_hex = hexes(span)
                ids[key] = {"trace": trace_hex, "span": span_hex}
        if run.consumes():
            ids["third"] = invoke(run, fresh, "GET /fresh", t0 + 60 * S, 100 * MS)
        return
    if not run.produces():
        return
    if name == "coldstart_attr":
        thumbnailer = run.lambda_("thumbnailer", instance)
        ids["cold"] = invoke(run, thumbnailer, "GET /thumb", t0, 900 * MS, **{"faas.coldstart": True})
        ids["warm"] = invoke(
            run, thumbnailer, "GET /thumb", t0 + 5 * S, 100 * MS, **{"faas.coldstart": False}
        )
    elif name == "coldstart_init":
        resizer = run.lambda_("resizer", instance)
        first = t0 + 40 * S
        ids["init"] = init_span(run, resizer, first - 50 * MS, 800 * MS)
        ids["first"] = invoke(run, resizer, "POST /resize", first, 1200 * MS)
        ids["second"] = invoke(run, resizer, "POST /resize", first + 10 * S, 200 * MS)
    elif name == "coldstart_proactive":
        warmer = run.lambda_("warmer", instance)
        first = t0 + 60 * S
        ids["init"] = init_span(run, warmer, first - 30 * S, 800 * MS)
        ids["first"] = invoke(run, warmer, "GET /warm", first, 150 * MS)
    elif name == "coldstart_provisioned":
        steady = run.lambda_(
            "steady", instance, **{"aws.lambda.initialization_type": "provisioned-concurrency"}
        )
        ids["first"] = invoke(run, steady, "GET /steady", t0, 120 * MS, **{"faas.coldstart": True})


def scenario(run, name):
    if name in ("sqs_link", "skew", "slow"):
        destination, dwell = {
            "sqs_link": ("orders", 200 * MS),
            "skew": ("skewed", -500 * MS),
            "slow": ("slow-orders", 3 * S),
        }[name]
        link_hop(run, name, destination, dwell)
    elif name == "parent":
        parent_hop(run, name)
    elif name == "correlation":
        correlation_hop(run, name)
    elif name.startswith("coldstart_"):
        coldstart(run, name)
    else:
        {
            "fanout": fanout,
            "batch": batch,
            "sync": sync,
            "multihop": multihop,
            "legacy": legacy,
            "orphan": orphan,
            "unconsumed": unconsumed,
            "redelivery": redelivery,
        }[name](run, name)


def public(ids):
    """The ids a test needs; the propagated headers stay in the state file."""
    return {k: v for k, v in ids.items() if not k.endswith("_headers") and k != "message_attributes"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--scenario", action="append", required=True, choices=SCENARIOS)
    parser.add_argument("--phase", choices=["all", "producer", "consumer"], default="all")
    parser.add_argument("--state", help="ids shared by the producer and consumer phases")
    args = parser.parse_args()
    if args.phase != "all" and not args.state:
        parser.error("--phase producer|consumer needs --state FILE")

    state = {}
    if args.state and os.path.exists(args.state):
        with open(args.state) as f:
            state = json.load(f)
    run = Run(args.protocol, args.endpoint, args.phase, state)
    for name in args.scenario:
        scenario(run, name)
    run.shutdown()
    if args.state:
        tmp = args.state + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, args.state)
    if CheckedExporter.failures:
        print(f"{CheckedExporter.failures} export(s) failed", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({name: public(run.ids(name)) for name in args.scenario}))


if __name__ == "__main__":
    main()
