#!/usr/bin/env bash
# `make compose-smoke`: docker-compose.yml started for real (with docker-compose.ci.yml's local infrastructure
# images and stand-ins), then deploy/docker/smoke_campaign.py runs inside the stack: every /readyz 200, every
# Prometheus target up, one campaign through the gateway's JSON API, its mails at the stack's SMTP catcher,
# the unsubscribe proxy. Always ends with `down -v` and stops a dockerd it started.
# Builds the images first (deploy/docker/images.sh, cached). Works with docker-compose 1.29 and Compose v2.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=deploy/docker/engine.sh
source deploy/docker/engine.sh
PROJECT="isseimail-smoke"
FILES=(-f docker-compose.yml -f docker-compose.ci.yml)
if command -v docker-compose >/dev/null 2>&1; then COMPOSE=(docker-compose); else COMPOSE=(docker compose); fi
compose() { "${COMPOSE[@]}" -p "$PROJECT" "${FILES[@]}" "$@"; }

cleanup() {
  local rc=$?
  if [ -n "${STARTED_STACK:-}" ]; then
    if [ "$rc" != 0 ]; then
      echo "compose-smoke: FAILED; the stack's last log lines:" >&2
      compose ps >&2 || true
      compose logs --no-color --tail=60 >&2 || true
    fi
    compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  engine_stop
  exit "$rc"
}
trap cleanup EXIT
engine_start

ISSEIMAIL_KEEP_ENGINE=1 deploy/docker/images.sh
deploy/docker/ci-images.sh

# free host ports for what the stack publishes, so a busy machine (or a second clone) cannot collide
read -r GATEWAY_HOST_PORT UNSUBSCRIBE_HOST_PORT RABBITMQ_UI_HOST_PORT MAILPIT_UI_HOST_PORT BOUNCE_HOST_PORT \
  PROMETHEUS_HOST_PORT GRAFANA_HOST_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
export GATEWAY_HOST_PORT UNSUBSCRIBE_HOST_PORT RABBITMQ_UI_HOST_PORT MAILPIT_UI_HOST_PORT BOUNCE_HOST_PORT \
  PROMETHEUS_HOST_PORT GRAFANA_HOST_PORT

compose down -v --remove-orphans >/dev/null 2>&1 || true  # a previous run that was killed
start=$SECONDS
STARTED_STACK=1
echo "compose-smoke: starting the stack (project $PROJECT)" >&2
timeout 600 "${COMPOSE[@]}" -p "$PROJECT" "${FILES[@]}" up -d --no-build
echo "compose-smoke: stack up in $((SECONDS - start)) s; running the campaign inside it" >&2
compose run --rm --no-deps -T -v "$ROOT/deploy/docker/smoke_campaign.py:/smoke/smoke_campaign.py:ro" \
  --entrypoint python gateway /smoke/smoke_campaign.py
curl -fsS -o /dev/null "http://127.0.0.1:$GATEWAY_HOST_PORT/healthz" && echo "compose-smoke: gateway published on the host" >&2
echo "compose-smoke: passed in $((SECONDS - start)) s" >&2
