#!/usr/bin/env bash
# Jaeger all-in-one from docker-compose.yml, for watching otelsim's traces live.
#
#   scripts/jaeger.sh up     start it (UI :16686, OTLP :4317/:4318)
#   scripts/jaeger.sh down   stop and remove it
#   scripts/jaeger.sh ui     open the UI in a browser, or print its URL
#
# CONTAINER_CMD picks the engine: docker (default) or podman. Before `up` and
# `down`, the engine, its compose plugin and (for docker) its daemon are checked,
# so a missing piece is named in one sentence instead of compose's own errors.
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${CONTAINER_CMD:-docker}
UI=http://localhost:16686
ACTION=${1:-}

# Says what is missing and how to get it; returns 1 when something is.
check_engine() {
  if ! command -v "$ENGINE" >/dev/null 2>&1; then
    echo "jaeger: \`$ENGINE\` is not installed: install Docker with its compose plugin, or Podman with podman-compose and run \`make jaeger-$ACTION CONTAINER_CMD=podman\`." >&2
    return 1
  fi
  local missing=() how=()
  # `compose version` needs no daemon; a client without the plugin fails here.
  if ! timeout 20 "$ENGINE" compose version >/dev/null 2>&1; then
    missing+=("its compose plugin (\`$ENGINE compose\`)")
    if [ "$ENGINE" = podman ]; then how+=("install podman-compose"); else how+=("install the Docker Compose plugin (e.g. the docker-compose-plugin package)"); fi
  fi
  # docker needs a running daemon; podman runs containers without one.
  if ! timeout 20 "$ENGINE" info >/dev/null 2>&1; then
    missing+=("a running $ENGINE daemon")
    if [ "$ENGINE" = podman ]; then how+=("see what \`podman info\` says"); else how+=("start the daemon (e.g. \`sudo systemctl start docker\`)"); fi
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    local what="${missing[0]} is" todo=${how[0]}
    if [ "${#missing[@]}" -gt 1 ]; then what="${missing[0]} and ${missing[1]} are"; todo="${how[0]} and ${how[1]}"; fi
    local alt=", or use Podman: \`make jaeger-$ACTION CONTAINER_CMD=podman\`"
    [ "$ENGINE" = podman ] && alt=""
    echo "jaeger: \`$ENGINE\` is installed but $what missing: $todo$alt." >&2
    return 1
  fi
}

open_ui() {
  if command -v xdg-open >/dev/null 2>&1; then
    xdg-open "$UI" >/dev/null 2>&1 &
  elif command -v open >/dev/null 2>&1; then
    open "$UI"
  fi
  echo "Jaeger UI: $UI  (service \"agent-platform\")"
}

case "${1:-}" in
  up)
    check_engine || exit 1
    "$ENGINE" compose up -d jaeger
    echo "Jaeger UI: $UI  —  now: otelsim run --count 200 --rate 20; then \`make jaeger-ui\` or open the URL" ;;
  down)
    check_engine || exit 1
    "$ENGINE" compose down ;;
  ui) open_ui ;;
  *) echo "usage: $0 up|down|ui   (CONTAINER_CMD=docker|podman)" >&2; exit 2 ;;
esac
