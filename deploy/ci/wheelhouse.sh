#!/usr/bin/env bash
# Build the wheelhouses for offline image builds, on the host (pip over https fails inside
# containers here: the package mirror's CA is trusted by the host only):
#   $WHEELS_DIR/api      requirements/api.txt
#   $WHEELS_DIR/worker   requirements/worker.txt + requirements/torch.txt (whatever torch build
#                        pip finds on the host: the CPU one on these machines and in CI)
# deploy/ci/compose.ci.yaml hands them to the builds as the named context "wheels".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
WHEELS_DIR=${WHEELS_DIR:-$PWD/.cache/wheels}
PIP=${PIP:-.venv/bin/pip}

mkdir -p "$WHEELS_DIR/api" "$WHEELS_DIR/worker"
# pip wheel: copies wheels as they are and builds any sdist into a wheel, so the image needs no
# compiler. Already present files are reused.
# The grep drops pip's noise about find-links/index locations of this machine that do not exist.
quiet() { "$@" 2>&1 | { grep -v '^WARNING: Location .* is ignored' || true; }; }
quiet "$PIP" wheel --quiet -w "$WHEELS_DIR/api" -r requirements/api.txt
quiet "$PIP" wheel --quiet -w "$WHEELS_DIR/worker" -r requirements/torch.txt -r requirements/worker.txt
du -sh "$WHEELS_DIR/api" "$WHEELS_DIR/worker"
