#!/usr/bin/env bash
# A Docker engine for `make images` / `make compose-smoke` on a machine without one running.
#   source deploy/docker/engine.sh; engine_start; ...; engine_stop
# engine_start uses an engine that already answers (DOCKER_HOST or the default socket); otherwise it installs
# Debian's docker.io when dockerd is missing and starts a private dockerd (data under var/docker, its own
# socket, no iptables/bridge: builds and runs use --network host, Compose its own user-defined network).
# engine_stop stops only a daemon engine_start started, by its pid.
ENGINE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ENGINE_VAR="$ENGINE_ROOT/var/docker"
ENGINE_STARTED=""
ENGINE_EXEC_ROOT=""

engine_log() { echo "engine: $*" >&2; }

engine_install() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    engine_log "missing ${missing[*]}: install them (apt-get install docker.io debootstrap docker-compose)"; return 1
  fi
  engine_log "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

engine_start() {
  engine_install || return 1
  if [ -z "${DOCKER_HOST:-}" ] && engine_answers; then engine_log "using the running engine"; return 0; fi
  if [ -n "${DOCKER_HOST:-}" ]; then
    engine_answers && { engine_log "using the engine at $DOCKER_HOST"; return 0; }
  fi
  mkdir -p "$ENGINE_VAR"
  export DOCKER_HOST="unix://$ENGINE_VAR/docker.sock"
  if engine_answers; then engine_log "using the engine at $DOCKER_HOST"; return 0; fi
  ENGINE_EXEC_ROOT="/run/isseimail-docker-$(echo "$ENGINE_VAR" | md5sum | cut -c1-8)"  # short: socket paths
  local exec_root="$ENGINE_EXEC_ROOT"
  engine_log "starting dockerd (data in $ENGINE_VAR/data)"
  dockerd --host "$DOCKER_HOST" --iptables=false --ip6tables=false --bridge=none --ip-masq=false \
    --ip-forward=false --data-root "$ENGINE_VAR/data" --exec-root "$exec_root" \
    --pidfile "$ENGINE_VAR/dockerd.pid" >"$ENGINE_VAR/dockerd.log" 2>&1 &
  ENGINE_STARTED=$!
  for _ in $(seq 1 60); do engine_answers && return 0; sleep 1; done
  engine_log "dockerd did not answer within 60 s; its log:"; tail -20 "$ENGINE_VAR/dockerd.log" >&2
  engine_stop; return 1
}

engine_stop() {
  [ -n "$ENGINE_STARTED" ] || return 0
  engine_log "stopping the dockerd it started (pid $ENGINE_STARTED)"
  kill "$ENGINE_STARTED" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$ENGINE_STARTED" 2>/dev/null || break; sleep 1; done
  kill -9 "$ENGINE_STARTED" 2>/dev/null || true
  # dockerd leaves its network namespace mounted under the exec root
  if [ -n "$ENGINE_EXEC_ROOT" ] && [ -d "$ENGINE_EXEC_ROOT" ]; then
    for mount in "$ENGINE_EXEC_ROOT"/netns/*; do [ -e "$mount" ] && umount "$mount" 2>/dev/null; done
    rm -rf "$ENGINE_EXEC_ROOT" 2>/dev/null || true
  fi
  ENGINE_STARTED=""
}
