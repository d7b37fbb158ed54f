"""Client-side helpers: create jobs over HTTP and wait for them with ``?wait=`` (bounded)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

TERMINAL = {"succeeded", "failed", "canceled"}
JOB_TIMEOUT_S = 180.0


def create_json_job(client: httpx.Client, task: str, input: Any, params: dict | None = None) -> dict:
    body: dict[str, Any] = {"task": task, "input": input}
    if params is not None:
        body["params"] = params
    r = client.post("/jobs", json=body)
    assert r.status_code == 202, f"POST /jobs {task}: {r.status_code} {r.text}"
    return r.json()


def create_audio_job(
    client: httpx.Client,
    path: Path,
    params: dict | None = None,
    content_type: str = "application/octet-stream",
) -> dict:
    data = {"task": "transcribe"}
    if params is not None:
        data["params"] = json.dumps(params)
    with open(path, "rb") as f:
        r = client.post("/jobs", data=data, files={"file": (path.name, f, content_type)})
    assert r.status_code == 202, f"POST /jobs transcribe {path.name}: {r.status_code} {r.text}"
    return r.json()


def wait_job(
    client: httpx.Client, job_id: str, timeout: float = JOB_TIMEOUT_S, history: list | None = None
) -> dict:
    """GET /jobs/{id}?wait=N until the job is terminal; fail with the last state after ``timeout``."""
    deadline = time.monotonic() + timeout
    job: dict = {}
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"job {job_id} not terminal after {timeout:.0f} s: {job}")
        r = client.get(f"/jobs/{job_id}", params={"wait": min(30, max(1, int(left)))})
        assert r.status_code == 200, f"GET /jobs/{job_id}: {r.status_code} {r.text}"
        job = r.json()
        if history is not None:
            history.append(job["status"])
        if job["status"] in TERMINAL:
            return job


def run_json_job(
    client: httpx.Client, task: str, input: Any, params: dict | None = None, timeout: float = JOB_TIMEOUT_S
) -> dict:
    return wait_job(client, create_json_job(client, task, input, params)["id"], timeout)


def run_audio_job(
    client: httpx.Client, path: Path, params: dict | None = None, timeout: float = JOB_TIMEOUT_S
) -> dict:
    return wait_job(client, create_audio_job(client, path, params)["id"], timeout)


def assert_succeeded(job: dict) -> dict:
    assert job["status"] == "succeeded", (
        f"job {job['id']} ({job['task']}) {job['status']}: {job.get('error')}"
    )
    return job["result"]


def assert_error_body(r: httpx.Response, status: int, code: str) -> dict:
    """The documented error shape: {"error": {"code", "message", "details"}}."""
    assert r.status_code == status, f"expected {status} {code}, got {r.status_code}: {r.text}"
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == code, body
    assert isinstance(err["message"], str) and err["message"], body
    assert "details" in err, body
    return err
