"""The gateway pushes the Celery message itself (api/publishing.py); it must be the message
Celery's send_task would have pushed, so a stock Celery worker consumes it (every end-to-end test
proves the consuming side: their jobs only run because the worker accepted these messages)."""

from __future__ import annotations

import json
import uuid

from api.publishing import JobPublisher, task_message
from deploy.local import stack
from shared.celery_app import make_celery
from shared.settings import ApiSettings
from shared.tasks import TaskName, celery_task_name, queue_for

# Fresh per message (a uuid of the transport's delivery tag); everything else must match.
PER_MESSAGE = {"properties.delivery_tag"}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_the_pushed_message_is_the_one_send_task_would_push(redis_server: stack.RedisServer) -> None:
    client = redis_server.client(5)
    client.flushdb()
    celery = make_celery(ApiSettings(REDIS_URL=redis_server.url(5)), main="amulet-api")
    publisher = JobPublisher(celery)
    try:
        for task in (TaskName.EMBED, TaskName.TRANSCRIBE):
            job_id = uuid.uuid4().hex
            name, queue_name = celery_task_name(task), queue_for(task).value
            celery.send_task(name, args=[job_id], task_id=job_id, queue=queue_name)
            sent = _flat(json.loads(client.rpop(queue_for(task).value)))
            queue, envelope = task_message(celery, job_id, task)
            assert queue == queue_for(task).value
            # The publisher fills a template built once per task: the same message.
            for ours in (
                _flat(json.loads(envelope)),
                _flat(json.loads(publisher.message(job_id, task).body)),
            ):
                assert set(ours) == set(sent)
                assert {k: v for k, v in ours.items() if k not in PER_MESSAGE} == {
                    k: v for k, v in sent.items() if k not in PER_MESSAGE
                }
    finally:
        celery.close()
        client.flushdb()


def test_the_template_gives_the_message_built_from_scratch_for_every_task() -> None:
    celery = make_celery(ApiSettings(), main="amulet-api")
    try:
        publisher = JobPublisher(celery)
        # The gateway's ids fill the template; anything JSON or repr() would escape is built afresh.
        for job_id in (uuid.uuid4().hex, 'it\'s "odd" \u00e9'):
            for task in TaskName:
                ours = json.loads(publisher.message(job_id, task).body)
                scratch = json.loads(task_message(celery, job_id, task)[1])
                assert ours["properties"].pop("delivery_tag") != scratch["properties"].pop("delivery_tag")
                assert ours == scratch
                assert publisher.message(job_id, task).lists[0] == queue_for(task).value
    finally:
        celery.close()
