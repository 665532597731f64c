#!/usr/bin/env bash
# Server CPU time per lookup, the steady figure beside wall-clock
# percentiles on a noisy machine: a fresh release server filled to SPANS
# spans (flat load at full speed beside the hybrid journeys), left to seal
# everything, then LOOPS loops of 300 lookups made one at a time, each
# under `perf stat -e task-clock` of the server: trace by id (traces of
# more than three spans) and flow by id (checkout journeys), ids drawn in
# trace id order. Prints sealed bytes a span and, per loop, p50 / p99 and
# CPU milliseconds a lookup.
#
#   scripts/lookup-cpu.sh
#   SPANS=10000000 DATA=/var/lib/seam-bench/cpu scripts/lookup-cpu.sh
#   SEAM=/tmp/seam-other scripts/lookup-cpu.sh   # another build, same data shape
#
# DATA is emptied first.
set -euo pipefail
cd "$(dirname "$0")/.."

SPANS=${SPANS:-3000000}
LOOPS=${LOOPS:-3}
DATA=${DATA:-target/lookup-cpu/data}
api=http://127.0.0.1:58080
work=target/lookup-cpu
mkdir -p "$work"
if [ -z "${SEAM:-}" ]; then
  cargo build --release --locked --bin seam
  SEAM=target/release/seam
fi

rm -rf "$DATA"
"$SEAM" serve --data-dir "$DATA" \
  --grpc-listen 127.0.0.1:54317 --http-listen 127.0.0.1:54318 --api-listen 127.0.0.1:58080 \
  >"$work/seam.log" 2>&1 &
pid=$!
hybrid=
trap 'kill $pid 2>/dev/null || true; [ -n "$hybrid" ] && kill $hybrid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf $api/readyz >/dev/null && break
  sleep 0.1
done
metric() { curl -s $api/metrics | awk -v m="$1" 'index($0, m) == 1 { n += $2 } END { print int(n) }'; }

"$SEAM" loadgen --endpoint http://127.0.0.1:54317 --topology hybrid --rate 2000 \
  --duration 1h --quiet >/dev/null 2>&1 &
hybrid=$!
while [ "$(metric seam_receiver_spans_accepted_total)" -lt "$SPANS" ]; do
  "$SEAM" loadgen --endpoint http://127.0.0.1:54317 --duration 10s --quiet --json >/dev/null
done
kill $hybrid
hybrid=
sleep 15
for _ in $(seq 1 30); do
  [ "$(metric seam_store_hot_rows)" = 0 ] && break
  sleep 10
done
sleep 15
echo "$(metric 'seam_store_sealed_rows{table="spans"}') spans sealed," \
  "$(metric 'seam_store_sealed_bytes{table="spans"}') bytes"

ids() {
  curl -s -XPOST $api/api/v1/sql -H 'content-type: application/json' \
    -d "{\"sql\": \"SELECT trace_id FROM traces WHERE $1 ORDER BY trace_id LIMIT 300\"}" |
    python3 -c 'import json, sys; [print(r["trace_id"] if isinstance(r, dict) else r[0]) for r in json.load(sys.stdin)["rows"]]'
}
ids "span_count > 3" >"$work/traces.txt"
ids "root_service = 'checkout'" >"$work/flows.txt"

# One loop: every id once, one at a time; prints p50, p99 and CPU a call.
loop() {
  local file=$1 suffix=$2 cpu
  cpu=$(perf stat -x, -e task-clock -p $pid -- sh -c \
    "for id in \$(cat $file); do curl -s -o /dev/null -w '%{time_total}\n' $api/api/v1/traces/\$id$suffix; done > $work/times.txt" \
    2>&1 >/dev/null | awk -F, '/task-clock/ { print $1 }')
  sort -n "$work/times.txt" | awk -v cpu="$cpu" '{ t[NR] = $1 * 1000 } END {
    printf "p50 %.1f ms  p99 %.1f ms  CPU %.2f ms a lookup\n", t[int(NR * 0.5)], t[int(NR * 0.99)], cpu / NR }'
}
loop "$work/traces.txt" "" >/dev/null # warm
for i in $(seq 1 "$LOOPS"); do
  echo "trace by id, loop $i: $(loop "$work/traces.txt" "")"
  echo "flow by id,  loop $i: $(loop "$work/flows.txt" /flow)"
done
