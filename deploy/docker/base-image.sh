#!/usr/bin/env bash
# The base image of every image built here: python:3.11-slim-bookworm when a registry answers, otherwise a
# local Debian bookworm with python3 made by debootstrap from the machine's Debian mirror (cached as
# var/docker/base-rootfs.tar). Prints the image name to use. Needs a running engine (engine.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
UPSTREAM="${ISSEIMAIL_BASE_IMAGE:-python:3.11.13-slim-bookworm}"
LOCAL="isseimail/base:bookworm"
CACHE="$ROOT/var/docker/base-rootfs.tar"

if docker image inspect "$UPSTREAM" >/dev/null 2>&1 || timeout 60 docker pull -q "$UPSTREAM" >/dev/null 2>&1; then
  echo "$UPSTREAM"; exit 0
fi
if docker image inspect "$LOCAL" >/dev/null 2>&1; then echo "$LOCAL"; exit 0; fi

if [ ! -s "$CACHE" ]; then
  mirror="$(grep -h -m1 -oE '^(URIs:|deb) +[^ ]*https?://[^ ]+/debian/?' /etc/apt/sources.list.d/* /etc/apt/sources.list 2>/dev/null \
    | head -1 | grep -oE 'https?://[^ ]+' || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  rootfs="$(mktemp -d "$ROOT/var/docker/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  echo "base-image: no registry; debootstrap bookworm from $mirror (1-2 min, cached in $CACHE)" >&2
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" \
    >"$ROOT/var/docker/debootstrap.log" 2>&1 || { tail -20 "$ROOT/var/docker/debootstrap.log" >&2; exit 1; }
  # this machine's HTTPS egress goes through its own CA: the build stages must trust it to reach PyPI
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$CACHE.tmp" . && mv "$CACHE.tmp" "$CACHE"
fi
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$CACHE" "$LOCAL" >/dev/null
echo "$LOCAL"
