#!/usr/bin/env python3
"""Times the questions a user asks Seam over HTTP, as the explorer,
Grafana or a person with curl would: p50 / p99 / max of N calls each.

    query_at_scale.py http://127.0.0.1:8080 [calls]
    ONLY=search,flow query_at_scale.py ...   # the questions whose names hold a word

Trace and flow lookups use LOOKUPS ids (default 200) sampled evenly over
the stored time range (one search per slice of it), so sealed and
in-memory traces are both looked up. Prints a Markdown table, and the
server's memory figures from /metrics."""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"
CALLS = int(sys.argv[2]) if len(sys.argv) > 2 else 200
# Of fewer than a hundred calls, the p99 is the slowest call, which on a
# shared machine is its worst pause, not the question's: lookups by id
# are timed over at least 200.
LOOKUPS = int(os.environ.get("LOOKUPS", max(CALLS, 200)))


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            payload = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        payload = e.read()
        status = e.code
    return status, time.perf_counter() - started, payload


def sql(query):
    status, _, payload = call("POST", "/api/v1/sql", {"sql": query})
    if status != 200:
        raise SystemExit(f"{query}: {status} {payload[:300]!r}")
    return json.loads(payload)["rows"]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


ONLY = [w for w in os.environ.get("ONLY", "").split(",") if w]
# EACH=1 prints every call's time, in the order made, under its row: the
# first call after a restart or a seal pays for what later ones reuse.
EACH = os.environ.get("EACH") == "1"


def measure(name, requests):
    if ONLY and not any(w in name for w in ONLY):
        return
    times, errors, rows = [], [], None
    for method, path, body in requests:
        status, took, payload = call(method, path, body)
        times.append(took * 1000)
        if status != 200:
            errors.append(f"{status} {payload[:200]!r}")
        elif rows is None and payload.startswith(b"{"):
            answer = json.loads(payload)
            for key in ("traces", "rows", "edges", "functions", "spans"):
                if key in answer:
                    rows = len(answer[key])
                    break
    print(
        f"| {name} | {len(times)} | {percentile(times, 50):.1f} ms | "
        f"{percentile(times, 99):.1f} ms | {max(times):.1f} ms | "
        f"{rows if rows is not None else '-'} | {len(errors) or ''} {errors[0] if errors else ''} |",
        flush=True,
    )
    if EACH:
        print("  " + " ".join(f"{t:.1f}" for t in times), flush=True)


