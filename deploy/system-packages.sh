#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the project's commands need, when missing; `make test`,
# `make bench` and `.ci/run` call it, so a fresh machine needs nothing done by hand.
#
#   deploy/system-packages.sh test      redis-server espeak-ng ffmpeg sox libsndfile1, python3-venv
#   deploy/system-packages.sh bench     the above and wrk (the benchmark's HTTP load)
#
# As root (or with passwordless sudo) it runs apt-get for what is missing; otherwise it stops at
# once and prints the exact apt-get line to run. With everything present it touches nothing (an
# `apt-get update` alone costs tens of seconds).
set -euo pipefail

usage() { echo "usage: $0 test|bench" >&2; exit 2; }
[[ $# -eq 1 ]] || usage

# A real redis-server for the job store, espeak-ng (phonemizer backend of the VITS voice and the
# tests' speech), ffmpeg/sox/libsndfile1 (audio decoding and test fixtures).
packages=(redis-server espeak-ng ffmpeg sox libsndfile1)
case "$1" in
    test) ;;
    bench) packages+=(wrk) ;;
    *) usage ;;
esac
if ! command -v python3 >/dev/null 2>&1; then
    packages+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    packages+=(python3-venv)
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    # Not Debian: say what is needed instead of guessing a package manager.
    missing=()
    for binary in redis-server espeak-ng ffmpeg sox; do
        command -v "$binary" >/dev/null 2>&1 || missing+=("$binary")
    done
    if ((${#missing[@]})); then
        echo "$0: not a Debian/Ubuntu machine, and these programs are missing: ${missing[*]}" >&2
        echo "$0: install the equivalents of the Debian packages: ${packages[*]}" >&2
        exit 1
    fi
    exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" != installed ]]; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]} == 0)); then
    exit 0
fi

install=(apt-get install -y --no-install-recommends "${missing[@]}")
if ((EUID == 0)); then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo)
else
    echo "$0: missing Debian packages: ${missing[*]}" >&2
    echo "$0: install them (as root), then run this again:" >&2
    echo "    sudo apt-get update && sudo ${install[*]}" >&2
    exit 1
fi
echo "$0: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${install[@]}" </dev/null
