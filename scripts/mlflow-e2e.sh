#!/bin/sh
# Runs an MLflow tracking server on 127.0.0.1:PORT, sends one otelsim run to its OTLP
# trace endpoint (experiment header, a request timeout above MLflow's slow first
# answer, and a retry budget for a loaded machine where it stays slow), waits until MLflow holds the EXPECT_SPANS spans the caller counted in the
# same seeded run written to a file, and writes what MLflow's own client reads back
# (trace previews, session and user, span types, inputs and outputs) to
# WORKDIR/traces.json. Called by tests/it/mlflow.rs as
#   EXPECT_SPANS=N scripts/mlflow-e2e.sh MLFLOW_BIN_DIR OTELSIM WORKDIR PORT [otelsim args...]
set -eu
bin=$1 otelsim=$2 work=$3 port=$4
shift 4
: "${EXPECT_SPANS:?the number of spans the run sends}"
url="http://127.0.0.1:$port"
# Its own session and process group, so the server's workers stop with it.
setsid "$bin/mlflow" server --host 127.0.0.1 --port "$port" \
  --backend-store-uri "sqlite:///$work/mlflow.db" --default-artifact-root "$work/artifacts" \
  >"$work/mlflow.log" 2>&1 &
pid=$!
trap 'kill -- -$pid 2>/dev/null || kill $pid 2>/dev/null || true' EXIT
experiment=$("$bin/python" - "$url" <<'PY'
import json, sys, time, urllib.request
url = sys.argv[1]
for _ in range(240):
    try:
        urllib.request.urlopen(url + "/health", timeout=5)
        break
    except Exception:
        time.sleep(1)
else:
    sys.exit("mlflow did not come up in 240 s")
req = urllib.request.Request(url + "/api/2.0/mlflow/experiments/create",
    data=json.dumps({"name": "otelsim"}).encode(), headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=120))["experiment_id"])
PY
)
"$otelsim" "$@" --protocol http/protobuf --endpoint "$url" \
  --header "x-mlflow-experiment-id=$experiment" --request-timeout 60s --retry-budget 120s \
  >"$work/otelsim.log" 2>&1
"$bin/python" - "$url" "$experiment" "$EXPECT_SPANS" "$work/traces.json" <<'PY'
import json, sys, time
import mlflow
url, experiment, expected, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
mlflow.set_tracking_uri(url)
traces = []
# MLflow stores as it receives; bounded wait for every span on a busy machine.
for _ in range(180):
    traces = mlflow.search_traces(locations=[experiment], return_type="list", max_results=5000)
    if sum(len(t.data.spans) for t in traces) >= expected:
        break
    time.sleep(1)
json.dump([{
    "request_preview": t.info.request_preview,
    "response_preview": t.info.response_preview,
    "metadata": dict(t.info.trace_metadata or {}),
    "spans": [{
        "name": s.name,
        "span_type": s.span_type,
        "parent_id": s.parent_id,
        "inputs": s.inputs,
        "outputs": s.outputs,
        "class": s.attributes.get("vendor.span.class"),
        "status": getattr(s.status.status_code, "value", str(s.status.status_code)),
    } for s in t.data.spans],
} for t in traces], open(out, "w"), default=str)
PY
