#!/bin/sh
# `pip install` for the image builds (bind-mounted by api/Dockerfile and worker/Dockerfile).
# With a wheelhouse (the named build context "wheels", given by offline/CI builds) pip installs
# from it only; without one, from the index: PyPI, or the one named by a leading --index-url.
#   sh pip-install.sh [--index-url URL] <pip install arguments>
set -eu
if [ -n "$(find /wheels -maxdepth 2 -name '*.whl' -print -quit)" ]; then
    echo "installing from the wheelhouse only"
    if [ "${1:-}" = "--index-url" ]; then shift 2; fi
    exec pip install --no-index --find-links /wheels "$@"
fi
exec pip install "$@"
