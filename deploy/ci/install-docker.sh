#!/usr/bin/env bash
# Install and start a Docker engine good enough for the images and compose files, on a Debian
# bookworm CI machine (root). Bookworm's docker.io (20.10) has no buildx, so: Debian trixie's
# docker.io 26.1, containerd 1.7, docker-cli, docker-buildx 0.13 and docker-compose 2.26, fetched
# through a private apt configuration (the system's sources are not touched), with bookworm's runc
# (trixie's needs glibc 2.38). dockerd runs in the background; its pid is written to
# $AMULET_CI_DIR/dockerd.pid, stop it with: kill "$(cat "$AMULET_CI_DIR/dockerd.pid")".
set -euo pipefail

CI_DIR=${AMULET_CI_DIR:-$PWD/.cache/ci}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CI_DIR"

if ! docker buildx version >/dev/null 2>&1 || ! docker compose version >/dev/null 2>&1 \
    || ! command -v dockerd >/dev/null 2>&1; then
    apt_dir="$CI_DIR/apt-trixie"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/debs"
    echo "deb $MIRROR trixie main" >"$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt_dir/lists")
    apt-get "${apt_opts[@]}" update
    (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download \
        docker.io containerd docker-cli docker-buildx docker-compose)
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$apt_dir"/debs/*.deb runc debootstrap </dev/null
fi

if docker info >/dev/null 2>&1; then
    echo "a Docker engine already answers"
    exit 0
fi
setsid dockerd >"$CI_DIR/dockerd.log" 2>&1 </dev/null &
echo $! >"$CI_DIR/dockerd.pid"
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        echo "dockerd up (pid $(cat "$CI_DIR/dockerd.pid"), log $CI_DIR/dockerd.log)"
        exit 0
    fi
    sleep 1
done
echo "dockerd did not answer within 60 s; see $CI_DIR/dockerd.log" >&2
exit 1
