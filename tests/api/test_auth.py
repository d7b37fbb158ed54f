"""Optional API keys: with keys configured, jobs and tasks need one (401 without, 403 wrong);
health checks and the docs never do. Without keys (every other gateway here) nothing is asked."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from deploy.local import stack
from tests.api.conftest import API_KEYS
from tests.utils.jobs import assert_error_body

pytestmark = pytest.mark.timeout(60)

PROTECTED = [
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/some-id"),
    ("GET", "/jobs/some-id/result"),
    ("POST", "/jobs/some-id/cancel"),
    ("DELETE", "/jobs/some-id"),
    ("GET", "/tasks"),
]
OPEN = ["/healthz", "/docs", "/openapi.json"]


@pytest.fixture(scope="module")
def anonymous(auth_gateway: stack.Gateway) -> Iterator[httpx.Client]:
    with auth_gateway.client(timeout=30) as c:
        yield c


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_missing_key_is_401_with_a_bearer_challenge(anonymous: httpx.Client, method: str, path: str) -> None:
    r = anonymous.request(method, path, json={"task": "embed", "input": {"texts": ["a"]}})
    assert_error_body(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header", ["Basic Zmlyc3Qta2V5LTAxMjM=", "Bearer", "first-key-0123", "Token first-key-0123"]
)
def test_a_key_not_sent_as_bearer_is_401(anonymous: httpx.Client, header: str) -> None:
    r = anonymous.get("/tasks", headers={"Authorization": header})
    assert_error_body(r, 401, "unauthorized")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_wrong_key_is_403(anonymous: httpx.Client, method: str, path: str) -> None:
    for wrong in ("not-a-key", API_KEYS[0] + "x", API_KEYS[0][:-1], API_KEYS[1].upper()):
        r = anonymous.request(method, path, headers=_bearer(wrong), json={"task": "embed", "input": {}})
        assert_error_body(r, 403, "forbidden")


@pytest.mark.parametrize("key", API_KEYS)
def test_every_configured_key_is_accepted(anonymous: httpx.Client, key: str) -> None:
    r = anonymous.post("/jobs", headers=_bearer(key), json={"task": "embed", "input": {"texts": ["k"]}})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert anonymous.get(f"/jobs/{job_id}", headers=_bearer(key)).status_code == 200
    assert anonymous.get("/tasks", headers=_bearer(key)).status_code == 200
    canceled = anonymous.post(f"/jobs/{job_id}/cancel", headers=_bearer(key))
    assert canceled.json()["status"] == "canceled"
    assert anonymous.delete(f"/jobs/{job_id}", headers=_bearer(key)).status_code == 204


@pytest.mark.parametrize("path", OPEN)
def test_health_and_docs_need_no_key(anonymous: httpx.Client, path: str) -> None:
    assert anonymous.get(path).status_code == 200


def test_readyz_needs_no_key(anonymous: httpx.Client) -> None:
    # No worker serves db 3, so it is not ready -- but it answers, instead of asking for a key.
    r = anonymous.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "not_ready"


def test_openapi_declares_the_bearer_scheme_on_protected_routes(anonymous: httpx.Client) -> None:
    schema = anonymous.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    paths = schema["paths"]
    for path, method in [("/jobs", "post"), ("/jobs/{job_id}", "get"), ("/tasks", "get")]:
        assert paths[path][method]["security"] == [{"ApiKey": []}], path
        assert {"401", "403"} <= set(paths[path][method]["responses"]), path
    for path in ("/healthz", "/readyz"):
        assert "security" not in paths[path]["get"], path


def test_without_configured_keys_no_key_is_needed(idle_client: httpx.Client) -> None:
    assert idle_client.get("/tasks").status_code == 200
    assert idle_client.get("/tasks", headers=_bearer("anything")).status_code == 200
