#!/usr/bin/env bash
# `make test` from a fresh clone on a bare Debian 12: only python3 and build tools, no espeak-ng, chromium or
# redis-server. Builds the base image locally (no image registry is needed), clones the committed BRANCH into
# a container and runs `make test` there as root, so scripts/system-deps.sh installs the system packages. The
# clone goes to /srv, not /root: as root the embedded PostgreSQL runs as an unprivileged user, who must be able
# to reach the checkout (/root is 0700).
#
#   scripts/bare-machine-test.sh [BRANCH]     (default: the current branch; log in $WORK/make-test.log)
#
# Needs root and `apt-get install podman debootstrap runc`. Package indexes: the host's pip settings, CA bundle
# and local mirror directories are mounted read-only, so pip inside resolves exactly what it resolves here.
set -euo pipefail
cd "$(dirname "$0")/.."

BRANCH=${1:-$(git rev-parse --abbrev-ref HEAD)}
WORK=${WORK:-/tmp/charla-bare}
IMAGE=localhost/charla-bare:bookworm
# The Debian mirror this machine's apt uses (its sources list), unless MIRROR says otherwise.
MIRROR=${MIRROR:-$( { grep -rhoE 'https?://[^ ]+/debian/?' /etc/apt/sources.list.d /etc/apt/sources.list 2>/dev/null \
  || true; } | head -1)}
PODMAN=(podman --runtime /usr/sbin/runc --cgroup-manager=cgroupfs)
mkdir -p "$WORK"

# crun cannot set RLIMIT_NOFILE/NPROC in this kind of VM: podman must not ask for default ulimits.
if ! grep -q '^default_ulimits' /etc/containers/containers.conf 2>/dev/null; then
  mkdir -p /etc/containers && printf '[containers]\ndefault_ulimits = []\n' >>/etc/containers/containers.conf
fi

if ! "${PODMAN[@]}" image exists "$IMAGE"; then
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-dev,build-essential,cmake,git,make \
    bookworm "$WORK/rootfs" "$MIRROR"
  tar -C "$WORK/rootfs" -c . | "${PODMAN[@]}" import - "$IMAGE"
  rm -rf "$WORK/rootfs"
fi

# The committed branch only (a bare clone): what a user would get from `git clone`.
rm -rf "$WORK/src.git" && git clone --quiet --bare --branch "$BRANCH" . "$WORK/src.git"

mounts=(-v /etc/ssl/certs:/etc/ssl/certs:ro -v "$WORK/src.git:/src.git:ro")
for path in /etc/pip.conf /etc/xdg/pip /root/.config/pip /opt/pypi /opt/pypi-more /opt/wheels; do
  [ -e "$path" ] && mounts+=(-v "$path:$path:ro")
done
envs=()
while IFS='=' read -r name _; do envs+=(-e "$name"); done < <(env | grep '^PIP_' || true)

echo "make test of $BRANCH in a bare Debian 12 container; log: $WORK/make-test.log"
start=$(date +%s)
set +e
"${PODMAN[@]}" run --rm --network host "${mounts[@]}" "${envs[@]}" "$IMAGE" bash -c '
  set -e
  git clone --quiet /src.git /srv/charla && cd /srv/charla
  for tool in espeak-ng chromium redis-server; do
    ! command -v "$tool" >/dev/null || { echo "not bare: $tool is installed"; exit 2; }
  done
  make test' 2>&1 | tee "$WORK/make-test.log"
status=${PIPESTATUS[0]}
set -e
echo "make test exited $status after $(( $(date +%s) - start )) s"
exit "$status"
