"""Job task names, the queues that carry them, and the Celery task names.

The gateway enqueues by Celery task name (``send_task``) and never imports worker code;
this module is the only place both sides agree on those names.
"""

from enum import StrEnum


class Queue(StrEnum):
    """Celery queues. Speech and text are separate so different workers can serve them."""

    SPEECH = "speech"
    TEXT = "text"


class TaskName(StrEnum):
    TRANSCRIBE = "transcribe"
    SYNTHESIZE = "synthesize"
    GENERATE = "generate"
    CLASSIFY = "classify"
    EMBED = "embed"


TASK_QUEUES: dict[TaskName, Queue] = {
    TaskName.TRANSCRIBE: Queue.SPEECH,
    TaskName.SYNTHESIZE: Queue.SPEECH,
    TaskName.GENERATE: Queue.TEXT,
    TaskName.CLASSIFY: Queue.TEXT,
    TaskName.EMBED: Queue.TEXT,
}

# Tasks whose input is an uploaded audio file (multipart/form-data) rather than JSON.
AUDIO_INPUT_TASKS: frozenset[TaskName] = frozenset({TaskName.TRANSCRIBE})
# Tasks whose result is a binary file served by GET /jobs/{id}/result.
BINARY_RESULT_TASKS: frozenset[TaskName] = frozenset({TaskName.SYNTHESIZE})


def celery_task_name(task: TaskName) -> str:
    """The name the worker registers and the gateway sends, e.g. ``amulet.embed``."""
    return f"amulet.{task.value}"


def queue_for(task: TaskName) -> Queue:
    return TASK_QUEUES[task]


def tasks_in(queues: "list[Queue] | set[Queue]") -> list[TaskName]:
    return [t for t, q in TASK_QUEUES.items() if q in queues]
