"""Measures freshness: the time from an export being acknowledged to the
span being returned by SQL, with the official OpenTelemetry Python SDK.

Usage: .venv/bin/python scripts/freshness.py [--spans 200] [--grpc 127.0.0.1:4317] [--api http://127.0.0.1:8080]

Each span is its own trace, exported synchronously (SimpleSpanProcessor), so
export() returning means Seam acknowledged it. Right after that, the script
polls POST /api/v1/sql for the trace id until the row is there and records
the time from acknowledgement to answer. Prints p50, p99 and max in ms.
"""

import argparse
import json
import statistics
import time
import urllib.request

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def sql(api, query):
    req = urllib.request.Request(
        api.rstrip("/") + "/api/v1/sql",
        data=json.dumps({"sql": query}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)


class Timed(SimpleSpanProcessor):
    """Records when each span's export was acknowledged."""

    def __init__(self, exporter):
        super().__init__(exporter)
        self.acked = {}

    def on_end(self, span):
        super().on_end(span)
        self.acked[span.context.trace_id] = time.perf_counter()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--spans", type=int, default=200)
    p.add_argument("--grpc", default="127.0.0.1:4317")
    p.add_argument("--api", default="http://127.0.0.1:8080")
    args = p.parse_args()

    processor = Timed(OTLPSpanExporter(endpoint=args.grpc, insecure=True))
    provider = TracerProvider(resource=Resource.create({"service.name": "freshness-probe"}))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("freshness")

    delays = []
    polls = []
    for _ in range(args.spans):
        with tracer.start_as_current_span("probe") as span:
            trace_id = span.get_span_context().trace_id
        acked = processor.acked[trace_id]
        n = 0
        while True:
            n += 1
            answer = sql(args.api, f"SELECT count(*) FROM spans WHERE trace_id = '{trace_id:032x}'")
            if answer["rows"][0][0] >= 1:
                break
        delays.append((time.perf_counter() - acked) * 1000)
        polls.append(n)
    provider.shutdown()

    delays.sort()
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    print(
        f"spans={len(delays)} freshness_ms p50={statistics.median(delays):.2f} p99={p99:.2f} max={delays[-1]:.2f} "
        f"found_on_first_query={sum(1 for n in polls if n == 1)}/{len(polls)}"
    )


if __name__ == "__main__":
    main()
