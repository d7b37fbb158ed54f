"""The OpenAPI schema documents POST /jobs for both content types, with an example per task."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def openapi(idle_client: httpx.Client) -> dict:
    r = idle_client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def test_post_jobs_has_an_example_for_every_task(openapi: dict) -> None:
    content = openapi["paths"]["/jobs"]["post"]["requestBody"]["content"]
    json_examples = content["application/json"]["examples"]
    multipart_examples = content["multipart/form-data"]["examples"]
    examples = {**json_examples, **multipart_examples}
    assert set(examples) == {"transcribe", "synthesize", "generate", "classify", "embed"}
    for name, example in examples.items():
        assert example["value"]["task"] == name


def test_json_request_schemas_resolve_in_components(openapi: dict) -> None:
    content = openapi["paths"]["/jobs"]["post"]["requestBody"]["content"]
    refs = [variant["$ref"] for variant in content["application/json"]["schema"]["oneOf"]]
    assert len(refs) == 4
    schemas = openapi["components"]["schemas"]
    for ref in refs:
        assert ref.rsplit("/", 1)[1] in schemas, ref


def test_documented_routes_and_error_statuses(openapi: dict) -> None:
    paths = openapi["paths"]
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/result", "/tasks", "/healthz", "/readyz"} <= set(paths)
    assert {"200", "202", "413", "415", "422", "429", "503"} <= set(paths["/jobs"]["post"]["responses"])
    assert {"200", "202", "404", "409"} <= set(paths["/jobs/{job_id}/cancel"]["post"]["responses"])
    assert {"204", "404"} <= set(paths["/jobs/{job_id}"]["delete"]["responses"])
    assert "409" not in paths["/jobs/{job_id}"]["delete"]["responses"]  # any job can be deleted
    assert {"200", "422"} <= set(paths["/jobs"]["get"]["responses"])
    headers = {p["name"] for p in paths["/jobs"]["post"]["parameters"] if p["in"] == "header"}
    assert "Idempotency-Key" in headers
    assert {"404", "409"} <= set(paths["/jobs/{job_id}/result"]["get"]["responses"])
