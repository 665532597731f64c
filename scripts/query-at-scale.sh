#!/usr/bin/env bash
# Every question a user asks, at scale: a fresh release server with the
# defaults filled to SPANS spans by `seam loadgen` at full speed beside the
# hybrid journeys at 2,000 spans/s, then scripts/query_at_scale.py times
# each question over HTTP (search, flows, lookups, reports, a grouped
# count), CALLS calls each (200: of fewer than a hundred, the p99 is the
# slowest call, which on a shared machine is its worst pause).
#
#   scripts/query-at-scale.sh
#   SPANS=10000000 DATA=/var/lib/seam-bench/scale scripts/query-at-scale.sh
#   CONFIG=seam.yaml scripts/query-at-scale.sh      # a server configured otherwise
#
# Then the lookups and searches again while `seam loadgen` keeps sending
# at LIVE_RATE spans/s (default 20,000), as a user asks while traffic
# flows: summaries still active and hot spans are read too.
#
# DATA is emptied first; put it on a disk with a few GB free.
set -euo pipefail
cd "$(dirname "$0")/.."

SPANS=${SPANS:-10000000}
LIVE_RATE=${LIVE_RATE:-20000}
CALLS=${CALLS:-200}
DATA=${DATA:-target/query-at-scale/data}
work=target/query-at-scale
mkdir -p "$work"

step() { printf '\n==> %s\n' "$*" >&2; }

step "Seam (release build)"
cargo build --release --locked --bin seam
seam=target/release/seam

rm -rf "$DATA"
"$seam" serve ${CONFIG:+--config "$CONFIG"} --data-dir "$DATA" \
  --grpc-listen 127.0.0.1:54317 --http-listen 127.0.0.1:54318 --api-listen 127.0.0.1:58080 \
  >"$work/seam.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; kill $hybrid 2>/dev/null || true' EXIT
hybrid=
for _ in $(seq 1 100); do
  curl -sf http://127.0.0.1:58080/readyz >/dev/null && break
  sleep 0.1
done

stored() {
  curl -s http://127.0.0.1:58080/metrics |
    awk '/^seam_receiver_spans_accepted_total/ { print int($2) }'
}

step "Filling to $SPANS spans: flat load at full speed beside hybrid journeys at 2,000 spans/s"
"$seam" loadgen --endpoint http://127.0.0.1:54317 --topology hybrid --rate 2000 \
  --duration 1h --quiet >/dev/null 2>&1 &
hybrid=$!
started=$(date +%s)
while [ "$(stored)" -lt "$SPANS" ]; do
  "$seam" loadgen --endpoint http://127.0.0.1:54317 --duration 15s --quiet --json >/dev/null
done
kill $hybrid 2>/dev/null || true
wait $hybrid 2>/dev/null || true
echo "$(stored) spans in $(($(date +%s) - started)) s" >&2
# Let correlation write the last summaries (trace_idle) before timing,
# the store seal them (no hot rows left in any table) and finish
# compacting what was sealed (quiet for 20 s), at most 5 minutes: the
# questions are timed on a server at rest, not beside a seal.
sleep 15
compactions() {
  curl -s http://127.0.0.1:58080/metrics |
    awk '/^seam_store_compactions_total/ { print int($2) }'
}
hot_rows() {
  curl -s http://127.0.0.1:58080/metrics |
    awk '/^seam_store_hot_rows/ { n += $2 } END { print int(n) }'
}
for _ in $(seq 1 15); do
  before=$(compactions)
  sleep 20
  [ "$(compactions)" = "$before" ] && [ "$(hot_rows)" = 0 ] && break
done

step "Questions, $CALLS calls each ($(date -u +%Y-%m-%d), $(nproc) cores)"
python3 scripts/query_at_scale.py http://127.0.0.1:58080 "$CALLS" | tee "$work/summary.md"
grep VmHWM /proc/$pid/status | tee -a "$work/summary.md"

step "Searches and lookups while ingesting $LIVE_RATE spans/s"
"$seam" loadgen --endpoint http://127.0.0.1:54317 --rate "$LIVE_RATE" --duration 10m --quiet >/dev/null 2>&1 &
live=$!
sleep 20
ONLY="search,by id" python3 scripts/query_at_scale.py http://127.0.0.1:58080 "$CALLS" | tee "$work/live.md"
kill $live 2>/dev/null || true
