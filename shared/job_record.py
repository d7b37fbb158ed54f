"""How a job is stored in its Redis hash (``amulet:job:{id}``).

The gateway creates and reads records, the worker moves them forward; every change of status
goes through a script of shared/redis_protocol.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.jobs import JobStatus
from shared.redis_keys import CANCEL_REQUESTED_FIELD
from shared.tasks import TaskName


@dataclass
class JobRecord:
    id: str
    task: TaskName
    status: JobStatus
    created_at: str
    params: dict[str, Any] = field(default_factory=dict)
    # JSON input of text tasks; audio lives under redis_keys.job_input(id) instead.
    input: Any = None
    input_filename: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    result: Any = None
    error: dict[str, str] | None = None
    attempts: int = 0
    worker: str | None = None
    model: str | None = None
    result_content_type: str | None = None
    # How many jobs shared the forward pass that produced the result (worker/batching.py).
    batch_size: int | None = None
    # Who created it: the key id of the API key (api/auth.py), never the key; '' without keys.
    owner: str = ""
    # A client asked to cancel it while it ran (shared/redis_protocol.py cancel_job).
    cancel_requested: bool = False

    def to_hash(self) -> dict[str, str]:
        """Fields for HSET at creation (only what is known then)."""
        h = {
            "id": self.id,
            "task": self.task.value,
            "status": self.status.value,
            "created_at": self.created_at,
            "params": json.dumps(self.params),
            "attempts": str(self.attempts),
            "owner": self.owner,
        }
        if self.input is not None:
            h["input"] = json.dumps(self.input)
        if self.input_filename:
            h["input_filename"] = self.input_filename
        return h

    @classmethod
    def from_hash(cls, h: Mapping[Any, Any]) -> JobRecord:
        """The record from its hash as HGETALL gives it (bytes, or str with decode_responses)."""
        d = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in h.items()
        }

        def js(name: str) -> Any:
            return json.loads(d[name]) if d.get(name) else None

        return cls(
            id=d["id"],
            task=TaskName(d["task"]),
            status=JobStatus(d["status"]),
            created_at=d["created_at"],
            params=js("params") or {},
            input=js("input"),
            input_filename=d.get("input_filename"),
            started_at=d.get("started_at"),
            finished_at=d.get("finished_at"),
            result=js("result"),
            error=js("error"),
            attempts=int(d.get("attempts") or 0),
            worker=d.get("worker"),
            model=d.get("model"),
            result_content_type=d.get("result_content_type"),
            batch_size=int(d["batch_size"]) if d.get("batch_size") else None,
            owner=d.get("owner") or "",
            cancel_requested=d.get(CANCEL_REQUESTED_FIELD) == "1",
        )
