"""The Redis key layout. Every key Amulet writes is named here.

The keys one job owns (its record, input and binary result) are listed together in
``shared.redis_protocol.JobKeys``; the scripts there give each a TTL when the job ends.
"""

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
# Set of the ids of running jobs: start_job adds, the scripts that end or delete a job remove.
# Every worker's reaper (worker/reaper.py) walks it to find jobs whose worker's heartbeat key is gone.
RUNNING_SET = f"{PREFIX}:running"
# Prefix of the heartbeat keys (worker(hostname) below): start_job builds the key of a running
# job's recorded worker from it, to tell a duplicate delivery from one whose worker vanished.
WORKER_KEY_PREFIX = f"{PREFIX}:worker:"
# Prefix of the reap claims (reap_claim below), which the reap script builds.
REAP_CLAIM_PREFIX = f"{PREFIX}:reap:"
# Sorted set: job id -> creation time, every job (GET /jobs for an admin key, or with no keys).
JOBS_INDEX = f"{PREFIX}:jobs"
# Sorted set: "<owner> <job id>" -> when the job's record expires, for jobs that ended. Creating a
# job takes the due ones out of the indexes, so an index holds the jobs that still exist (give or
# take the few a create has not reached yet; GET /jobs skips those).
ENDED_JOBS = f"{PREFIX}:jobs:ended"
# Prefix of the per-owner indexes (owner_jobs below), which scripts build from the record's owner.
OWNER_JOBS_PREFIX = f"{PREFIX}:owner-jobs:"


def job(job_id: str) -> str:
    """Hash with the job record (status, timestamps, params, text input, result, error)."""
    return f"{PREFIX}:job:{job_id}"


def job_input(job_id: str) -> str:
    """Large input (uploaded audio bytes), kept out of the Celery message; removed when the job ends."""
    return f"{PREFIX}:input:{job_id}"


def job_result_blob(job_id: str) -> str:
    """Binary result (synthesized WAV), served by GET /jobs/{id}/result."""
    return f"{PREFIX}:result:{job_id}"


def owner_jobs(owner: str) -> str:
    """Sorted set: job id -> creation time, the jobs created with one API key (GET /jobs)."""
    return f"{OWNER_JOBS_PREFIX}{owner}"


def worker(hostname: str) -> str:
    """JSON heartbeat of one worker (state, queues, tasks and models); expires when it stops."""
    return f"{WORKER_KEY_PREFIX}{hostname}"


def reap_claim(job_id: str, attempt: int | str) -> str:
    """String set with NX (and a TTL) by the one worker that re-publishes a job whose worker vanished
    during ``attempt``: one re-published message per lost attempt, however many workers notice."""
    return f"{REAP_CLAIM_PREFIX}{job_id}:{attempt}"


def idempotency(owner: str, key: str) -> str:
    """String "job id + request fingerprint" for an Idempotency-Key of one caller (its key id, '' without
    API keys), TTL AMULET_IDEMPOTENCY_TTL_S."""
    return f"{PREFIX}:idempotency:{owner}:{key}"
