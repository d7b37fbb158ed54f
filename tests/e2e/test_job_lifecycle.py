"""The job object over its life: Location, waiting, forward-only status, timings, links."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import pytest

from shared.jobs import JobStatus
from tests.utils.jobs import TERMINAL, assert_succeeded, create_json_job, wait_job

pytestmark = pytest.mark.timeout(180)


def test_create_answers_202_with_location_and_a_queued_job(client: httpx.Client) -> None:
    r = client.post("/jobs", json={"task": "embed", "input": {"texts": ["a"]}, "params": {"normalize": True}})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["task"] == "embed"
    assert job["params"] == {"normalize": True}
    assert job["result"] is None and job["error"] is None
    assert job["links"] == {"self": f"/jobs/{job['id']}", "result": None}
    assert datetime.fromisoformat(job["created_at"].replace("Z", "+00:00"))
    # The Location resolves to the same job.
    assert client.get(r.headers["location"]).json()["id"] == job["id"]


def test_wait_returns_as_soon_as_the_job_finishes(client: httpx.Client) -> None:
    job = create_json_job(client, "classify", {"text": "quick"})
    started = time.monotonic()
    r = client.get(f"/jobs/{job['id']}", params={"wait": 50})
    elapsed = time.monotonic() - started
    assert r.status_code == 200
    assert r.json()["status"] == "succeeded", r.json()
    # Returned because the job finished, not because the 50 s wait ran out.
    assert elapsed < 40, elapsed


def test_prefer_wait_header_is_honoured_and_reported(client: httpx.Client) -> None:
    job = create_json_job(client, "embed", {"texts": ["b"]})
    r = client.get(f"/jobs/{job['id']}", headers={"Prefer": "wait=30"})
    assert r.status_code == 200
    assert r.json()["status"] == "succeeded"
    assert r.headers["preference-applied"] == "wait=30"


def test_wait_ends_with_the_job_as_it_is_when_it_does_not_finish(idle_client: httpx.Client) -> None:
    job = create_json_job(idle_client, "embed", {"texts": ["never run"]})
    r = idle_client.get(f"/jobs/{job['id']}", params={"wait": 1})
    assert r.status_code == 200
    assert r.json()["status"] == "queued"
    assert r.json()["started_at"] is None


def test_wait_is_capped_by_max_wait(idle_client: httpx.Client) -> None:
    # The idle gateway runs with AMULET_MAX_WAIT_S=2: a longer wait is cut to 2 s and says so.
    job = create_json_job(idle_client, "embed", {"texts": ["never run"]})
    r = idle_client.get(f"/jobs/{job['id']}", headers={"Prefer": "wait=100"}, timeout=30)
    assert r.status_code == 200
    assert r.json()["status"] == "queued"
    assert r.headers["preference-applied"] == "wait=2"


def test_status_only_moves_forward_while_polling(client: httpx.Client) -> None:
    job = create_json_job(client, "synthesize", {"text": "Status only moves forward."})
    seen = [job["status"]]
    deadline = time.monotonic() + 120
    while seen[-1] not in TERMINAL and time.monotonic() < deadline:
        seen.append(client.get(f"/jobs/{job['id']}").json()["status"])
    assert seen[-1] == "succeeded", seen
    ranks = [JobStatus(s).rank for s in seen]
    assert ranks == sorted(ranks), seen
    # Once terminal it stays terminal.
    for _ in range(3):
        assert client.get(f"/jobs/{job['id']}").json()["status"] == "succeeded"


def test_finished_job_has_timestamps_timings_attempts_and_model(
    client: httpx.Client, tiny_model_dirs: dict
) -> None:
    job = wait_job(client, create_json_job(client, "generate", {"prompt": "hi"}, {"max_new_tokens": 3})["id"])
    assert_succeeded(job)
    created, started, finished = (
        datetime.fromisoformat(job[k].replace("Z", "+00:00"))
        for k in ("created_at", "started_at", "finished_at")
    )
    assert created <= started <= finished
    timings = job["timings"]
    assert timings["queue_wait_s"] is not None and timings["queue_wait_s"] >= 0
    assert timings["run_s"] is not None and timings["run_s"] >= 0
    assert job["attempts"] == 1
    assert job["model"] == str(tiny_model_dirs["generate"])
    assert job["params"] == {"max_new_tokens": 3}


def test_failed_job_has_timings_and_error_but_no_result(client: httpx.Client, audio_dir) -> None:
    bad = audio_dir / "lifecycle-garbage.mp3"
    bad.write_bytes(b"ID3" + b"\x00garbage" * 500)
    from tests.utils.jobs import create_audio_job

    job = wait_job(client, create_audio_job(client, bad)["id"])
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "invalid_audio"
    assert job["result"] is None
    assert job["links"]["result"] is None
    assert job["timings"]["run_s"] is not None
