"""Exports a small trace to Seam with the official OpenTelemetry Python SDK.

Usage: export_spans.py --protocol grpc|http --endpoint URL [--service NAME]

Prints one JSON line: {"trace_id": "...", "span_ids": [...], "spans": N}.
Spans are exported synchronously (SimpleSpanProcessor), so when this script
prints, Seam has acknowledged them.
"""

import argparse
import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode


def exporter_for(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        # An https endpoint means TLS, with the CA from
        # OTEL_EXPORTER_OTLP_CERTIFICATE, as the exporter documents.
        return OTLPSpanExporter(endpoint=endpoint, insecure=not endpoint.startswith("https://"))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")


class CheckedExporter:
    """Wraps an exporter and remembers whether every export succeeded."""

    def __init__(self, inner):
        self.inner = inner
        self.failures = 0

    def export(self, spans):
        result = self.inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--service", default="checkout")
    args = parser.parse_args()

    resource = Resource.create(
        {
            "service.name": args.service,
            "k8s.pod.name": f"{args.service}-7d9f8b-x2k4p",
            "k8s.namespace.name": "shop",
            "deployment.environment.name": "test",
        }
    )
    exporter = CheckedExporter(exporter_for(args.protocol, args.endpoint))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("seam.integration", "1.0.0")

    span_ids = []
    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.request.method", "POST")
        root.set_attribute("http.route", "/checkout")
        root.set_attribute("http.response.status_code", 201)
        with tracer.start_as_current_span("publish orders", kind=SpanKind.PRODUCER) as publish:
            publish.set_attribute("messaging.system", "aws_sqs")
            publish.set_attribute("messaging.operation.type", "send")
            publish.set_attribute("messaging.destination.name", "orders")
            publish.set_attribute("messaging.message.id", "msg-0001")
            publish.add_event("enqueued", {"queue.depth": 3})
            span_ids.append(format(publish.get_span_context().span_id, "016x"))
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT) as charge:
            charge.set_status(Status(StatusCode.ERROR, "card declined"))
            span_ids.append(format(charge.get_span_context().span_id, "016x"))
        trace_id = format(root.get_span_context().trace_id, "032x")
        span_ids.append(format(root.get_span_context().span_id, "016x"))

    provider.shutdown()
    if exporter.failures:
        print(f"{exporter.failures} export(s) failed", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"trace_id": trace_id, "span_ids": span_ids, "spans": len(span_ids)}))


if __name__ == "__main__":
    main()
