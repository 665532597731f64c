"""Hybrid journeys exported with the official OpenTelemetry Python SDK, for
the stitching tests: queue hops by propagated context, by span link and by
message id only, skew, slow hops, orphans, redeliveries and cold starts.

Usage:
  journeys.py --protocol grpc|http --endpoint URL --scenario NAME [...]
              [--phase all|producer|consumer] [--state FILE] [--consumer-first SECONDS]

Each simulated service has its own TracerProvider and Resource, exporting
synchronously (SimpleSpanProcessor): a span is acknowledged by Seam when it
ends, so the order spans end in is the order Seam receives them.
--consumer-first ends the consumer span first and the producer span that
many seconds later. --phase producer writes what the consumer side needs to
--state; --phase consumer reads it (for a server restart in between).

Prints one JSON object: scenario name -> the ids it produced (lowercase hex).
Exits 1 if any export failed.
"""

import argparse
import json
import sys
import time
import uuid

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

MS = 1_000_000
S = 1_000_000_000


class CheckedExporter:
    """Counts failed exports so the script can fail loudly."""

    failures = 0

    def __init__(self, inner):
        self.inner = inner

    def export(self, spans):
        result = self.inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            CheckedExporter.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


class Services:
    def __init__(self, protocol, endpoint):
        self.protocol = protocol
        self.endpoint = endpoint
        self.providers = []

    def exporter(self):
        if self.protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(endpoint=self.endpoint, insecure=True)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=self.endpoint.rstrip("/") + "/v1/traces")

    def tracer(self, attributes):
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(SimpleSpanProcessor(CheckedExporter(self.exporter())))
        self.providers.append(provider)
        return provider.get_tracer("seam.journeys", "1.0.0")

    def k8s(self, service, pod=None):
        return self.tracer(
            {
                "service.name": service,
                "k8s.namespace.name": "shop",
                "k8s.pod.name": pod or f"{service}-6b7c9d-r2t5y",
                "cloud.platform": "aws_eks",
            }
        )

    def lambda_(self, name, instance=None, **extra):
        attributes = {
            "service.name": name,
            "cloud.provider": "aws",
            "cloud.platform": "aws_lambda",
            "faas.name": name,
            "faas.instance": instance or f"2026/11/24/[$LATEST]{uuid.uuid4().hex}",
        }
        attributes.update(extra)
        return self.tracer(attributes)

    def cloud_run(self, name):
        return self.tracer(
            {
                "service.name": name,
                "cloud.provider": "gcp",
                "cloud.platform": "gcp_cloud_run",
                "faas.name": name,
                "faas.instance": uuid.uuid4().hex,
            }
        )

    def shutdown(self):
        for p in self.providers:
            p.shutdown()


def hexes(span):
    c = span.get_span_context()
    return format(c.trace_id, "032x"), format(c.span_id, "016x")


