#!/usr/bin/env bash
# End-to-end load benchmarks (README "Load testing"): otelsim → a receiver on the
# same machine, over real sockets on 127.0.0.1.
#
#   scripts/bench-load.sh throughput   unpaced for DURATION: acknowledged spans/s, otelsim CPU and peak RSS,
#                                      for each RECEIVERS (sink, rotel) × PROTOCOLS × ENGINES
#   scripts/bench-load.sh rate         --rate R --unit spans for DURATION, for each RATES: achieved vs target
#   scripts/bench-load.sh compare OLD_BIN NEW_BIN
#                                      the two binaries run by run, in turn, on the same workloads
#                                      (bench stage; default signals, traces only over HTTP/protobuf
#                                      and traces only over gRPC, unpaced into one `otelsim sink`):
#                                      per row the medians of each and the median of the paired
#                                      NEW/OLD ratios of CPU µs per span, spans/s and peak RSS
#   scripts/bench-load.sh instructions OLD_BIN NEW_BIN
#                                      the same rows counted in instructions under valgrind's callgrind
#                                      (whole process, every thread): they repeat to a fraction of a per
#                                      cent where CPU time on a shared machine varies by ±15 %
#
# Env: DURATION (10s; rate: 60s), RECEIVERS ("sink rotel"), PROTOCOLS ("grpc http/protobuf"),
#      ENGINES ("native sdk"), RATES ("10000 100000"), WORKERS (default: cores), OTELSIM, ROTEL;
#      compare: RUNS (5 pairs), COUNT (20000 picks a run), SPANS (400000 for the bench stage),
#      ROWS ("bench default-http traces-http traces-grpc"), LIMIT (120 s per command);
#      instructions: ISPANS (60000 for the bench rows), ICOUNT (5000 picks a run), ROWS
#      ("bench bench-all default-http traces-http traces-grpc").
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

# compare_one ROW BIN → one line: CPU µs per span, spans/s, peak RSS MiB (client only).
# The bench row uses the flags every otelsim bench has taken (traces, generate + encode).
compare_one() {
  local row=$1 bin=$2 proto port extra=()
  case "$row" in
    bench)
      timeout "${LIMIT:-120}" "$bin" bench -q --spans "${SPANS:-400000}" --report "$WORK/bench.json" >/dev/null
      python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["cpu_us_per_span"], r["spans_per_s"], r["peak_rss_mb"])' "$WORK/bench.json"
      return ;;
    default-http) proto=http/protobuf; port=$HTTP ;;
    traces-http) proto=http/protobuf; port=$HTTP; extra=(--no-metrics --no-logs) ;;
    traces-grpc) proto=grpc; port=$GRPC; extra=(--no-metrics --no-logs) ;;
    *) echo "unknown row $row (bench default-http traces-http traces-grpc)" >&2; exit 2 ;;
  esac
  rm -f "$WORK/run.json"
  timeout "${LIMIT:-120}" /usr/bin/time -f "%U %S %M" -o "$WORK/time.txt" "$bin" run -q --count "${COUNT:-20000}" \
    --interval 0 --seed 1 --protocol "$proto" --endpoint "http://127.0.0.1:$port" --report "$WORK/run.json" \
    "${extra[@]}" "${workers[@]}" >/dev/null 2>"$WORK/run.err" || true
  python3 - "$WORK/run.json" "$WORK/time.txt" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))["report"]
except (OSError, ValueError, KeyError):
    print("nan nan nan"); sys.exit()
t = open(sys.argv[2]).read().split()[-3:]
acked = r["export"]["spans"]["acked"]
cpu = float(t[0]) + float(t[1])
print(cpu * 1e6 / max(acked, 1), acked / r["clock_s"], int(t[2]) / 1024)
PY
}