def main():
    (lo, hi, spans), = sql(
        "SELECT arrow_cast(min(start_time), 'Int64'), arrow_cast(max(start_time), 'Int64'), "
        "sum(span_count) FROM traces"
    )
    print(f"{spans:,} spans, traces from {lo} to {hi}\n")
    # Ids sampled evenly over the run: the newest trace of each slice.
    # Flows are sampled over the time the journeys ran, which a few
    # early-stamped spans of other traces do not stretch.
    (flo, fhi), = sql(
        "SELECT arrow_cast(min(start_time), 'Int64'), arrow_cast(max(start_time), 'Int64') "
        "FROM traces WHERE root_service = 'checkout'"
    )
    ids, flow_ids = [], []
    for target, (a, b), extra in ((ids, (lo, hi), ""), (flow_ids, (flo, fhi), "&service=checkout")):
        if a is None:
            continue
        step = max(1, (b - a) // LOOKUPS)
        for i in range(LOOKUPS):
            start, end = a + i * step, a + (i + 1) * step
            q = f"/api/v1/search?start={start}&end={end}&limit=1{extra}"
            status, _, payload = call("GET", q)
            found = json.loads(payload).get("traces", []) if status == 200 else []
            if found:
                target.append(found[0]["trace_id"])
    hour = "start=" + str(hi - 3600 * 10**9)

    print("| question | calls | p50 | p99 | max | rows | errors |")
    print("|---|---|---|---|---|---|---|")
    get = lambda path: [("GET", path, None)] * CALLS
    post = lambda q: [("POST", "/api/v1/sql", {"sql": q})] * CALLS
    measure("search, no filter (`limit=20`)", get("/api/v1/search?limit=20"))
    measure("search by service", get("/api/v1/search?service=load-12&limit=20"))
    measure(
        "search by service + min duration",
        get("/api/v1/search?service=load-12&min_duration=2ms&limit=20"),
    )
    measure(
        "search by service + operation",
        get("/api/v1/search?service=load-12&operation=GET%20/api/items/%7Bid%7D/3&limit=20"),
    )
    measure(
        "search by attribute",
        get("/api/v1/search?attr.http.response.status_code=200&limit=20"),
    )
    measure("search, cold starts only", get("/api/v1/search?cold_start=true&limit=20"))
    measure("search, flagged hops only", get("/api/v1/search?flagged=true&limit=20"))
    measure(
        "search, flagged hops only, a day with no data",
        get("/api/v1/search?flagged=true&start=2000-01-01T00:00:00Z&end=2000-01-02T00:00:00Z"),
    )
    measure(
        "newest multi-trace flows (SQL)",
        post(
            "SELECT flow_id, trace_count, services, start_time FROM flows "
            "WHERE trace_count > 1 ORDER BY start_time DESC LIMIT 5"
        ),
    )
    measure(
        "newest multi-trace flows, every column (SQL)",
        post(
            "SELECT * FROM flows WHERE trace_count > 1 ORDER BY start_time DESC LIMIT 5"
        ),
    )
    measure(
        "flows that crossed a cold start (SQL, `LIMIT 20`)",
        post(
            "SELECT * FROM flows WHERE cold_starts > 0 ORDER BY start_time DESC LIMIT 20"
        ),
    )
    measure(
        "slowest queue hops of the last hour (SQL, every boundary column resolved)",
        post(
            "SELECT producer_service, destination, consumer_service, latency_ns, deliveries, "
            "redelivery FROM boundaries WHERE consumer_time > now() - INTERVAL '1 hour' "
            "ORDER BY latency_ns DESC LIMIT 10"
        ),
    )
    measure(
        "flows with a flagged hop (SQL)",
        post(
            "SELECT flow_id, flagged_boundaries FROM flows "
            "WHERE flagged_boundaries > 0 ORDER BY start_time DESC LIMIT 20"
        ),
    )
    measure("trace by id", [("GET", f"/api/v1/traces/{t}", None) for t in ids])
    measure("flow by id", [("GET", f"/api/v1/traces/{t}/flow", None) for t in flow_ids])
    measure("`/api/v1/boundaries`, last hour", get(f"/api/v1/boundaries?{hour}"))
    measure("`/api/v1/cold-starts`, last hour", get(f"/api/v1/cold-starts?{hour}"))
    # What the explorer asks besides the above: its filter lists, the
    # map's edge panel, the cold-start chart, the orphans list and the
    # flow outline a trace's page shows.
    measure("`/api/v1/services`, last hour", get(f"/api/v1/services?{hour}"))
    measure(
        "`/api/v1/services/load-12/operations`, last hour",
        get(f"/api/v1/services/load-12/operations?{hour}"),
    )
    status, _, payload = call("GET", f"/api/v1/boundaries?{hour}")
    edges = json.loads(payload).get("edges", []) if status == 200 else []
    if edges:
        e = edges[0]
        q = urllib.parse.urlencode(
            {k: e[k] for k in ("producer_service", "consumer_service", "system", "destination") if e[k]}
        )
        measure(
            f"`/api/v1/boundaries/edge`, the busiest edge ({e['count']:,} hops), last hour",
            get(f"/api/v1/boundaries/edge?{q}&{hour}"),
        )
    measure("`/api/v1/cold-starts/timeline`, last hour", get(f"/api/v1/cold-starts/timeline?{hour}"))
    measure("`/api/v1/orphans`, last hour", get(f"/api/v1/orphans?{hour}"))
    measure(
        "flow outline (`/flow?spans=false`)",
        [("GET", f"/api/v1/traces/{t}/flow?spans=false", None) for t in flow_ids],
    )
    measure("`/metrics`", get("/metrics"))
    measure(
        "grouped count (SQL)",
        post("SELECT service_name, count(*) FROM spans GROUP BY 1"),
    )

    status, _, metrics = call("GET", "/metrics")
    print()
    for line in metrics.decode().splitlines():
        if line.startswith(
            (
                "process_resident_memory_bytes",
                "seam_store_hot_bytes",
                "seam_store_hot_rows",
                "seam_store_sealed_bytes",
                "seam_store_sealed_rows",
                "seam_correlation_active_traces",
            )
        ):
            print(line)


main()
