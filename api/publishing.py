"""Publishing job ids to Celery without blocking the event loop.

The message carries only the job id; the worker reads everything else from Redis. Celery's own
publisher (kombu) is synchronous and costs about 0.5-1 ms of CPU per message, which on a small
machine caps the gateway at a few hundred jobs/s however it is threaded (it holds the GIL). So
the gateway builds the very message Celery's ``send_task`` would put on the Redis transport,
with Celery's ``as_task_v2`` (headers, properties, body) and kombu's serialisation and body
encoding; create_job (shared/redis_protocol.py) pushes it (LPUSH) in the same Lua script that
stores the job record, so a job is queued exactly when its message is: one round trip, no thread.

Only the job id and the transport's delivery tag differ from one message of a task to the next,
so the publisher builds each task's message once, with placeholders, and fills them in per job
(MessageTemplate): as_task_v2 and kombu's JSON encoding were about 10% of POST /jobs's CPU.

Ref: kombu/transport/virtual/base.py (``prepare_message``, ``_inplace_augment_message``) and
kombu/transport/redis.py (``_put``: LPUSH of the JSON envelope onto the queue's list).
tests/api/test_publishing.py checks the message matches what ``send_task`` produces and that a
real worker consumes it.
"""

from __future__ import annotations

import base64
import re
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

# Stand-ins for the per-message values in a template: JSON and repr() leave them as they are.
_ID_SLOT = "AMULET-JOB-ID-SLOT"
_BODY_SLOT = "AMULET-BODY-SLOT"
_TAG_SLOT = "AMULET-DELIVERY-TAG-SLOT"
# Job ids a template can take: the gateway's own (uuid4 hex). JSON and repr() would quote or
# escape anything else, so such an id gets a message built from scratch.
_PLAIN_ID = re.compile(r"[0-9A-Za-z_-]+")


@dataclass(frozen=True)
class QueueMessage:
    """A Celery message and its queue's Redis lists: it is pushed on the first (the default
    priority's); all of them count towards the queue's depth (api/backpressure.py)."""

    lists: list[str]
    body: str


def task_message(celery: Celery, job_id: str, task: TaskName) -> tuple[str, str]:
    """(queue list key, JSON envelope) of the message ``send_task(name, args=[job_id],
    task_id=job_id, queue=...)`` would push onto the Redis transport."""
    queue, body, envelope = _message(celery, job_id, task)
    envelope["body"] = Base64().encode(body)
    envelope["properties"]["delivery_tag"] = kombu_uuid()
    return queue, json_dumps(envelope)


def _message(celery: Celery, job_id: str, task: TaskName) -> tuple[str, str, dict[str, Any]]:
    """(queue list key, encoded body, envelope): the envelope still lacks the body (base64 of the
    encoded body) and the delivery tag, which the transport adds per message."""
    queue = queue_for(task).value
    message = celery.amqp.as_task_v2(
        job_id,
        celery_task_name(task),
        args=(job_id,),
        kwargs={},
        reply_to=celery.thread_oid,
        # As send_task passes it when not given; celery-types says bool, Celery takes None.
        ignore_result=None,  # type: ignore[arg-type]
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
    }
    envelope = {
        "body": None,
        "content-encoding": content_encoding,
        "content-type": content_type,
        "headers": message.headers,
        "properties": properties,
    }
    # Priority 0 is the plain queue name (kombu's _q_for_pri).
    return queue, body, envelope


class MessageTemplate:
    """One task's ``task_message``, built once with placeholders and filled in per job.

    ``fill`` gives the string ``task_message`` gives for the same id and delivery tag. Build it
    in the process and thread that publishes: the message names both (the ``origin`` header and
    ``reply_to``), as ``send_task``'s would.
    """

    def __init__(self, celery: Celery, task: TaskName) -> None:
        queue, body, envelope = _message(celery, _ID_SLOT, task)
        envelope["body"] = _BODY_SLOT
        envelope["properties"]["delivery_tag"] = _TAG_SLOT
        self.lists = queue_lists(queue_for(task))
        assert self.lists[0] == queue, (
            "kombu pushes a default-priority message on the list named after the queue"
        )
        # The encoded body is cut around the id (base64 cannot be cut after encoding)...
        self._body_head, found, self._body_tail = body.partition(_ID_SLOT)
        assert found and _ID_SLOT not in self._body_tail, body
        # ...and the envelope at each slot: literal, slot, literal, ..., slot, literal.
        parts = re.split(f"({_ID_SLOT}|{_BODY_SLOT}|{_TAG_SLOT})", json_dumps(envelope))
        self._literals, self._slots = parts[0::2], parts[1::2]
        assert self._slots.count(_BODY_SLOT) == 1 and self._slots.count(_TAG_SLOT) == 1, parts

    def fill(self, job_id: str, delivery_tag: str) -> str:
        body = base64.b64encode(f"{self._body_head}{job_id}{self._body_tail}".encode()).decode()
        values = {_ID_SLOT: job_id, _BODY_SLOT: body, _TAG_SLOT: delivery_tag}
        out = [self._literals[0]]
        for slot, literal in zip(self._slots, self._literals[1:], strict=True):
            out.append(values[slot])
            out.append(literal)
        return "".join(out)


class JobPublisher:
    """Builds jobs' queue messages with the gateway's Celery app (configuration only: it
    never connects to the broker). Create it where it publishes (see MessageTemplate)."""

    def __init__(self, celery: Celery) -> None:
        self._celery = celery
        self._templates = {task: MessageTemplate(celery, task) for task in TaskName}

    def message(self, job_id: str, task: TaskName) -> QueueMessage:
        template = self._templates[task]
        if _PLAIN_ID.fullmatch(job_id):
            return QueueMessage(template.lists, template.fill(job_id, kombu_uuid()))
        _, envelope = task_message(self._celery, job_id, task)
        return QueueMessage(template.lists, envelope)

    def close(self) -> None:
        self._celery.close()
