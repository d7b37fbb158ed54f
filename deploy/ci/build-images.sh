#!/usr/bin/env bash
# Build both images offline, as CI does (no registry, pip only on the host):
#   1. local base images (deploy/ci/base-images.sh),
#   2. host wheelhouses (deploy/ci/wheelhouse.sh), CPU torch for the worker,
#   3. copies of the Dockerfiles without their `# syntax=` line: it makes BuildKit pull the
#      docker/dockerfile frontend image from Docker Hub, which CI cannot reach; the builtin
#      frontend of Docker >= 23 reads the same Dockerfiles,
#   4. docker compose build with deploy/ci/compose.ci.yaml, which passes the wheelhouses as the
#      "wheels" build context.
# Needs a running engine (deploy/ci/install-docker.sh). Prints the image sizes.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export AMULET_CI_DIR=${AMULET_CI_DIR:-$PWD/.cache/ci}
mkdir -p "$AMULET_CI_DIR/dockerfiles"

deploy/ci/base-images.sh
WHEELS_DIR="$AMULET_CI_DIR/wheels" deploy/ci/wheelhouse.sh
for service in api worker; do
    sed '1{/^# syntax=/d}' "$service/Dockerfile" >"$AMULET_CI_DIR/dockerfiles/$service.Dockerfile"
done

compose=(docker compose -f compose.yaml -f compose.cpu.yaml -f deploy/ci/compose.ci.yaml)
"${compose[@]}" build "$@" api worker
"${compose[@]}" images 2>/dev/null || true
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^amulet-(api|worker)'
