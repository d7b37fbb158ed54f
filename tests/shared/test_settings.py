"""Settings: env prefix AMULET_, comma-separated queue lists, empty model = task disabled."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import ApiSettings, WorkerSettings
from shared.tasks import Queue, TaskName


def test_queues_parse_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMULET_QUEUES", " speech , text ")
    assert WorkerSettings().QUEUES == [Queue.SPEECH, Queue.TEXT]
    monkeypatch.setenv("AMULET_QUEUES", "text")
    assert WorkerSettings().QUEUES == [Queue.TEXT]


def test_required_queues_parse_from_csv_and_accept_lists() -> None:
    assert ApiSettings(REQUIRED_QUEUES="speech").REQUIRED_QUEUES == [Queue.SPEECH]
    assert ApiSettings(REQUIRED_QUEUES=["text", "speech"]).REQUIRED_QUEUES == [Queue.TEXT, Queue.SPEECH]
    assert ApiSettings(REQUIRED_QUEUES="").REQUIRED_QUEUES == []


def test_unknown_queue_name_is_refused() -> None:
    with pytest.raises(ValidationError):
        WorkerSettings(QUEUES="speech,video")


@pytest.mark.parametrize("value", ["", "   "])
def test_model_for_is_none_when_the_model_is_empty(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AMULET_CLASSIFY_MODEL", value)
    settings = WorkerSettings()
    assert settings.model_for(TaskName.CLASSIFY) is None
    # The other tasks keep their defaults.
    assert settings.model_for(TaskName.EMBED) == "sentence-transformers/all-MiniLM-L6-v2"


def test_model_for_returns_local_dirs_and_hub_ids_stripped() -> None:
    settings = WorkerSettings(TRANSCRIBE_MODEL=" /models/whisper ", GENERATE_MODEL="org/name")
    assert settings.model_for(TaskName.TRANSCRIBE) == "/models/whisper"
    assert settings.model_for(TaskName.GENERATE) == "org/name"


def test_settings_read_the_amulet_prefix_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMULET_REDIS_URL", "redis://example:6380/2")
    monkeypatch.setenv("REDIS_URL", "redis://wrong:1/0")
    monkeypatch.setenv("AMULET_MAX_UPLOAD_BYTES", "2048")
    settings = ApiSettings()
    assert settings.REDIS_URL == "redis://example:6380/2"
    assert settings.MAX_UPLOAD_BYTES == 2048


def test_device_must_be_auto_cuda_or_cpu() -> None:
    assert WorkerSettings(DEVICE="cpu").DEVICE == "cpu"
    with pytest.raises(ValidationError):
        WorkerSettings(DEVICE="tpu")


def test_visibility_timeout_exceeds_the_longest_job() -> None:
    settings = WorkerSettings(MAX_JOB_RUN_S=600)
    assert settings.visibility_timeout_s > 600
