#!/usr/bin/env bash
# Installs what `make run` and `make test` need and says clearly what is missing when it cannot:
# uv (from PyPI), the workspace (uv sync --frozen), and the Debian packages listed in
# scripts/debian-packages.txt (only for `make test`, and only when running as root with apt).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"

if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: uv not found; installing it from PyPI with pip" >&2
  python3 -m pip install --quiet --disable-pip-version-check uv || {
    echo "bootstrap: could not install uv. Install it (https://docs.astral.sh/uv/) and run again." >&2; exit 1; }
  hash -r
fi
uv sync --frozen --quiet

if [ "$mode" = "test" ]; then
  missing=()
  while read -r pkg probe; do
    case "$pkg" in ''|'#'*) continue ;; esac
    # The probe is a command, or (starting with /) a file the package installs: a font has no command,
    # and `fc-list` exists without the fonts, so screenshots would show empty boxes.
    case "$probe" in
      /*) [ -e "$probe" ] && continue ;;
      *) command -v "$probe" >/dev/null 2>&1 && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" && continue
    missing+=("$pkg")
  done < scripts/debian-packages.txt
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null 2>&1
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
    else
      echo "bootstrap: missing Debian packages: ${missing[*]} (install them with apt-get as root)" >&2
      exit 1
    fi
  fi
fi
