#!/usr/bin/env bash
# End-to-end load benchmarks (README "Load testing"): otelsim → a receiver on the
# same machine, over real sockets on 127.0.0.1.
#
#   scripts/bench-load.sh throughput   unpaced for DURATION: acknowledged spans/s, otelsim CPU and peak RSS,
#                                      for each RECEIVERS (sink, rotel) × PROTOCOLS × ENGINES
#   scripts/bench-load.sh rate         --rate R --unit spans for DURATION, for each RATES: achieved vs target
#
# Env: DURATION (10s; rate: 60s), RECEIVERS ("sink rotel"), PROTOCOLS ("grpc http/protobuf"),
#      ENGINES ("native sdk"), RATES ("10000 100000"), WORKERS (default: cores), OTELSIM, ROTEL.
set -euo pipefail
MODE=${1:-throughput}
OTELSIM=${OTELSIM:-target/release/otelsim}
ROTEL=${ROTEL:-$(ls .venv/lib/python3*/site-packages/rotel/rotel-agent 2>/dev/null | head -n1 || true)}
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

. "$(dirname "$0")/lib.sh"

# start_receiver sink|rotel → sets GRPC, HTTP, RECV_PID
start_receiver() {
  GRPC=$(free_port); HTTP=$(free_port)
  case "$1" in
    sink) "$OTELSIM" sink --grpc-addr "127.0.0.1:$GRPC" --http-addr "127.0.0.1:$HTTP" --duration 1h >"$WORK/recv.out" 2>&1 & ;;
    rotel) "$ROTEL" start --otlp-grpc-endpoint "127.0.0.1:$GRPC" --otlp-http-endpoint "127.0.0.1:$HTTP" --exporter blackhole >"$WORK/recv.out" 2>&1 & ;;
  esac
  RECV_PID=$!; pids+=("$RECV_PID")
  wait_port "$GRPC"; wait_port "$HTTP"
}
# CPU seconds the receiver has used (to show when it, not otelsim, is the limit).
receiver_cpu() { awk '{ printf "%.1f", ($14 + $15) / 100 }' "/proc/$RECV_PID/stat" 2>/dev/null || echo "?"; }
stop_receiver() { kill -TERM "$RECV_PID" 2>/dev/null || true; wait "$RECV_PID" 2>/dev/null || true; }

summarise() { # report.json time.txt label
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["report"]; t = open(sys.argv[2]).read().strip().splitlines()[-1].split()
e = r["export"]["spans"]; clock = r["clock_s"]
cpu = float(t[0]) + float(t[1]); rss = int(t[2]) / 1024
line = f"{sys.argv[3]:<34} {e['acked']/clock:>10,.0f} spans/s acked · {e['failed']:>8} failed · {cpu*1e6/max(e['generated'],1):5.2f} µs CPU/span · peak RSS {rss:5.1f} MiB"
p = r.get("pacing")
if p:
    line += f" · target {p['target_per_s']:,.0f}/s achieved {p['achieved_per_s']:,.0f}/s ({100*(p['achieved_per_s']/p['target_per_s']-1):+.2f} %) · lag p99 {p['lag_p99_ms']:.1f} ms"
k = r.get("sdk")
if k:
    line += f" · SDK dropped {k['dropped_spans']} of {k['offered_spans']}"
print(line)
PY
}

run_otelsim() { # label, args...
  local label=$1; shift
  /usr/bin/time -f "%U %S %M" -o "$WORK/time.txt" "$OTELSIM" run -q --no-metrics --no-logs --report "$WORK/run.json" "$@" || true
  summarise "$WORK/run.json" "$WORK/time.txt" "$label"
  echo "    receiver CPU: $(receiver_cpu) s · otelsim CPU: $(tail -n1 "$WORK/time.txt" | awk '{ printf "%.1f", $1 + $2 }') s"
}

workers=()
[ -n "${WORKERS:-}" ] && workers=(--workers "$WORKERS")
case "$MODE" in
  throughput)
    DURATION=${DURATION:-10s}
    for recv in ${RECEIVERS:-sink rotel}; do
      for proto in ${PROTOCOLS:-grpc http/protobuf}; do
        for engine in ${ENGINES:-native sdk}; do
          start_receiver "$recv"
          port=$GRPC; [ "$proto" = grpc ] || port=$HTTP
          run_otelsim "$recv $proto $engine" --engine "$engine" --interval 0 --duration "$DURATION" \
            --protocol "$proto" --endpoint "http://127.0.0.1:$port" "${workers[@]}"
          stop_receiver
        done
      done
    done ;;
  rate)
    DURATION=${DURATION:-60s}
    for rate in ${RATES:-10000 100000}; do
      start_receiver "${RECEIVERS%% *}"
      run_otelsim "rate $rate spans/s ${RECEIVERS%% *}" --rate "$rate" --unit spans --duration "$DURATION" \
        --endpoint "http://127.0.0.1:$GRPC" "${workers[@]}"
      stop_receiver
    done ;;
  *) echo "usage: $0 throughput|rate" >&2; exit 2 ;;
esac