def context_of(trace_hex, span_hex):
    return SpanContext(
        trace_id=int(trace_hex, 16),
        span_id=int(span_hex, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def messaging(system, operation, destination, message_id=None, legacy=False):
    if legacy:
        attrs = {
            "messaging.system": system,
            "messaging.operation": operation,
            "messaging.destination": destination,
        }
        if message_id:
            attrs["messaging.message_id"] = message_id
        return attrs
    attrs = {
        "messaging.system": system,
        "messaging.operation.type": operation,
        "messaging.destination.name": destination,
    }
    if message_id:
        attrs["messaging.message.id"] = message_id
    return attrs


class Run:
    def __init__(self, services, phase, state, consumer_first, t0):
        self.services = services
        self.phase = phase
        self.state = state
        self.consumer_first = consumer_first
        self.t0 = t0
        self.out = {}

    def produces(self):
        return self.phase in ("all", "producer")

    def consumes(self):
        return self.phase in ("all", "consumer")

    def queue_hop(
        self,
        name,
        producer_tracer,
        consumer_tracer,
        system,
        destination,
        dwell_ns,
        stitch,
        consumer_kind=SpanKind.CONSUMER,
        legacy=False,
        consumer_attrs=None,
    ):
        """A producer span and a consumer span in another service; `stitch`
        is 'parent' (traceparent through message headers), 'link' or
        'message_id' (context lost)."""
        ids = self.state.setdefault(name, {})
        producer = None
        if self.produces():
            ids["message_id"] = ids.get("message_id") or str(uuid.uuid4())
            ids["producer_end"] = self.t0 + 20 * MS
            producer = producer_tracer().start_span(
                f"{destination} publish",
                kind=SpanKind.PRODUCER,
                attributes=messaging(system, "publish", destination, ids["message_id"], legacy),
                start_time=self.t0,
            )
            ids["producer_trace"], ids["producer_span"] = hexes(producer)
            headers = {}
            TraceContextTextMapPropagator().inject(
                headers, context=trace.set_span_in_context(producer)
            )
            ids["headers"] = headers
            if not self.consumer_first:
                producer.end(end_time=ids["producer_end"])
        if self.consumes():
            start = ids["producer_end"] + dwell_ns
            attrs = messaging(
                system, "process", destination, ids["message_id"] if stitch == "message_id" else None, legacy
            )
            attrs.update(consumer_attrs or {})
            parent = None
            links = []
            if stitch == "parent":
                parent = TraceContextTextMapPropagator().extract(ids["headers"])
            elif stitch == "link":
                links = [Link(context_of(ids["producer_trace"], ids["producer_span"]))]
            span = consumer_tracer().start_span(
                f"{destination} process",
                context=parent,
                kind=consumer_kind,
                attributes=attrs,
                links=links,
                start_time=start,
            )
            ids["consumer_trace"], ids["consumer_span"] = hexes(span)
            span.end(end_time=start + 40 * MS)
        if producer is not None and self.consumer_first:
            time.sleep(self.consumer_first)
            producer.end(end_time=ids["producer_end"])
        self.out[name] = {k: v for k, v in ids.items() if k != "headers"}


def scenario(run, name):
    s = run.services
    cache = {}

    def once(key, make):
        return lambda: cache.setdefault(key, make())

    checkout = once("checkout", lambda: s.k8s("checkout"))
    invoice = once("invoice", lambda: s.lambda_("invoice"))
    if name == "link":
        run.queue_hop(name, checkout, invoice, "aws_sqs", "orders", 200 * MS, "link",
                      consumer_attrs={"faas.trigger": "pubsub"})
    elif name == "parent":
        run.queue_hop(name, once("p", lambda: s.k8s("orders-api")), once("c", lambda: s.lambda_("payment-worker")),
                      "rabbitmq", "payments", 300 * MS, "parent")
    elif name == "correlation":
        run.queue_hop(name, once("p", lambda: s.k8s("reports")), once("c", lambda: s.cloud_run("report-renderer")),
                      "gcp_pubsub", "report-requests", 400 * MS, "message_id")
    elif name == "legacy":
        run.queue_hop(name, checkout, invoice, "AmazonSQS", "legacy-q", 150 * MS, "message_id", legacy=True)
    elif name == "skew":
        run.queue_hop(name, checkout, invoice, "aws_sqs", "skewed", -500 * MS, "link")
    elif name == "slow":
        run.queue_hop(name, checkout, invoice, "aws_sqs", "slow-orders", 3 * S, "link")
    elif name == "orphan":
        tracer = s.lambda_("audit-log")
        span = tracer.start_span("audit process", kind=SpanKind.CONSUMER,
                                 attributes=messaging("aws_sqs", "process", "audit", str(uuid.uuid4())),
                                 start_time=run.t0)
        span.end(end_time=run.t0 + 10 * MS)
        run.out[name] = dict(zip(("trace", "span"), hexes(span)))
    elif name == "unconsumed":
        span = checkout().start_span("refunds publish", kind=SpanKind.PRODUCER,
                                     attributes=messaging("aws_sqs", "publish", "refunds", str(uuid.uuid4())),
                                     start_time=run.t0)
        span.end(end_time=run.t0 + 10 * MS)
        run.out[name] = dict(zip(("trace", "span"), hexes(span)))
    elif name == "redelivery":
        run.queue_hop(name, checkout, once("r", lambda: s.lambda_("job-runner")), "aws_sqs", "jobs", 100 * MS, "link")
        first = run.out[name]
        again = once("r", lambda: None)().start_span(
            "jobs process", kind=SpanKind.CONSUMER, attributes=messaging("aws_sqs", "process", "jobs"),
            links=[Link(context_of(first["producer_trace"], first["producer_span"]))],
            start_time=first["producer_end"] + 30 * S)
        again.end(end_time=first["producer_end"] + 30 * S + 40 * MS)
        first["redelivered_trace"], first["redelivered_span"] = hexes(again)
    elif name.startswith("coldstart_"):
        coldstart(run, name)
    else:
        raise SystemExit(f"unknown scenario {name}")


def invoke(tracer, name, start, duration=100 * MS, **attrs):
    attrs.setdefault("faas.trigger", "http")
    span = tracer.start_span(name, kind=SpanKind.SERVER, attributes=attrs, start_time=start)
    span.end(end_time=start + duration)
    return hexes(span)


def coldstart(run, name):
    s, t0 = run.services, run.t0
    ids = run.state.setdefault(name, {})
    if name == "coldstart_attr":
        tracer = s.lambda_("thumbnailer")
        ids["cold"] = invoke(tracer, "GET /thumb", t0, 900 * MS, **{"faas.coldstart": True})
        ids["warm"] = invoke(tracer, "GET /thumb", t0 + 5 * S, 100 * MS, **{"faas.coldstart": False})
    elif name in ("coldstart_init", "coldstart_proactive"):
        function = "resizer" if name == "coldstart_init" else "warmer"
        tracer = s.lambda_(function)
        gap = 50 * MS if name == "coldstart_init" else 30 * S
        first = t0 + 40 * S
        init = tracer.start_span("Initialization", kind=SpanKind.INTERNAL, start_time=first - gap - 800 * MS)
        init.end(end_time=first - gap)
        ids["first"] = invoke(tracer, "POST /resize", first, 1200 * MS)
        ids["second"] = invoke(tracer, "POST /resize", first + 10 * S, 200 * MS)
    elif name == "coldstart_provisioned":
        tracer = s.lambda_("steady", **{"aws.lambda.initialization_type": "provisioned-concurrency"})
        ids["first"] = invoke(tracer, "GET /steady", t0, 100 * MS, **{"faas.coldstart": True})
    elif name == "coldstart_heuristic":
        instance = ids.get("instance") or f"2026/11/24/[$LATEST]{uuid.uuid4().hex}"
        ids["instance"] = instance
        pod = ids.get("pod") or f"api-gateway-{uuid.uuid4().hex[:10]}"
        ids["pod"] = pod
        tracer = s.lambda_("fresh", instance)
        if run.produces():
            ids["first"] = invoke(tracer, "GET /fresh", t0, 700 * MS)
            ids["second"] = invoke(tracer, "GET /fresh", t0 + 2 * S, 100 * MS)
            gateway = s.k8s("api-gateway", pod)
            span = gateway.start_span("GET /", kind=SpanKind.SERVER, start_time=t0)
            span.end(end_time=t0 + 30 * MS)
            ids["pod_first"] = hexes(span)
        if run.phase == "consumer":
            ids["after_restart"] = invoke(tracer, "GET /fresh", t0 + 60 * S, 100 * MS)
    run.out[name] = ids


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--scenario", action="append", required=True)
    parser.add_argument("--phase", choices=["all", "producer", "consumer"], default="all")
    parser.add_argument("--state")
    parser.add_argument("--consumer-first", type=float, default=0.0)
    args = parser.parse_args()

    state = {}
    if args.phase == "consumer":
        with open(args.state) as f:
            state = json.load(f)
    # Two minutes ago, so every span is in the past.
    t0 = time.time_ns() - 120 * S
    if args.phase == "consumer":
        t0 = state.get("t0", t0)
    state["t0"] = t0
    services = Services(args.protocol, args.endpoint)
    run = Run(services, args.phase, state, args.consumer_first, t0)
    for name in args.scenario:
        scenario(run, name)
    services.shutdown()
    if args.phase == "producer":
        with open(args.state, "w") as f:
            json.dump(state, f)
    if CheckedExporter.failures:
        print(f"{CheckedExporter.failures} export(s) failed", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(run.out))


if __name__ == "__main__":
    main()
