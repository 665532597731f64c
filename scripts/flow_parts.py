#!/usr/bin/env python3
"""What a flow lookup waits for, apart: over HTTP against a running Seam,
the flows of 30 `checkout` traces through `GET /api/v1/traces/{id}/flow`,
then each flow's two queries on their own through `/api/v1/sql` (its
spans; its boundaries by either end) and its traces by id.

    python3 scripts/flow_parts.py http://127.0.0.1:58080
"""
import json
import sys
import time
import urllib.request

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:58080"


def call(path, body=None):
    req = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode() if body else None,
        headers={"content-type": "application/json"},
    )
    started = time.perf_counter()
    payload = urllib.request.urlopen(req).read()
    return (time.perf_counter() - started) * 1000, json.loads(payload)


def sql(query):
    return call("/api/v1/sql", {"sql": query})


def summary(values):
    values = sorted(values)
    return f"p50 {values[len(values) // 2]:.1f} ms, max {values[-1]:.1f} ms"


_, found = sql(
    "SELECT DISTINCT trace_id FROM spans WHERE service_name = 'checkout' LIMIT 30"
)
times = {"flow by id": [], "trace by id": [], "its spans": [], "its boundaries": []}
for (trace,) in found["rows"]:
    ms, flow = call(f"/api/v1/traces/{trace}/flow")
    times["flow by id"].append(ms)
    times["trace by id"].append(call(f"/api/v1/traces/{trace}")[0])
    ids = ",".join(f"'{t}'" for t in flow["trace_ids"])
    times["its spans"].append(
        sql(f"SELECT * FROM spans WHERE trace_id IN ({ids}) ORDER BY start_time, span_id")[0]
    )
    times["its boundaries"].append(
        sql(
            f"SELECT * FROM boundaries WHERE producer_trace_id IN ({ids}) UNION ALL "
            f"SELECT * FROM boundaries WHERE consumer_trace_id IN ({ids}) "
            f"AND producer_trace_id NOT IN ({ids}) "
            "ORDER BY consumer_time, producer_span_id, consumer_span_id"
        )[0]
    )
for name, values in times.items():
    print(f"{name:16} {summary(values)} ({len(values)} calls)")
