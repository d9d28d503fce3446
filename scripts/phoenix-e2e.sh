#!/bin/sh
# Runs Arize Phoenix and one otelsim run inside a private network namespace (Phoenix's
# gRPC port binds every interface), then writes what Phoenix stored, read back through
# its REST API, to WORKDIR/spans.json. Called by tests/it/phoenix.rs as
#   unshare --net scripts/phoenix-e2e.sh PHOENIX OTELSIM WORKDIR [otelsim args...]
set -eu
phoenix=$1 otelsim=$2 work=$3
shift 3
ip link set lo up
export PHOENIX_WORKING_DIR="$work/phoenix"
mkdir -p "$PHOENIX_WORKING_DIR"
"$phoenix" serve >"$work/phoenix.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
up=""
for _ in $(seq 1 180); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6006/healthz', timeout=2)" 2>/dev/null; then
    up=1
    break
  fi
  sleep 1
done
[ -n "$up" ] || { echo "phoenix did not come up in 180 s; its log: $work/phoenix.log" >&2; exit 1; }
OTEL_RESOURCE_ATTRIBUTES=openinference.project.name=otelsim \
  "$otelsim" "$@" --protocol http/protobuf --endpoint http://127.0.0.1:6006 --retry-budget 120s \
    >"$work/otelsim.log" 2>&1
# Phoenix stores asynchronously: wait until it holds the EXPECT_SPANS spans the
# caller counted in the same seeded run written to a file (on a busy machine that
# can take a while; bounded at 180 s).
python3 - "$work/spans.json" "${EXPECT_SPANS:?the number of spans the run sends}" <<'PY'
import json, sys, time, urllib.request
base = "http://127.0.0.1:6006/v1/projects/otelsim/spans?limit=1000"

def fetch():
    # The API pages by cursor, at most 1000 spans a page.
    spans, cursor = [], None
    while True:
        url = base + (f"&cursor={cursor}" if cursor else "")
        page = json.load(urllib.request.urlopen(url, timeout=10))
        spans += page["data"]
        cursor = page.get("next_cursor")
        if not cursor:
            return spans

expected = int(sys.argv[2])
spans = []
for _ in range(180):
    try:
        spans = fetch()
    except Exception:
        # The project appears with the first stored span: 404 until then.
        spans = []
    if len(spans) >= expected:
        break
    time.sleep(1)
json.dump(spans, open(sys.argv[1], "w"))
PY
