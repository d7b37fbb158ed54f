"""``python -m worker``: load the models, then consume the configured Celery queues.

Order matters: the heartbeat starts first (state ``loading``) so the gateway and the
container healthcheck see the worker while large models load; Celery starts only once
every model is loaded and warmed up, so no job ever waits on a load. Two more threads: the
cancel watcher (worker/stopping.py) and the reaper of jobs whose worker vanished
(worker/reaper.py). The pool is ``threads``:
the models live once in this process (prefork children would each have to load them, within
Celery's 4 s worker_proc_alive_timeout), and each Celery thread prepares one job and waits on
the device's Batcher, which runs one batch at a time (worker/batching.py).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
from collections.abc import Iterable

import redis

from shared.settings import WorkerSettings, worker_settings
from shared.tasks import tasks_in
from worker import batch_limits
from worker.batching import Batcher
from worker.celery_app import create_worker_app
from worker.device import choose_device, log_choice
from worker.errors import StartupError
from worker.heartbeat import Heartbeat
from worker.logs import configure_logging
from worker.reaper import Reaper
from worker.registry import Registry
from worker.runner import JobRunner
from worker.stopping import JobControls

log = logging.getLogger("worker")


def node_name() -> str:
    # The pid keeps two workers on one host (development) apart in Redis and in Celery. The random
    # part makes every start a new identity: a container restarted after a crash is pid 1 on the
    # same hostname again, and its fresh heartbeat must not pass for the dead process's, whose
    # running jobs are re-run only once its heartbeat key has expired (worker/reaper.py).
    return f"worker-{os.getpid()}-{secrets.token_hex(3)}@{socket.gethostname()}"


def main(settings: WorkerSettings | None = None) -> int:
    settings = settings or worker_settings()
    configure_logging(settings.LOG_LEVEL)
    hostname = node_name()
    queues = [q.value for q in settings.QUEUES]
    tasks = tasks_in(settings.QUEUES)
    log.info(
        "worker %s starting: queues=%s tasks=%s", hostname, ",".join(queues), ",".join(t.value for t in tasks)
    )

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10, socket_connect_timeout=5)
    heartbeat = Heartbeat(client, settings, hostname)
    registry = Registry(settings, tasks)
    heartbeat.update(tasks=registry.describe())
    heartbeat.start()
    try:
        device = choose_device(settings.DEVICE)
        log_choice(device, settings.DEVICE)
        heartbeat.update(
            device=device.device,
            dtype=device.dtype_name,
            cuda_available=device.cuda_available,
            gpu_reserved=device.gpu_reserved,
        )
        limits = {task: batch_limits.resolve(settings, task, device.device) for task in registry.configured()}
        registry.load(device, limits)
    except StartupError as exc:
        return _fail(heartbeat, str(exc))
    except Exception as exc:
        log.exception("unexpected error while loading models")
        return _fail(heartbeat, f"{type(exc).__name__}: {exc}")

    for task, task_limits in limits.items():
        log.info(
            "task=%s batching: max_batch_size=%d max_wait_ms=%g",
            task.value,
            task_limits.max_batch_size,
            task_limits.max_wait_ms,
        )
    concurrency = celery_concurrency(limits.values())
    batcher = Batcher(registry.run, limits, concurrency, "batcher")
    batcher.start()
    heartbeat.update(state="ready", tasks=registry.describe(), message=None)
    log.info("worker %s ready (%d Celery threads)", hostname, concurrency)
    controls = JobControls(client, settings.HEARTBEAT_INTERVAL_S)
    controls.start()
    app = create_worker_app(settings, JobRunner(client, settings, registry, hostname, batcher, controls))
    reaper = Reaper(client, app, hostname, settings.HEARTBEAT_INTERVAL_S)
    reaper.start()
    try:
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                "-Q",
                ",".join(queues),
                "--loglevel",
                settings.LOG_LEVEL,
                "-n",
                hostname,
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        reaper.stop()
        controls.stop()
        batcher.stop()
        heartbeat.stop()
        log.info("worker %s stopped", hostname)
    # worker_main returns when Celery shuts down (celery-types declares it NoReturn).
    return 0  # type: ignore[unreachable]


def celery_concurrency(limits: Iterable[batch_limits.BatchLimits]) -> int:
    """Celery threads: twice the largest batch, so the next batch gathers (its messages fetched,
    its jobs started and prepared) while one runs. With only as many threads as the largest batch,
    the jobs of a finished batch must be acknowledged and their slots refilled one message at a
    time before a full batch can form again: MiniLM on 2 cores ran batches of about 17 of 32 that
    way (docs/benchmarks.md). For batch-1 tasks it means one job is prepared (its audio decoded)
    while the other runs.

    Prefetch stays 1 per thread and acks stay late, so this is also how many messages the worker
    holds unacknowledged; a job's message is acknowledged only after the job finished.
    """
    return 2 * max([lim.max_batch_size for lim in limits] + [1])


def _fail(heartbeat: Heartbeat, message: str) -> int:
    log.error("worker cannot start: %s", message)
    # Keep the failure visible in Redis and the health file; the key expires on its own.
    heartbeat.stop(remove=False)
    heartbeat.set_state("failed", message)
    return 1


if __name__ == "__main__":
    sys.exit(main())
