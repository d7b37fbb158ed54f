#!/usr/bin/env bash
# Build local stand-ins for the base images when no registry is reachable (CI, these VMs):
#   amulet-ci/python:3.11-bookworm   Debian bookworm minbase + python3 (3.11) + venv
#   amulet-ci/redis:bookworm-r2      the same + redis-server, and /data owned by its redis user
# Debian's python3 is 3.11, so the stand-in matches python:3.11-slim-bookworm closely. Use them
# with PYTHON_IMAGE=amulet-ci/python:3.11-bookworm REDIS_IMAGE=amulet-ci/redis:bookworm-r2.
# Needs root, debootstrap and a running Docker engine. Skips images that already exist, by tag:
# change the tag (-rN) when a recipe changes.
set -euo pipefail

DOCKER=${DOCKER:-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() {  # name:tag, extra packages, CMD as JSON[, shell command run in the root before import]
    local tag=$1 include=$2 cmd=$3 prepare=${4:-}
    if "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
        echo "$tag: present"
        return
    fi
    local root="$work/${tag//[\/:]/_}"
    debootstrap --variant=minbase --include="$include" bookworm "$root" "$MIRROR" >"$root.log" 2>&1 \
        || { tail -20 "$root.log" >&2; return 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    if [[ -n $prepare ]]; then
        chroot "$root" sh -c "$prepare"
    fi
    tar -C "$root" -c . | "$DOCKER" import \
        --change 'ENV LANG=C.UTF-8' --change "CMD $cmd" - "$tag" >/dev/null
    echo "$tag: built"
}

build amulet-ci/python:3.11-bookworm python3,python3-venv,ca-certificates '["python3"]' &
py=$!
# Like the official redis image: compose.yaml runs Redis as the user redis (created by Debian's
# redis-server package) with its data volume at /data, which takes the ownership of the image's
# /data when it is first mounted.
build amulet-ci/redis:bookworm-r2 redis-server '["redis-server"]' \
    'install -d -o redis -g redis -m 0750 /data && id redis' &
redis=$!
wait "$py"
wait "$redis"
