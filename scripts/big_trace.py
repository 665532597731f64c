#!/usr/bin/env python3
"""Sends one trace of N spans through the OpenTelemetry Python SDK (OTLP
over HTTP) and prints its id: the very large trace a user opens, as a
batch job or a fan-out produces them.

    .venv/bin/python scripts/big_trace.py 40000 http://127.0.0.1:4318

A root with children of ten attributes each, every child with up to nine
leaves of one attribute. The `.venv` is the one the test command
installs."""

import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

spans = int(sys.argv[1])
endpoint = sys.argv[2].rstrip("/") if len(sys.argv) > 2 else "http://127.0.0.1:4318"
provider = TracerProvider(resource=Resource.create({"service.name": "batch-job"}))
provider.add_span_processor(
    BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint + "/v1/traces"),
        max_export_batch_size=2048,
        max_queue_size=spans + 10,
    )
)
tracer = provider.get_tracer("big_trace")
with tracer.start_as_current_span("root") as root:
    trace_id = format(root.get_span_context().trace_id, "032x")
    made = 1
    while made < spans:
        with tracer.start_as_current_span(f"step-{made % 50}") as step:
            made += 1
            for k in range(10):
                step.set_attribute(f"job.k{k}", f"value-{made % 97}-{k}")
            for _ in range(min(9, spans - made)):
                with tracer.start_as_current_span("query") as leaf:
                    leaf.set_attribute("db.statement", "SELECT 1")
                made += 1
provider.shutdown()
print(trace_id)
