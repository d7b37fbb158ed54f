"""Pre-download the configured models into the Hugging Face cache: ``python -m worker.download``.

One-shot (a compose profile or an image build step): fills the HF_HOME volume so workers can
then start with HF_HUB_OFFLINE=1. Uses the worker's own settings and resolver, so it fetches
exactly what ``python -m worker`` would load for the same AMULET_QUEUES.
"""

from __future__ import annotations

import logging
import sys

from shared.settings import worker_settings
from shared.tasks import tasks_in
from worker.errors import StartupError
from worker.logs import configure_logging
from worker.model_source import resolve_model

log = logging.getLogger("worker.download")


def main() -> int:
    settings = worker_settings()
    configure_logging(settings.LOG_LEVEL)
    failures = 0
    for task in tasks_in(settings.QUEUES):
        ref = settings.model_for(task)
        if ref is None:
            log.info("%s: disabled, nothing to download", task.value)
            continue
        try:
            path = resolve_model(ref, task, settings)
        except StartupError as exc:
            log.error("%s: %s", task.value, exc)
            failures += 1
            continue
        log.info("%s: %s ready at %s", task.value, ref, path)
    if failures:
        log.error("%d model(s) could not be downloaded", failures)
        return 1
    log.info("all models for queues %s are in the cache", ",".join(q.value for q in settings.QUEUES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
