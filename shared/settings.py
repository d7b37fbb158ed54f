"""Settings for the gateway and the worker, read from the environment (prefix ``AMULET_``).

Objects are built by the ``*_settings()`` functions and passed in (FastAPI dependency,
worker start-up), so tests construct their own instead of patching the environment.
Every field is documented; README.md has the same table for users.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.tasks import Queue, TaskName

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def _split_csv(value: object) -> object:
    """Accept ``speech,text`` from the environment as well as a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _empty_as_none(value: object) -> object:
    """An empty variable (compose's ``${VAR:-}``) means "not set": the automatic default."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


class CommonSettings(BaseSettings):
    """What both sides need: where Redis is, how long things live."""

    model_config = SettingsConfigDict(env_prefix="AMULET_", env_file=None, extra="ignore")

    REDIS_URL: str = Field(
        "redis://localhost:6379/0",
        description="Redis URL: Celery broker and the job store (e.g. redis://:password@redis:6379/0).",
    )
    RESULT_TTL_S: int = Field(86_400, ge=60, description="How long a finished job and its result are kept.")
    JOB_TTL_S: int = Field(
        7 * 86_400, ge=60, description="How long an unfinished job record is kept before it expires."
    )
    INPUT_TTL_S: int = Field(
        86_400, ge=60, description="How long an uploaded input (audio) waits for a worker before it expires."
    )
    MAX_JOB_RUN_S: int = Field(
        3_600,
        ge=1,
        description="Longest a job may run. The broker's visibility timeout is set above it, so a "
        "long job is never delivered twice while it still runs.",
    )
    LOG_LEVEL: LogLevel = Field("INFO", description="Log level of the gateway and worker.")

    @property
    def visibility_timeout_s(self) -> int:
        # Ref: Celery + Redis redelivers unacked messages after visibility_timeout (default 1 h);
        # it must exceed the longest job or acks_late jobs run twice.
        return self.MAX_JOB_RUN_S * 2 + 60


class ApiSettings(CommonSettings):
    """Gateway settings."""

    MAX_UPLOAD_BYTES: int = Field(
        50 * 1024 * 1024, ge=1024, description="Largest accepted request body (audio upload), in bytes."
    )
    MAX_WAIT_S: float = Field(
        60.0,
        ge=0,
        description="Cap on how long GET /jobs/{id}?wait=N (or Prefer: wait=N) may hold a request.",
    )
    REQUIRED_QUEUES: Annotated[list[Queue], NoDecode] = Field(
        default_factory=lambda: [Queue.SPEECH, Queue.TEXT],
        description="Queues that need a live, ready worker for /readyz to answer 200 (comma separated).",
    )
    WORKER_STALE_S: float = Field(
        30.0, gt=0, description="A worker whose last heartbeat is older than this is considered gone."
    )
    API_KEYS: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="API keys clients send as 'Authorization: Bearer <key>' (comma separated). "
        "Each key sees only the jobs it created. Empty (and no ADMIN_API_KEYS): no authentication. "
        "Health checks and the docs never need one.",
    )
    ADMIN_API_KEYS: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="API keys that see (read, cancel, delete, list) every job, not only their own "
        "(comma separated); they are valid keys too.",
    )
    MAX_QUEUE_DEPTH: int = Field(
        10_000,
        ge=1,
        description="Most jobs waiting in one queue (speech, text); beyond it POST /jobs answers 429.",
    )
    IDEMPOTENCY_TTL_S: int = Field(
        86_400, ge=60, description="How long an Idempotency-Key is remembered (and answers with its job)."
    )
    REDIS_MAX_CONNECTIONS: int = Field(
        100,
        ge=1,
        description="Redis connections one gateway process opens at most; a request that finds them all "
        "busy waits for one (up to REDIS_POOL_TIMEOUT_S) instead of failing.",
    )
    REDIS_POOL_TIMEOUT_S: float = Field(
        10.0,
        gt=0,
        description="How long a request waits for a free Redis connection before answering 503.",
    )

    _split_queues = field_validator("REQUIRED_QUEUES", mode="before")(_split_csv)
    _split_keys = field_validator("API_KEYS", "ADMIN_API_KEYS", mode="before")(_split_csv)


class WorkerSettings(CommonSettings):
    """Worker settings. Each task's model is a Hub id or a local directory; empty disables it."""

    QUEUES: Annotated[list[Queue], NoDecode] = Field(
        default_factory=lambda: [Queue.SPEECH, Queue.TEXT],
        description="Queues this worker consumes (comma separated): speech, text or both.",
    )
    DEVICE: Literal["auto", "cuda", "cpu"] = Field(
        "auto",
        description="auto: CUDA with fp16 when a GPU is visible, else CPU with fp32. cuda: refuse to "
        "start without a GPU. cpu: always CPU.",
    )
    TRANSCRIBE_MODEL: str = Field(
        "openai/whisper-large-v3-turbo", description="Speech-to-text model (Whisper family)."
    )
    SYNTHESIZE_MODEL: str = Field(
        "kakao-enterprise/vits-ljs", description="Text-to-speech model (VITS family, MIT licence)."
    )
    GENERATE_MODEL: str = Field(
        "HuggingFaceTB/SmolLM2-360M-Instruct", description="Text-generation (instruct) model."
    )
    CLASSIFY_MODEL: str = Field(
        "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        description="Text-classification model; labels come from its config.",
    )
    EMBED_MODEL: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2", description="Sentence-embedding model."
    )
    HF_TOKEN_FILE: str = Field(
        "/run/secrets/hf_token",
        description="File holding a Hugging Face token (compose secret). HF_TOKEN in the environment "
        "works too. Never baked into an image.",
    )
    MAX_ATTEMPTS: int = Field(
        3, ge=1, description="Deliveries of one job (e.g. after a worker was killed) before it fails."
    )
    HEARTBEAT_INTERVAL_S: float = Field(5.0, gt=0, description="How often the worker reports to Redis.")
    HEALTH_FILE: str = Field(
        "/tmp/amulet-worker-health.json",
        description="Where the worker writes its state (loading/ready) for the container healthcheck.",
    )
    MAX_NEW_TOKENS: int = Field(1024, ge=1, description="Upper bound for generate's max_new_tokens.")
    CHUNK_LENGTH_S: float = Field(
        30.0, gt=0, description="Audio longer than this is transcribed in chunks of this length."
    )

    # Cross-job batching (worker/batching.py). Empty = auto: the default measured for the device,
    # in worker/batch_limits.py (evidence in docs/benchmarks.md). A batch size of 1 turns it off.
    TRANSCRIBE_MAX_BATCH_SIZE: int | None = Field(
        None, ge=1, description="Most transcribe jobs (audio chunks) in one forward pass; empty: auto."
    )
    TRANSCRIBE_MAX_WAIT_MS: float | None = Field(
        None, ge=0, description="Longest a transcribe job waits for others to share its batch; empty: auto."
    )
    SYNTHESIZE_MAX_BATCH_SIZE: int | None = Field(
        None, ge=1, description="Most synthesize jobs in one batch; empty: auto."
    )
    SYNTHESIZE_MAX_WAIT_MS: float | None = Field(
        None, ge=0, description="Longest a synthesize job waits for others to share its batch; empty: auto."
    )
    GENERATE_MAX_BATCH_SIZE: int | None = Field(
        None, ge=1, description="Most generate jobs in one batch; empty: auto."
    )
    GENERATE_MAX_WAIT_MS: float | None = Field(
        None, ge=0, description="Longest a generate job waits for others to share its batch; empty: auto."
    )
    CLASSIFY_MAX_BATCH_SIZE: int | None = Field(
        None, ge=1, description="Most classify jobs in one forward pass; empty: auto."
    )
    CLASSIFY_MAX_WAIT_MS: float | None = Field(
        None, ge=0, description="Longest a classify job waits for others to share its batch; empty: auto."
    )
    EMBED_MAX_BATCH_SIZE: int | None = Field(
        None, ge=1, description="Most embed jobs in one forward pass; empty: auto."
    )
    EMBED_MAX_WAIT_MS: float | None = Field(
        None, ge=0, description="Longest an embed job waits for others to share its batch; empty: auto."
    )

    # Per-task time limits (worker/stopping.py): a job's clock starts when it starts running (its
    # wait for batch company and for the device included). Generation (generate, Whisper's
    # transcribe) stops at the limit; embed, classify and synthesize cannot be interrupted
    # mid-forward and are failed after the fact. Either way the job ends failed with ``timeout``.
    TRANSCRIBE_TIME_LIMIT_S: float = Field(
        600.0, gt=0, description="Longest a transcribe job may run before it fails with timeout."
    )
    SYNTHESIZE_TIME_LIMIT_S: float = Field(
        600.0, gt=0, description="Longest a synthesize job may run before it fails with timeout."
    )
    GENERATE_TIME_LIMIT_S: float = Field(
        600.0, gt=0, description="Longest a generate job may run before it fails with timeout."
    )
    CLASSIFY_TIME_LIMIT_S: float = Field(
        60.0, gt=0, description="Longest a classify job may run before it fails with timeout."
    )
    EMBED_TIME_LIMIT_S: float = Field(
        60.0, gt=0, description="Longest an embed job may run before it fails with timeout."
    )

    _split_queues = field_validator("QUEUES", mode="before")(_split_csv)
    _empty_is_auto = field_validator(
        *(
            f"{task.value.upper()}_{limit}"
            for task in TaskName
            for limit in ("MAX_BATCH_SIZE", "MAX_WAIT_MS")
        ),
        mode="before",
    )(_empty_as_none)

    @model_validator(mode="after")
    def _time_limits_within_max_job_run(self) -> WorkerSettings:
        # The broker's visibility timeout is derived from MAX_JOB_RUN_S; a job allowed to run
        # longer could be delivered a second time while it still runs.
        over = [
            f"AMULET_{task.value.upper()}_TIME_LIMIT_S={self.time_limit_for(task):g}"
            for task in TaskName
            if self.time_limit_for(task) > self.MAX_JOB_RUN_S
        ]
        if over:
            raise ValueError(
                f"{', '.join(over)} exceeds AMULET_MAX_JOB_RUN_S={self.MAX_JOB_RUN_S}: raise "
                "AMULET_MAX_JOB_RUN_S or lower the time limit"
            )
        return self

    def time_limit_for(self, task: TaskName) -> float:
        """Seconds a job of ``task`` may run (from its start) before it fails with ``timeout``."""
        limit: float = getattr(self, f"{task.value.upper()}_TIME_LIMIT_S")
        return limit

    def batch_limits_for(self, task: TaskName) -> tuple[int | None, float | None]:
        """The configured (max batch size, max wait in ms) of a task; None = the device default."""
        prefix = task.value.upper()
        return getattr(self, f"{prefix}_MAX_BATCH_SIZE"), getattr(self, f"{prefix}_MAX_WAIT_MS")

    def model_for(self, task: TaskName) -> str | None:
        """The configured model reference for a task, or None when the task is disabled."""
        value = getattr(self, f"{task.value.upper()}_MODEL").strip()
        return value or None


def api_settings() -> ApiSettings:
    return ApiSettings()


def worker_settings() -> WorkerSettings:
    return WorkerSettings()
