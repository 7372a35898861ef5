#!/usr/bin/env bash
# `make images`: builds isseimail/<service>:<version> (and :dev) for the six services from the one Dockerfile,
# then runs each image once to prove it starts: every module of its package imports and its console script is
# there. From nothing on a Debian machine: installs docker.io when missing, starts a dockerd when none answers
# (stopped again at the end), makes the base image locally when no registry answers (deploy/docker/base-image.sh).
# The service list is services.toml. Set ISSEIMAIL_KEEP_ENGINE=1 to leave a started engine running.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=deploy/docker/engine.sh
source deploy/docker/engine.sh
[ -n "${ISSEIMAIL_KEEP_ENGINE:-}" ] || trap engine_stop EXIT
engine_start

base="$(deploy/docker/base-image.sh)"
echo "images: base image $base" >&2

# name package entry_point port module version, one line per service package
table="$(python3 - <<'PY'
import re, tomllib
for s in tomllib.loads(open("services.toml").read())["service"]:
    if s.get("process_of"):
        continue  # runs from another service's image (the dispatcher's workers)
    text = open(f"{s['directory']}/pyproject.toml").read()
    version = re.search(r'^version = "([^"]+)"', text, re.M).group(1)
    print(s["name"], s["package"], s["entry_point"], s["port"], s["module"], version)
PY
)"

# the build context as each builder sees it: only sources and manifests, never tests, .git, .venv or var/
# (Debian's engine ignored the old `!`-exception .dockerignore; this proves the plain one works for both)
context_check="FROM $base
COPY . /ctx
RUN leaked=\"\$(find /ctx -name tests -o -name .git -o -name .venv -o -name var -o -name bench)\"; \\
    test -z \"\$leaked\" || { echo \"in the build context: \$leaked\" >&2; exit 1; }"
for buildkit in 0 1; do
  client=docker
  if [ "$buildkit" = 1 ]; then [ -x /usr/bin/docker ] && client=/usr/bin/docker || continue; fi  # Debian's client
  if ! printf '%s\n' "$context_check" | DOCKER_BUILDKIT=$buildkit "$client" build --network host --no-cache -q -f- . >/dev/null; then
    echo "images: the build context (DOCKER_BUILDKIT=$buildkit) holds what .dockerignore excludes" >&2; exit 1
  fi
done
echo "images: .dockerignore honoured by the classic builder and BuildKit" >&2

start=$SECONDS
# the first build makes the layers every image shares (uv, the manifests); then three at a time (downloads
# from PyPI dominate, so parallel builds finish sooner even on two cores)
mkdir -p var/docker/logs
build_one() {
  local name=$1 package=$2 entry=$3 port=$4 version=$6 t0=$SECONDS
  if docker build --network host \
    --build-arg "BASE_IMAGE=$base" --build-arg "PACKAGE=$package" --build-arg "COMMAND=$entry" \
    --build-arg "PORT=$port" -t "isseimail/$name:$version" -t "isseimail/$name:dev" . \
    >"var/docker/logs/build-$name.log" 2>&1; then
    echo "images: built isseimail/$name:$version in $((SECONDS - t0)) s" >&2
  else
    echo "images: FAILED to build isseimail/$name:$version; its log:" >&2
    tail -30 "var/docker/logs/build-$name.log" >&2
    return 1
  fi
}
first=1
pids=()
while read -r line; do
  # shellcheck disable=SC2086
  if [ -n "$first" ]; then build_one $line; first=""; continue; fi
  # shellcheck disable=SC2086
  build_one $line &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge 3 ]; do sleep 1; done
done <<<"$table"
for pid in "${pids[@]}"; do wait "$pid"; done

# each image once: every module imports (no missing dependency), the console script exists, non-root user
failed=()
while read -r name package entry port module version; do
  docker run --rm --network host --read-only --entrypoint python "isseimail/$name:$version" -c "
import importlib, os, pkgutil, shutil, sys
import $module, $module.app
names = [m.name for m in pkgutil.walk_packages($module.__path__, '$module.')]
for n in names:
    importlib.import_module(n)
assert shutil.which('$entry'), 'no console script $entry'
assert os.getuid() != 0, 'runs as root'
print('images: isseimail/$name:$version starts: %d modules import, $entry present, uid %d' % (len(names) + 1, os.getuid()))
" || failed+=("$name")
done <<<"$table"
if [ ${#failed[@]} -gt 0 ]; then echo "images: FAILED to start: ${failed[*]}" >&2; exit 1; fi
echo "images: six images built and checked in $((SECONDS - start)) s" >&2
