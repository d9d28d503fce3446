#!/usr/bin/env bash
# Verifies a collector pipeline end to end: otelsim → rotel (a real third-party
# OTLP collector, forwarding with its otlp exporter) → otelsim sink, then
# `otelsim verify` compares what otelsim had acknowledged with what arrived.
# Every port is a free one on 127.0.0.1; every process started here is stopped.
#
#   RATE (spans/s, default 10000)  DURATION (default 60s, in s or m)  OTELSIM  ROTEL  KEEP (a folder for the reports)
#   TRACKED (spans the sink checks; default RATE × DURATION + 25 %)
set -euo pipefail
OTELSIM=${OTELSIM:-target/release/otelsim}
ROTEL=${ROTEL:-$(ls .venv/lib/python3*/site-packages/rotel/rotel-agent 2>/dev/null | head -n1 || true)}
RATE=${RATE:-10000}
DURATION=${DURATION:-60s}
# The reports go to a temporary folder, removed on exit, unless KEEP names one.
WORK=${KEEP:-$(mktemp -d)}
mkdir -p "$WORK"

if [ ! -x "$OTELSIM" ]; then echo "verify-pipeline: $OTELSIM not found; run \`make release\`" >&2; exit 1; fi
if [ -z "$ROTEL" ] || [ ! -x "$ROTEL" ]; then echo "verify-pipeline: rotel-agent not found; run \`make rotel\`" >&2; exit 1; fi

. "$(dirname "$0")/lib.sh"
SINK_GRPC=$(free_port); SINK_HTTP=$(free_port); ROTEL_GRPC=$(free_port); ROTEL_HTTP=$(free_port)

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The sink checks every span of the run: track RATE × DURATION spans (+25 %, for what
# arrives without a run id), not its default 1 M.
secs=${DURATION%s}; case "$DURATION" in *m) secs=$(( ${DURATION%m} * 60 ));; esac
TRACKED=${TRACKED:-$(( RATE * secs * 5 / 4 + 100000 ))}
"$OTELSIM" sink --grpc-addr "127.0.0.1:$SINK_GRPC" --http-addr "127.0.0.1:$SINK_HTTP" \
  --max-tracked-spans "$TRACKED" --summary-file "$WORK/sink.json" --duration 30m >"$WORK/sink.out" 2>&1 &
SINK=$!; pids+=("$SINK")
"$ROTEL" start --otlp-grpc-endpoint "127.0.0.1:$ROTEL_GRPC" --otlp-http-endpoint "127.0.0.1:$ROTEL_HTTP" \
  --exporter otlp --otlp-exporter-endpoint "http://127.0.0.1:$SINK_GRPC" >"$WORK/rotel.out" 2>&1 &
ROTEL_PID=$!; pids+=("$ROTEL_PID")
wait_port "$SINK_GRPC" "otelsim sink"
wait_port "$ROTEL_GRPC" "rotel"
# Free ports are picked, then bound: make sure our own processes got them.
for p in "$SINK" "$ROTEL_PID"; do
  kill -0 "$p" 2>/dev/null || { echo "verify-pipeline: a receiver exited at start:" >&2; cat "$WORK"/*.out >&2; exit 1; }
done

echo "== otelsim run: $RATE spans/s for $DURATION into rotel =="
run_status=0
"$OTELSIM" run --rate "$RATE" --unit spans --duration "$DURATION" \
  --endpoint "http://127.0.0.1:$ROTEL_GRPC" --report "$WORK/run.json" --max-shortfall 1% || run_status=$?

# rotel acknowledges before it forwards: give it a moment to drain, then stop it
# gracefully (it flushes on SIGTERM) and stop the sink, which writes its summary.
sleep 2
kill -TERM "$ROTEL_PID" 2>/dev/null || echo "verify-pipeline: rotel had already exited" >&2
wait "$ROTEL_PID" || true
kill -TERM "$SINK" 2>/dev/null || echo "verify-pipeline: the sink had already exited" >&2
wait "$SINK" || true
pids=()

echo "== otelsim verify =="
verify_status=0
"$OTELSIM" verify "$WORK/run.json" --sink-report "$WORK/sink.json" --output "$WORK/verdict.json" || verify_status=$?
if [ -n "${KEEP:-}" ]; then
  echo "reports in $WORK (run.json, sink.json, verdict.json)"
elif [ "$run_status" != 0 ] || [ "$verify_status" != 0 ]; then
  echo "verify-pipeline: rerun with KEEP=DIR to keep run.json, sink.json and verdict.json" >&2
fi
if [ "$run_status" != 0 ]; then echo "verify-pipeline: otelsim run exited $run_status" >&2; exit "$run_status"; fi
exit "$verify_status"
