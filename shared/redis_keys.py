"""The Redis key layout. Every key Amulet writes is built here."""

PREFIX = "amulet"

# One channel carries the id of every job that reaches a terminal state, so a gateway
# needs a single subscription however many clients are waiting.
JOB_DONE_CHANNEL = f"{PREFIX}:job-done"
# The gateway publishes the id of a running job a client asked to cancel; the job hash also
# gets the field CANCEL_REQUESTED_FIELD = "1", so a worker that missed the message still sees it.
CANCEL_CHANNEL = f"{PREFIX}:cancel"
CANCEL_REQUESTED_FIELD = "cancel_requested"
# Sorted set: worker hostname -> time of its last heartbeat.
WORKERS_ZSET = f"{PREFIX}:workers"
# Set of the ids of running jobs: START_SCRIPT adds, FINISH_SCRIPT removes. Every worker's reaper
# (worker/reaper.py) walks it to find jobs whose worker's heartbeat key is gone.
RUNNING_SET = f"{PREFIX}:running"
# Prefix of the heartbeat keys (worker(hostname) below): START_SCRIPT builds the key of a running
# job's recorded worker from it, to tell a duplicate delivery from one whose worker vanished.
WORKER_KEY_PREFIX = f"{PREFIX}:worker:"


def job(job_id: str) -> str:
    """Hash with the job record (status, timestamps, params, text input, result, error)."""
    return f"{PREFIX}:job:{job_id}"


def job_input(job_id: str) -> str:
    """Large input (uploaded audio bytes), kept out of the Celery message; removed when the job ends."""
    return f"{PREFIX}:input:{job_id}"


def job_result_blob(job_id: str) -> str:
    """Binary result (synthesized WAV), served by GET /jobs/{id}/result."""
    return f"{PREFIX}:result:{job_id}"


def worker(hostname: str) -> str:
    """JSON heartbeat of one worker (state, queues, tasks and models); expires when it stops."""
    return f"{WORKER_KEY_PREFIX}{hostname}"


def reap_claim(job_id: str, attempt: int | str) -> str:
    """String set with NX (and a TTL) by the one worker that re-publishes a job whose worker vanished
    during ``attempt``: one re-published message per lost attempt, however many workers notice."""
    return f"{PREFIX}:reap:{job_id}:{attempt}"


def idempotency(key: str) -> str:
    """String "job id + request fingerprint" for a client's Idempotency-Key (TTL AMULET_IDEMPOTENCY_TTL_S)."""
    return f"{PREFIX}:idempotency:{key}"
