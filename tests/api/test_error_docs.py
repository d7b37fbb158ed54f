"""The error answers tell the truth: each is documented for its route and status in the OpenAPI
schema, with its code named there (api/openapi.py error_responses), every code is in docs/api.md's
table, and a 405 names the methods the path has.

Each scenario below provokes one error on a real gateway and checks the answer against the schema
the same gateway serves, so a route that starts answering a code its text does not name fails here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from api.errors import ApiErrorCode
from api.openapi import documented_codes
from shared.jobs import ErrorCode
from tests.utils.jobs import create_json_job

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 2_000_000  # AMULET_MAX_UPLOAD_BYTES of the test gateways

Scenario = tuple[str, str, str, int, Callable[[httpx.Client], httpx.Response]]


def _queued(c: httpx.Client, task: str = "embed") -> str:
    body = {"texts": ["x"]} if task == "embed" else {"text": "x"}
    return create_json_job(c, task, body)["id"]


def _canceled(c: httpx.Client) -> str:
    job_id = _queued(c)
    c.post(f"/jobs/{job_id}/cancel")
    return job_id


# (operation, method, OpenAPI path, expected status, request) against the idle gateway (no worker).
IDLE: list[Scenario] = [
    (
        "create",
        "post",
        "/jobs",
        413,
        lambda c: c.post("/jobs", content=b"x" * (LIMIT + 1), headers={"content-type": "application/json"}),
    ),
    (
        "create",
        "post",
        "/jobs",
        415,
        lambda c: c.post("/jobs", content=b"{}", headers={"content-type": "text/plain"}),
    ),
    ("create", "post", "/jobs", 422, lambda c: c.post("/jobs", json={"task": "embed", "input": {}})),
    ("create", "post", "/jobs", 422, lambda c: c.post("/jobs", json={"task": "nope", "input": {}})),
    ("list", "get", "/jobs", 422, lambda c: c.get("/jobs", params={"limit": 0})),
    ("list", "get", "/jobs", 422, lambda c: c.get("/jobs", params={"cursor": "%%%"})),
    ("get", "get", "/jobs/{job_id}", 404, lambda c: c.get("/jobs/nope")),
    ("get", "get", "/jobs/{job_id}", 422, lambda c: c.get("/jobs/nope", params={"wait": -1})),
    ("cancel", "post", "/jobs/{job_id}/cancel", 404, lambda c: c.post("/jobs/nope/cancel")),
    ("cancel", "post", "/jobs/{job_id}/cancel", 409, lambda c: c.post(f"/jobs/{_canceled(c)}/cancel")),
    ("cancel", "post", "/jobs/{job_id}/cancel", 422, lambda c: c.post("/jobs/" + "x" * 201 + "/cancel")),
    ("delete", "delete", "/jobs/{job_id}", 404, lambda c: c.delete("/jobs/nope")),
    ("delete", "delete", "/jobs/{job_id}", 422, lambda c: c.delete("/jobs/" + "x" * 201)),
    ("result", "get", "/jobs/{job_id}/result", 404, lambda c: c.get("/jobs/nope/result")),
    ("result", "get", "/jobs/{job_id}/result", 422, lambda c: c.get("/jobs/" + "x" * 201 + "/result")),
    ("result", "get", "/jobs/{job_id}/result", 404, lambda c: c.get(f"/jobs/{_queued(c)}/result")),
    (
        "result",
        "get",
        "/jobs/{job_id}/result",
        409,
        lambda c: c.get(f"/jobs/{_queued(c, 'synthesize')}/result"),
    ),
]

# The same routes while Redis is unreachable: 503.
DEAD: list[Scenario] = [
    (
        "create",
        "post",
        "/jobs",
        503,
        lambda c: c.post("/jobs", json={"task": "embed", "input": {"texts": ["a"]}}),
    ),
    ("list", "get", "/jobs", 503, lambda c: c.get("/jobs")),
    ("get", "get", "/jobs/{job_id}", 503, lambda c: c.get("/jobs/x")),
    ("cancel", "post", "/jobs/{job_id}/cancel", 503, lambda c: c.post("/jobs/x/cancel")),
    ("delete", "delete", "/jobs/{job_id}", 503, lambda c: c.delete("/jobs/x")),
    ("result", "get", "/jobs/{job_id}/result", 503, lambda c: c.get("/jobs/x/result")),
    ("tasks", "get", "/tasks", 503, lambda c: c.get("/tasks")),
]


def _check(c: httpx.Client, scenarios: list[Scenario]) -> set[tuple[str, str, int]]:
    schema = c.get("/openapi.json").json()
    seen = set()
    for name, method, path, status, call in scenarios:
        r = call(c)
        assert r.status_code == status, (name, r.status_code, r.text)
        code = r.json()["error"]["code"]
        documented = schema["paths"][path][method]["responses"].get(str(status))
        assert documented is not None, f"{method.upper()} {path}: {status} is not documented"
        assert code in documented_codes(documented["description"]), (
            f"{method.upper()} {path} answered {status} {code!r}; its OpenAPI text says: "
            f"{documented['description']}"
        )
        seen.add((method, path, status))
    return seen


def test_every_error_answered_is_documented_for_its_route(
    idle_client: httpx.Client, dead_redis_client: httpx.Client
) -> None:
    seen = _check(idle_client, IDLE) | _check(dead_redis_client, DEAD)
    # And the other way round: every error status the jobs routes document is one they answer.
    schema = idle_client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        if not path.startswith("/jobs"):
            continue
        for method, operation in operations.items():
            for status in operation["responses"]:
                if int(status) >= 400 and int(status) not in (401, 403, 429):  # test_auth, test_backpressure
                    assert (method, path, int(status)) in seen, f"{method.upper()} {path} {status} untested"


def test_documented_codes_are_real_codes(idle_client: httpx.Client) -> None:
    schema = idle_client.get("/openapi.json").json()
    codes = {c.value for c in ApiErrorCode}
    for operations in schema["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                schema_ref = response.get("content", {}).get("application/json", {}).get("schema", {})
                if schema_ref.get("$ref", "").endswith("/ErrorResponse"):
                    named = documented_codes(response["description"])
                    assert named and named <= codes, (status, response["description"])


def test_docs_list_every_error_code() -> None:
    docs = (ROOT / "docs" / "api.md").read_text()
    errors = docs[docs.index("## Errors") :]
    errors = errors[: errors.index("\n## ", 1)]
    table = set(re.findall(r"^\| [^|]+ \| `([a-z_]+)` \|", errors, re.M))
    assert table == {c.value for c in ApiErrorCode}, table ^ {c.value for c in ApiErrorCode}
    for code in ErrorCode:  # a failed job's codes
        assert f"`{code.value}`" in docs, code


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/jobs", "GET, POST"),
        ("PATCH", "/jobs/abc", "GET, DELETE"),
        ("GET", "/jobs/abc/cancel", "POST"),
        ("POST", "/jobs/abc/result", "GET"),
        ("POST", "/tasks", "GET"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_405_names_every_method_of_the_path(
    idle_client: httpx.Client, method: str, path: str, allow: str
) -> None:
    r = idle_client.request(method, path)
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["allow"] == allow
