"""Session fixtures: a real Redis, a real worker process with tiny models, a real gateway.

Processes start lazily (only when a test asks for them) and once per session. Their logs go
to files under the session's temp dir; a failing test that used a process gets its log tail
attached to the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.local import stack, tiny_models
from tests.utils.audio import FOX, require_binary, speak, tone

# Fixture name -> the attribute holding its Proc(s), for log tails on failure.
_PROCESS_FIXTURES = ("worker", "gateway", "speech_stack", "idle_gateway")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    for name in _PROCESS_FIXTURES:
        value = funcargs.get(name)
        procs = getattr(value, "procs", None) or (
            [value.proc] if hasattr(value, "proc") else [value] if isinstance(value, stack.Proc) else []
        )
        for proc in procs:
            report.sections.append((f"{proc.name} log tail", stack.log_tail(proc.log_path, 4000)))


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("amulet")


@pytest.fixture(scope="session")
def redis_server(run_dir: Path) -> Iterator[stack.RedisServer]:
    server = stack.start_redis(run_dir / "redis")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_model_dirs() -> dict[str, Path]:
    """Model directory per task: tiny random models, plus the real all-MiniLM-L6-v2 for embed."""
    built = tiny_models.all_cached()
    return {
        "transcribe": built["whisper"],
        "synthesize": built["vits"],
        "generate": built["generator"],
        "classify": built["classifier"],
        "embed": tiny_models.minilm_path(),
    }


@pytest.fixture(scope="session")
def worker(
    redis_server: stack.RedisServer, tiny_model_dirs: dict[str, Path], run_dir: Path
) -> Iterator[stack.Proc]:
    """ONE real ``python -m worker`` serving both queues with every task enabled."""
    env = stack.worker_env(
        redis_server.url(), tiny_model_dirs, queues="speech,text", health_file=run_dir / "worker-health.json"
    )
    proc = stack.start_worker("worker", env, run_dir / "worker.log", redis_server.client())
    yield proc
    proc.stop(timeout=30)


@pytest.fixture(scope="session")
def gateway(redis_server: stack.RedisServer, run_dir: Path) -> Iterator[stack.Gateway]:
    gw = stack.start_gateway("gateway", redis_server.url(), run_dir / "gateway.log")
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def client(gateway: stack.Gateway, worker: stack.Proc) -> Iterator[httpx.Client]:
    """HTTP client for the gateway, with the worker up and ready."""
    with gateway.client() as c:
        yield c


IDLE_MAX_WAIT_S = 2


@pytest.fixture(scope="session")
def idle_gateway(redis_server: stack.RedisServer, run_dir: Path) -> Iterator[stack.Gateway]:
    """A second gateway on Redis db 1, where no worker listens: jobs stay queued, /readyz is 503."""
    gw = stack.start_gateway(
        "idle-gateway",
        redis_server.url(1),
        run_dir / "idle-gateway.log",
        {"AMULET_MAX_WAIT_S": str(IDLE_MAX_WAIT_S)},
    )
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def idle_client(idle_gateway: stack.Gateway) -> Iterator[httpx.Client]:
    with idle_gateway.client() as c:
        yield c


class SpeechStack:
    """Its own redis + speech-only worker (real Whisper tiny.en, synthesize disabled) + gateway."""

    def __init__(self, redis: stack.RedisServer, worker: stack.Proc, gateway: stack.Gateway) -> None:
        self.redis, self.worker, self.gateway = redis, worker, gateway
        self.procs = [worker, gateway.proc]

    def stop(self) -> None:
        self.gateway.stop()
        self.worker.stop(timeout=30)
        self.redis.stop()


@pytest.fixture(scope="session")
def speech_stack(run_dir: Path) -> Iterator[SpeechStack]:
    from deploy.local.whisper_ct2 import converted_tiny_en

    model = converted_tiny_en()
    base = run_dir / "speech-stack"
    redis = stack.start_redis(base / "redis")
    try:
        env = stack.worker_env(
            redis.url(), {"transcribe": model}, queues="speech", health_file=base / "worker-health.json"
        )
        worker_proc = stack.start_worker("speech-worker", env, base / "worker.log", redis.client())
        try:
            gw = stack.start_gateway(
                "speech-gateway", redis.url(), base / "gateway.log", {"AMULET_REQUIRED_QUEUES": "speech"}
            )
        except BaseException:
            worker_proc.stop()
            raise
    except BaseException:
        redis.stop()
        raise
    s = SpeechStack(redis, worker_proc, gw)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def speech_client(speech_stack: SpeechStack) -> Iterator[httpx.Client]:
    with speech_stack.gateway.client() as c:
        yield c


# -- audio files ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def audio_dir(run_dir: Path) -> Path:
    require_binary("espeak-ng")
    require_binary("ffmpeg")
    d = run_dir / "audio"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def fox_wav(audio_dir: Path) -> Path:
    """espeak-ng speaking FOX: mono WAV at 22050 Hz."""
    return speak(FOX, audio_dir / "fox.wav")


@pytest.fixture(scope="session")
def tone_wav(audio_dir: Path) -> Path:
    return tone(2.0, audio_dir / "tone.wav")
