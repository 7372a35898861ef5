#!/usr/bin/env bash
# The infrastructure images of docker-compose.ci.yml (isseimail-ci/<name>:local), built from Debian packages
# on the local base image (deploy/docker/ci/Dockerfile); layers are reused on the next run. Needs an engine.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
base="$("$ROOT/deploy/docker/base-image.sh")"
for target in postgres rabbitmq prometheus nginx mailpit clamav dns grafana; do
  t0=$SECONDS
  docker build --network host -q --build-arg "BASE_IMAGE=$base" --target "$target" \
    -t "isseimail-ci/$target:local" "$ROOT/deploy/docker/ci" >/dev/null
  echo "ci-images: isseimail-ci/$target:local in $((SECONDS - t0)) s" >&2
done
