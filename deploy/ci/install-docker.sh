#!/usr/bin/env bash
# Install and start a Docker engine good enough for the images and compose files, on a Debian
# bookworm CI machine (root). Bookworm's docker.io (20.10) has no buildx, so: Debian trixie's
# docker.io 26.1, containerd 1.7, docker-cli, docker-buildx 0.13 and docker-compose 2.26, fetched
# through a private apt configuration (the system's sources are not touched), with bookworm's runc
# (trixie's needs glibc 2.38). The .debs stay under $AMULET_CI_DIR/apt-trixie/debs for later runs.
#
# dockerd runs in the background with deploy/ci/nvidia-stub/ (a CI test double of the NVIDIA
# hook, see the file) on its PATH, so compose.yaml's GPU reservation starts without a GPU. Its
# pid is written to $AMULET_CI_DIR/dockerd.pid only when this script started it; stop it with
#   kill "$(cat "$AMULET_CI_DIR/dockerd.pid")"
# An engine that already answers is used as it is (it then needs the NVIDIA container toolkit,
# or this stub on its PATH, for the GPU reservation).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CI_DIR=${AMULET_CI_DIR:-$PWD/.cache/ci}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CI_DIR"
rm -f "$CI_DIR/dockerd.pid"

need=()
docker buildx version >/dev/null 2>&1 || need+=(docker-buildx)
docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v dockerd >/dev/null 2>&1 || need+=(dockerd)
if ((${#need[@]})); then
    echo "installing Docker 26.1 (trixie debs): missing ${need[*]}"
    apt_dir="$CI_DIR/apt-trixie"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/debs"
    echo "deb $MIRROR trixie main" >"$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt_dir/lists")
    if ! ls "$apt_dir"/debs/docker.io_*.deb >/dev/null 2>&1; then
        apt-get -q "${apt_opts[@]}" update
        (cd "$apt_dir/debs" && apt-get -q "${apt_opts[@]}" download \
            docker.io containerd docker-cli docker-buildx docker-compose)
    fi
    apt-get -q update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$apt_dir"/debs/*.deb runc debootstrap </dev/null
elif ! command -v debootstrap >/dev/null 2>&1; then
    # deploy/ci/base-images.sh needs it; the Docker already here is left alone.
    apt-get -q update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap </dev/null
fi

if docker info >/dev/null 2>&1; then
    echo "a Docker engine already answers: using it (not stopped at the end)"
    exit 0
fi
# The stub hook goes on dockerd's PATH only, never into /usr/bin or the like.
PATH="$here/nvidia-stub:$PATH" setsid dockerd >"$CI_DIR/dockerd.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$CI_DIR/dockerd.pid"
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        echo "dockerd up (pid $pid, log $CI_DIR/dockerd.log, NVIDIA hook: CI stub)"
        docker version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'
        docker buildx version
        docker compose version
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        break
    fi
    sleep 1
done
echo "dockerd did not answer within 60 s; see $CI_DIR/dockerd.log" >&2
tail -20 "$CI_DIR/dockerd.log" >&2 || true
exit 1
