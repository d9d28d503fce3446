#!/usr/bin/env bash
# Starts `otelsim sink`, runs a mixed workload into it over OTLP/gRPC, then stops
# the sink (SIGINT) so it prints what it received. No external collector needed.
set -euo pipefail
OTELSIM=${OTELSIM:-target/release/otelsim}
GRPC=${DEMO_GRPC_ADDR:-127.0.0.1:14317}
HTTP=${DEMO_HTTP_ADDR:-127.0.0.1:14318}
COUNT=${DEMO_COUNT:-300}

if [ ! -x "$OTELSIM" ]; then
  echo "demo: $OTELSIM not found; run \`make release\` (or set OTELSIM)" >&2
  exit 1
fi

"$OTELSIM" sink --grpc-addr "$GRPC" --http-addr "$HTTP" --duration 10m &
SINK=$!
trap 'kill -INT "$SINK" 2>/dev/null || true' EXIT

host=${GRPC%:*}; port=${GRPC##*:}
up=0
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then up=1; break; fi
  sleep 0.05
done
if [ "$up" != 1 ]; then
  echo "demo: otelsim sink did not start listening on $GRPC (port in use? set DEMO_GRPC_ADDR/DEMO_HTTP_ADDR)" >&2
  exit 1
fi

echo "== otelsim sink listening on $GRPC (gRPC) and $HTTP (HTTP): otelsim's own OTLP receiver"
echo "== otelsim run: $COUNT weighted picks of the bundled scenarios, 5 ms apart, sent to it over OTLP/gRPC =="
status=0
"$OTELSIM" run --endpoint "http://$GRPC" --count "$COUNT" --interval 5 || status=$?

echo
echo "== otelsim sink: what arrived =="
kill -INT "$SINK"
wait "$SINK" || true
trap - EXIT
exit "$status"
