"""The baseline for workload 1: a bare FastAPI app with one trivial endpoint, served by the same
uvicorn settings as the gateway. It parses the same JSON body and answers 202 with a small job-like
object, and talks to nothing: the ceiling a Python gateway on this machine can reach."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/jobs", status_code=202)
    async def create_job(body: dict[str, Any]) -> dict[str, Any]:
        return {"id": uuid.uuid4().hex, "task": body.get("task"), "status": "queued"}

    return app
