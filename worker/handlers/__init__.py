"""One handler per task; handler_class(task) gives its class."""

from __future__ import annotations

from shared.tasks import TaskName
from worker.handlers.base import AnyHandler, Handler, HandlerConfig, TaskOutput


def handler_class(task: TaskName) -> type[AnyHandler]:
    """Import only the handler needed, so a text worker never imports the speech stack."""
    if task is TaskName.TRANSCRIBE:
        from worker.handlers.transcribe import TranscribeHandler

        return TranscribeHandler
    if task is TaskName.SYNTHESIZE:
        from worker.handlers.synthesize import SynthesizeHandler

        return SynthesizeHandler
    if task is TaskName.GENERATE:
        from worker.handlers.generate import GenerateHandler

        return GenerateHandler
    if task is TaskName.CLASSIFY:
        from worker.handlers.classify import ClassifyHandler

        return ClassifyHandler
    if task is TaskName.EMBED:
        from worker.handlers.embed import EmbedHandler

        return EmbedHandler
    raise ValueError(f"no handler for task {task}")


__all__ = ["AnyHandler", "Handler", "HandlerConfig", "TaskOutput", "handler_class"]
