#!/usr/bin/env bash
# Seam and Rotel side by side: the same load of gRPC requests (512 spans of
# 10 attributes, no compression) from one core against each server pinned
# to the other; reports spans per server CPU-second, peak RSS and the ratio
# Seam/Rotel measured in this run.
#
# LOAD=loadgen (the default): `seam loadgen` as fast as the server answers,
# every request a new one (fresh trace and span ids, values drawn per
# worker seed), so sorts, dictionaries and trace state see real variety.
# LOAD=h2load: one request replayed by h2load (cheaper for the client, but
# every request repeats the same 64 traces).
#
# Seam runs as a user would run it (write-ahead log synced per batch, Arrow
# store, stitching, seals); Rotel runs with its blackhole exporter, which
# stores nothing.
#
#   scripts/compare-rotel.sh            # 30 s per server
#   DURATION=90 scripts/compare-rotel.sh
#   LOAD=h2load scripts/compare-rotel.sh
#
# Needs: a Rust toolchain, python3 with pip (to fetch Rotel's wheel from
# PyPI), and h2load (Debian's nghttp2-client; installed with apt-get when
# missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-30}
LOAD=${LOAD:-loadgen}
CLIENTS=${CLIENTS:-4}
STREAMS=${STREAMS:-8}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ROTEL_VERSION=0.0.1a15
work=target/compare
mkdir -p "$work"

step() { printf '\n==> %s\n' "$*" >&2; }

step "Seam (release build)"
cargo build --release --locked --bin seam
seam=target/release/seam

step "Rotel $ROTEL_VERSION (PyPI wheel, prebuilt rotel-agent)"
rotel="$work/rotel-agent"
if [ ! -x "$rotel" ]; then
  rm -rf "$work/wheel" "$work/rotel-wheel"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: "rotel==$ROTEL_VERSION" -d "$work/wheel"
  python3 -m zipfile -e "$work"/wheel/rotel-*.whl "$work/rotel-wheel"
  found=$(find "$work/rotel-wheel" -type f -name rotel-agent | head -n 1)
  [ -n "$found" ] || { echo "no rotel-agent in the wheel" >&2; exit 1; }
  cp "$found" "$rotel"
  chmod +x "$rotel"
fi

case "$LOAD" in
  loadgen) ;;
  h2load)
    step "h2load"
    if ! command -v h2load >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ]; then
        apt-get install -y -q nghttp2-client >/dev/null
      else
        echo "h2load is missing: apt-get install nghttp2-client" >&2
        exit 1
      fi
    fi
    step "The request: one gRPC message of 512 spans with 10 attributes"
    body="$work/request.grpc"
    "$seam" loadgen --batch 512 --attributes 10 --attribute-size 16 --seed 1 --write-grpc-body "$body"
    ;;
  *) echo "LOAD must be loadgen or h2load, not $LOAD" >&2; exit 1 ;;
esac

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

# Peak resident memory of a process, in MiB.
peak_rss_mib() {
  awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

wait_for_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# Loads port $1 for DURATION seconds; prints the spans the client saw
# acknowledged.
load() {
  local out
  if [ "$LOAD" = loadgen ]; then
    out=$(taskset -c "$LOAD_CPU" "$seam" loadgen --endpoint "http://127.0.0.1:$1" \
      --duration "${DURATION}s" --concurrency "$((CLIENTS * 2))" --batch 512 --attributes 10 \
      --attribute-size 16 --timeout 60s --quiet --json)
    echo "$out" | python3 -c 'import json, sys
r = json.load(sys.stdin)
print("loadgen:", r["requests"], "requests,", r["spans_acked"], "spans acked, errors",
      r["errors"], "ack p99", r["ack_latency"]["p99_ms"], "ms", file=sys.stderr)
print(r["spans_acked"])'
    return
  fi
  out=$(taskset -c "$LOAD_CPU" h2load -D "$DURATION" -c "$CLIENTS" -m "$STREAMS" \
    -d "$body" -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$1/opentelemetry.proto.collector.trace.v1.TraceService/Export" 2>&1)
  echo "$out" | sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' | awk '{ print $1 * 512 }'
  echo "$out" | grep -E '^(requests|status codes|finished in):' >&2
}

# measure NAME PID PORT [METRICS_URL]: prints
# "NAME spans spans/s cpu_s spans_per_cpu_s peak_rss_MiB". h2load counts a
# gRPC error as a success (the status is in the trailers), so where the
# server counts what it accepted (Seam's /metrics) that count is used.
measure() {
  local name=$1 pid=$2 port=$3 metrics=${4:-}
  wait_for_port "$port"
  sleep 1
  local cpu0 cpu1 ok spans
  cpu0=$(cpu_seconds "$pid")
  ok=$(load "$port")
  cpu1=$(cpu_seconds "$pid")
  spans=$ok
  if [ -n "$metrics" ]; then
    spans=$(curl -s "$metrics" | awk '/^seam_receiver_spans_accepted_total/ { print $2 }')
    echo "$name: the client saw $ok spans acknowledged; the server accepted $spans" >&2
  fi
  awk -v n="$name" -v s="$spans" -v c0="$cpu0" -v c1="$cpu1" -v d="$DURATION" -v rss="$(peak_rss_mib "$pid")" \
    'BEGIN { cpu = c1 - c0; printf "%s %d %.0f %.2f %.0f %s\n", n, s, s / d, cpu, (cpu > 0 ? s / cpu : 0), rss }'
}

results="$work/results.txt"
: >"$results"

step "Rotel (blackhole exporter), pinned to CPU $SERVER_CPU; load on CPU $LOAD_CPU"
taskset -c "$SERVER_CPU" "$rotel" start --exporter blackhole \
  --otlp-grpc-endpoint 127.0.0.1:24317 --otlp-http-endpoint 127.0.0.1:24318 >"$work/rotel.log" 2>&1 &
rotel_pid=$!
trap 'kill $rotel_pid 2>/dev/null || true' EXIT
measure rotel "$rotel_pid" 24317 >>"$results"
kill "$rotel_pid"; wait "$rotel_pid" 2>/dev/null || true

step "Seam (WAL every_batch, store, stitching), pinned to CPU $SERVER_CPU; load on CPU $LOAD_CPU"
rm -rf "$work/seam-data"
taskset -c "$SERVER_CPU" "$seam" serve --data-dir "$work/seam-data" \
  --grpc-listen 127.0.0.1:34317 --http-listen 127.0.0.1:34318 --api-listen 127.0.0.1:38080 \
  >"$work/seam.log" 2>&1 &
seam_pid=$!
trap 'kill $seam_pid 2>/dev/null || true' EXIT
measure seam "$seam_pid" 34317 http://127.0.0.1:38080/metrics >>"$results"
kill "$seam_pid"; wait "$seam_pid" 2>/dev/null || true

step "Results ($(date -u +%Y-%m-%d), $(nproc) cores, $DURATION s each, $LOAD)"
{
  printf '%-6s %12s %12s %10s %18s %14s\n' server spans spans/s cpu_s spans/cpu_s peak_rss_MiB
  awk '{ printf "%-6s %12d %12d %10.2f %18d %14d\n", $1, $2, $3, $4, $5, $6 }' "$results"
} | tee "$work/summary.txt"
awk '$1 == "seam" { s = $5 } $1 == "rotel" { r = $5 } END { if (r > 0) printf "ratio Seam/Rotel, spans per server CPU-second: %.2f\n", s / r }' "$results" \
  | tee -a "$work/summary.txt"
