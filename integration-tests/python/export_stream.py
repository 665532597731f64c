"""Exports spans one request at a time with the OpenTelemetry Python SDK
until stopped, printing the ids of every span Seam acknowledged.

Usage: export_stream.py --protocol grpc|http --endpoint URL

Each span is exported synchronously (SimpleSpanProcessor); a line
"<trace_id> <span_id>" is printed and flushed only after the export
succeeded, so the lines are exactly the acknowledged spans. The first
failed export ends the script (the server is expected to go away).
"""

import argparse
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind


class AckPrinter:
    def __init__(self, inner):
        self.inner = inner
        self.failed = False

    def export(self, spans):
        result = self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            for s in spans:
                c = s.get_span_context()
                print(f"{c.trace_id:032x} {c.span_id:016x}", flush=True)
        else:
            self.failed = True
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=2)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=args.endpoint.rstrip("/") + "/v1/traces", timeout=2)
    printer = AckPrinter(exporter)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "stream", "k8s.pod.name": "stream-0"})
    )
    provider.add_span_processor(SimpleSpanProcessor(printer))
    tracer = provider.get_tracer("seam.stream")
    n = 0
    while not printer.failed and n < 1_000_000:
        with tracer.start_as_current_span("stream", kind=SpanKind.SERVER) as span:
            span.set_attribute("seq", n)
        n += 1
    sys.exit(0)


if __name__ == "__main__":
    main()
