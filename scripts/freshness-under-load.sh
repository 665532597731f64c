#!/usr/bin/env bash
# Freshness under load: the time from an export's acknowledgement to its
# span being returned by SQL, while `seam loadgen` keeps the server at 80%
# of the throughput it reached at saturation.
#
#   scripts/freshness-under-load.sh
#   LOAD=0.8 SATURATION=20s RUN=60s PROBES=300 scripts/freshness-under-load.sh
#
# 1. a release server with the defaults (write-ahead log synced per batch,
#    store, stitching, seals), its data on this disk;
# 2. `seam loadgen` at full speed for SATURATION: the maximum;
# 3. `seam loadgen --rate LOAD×maximum` for RUN, and meanwhile
#    scripts/freshness.py (the OpenTelemetry Python SDK) exports PROBES
#    single-span traces one at a time and polls POST /api/v1/sql for each.
#
# Needs the Python venv the test command creates (.venv), or makes it.
set -euo pipefail
cd "$(dirname "$0")/.."

LOAD=${LOAD:-0.8}
SATURATION=${SATURATION:-20s}
RUN=${RUN:-60s}
PROBES=${PROBES:-300}
work=target/freshness
mkdir -p "$work"

step() { printf '\n==> %s\n' "$*" >&2; }

step "Seam (release build)"
cargo build --release --locked --bin seam
seam=target/release/seam

if [ ! -x .venv/bin/python ]; then
  step "Python venv with the OpenTelemetry SDK"
  python3 -m venv .venv
  .venv/bin/pip install --quiet -r integration-tests/python/requirements.txt
fi

rm -rf "$work/data"
"$seam" serve --data-dir "$work/data" \
  --grpc-listen 127.0.0.1:44317 --http-listen 127.0.0.1:44318 --api-listen 127.0.0.1:48080 \
  >"$work/seam.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf http://127.0.0.1:48080/metrics >/dev/null && break
  sleep 0.1
done

json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

step "Saturation: seam loadgen at full speed for $SATURATION"
"$seam" loadgen --endpoint http://127.0.0.1:44317 --duration "$SATURATION" --quiet --json >"$work/saturation.json"
max=$(json_field "$work/saturation.json" "['spans_per_sec']")
rate=$(python3 -c "print(int($max * $LOAD))")
echo "maximum $max spans/s; loading at $rate spans/s" >&2

step "Load at $rate spans/s for $RUN, with $PROBES freshness probes"
"$seam" loadgen --endpoint http://127.0.0.1:44317 --rate "$rate" --duration "$RUN" --quiet --json \
  >"$work/load.json" &
load=$!
sleep 5
.venv/bin/python scripts/freshness.py --spans "$PROBES" --grpc 127.0.0.1:44317 --api http://127.0.0.1:48080 \
  | tee "$work/freshness.txt"
kill -0 $load 2>/dev/null || echo "warning: the load ended before the probes did; raise RUN" >&2
wait $load

step "Results ($(date -u +%Y-%m-%d), $(nproc) cores)"
hot=$(curl -s http://127.0.0.1:48080/metrics | awk '/^seam_store_hot_rows\{table="spans"\}/ { print $2 }')
{
  echo "saturation: $max spans/s"
  echo "load: $(json_field "$work/load.json" "['spans_per_sec']") spans/s acknowledged (asked $rate), ack p99 $(json_field "$work/load.json" "['ack_latency']['p99_ms']") ms, errors $(json_field "$work/load.json" "['errors']")"
  echo "hot spans at the end: $hot"
  cat "$work/freshness.txt"
} | tee "$work/summary.txt"
