#!/usr/bin/env python3
"""Sends one flow of N traces through the OpenTelemetry Python SDK (OTLP
over HTTP) and prints the producer trace's id: a checkout on Kubernetes
that publishes N-1 messages to SQS, each processed by a Lambda function in
a trace of its own, linked to the message's producer span, after waits
from 50 ms to 4 s. The fan-out a user opens in the explorer's flow view.

    .venv/bin/python scripts/wide_flow.py 20 http://127.0.0.1:4318

Each consumer trace holds a handler span and five children. The `.venv` is
the one the test command installs."""

import sys
import time
import uuid

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, set_span_in_context

MS = 1_000_000
traces = int(sys.argv[1])
endpoint = (sys.argv[2].rstrip("/") if len(sys.argv) > 2 else "http://127.0.0.1:4318") + "/v1/traces"


def provider(attributes):
    p = TracerProvider(resource=Resource.create(attributes))
    p.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return p


checkout = provider({"service.name": "checkout", "cloud.provider": "aws", "cloud.platform": "aws_eks",
                     "k8s.namespace.name": "shop", "k8s.pod.name": "checkout-6f7d9-x2"})
workers = [
    provider({"service.name": f"fulfil-{i % 4}", "cloud.provider": "aws", "cloud.platform": "aws_lambda",
              "faas.name": f"fulfil-{i % 4}", "faas.instance": uuid.uuid4().hex})
    for i in range(traces - 1)
]
t0 = time.time_ns() - 10_000 * MS
tracer = checkout.get_tracer("wide_flow")
root = tracer.start_span("POST /checkout", kind=SpanKind.SERVER, start_time=t0,
                         attributes={"http.request.method": "POST", "http.route": "/checkout"})
ctx = set_span_in_context(root)
sends = []
for i in range(traces - 1):
    at = t0 + (5 + i * 2) * MS
    send = tracer.start_span("orders publish", context=ctx, kind=SpanKind.PRODUCER, start_time=at,
                             attributes={"messaging.system": "aws_sqs", "messaging.operation.type": "publish",
                                         "messaging.destination.name": "orders"})
    send.end(end_time=at + MS)
    sends.append((send.get_span_context(), at + MS))
root.end(end_time=t0 + (10 + traces * 2) * MS)
for i, (sent, at) in enumerate(sends):
    wait = 50 * MS + (i * 3_950 * MS) // max(1, len(sends) - 1)
    start = at + wait
    worker = workers[i].get_tracer("wide_flow")
    handler = worker.start_span("orders process", kind=SpanKind.CONSUMER, start_time=start, links=[Link(sent)],
                                attributes={"messaging.system": "aws_sqs", "messaging.operation.type": "process",
                                            "messaging.destination.name": "orders", "faas.trigger": "pubsub"})
    hctx = set_span_in_context(handler)
    for j in range(5):
        child = worker.start_span(f"step {j}", context=hctx, start_time=start + (1 + j * 10) * MS,
                                  attributes={"db.system": "dynamodb"})
        child.end(end_time=start + (9 + j * 10) * MS)
    handler.end(end_time=start + 60 * MS)
print(format(root.get_span_context().trace_id, "032x"))
for p in [checkout, *workers]:
    p.shutdown()
