#!/usr/bin/env bash
# The infrastructure images of docker-compose.ci.yml (isseimail-ci/<name>:local), built from Debian packages
# on the local base image (deploy/docker/ci/Dockerfile); layers are reused on the next run. Needs an engine.
# The shared `apt` stage first, then the images three at a time (apt downloads dominate).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
base="$("$ROOT/deploy/docker/base-image.sh")"
mkdir -p "$ROOT/var/docker/logs"
build() {
  local target=$1 t0=$SECONDS log="$ROOT/var/docker/logs/ci-$1.log"
  if docker build --network host --build-arg "BASE_IMAGE=$base" --target "$target" \
    -t "isseimail-ci/$target:local" "$ROOT/deploy/docker/ci" >"$log" 2>&1; then
    echo "ci-images: isseimail-ci/$target:local in $((SECONDS - t0)) s" >&2
  else
    echo "ci-images: FAILED to build isseimail-ci/$target:local; its log:" >&2; tail -30 "$log" >&2; return 1
  fi
}
build apt
pids=()
for target in postgres rabbitmq prometheus nginx mailpit clamav dns grafana; do
  build "$target" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge 3 ]; do sleep 1; done
done
for pid in "${pids[@]}"; do wait "$pid"; done