# compare OLD NEW: RUNS pairs per row, A B then B A in turn, into one sink; prints medians and ratios.
compare() {
  local old=$1 new=$2 i row first second
  OTELSIM=$new start_receiver sink # one receiver for both: NEW's sink
  : >"$WORK/pairs.txt"
  for i in $(seq 1 "${RUNS:-5}"); do
    for row in ${ROWS:-bench default-http traces-http traces-grpc}; do
      # Alternate which binary goes first, so neither always runs on a warmer machine.
      if [ $((i % 2)) -eq 1 ]; then first=old; second=new; else first=new; second=old; fi
      for who in $first $second; do
        bin=$old; [ "$who" = new ] && bin=$new
        echo "$row $who $i $(compare_one "$row" "$bin")" >>"$WORK/pairs.txt"
      done
    done
  done
  stop_receiver
  python3 - "$WORK/pairs.txt" "$old" "$new" <<'PY'
import math, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    row, who, i, *v = line.split()
    runs.setdefault(row, {}).setdefault(i, {})[who] = [float(x) for x in v]
print(f"compare: OLD {sys.argv[2]}")
print(f"         NEW {sys.argv[3]}")
print("medians of the runs; ratio = median of the paired NEW/OLD ratios (CPU and RSS: < 1 is better; spans/s: > 1)")
names = ["CPU µs/span", "spans/s", "peak RSS MiB"]
for row, pairs in runs.items():
    both = [p for p in pairs.values() if len(p) == 2 and not any(math.isnan(x) for x in p["old"] + p["new"])]
    if not both:
        print(f"{row:<13} no complete pair (a run failed)")
        continue
    cells = []
    for k, name in enumerate(names):
        o = statistics.median(p["old"][k] for p in both)
        n = statistics.median(p["new"][k] for p in both)
        # A very short run can read 0.00 s of CPU (the clock counts in ticks): no ratio from it.
        ratios = [p["new"][k] / p["old"][k] for p in both if p["old"][k] > 0]
        ratio = f"{statistics.median(ratios):.3f}" if ratios else "n/a"
        cells.append(f"{name} {o:,.2f} → {n:,.2f} ratio {ratio}")
    print(f"{row:<13} pairs {len(both)} · " + " · ".join(cells))
PY
}

# Instructions one command executes, every thread, under callgrind (the count is in
# the "summary:" line of its output file).
count_instructions() { # out-file, command...
  local out=$1; shift
  timeout "${LIMIT:-600}" valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>&1 || true
  awk '/^(summary|totals):/ { print $2; exit }' "$out" 2>/dev/null || true
}

instructions() {
  local old=$1 new=$2 row who bin n args
  OTELSIM=$new start_receiver sink
  printf '%-13s %16s %16s %8s   %s\n' row OLD NEW NEW/OLD "per span (OLD → NEW)"
  for row in ${ROWS:-bench bench-all default-http traces-http traces-grpc}; do
    case "$row" in
      bench) args=(bench -q --spans "${ISPANS:-60000}") ;;
      bench-all) args=(bench -q --spans "${ISPANS:-60000}" --signals all) ;;
      default-http) args=(run -q --count "${ICOUNT:-5000}" --interval 0 --seed 1 --protocol http/protobuf --endpoint "http://127.0.0.1:$HTTP") ;;
      traces-http) args=(run -q --count "${ICOUNT:-5000}" --interval 0 --seed 1 --protocol http/protobuf --endpoint "http://127.0.0.1:$HTTP" --no-metrics --no-logs) ;;
      traces-grpc) args=(run -q --count "${ICOUNT:-5000}" --interval 0 --seed 1 --protocol grpc --endpoint "http://127.0.0.1:$GRPC" --no-metrics --no-logs) ;;
      *) echo "unknown row $row (bench bench-all default-http traces-http traces-grpc)" >&2; exit 2 ;;
    esac
    [ "$row" = "${row#bench}" ] && args+=(--report "$WORK/i.json")
    for who in old new; do
      bin=$old; [ "$who" = new ] && bin=$new
      rm -f "$WORK/i.json"
      n=$(count_instructions "$WORK/cg.$who" "$bin" "${args[@]}")
      eval "n_$who=\${n:-nan}"
    done
    # Per span: a bench row's spans, a run's spans generated (the seed makes the same picks).
    python3 - "$row" "$n_old" "$n_new" "${ISPANS:-60000}" "$WORK/i.json" <<'PY'
import json, sys
row, old, new, spans = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
if not row.startswith("bench"):
    try:
        spans = json.load(open(sys.argv[5]))["report"]["export"]["spans"]["generated"]
    except (OSError, ValueError, KeyError):
        spans = float("nan")
print(f"{row:<13} {old:>16,.0f} {new:>16,.0f} {new / old:>8.3f}   {old / spans:,.0f} → {new / spans:,.0f}")
PY
  done
  stop_receiver
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
  compare)
    [ $# -eq 3 ] || { echo "usage: $0 compare OLD_BIN NEW_BIN" >&2; exit 2; }
    compare "$2" "$3" ;;
  instructions)
    [ $# -eq 3 ] || { echo "usage: $0 instructions OLD_BIN NEW_BIN" >&2; exit 2; }
    command -v valgrind >/dev/null || { echo "instructions needs valgrind (Debian: apt-get install valgrind)" >&2; exit 2; }
    instructions "$2" "$3" ;;
  *) echo "usage: $0 throughput|rate|compare|instructions OLD_BIN NEW_BIN" >&2; exit 2 ;;
esac
