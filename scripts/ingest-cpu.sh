#!/usr/bin/env bash
# Server CPU per span ingested, the steady figure beside spans/s on a
# noisy machine: a fresh release server (defaults: write-ahead log,
# stitching, seals) receives `seam loadgen` at RATE spans/s for DURATION,
# TOPOLOGY flat or hybrid, under `perf stat` of the server until it has
# stopped (its last seal included); prints spans accepted and CPU ns per
# span (instructions and cycles too where the machine counts them).
# With CALLGRIND=1 the server runs under callgrind instead and the figure
# is instructions per span, start and shutdown included: repeatable, so
# two builds compare at small loads. The server seals what it holds when
# it stops, so the spans' sealed bytes a span are printed too (one file
# of every span sent).
#
#   scripts/ingest-cpu.sh
#   SEAM=/tmp/seam-other TOPOLOGY=hybrid scripts/ingest-cpu.sh
#   CALLGRIND=1 RATE=5000 DURATION=20s scripts/ingest-cpu.sh
#   CONFIG=seam.yaml scripts/ingest-cpu.sh      # a server configured otherwise
#   PROFILE=1 scripts/ingest-cpu.sh             # and where the CPU goes
#
# With PROFILE=1 the server also runs under `perf record --call-graph
# dwarf` (cpu-clock, user and kernel) and the stages' inclusive shares
# are printed: the profile BENCHMARKS.md's floor is read from.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-50000}
DURATION=${DURATION:-20s}
TOPOLOGY=${TOPOLOGY:-flat}
work=target/ingest-cpu
mkdir -p "$work"
if [ -z "${SEAM:-}" ]; then
  cargo build --release --locked --bin seam
  SEAM=target/release/seam
fi

# The spans' Parquet bytes a span, once the server has sealed at exit.
sealed() {
  bytes=$(cat "$work"/data/segments/spans/*.parquet 2>/dev/null | wc -c)
  echo "sealed           $(python3 -c "print(f'{$bytes / $spans:.1f}')") bytes a span (spans table)"
}

rm -rf "$work/data"
wrap=()
if [ -n "${CALLGRIND:-}" ]; then
  wrap=(valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out")
fi
"${wrap[@]}" "$SEAM" serve ${CONFIG:+--config "$CONFIG"} --data-dir "$work/data" \
  --grpc-listen 127.0.0.1:54417 --http-listen 127.0.0.1:54418 --api-listen 127.0.0.1:58180 \
  >"$work/seam.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf http://127.0.0.1:58180/readyz >/dev/null && break
  sleep 0.1
done

if [ -n "${CALLGRIND:-}" ]; then
  "$SEAM" loadgen --endpoint http://127.0.0.1:54417 --topology "$TOPOLOGY" --rate "$RATE" \
    --duration "$DURATION" --seed 7 --timeout 60s --quiet >/dev/null
  sleep 5
  spans=$(curl -s http://127.0.0.1:58180/metrics |
    awk '/^seam_receiver_spans_accepted_total/ { print int($2) }')
  kill -INT $pid
  wait $pid || true
  ir=$(awk '/^summary:/ { print $2 }' "$work/callgrind.out")
  echo "spans accepted   $spans"
  echo "instructions     $((ir / spans)) a span (callgrind, start and shutdown included)"
  sealed
  exit 0
fi

perf stat -e instructions,cycles,task-clock -x, -o "$work/perf.csv" -p "$pid" &
perf=$!
if [ -n "${PROFILE:-}" ]; then
  perf record -q -e cpu-clock -F 499 --call-graph dwarf,8192 -o "$work/perf.data" -p "$pid" 2>/dev/null &
  record=$!
fi
sleep 0.5
"$SEAM" loadgen --endpoint http://127.0.0.1:54417 --topology "$TOPOLOGY" --rate "$RATE" \
  --duration "$DURATION" --quiet >/dev/null
# Correlation and the seal of what arrived (at exit) are part of ingest:
# perf counts until the server has stopped.
sleep 5
spans=$(curl -s http://127.0.0.1:58180/metrics |
  awk '/^seam_receiver_spans_accepted_total/ { print int($2) }')
kill -INT $pid
wait $pid || true
wait $perf 2>/dev/null || true
if [ -n "${PROFILE:-}" ]; then
  wait $record 2>/dev/null || true
fi
python3 - "$work/perf.csv" "$spans" <<'EOF'
import sys
values = {}
for line in open(sys.argv[1]):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[0] and parts[0][0].isdigit():
        values[parts[2]] = float(parts[0])
spans = int(sys.argv[2])
clock = values.get("task-clock", 0.0)  # ms
print(f"spans accepted   {spans}")
for event in ("instructions", "cycles"):
    if event in values:
        print(f"{event:<16} {values[event] / spans:,.0f} a span")
print(f"cpu              {clock * 1e6 / spans:,.0f} ns a span")
EOF
sealed
if [ -n "${PROFILE:-}" ]; then
  # Inclusive shares of the server's CPU, nested rows overlapping.
  perf report -i "$work/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
    sed -E 's/[[:space:]-]*$//' |
    grep -E 'Store::seal$|Pipeline::process$|Export::decode_then|SpanBatchBuilder::append$|ArrowWriter<W>::write$|Interner<S>::intern$|ZSTD_compress2|interleave_record_batch|Wal::append$|Wal::sync_through|asm_exc_page_fault|normalize::normalize$|poll_accept|Extractor::observe$|TraceParts::add$|Follower>::(follow|flush|capture)$|quicksort::quicksort$' |
    awk '{ share = $1; $1 = $2 = $3 = ""; sub(/^ +/, ""); print share, $0 }'
fi
