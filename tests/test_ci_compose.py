"""deploy/ci/compose.ci.yaml (the e2e check, `make e2e`) changes only what CI must, and the
Dockerfiles build there as they are. Rendered with ``docker-compose config``, no engine needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_compose_config import ROOT, _env, _gpu_devices, _render

CI_ENV = {"AMULET_CI_WHEELS": "/ci/wheels", "AMULET_CI_MODELS": "/ci/models"}
TASKS = ("transcribe", "synthesize", "generate", "classify", "embed")


@pytest.fixture(scope="module", params=[("compose.yaml",), ("compose.yaml", "compose.override.yml")])
def ci_config(request: pytest.FixtureRequest) -> dict:
    return _render((*request.param, "deploy/ci/compose.ci.yaml"), CI_ENV)


def test_ci_keeps_the_gpu_reservation_and_the_real_dockerfiles(ci_config: dict) -> None:
    services = ci_config["services"]
    assert _gpu_devices(services["worker"]) == _gpu_devices(_render(("compose.yaml",))["services"]["worker"])
    for service in ("api", "worker"):
        build = services[service]["build"]
        assert build["dockerfile"] == f"{service}/Dockerfile"
        assert build["additional_contexts"] == {"wheels": f"/ci/wheels/{service}"}
        assert build["args"]["PYTHON_IMAGE"] == "amulet-ci/python:3.11-bookworm"


def test_ci_worker_loads_mounted_models_offline(ci_config: dict) -> None:
    worker = ci_config["services"]["worker"]
    env = _env(ci_config, "worker")
    assert env["HF_HUB_OFFLINE"] == "1"
    assert {t: env[f"AMULET_{t.upper()}_MODEL"] for t in TASKS} == {t: f"/models/{t}" for t in TASKS}
    mounts = [v for v in worker["volumes"] if v["target"] == "/models"]
    assert mounts == [{"type": "bind", "source": "/ci/models", "target": "/models", "read_only": True}]


@pytest.mark.parametrize("dockerfile", ["api/Dockerfile", "worker/Dockerfile"])
def test_dockerfiles_need_no_frontend_image(dockerfile: str) -> None:
    # `# syntax=...` makes BuildKit pull docker/dockerfile from Docker Hub; CI has no registry.
    first = Path(ROOT / dockerfile).read_text().splitlines()[0]
    assert not first.lower().replace(" ", "").startswith("#syntax="), first


def test_nvidia_stub_is_labelled_a_ci_test_double() -> None:
    stub = ROOT / "deploy/ci/nvidia-stub/nvidia-container-runtime-hook"
    assert stub.stat().st_mode & 0o111
    assert "CI TEST DOUBLE. NEVER INSTALL THIS ON A REAL HOST." in stub.read_text()
