"""Publishing job ids to Celery without blocking the event loop.

The message carries only the job id; the worker reads everything else from Redis. Celery's own
publisher (kombu) is synchronous and costs about 0.5-1 ms of CPU per message, which on a small
machine caps the gateway at a few hundred jobs/s however it is threaded (it holds the GIL). So
the gateway builds the very message Celery's ``send_task`` would put on the Redis transport,
with Celery's ``as_task_v2`` (headers, properties, body) and kombu's serialisation and body
encoding; JobStore.create pushes it (LPUSH) in the same Lua script that stores the job record,
so a job is queued exactly when its message is: one round trip, no thread.

Ref: kombu/transport/virtual/base.py (``prepare_message``, ``_inplace_augment_message``) and
kombu/transport/redis.py (``_put``: LPUSH of the JSON envelope onto the queue's list).
tests/api/test_publishing.py checks the message matches what ``send_task`` produces and that a
real worker consumes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu.serialization import dumps as serialize
from kombu.transport.virtual.base import Base64
from kombu.utils.json import dumps as json_dumps
from kombu.utils.uuid import uuid as kombu_uuid

from api.backpressure import queue_lists
from shared.tasks import TaskName, celery_task_name, queue_for

# Celery's default for task messages (persistent); the Redis transport stores it as given.
PERSISTENT_DELIVERY_MODE = 2


@dataclass(frozen=True)
class QueueMessage:
    """A Celery message and its queue's Redis lists: it is pushed on the first (the default
    priority's); all of them count towards the queue's depth (api/backpressure.py)."""

    lists: list[str]
    body: str


def task_message(celery: Celery, job_id: str, task: TaskName) -> tuple[str, str]:
    """(queue list key, JSON envelope) of the message ``send_task(name, args=[job_id],
    task_id=job_id, queue=...)`` would push onto the Redis transport."""
    queue = queue_for(task).value
    message = celery.amqp.as_task_v2(
        job_id,
        celery_task_name(task),
        args=[job_id],
        kwargs={},
        reply_to=celery.thread_oid,
        ignore_result=None,  # as send_task passes it when not given
        # What Celery's saferepr gives for these (a short id, no kwargs), at a fraction of its
        # cost: saferepr made up most of as_task_v2's time.
        argsrepr=repr([job_id]),
        kwargsrepr="{}",
    )
    content_type, content_encoding, body = serialize(message.body, serializer="json")
    properties: dict[str, Any] = {
        **message.properties,
        "delivery_mode": PERSISTENT_DELIVERY_MODE,
        "priority": 0,
        # A direct-exchange route is sent to the anonymous exchange with the queue as routing key
        # (celery/app/amqp.py send_task_message), which the Redis transport maps to the queue's list.
        "delivery_info": {"exchange": "", "routing_key": queue},
        "body_encoding": "base64",
        "delivery_tag": kombu_uuid(),
    }
    envelope = {
        "body": Base64().encode(body),
        "content-encoding": content_encoding,
        "content-type": content_type,
        "headers": message.headers,
        "properties": properties,
    }
    # Priority 0 is the plain queue name (kombu's _q_for_pri).
    return queue, json_dumps(envelope)


class JobPublisher:
    """Builds jobs' queue messages with the gateway's Celery app (configuration only: it
    never connects to the broker)."""

    def __init__(self, celery: Celery) -> None:
        self._celery = celery

    def message(self, job_id: str, task: TaskName) -> QueueMessage:
        queue, envelope = task_message(self._celery, job_id, task)
        lists = queue_lists(queue_for(task))
        assert lists[0] == queue, "kombu pushes a default-priority message on the list named after the queue"
        return QueueMessage(lists, envelope)

    def close(self) -> None:
        self._celery.close()
