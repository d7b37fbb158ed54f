"""GET /tasks: every task with its queue, input type and the models live workers run."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.utils.jobs import assert_error_body

pytestmark = pytest.mark.timeout(120)

QUEUES = {
    "transcribe": "speech",
    "synthesize": "speech",
    "generate": "text",
    "classify": "text",
    "embed": "text",
}


def test_tasks_lists_all_five_with_the_worker_models(
    client: httpx.Client, tiny_model_dirs: dict[str, Path]
) -> None:
    r = client.get("/tasks")
    assert r.status_code == 200, r.text
    tasks = {t["name"]: t for t in r.json()["tasks"]}
    assert set(tasks) == set(QUEUES)
    for name, task in tasks.items():
        assert task["queue"] == QUEUES[name]
        expected_type = "multipart/form-data" if name == "transcribe" else "application/json"
        assert task["input_content_type"] == expected_type
        assert task["enabled"] is True, task
        assert len(task["models"]) == 1, task
        (model,) = task["models"]
        assert Path(model["model"]) == Path(tiny_model_dirs[name]), model
        assert model["device"] == "cpu"
        assert model["dtype"] == "float32"
        assert model["workers"] == 1


def test_tasks_without_workers_are_listed_disabled(idle_client: httpx.Client) -> None:
    tasks = idle_client.get("/tasks").json()["tasks"]
    assert {t["name"] for t in tasks} == set(QUEUES)
    assert all(t["enabled"] is False and t["models"] == [] for t in tasks)


def test_speech_only_worker_enables_only_what_it_has_a_model_for(speech_client: httpx.Client) -> None:
    tasks = {t["name"]: t for t in speech_client.get("/tasks").json()["tasks"]}
    assert tasks["transcribe"]["enabled"] is True
    assert [m["workers"] for m in tasks["transcribe"]["models"]] == [1]
    # synthesize: served queue but no model; text tasks: queue not served at all.
    for name in ("synthesize", "generate", "classify", "embed"):
        assert tasks[name]["enabled"] is False and tasks[name]["models"] == [], tasks[name]


def test_task_whose_every_worker_lacks_a_model_is_422_task_disabled(speech_client: httpx.Client) -> None:
    r = speech_client.post("/jobs", json={"task": "synthesize", "input": {"text": "hi"}})
    assert_error_body(r, 422, "task_disabled")


def test_task_whose_queue_has_no_live_worker_is_accepted_and_waits(speech_client: httpx.Client) -> None:
    # docs/api.md: task_disabled only when live workers serve the queue and all lack the model;
    # with no worker on the queue the job is queued for a worker that may start later.
    r = speech_client.post("/jobs", json={"task": "embed", "input": {"texts": ["a"]}})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
