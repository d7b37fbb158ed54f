#!/usr/bin/env bash
# Build local stand-ins for the base images when no registry is reachable (CI, these VMs):
#   amulet-ci/python:3.11-bookworm   Debian bookworm minbase + python3 (3.11) + venv
#   amulet-ci/redis:bookworm         the same + redis-server
# Debian's python3 is 3.11, so the stand-in matches python:3.11-slim-bookworm closely. Use them
# with PYTHON_IMAGE=amulet-ci/python:3.11-bookworm REDIS_IMAGE=amulet-ci/redis:bookworm.
# Needs root, debootstrap and a running Docker engine. Skips images that already exist.
set -euo pipefail

DOCKER=${DOCKER:-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() {  # name:tag, extra packages, CMD as JSON
    local tag=$1 include=$2 cmd=$3
    if "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
        echo "$tag: present"
        return
    fi
    local root="$work/${tag//[\/:]/_}"
    debootstrap --variant=minbase --include="$include" bookworm "$root" "$MIRROR" >"$root.log" 2>&1 \
        || { tail -20 "$root.log" >&2; return 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | "$DOCKER" import \
        --change 'ENV LANG=C.UTF-8' --change "CMD $cmd" - "$tag" >/dev/null
    echo "$tag: built"
}

build amulet-ci/python:3.11-bookworm python3,python3-venv,ca-certificates '["python3"]' &
py=$!
build amulet-ci/redis:bookworm redis-server '["redis-server"]' &
redis=$!
wait "$py"
wait "$redis"
