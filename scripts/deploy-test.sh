#!/usr/bin/env bash
# `make deploy-test`: the Dockerfile and compose.yaml, run for real with podman. Builds a Debian 12 base with
# debootstrap (no image registry is needed; cached: skipped while the image exists), Charla's image from the
# Dockerfile with --build-arg BASE=that base, and PostgreSQL/Redis from deploy/podman/services.Containerfile;
# then tests/deploy/test_compose.py brings the stack up with podman-compose, sends signed Meta webhooks, scales
# the conversation agent to 3, restarts one replica mid-run and checks every message is answered exactly once.
#
#   scripts/deploy-test.sh          (root; apt installs podman, debootstrap, runc, catatonit, aardvark-dns if missing)
#
# Podman here: runc (crun refuses this VM's hybrid cgroups), cgroupfs, no default ulimits: all set in a
# containers.conf of our own (CONTAINERS_CONF), nothing in /etc is changed. pip inside a build needs the host
# network, its CA bundle and its pip settings: mounted read-only for the build steps only.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${CHARLA_DEPLOY_BASE:-localhost/debian:bookworm}
WORK=${WORK:-/tmp/charla-deploy}
BIN=$(cd "${BIN:-.venv/bin}" && pwd)  # absolute: the compose test runs podman-compose from the project dir
# The Debian mirror this machine's apt uses (a URIs:/deb line of its sources, not a comment), unless MIRROR is set.
MIRROR=${MIRROR:-$( { grep -rhE '^(URIs:|deb )' /etc/apt/sources.list.d /etc/apt/sources.list 2>/dev/null \
  || true; } | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ')}
mkdir -p "$WORK"
start=$(date +%s)
step() { echo "deploy-test: $* ($(( $(date +%s) - start )) s)"; }

# podman with runc; catatonit is compose's `init: true`, aardvark-dns resolves service names on its network.
missing=()
for tool in podman debootstrap runc; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
[ -x /usr/libexec/podman/catatonit ] || missing+=(catatonit)
[ -x /usr/lib/podman/aardvark-dns ] || missing+=(aardvark-dns)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "deploy-test needs: sudo apt-get install -y ${missing[*]}" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -x "$BIN/podman-compose" ] || "$BIN/pip" install --quiet "podman-compose>=1.2"

export CONTAINERS_CONF=$WORK/containers.conf
cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF

if ! podman image exists "$BASE"; then
  step "building $BASE with debootstrap from $MIRROR"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log"
  tar -C "$WORK/rootfs" -c . | podman import --quiet - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi

# pip inside a build: the host network, and the host's pip settings with its CA bundle. The bundle is
# mounted beside /etc/ssl/certs, not over it (the image installs Debian's ca-certificates there), and the
# settings are the host's, merged by pip itself, with only the bundle's path changed.
"$BIN/pip" config list 2>/dev/null | sed -n "s/^global\.\([^=]*\)='\(.*\)'$/\1 = \2/p" \
  | sed 's#^cert = .*#cert = /run/host-certs/ca-certificates.crt#' | { echo '[global]'; cat; } >"$WORK/pip.conf"
build=(podman build --network host --build-arg "BASE=$BASE" -v /etc/ssl/certs:/run/host-certs:ro
       -v "$WORK/pip.conf:/etc/pip.conf:ro")
for path in /etc/xdg/pip /opt/pypi /opt/pypi-more /opt/wheels; do
  [ -e "$path" ] && build+=(-v "$path:$path:ro")
done
step "building localhost/charla:latest from the Dockerfile"
"${build[@]}" -t localhost/charla:latest . >"$WORK/build-charla.log" 2>&1 \
  || { tail -40 "$WORK/build-charla.log"; exit 1; }
step "building localhost/charla-services:bookworm"
"${build[@]}" -t localhost/charla-services:bookworm -f deploy/podman/services.Containerfile deploy/podman \
  >"$WORK/build-services.log" 2>&1 || { tail -40 "$WORK/build-services.log"; exit 1; }

step "compose run (tests/deploy/test_compose.py)"
CHARLA_DEPLOY_TEST=1 PODMAN_COMPOSE="$BIN/podman-compose" "$BIN/pytest" -p no:cacheprovider -q --tb=short \
  tests/deploy/test_compose.py
step "passed"
