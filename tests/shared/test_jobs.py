"""The job status vocabulary: terminal states and the forward-only order."""

from __future__ import annotations

import pytest

from shared.jobs import STATUS_RANK, JobStatus, from_timestamp, to_timestamp, utcnow


@pytest.mark.parametrize(
    ("status", "terminal"),
    [("queued", False), ("running", False), ("succeeded", True), ("failed", True), ("canceled", True)],
)
def test_is_terminal_only_for_finished_statuses(status: str, terminal: bool) -> None:
    assert JobStatus(status).is_terminal() is terminal


def test_statuses_rank_queued_before_running_before_terminal() -> None:
    assert JobStatus.QUEUED.rank < JobStatus.RUNNING.rank
    for status in JobStatus:
        if status.is_terminal():
            assert status.rank > JobStatus.RUNNING.rank
    assert set(STATUS_RANK) == set(JobStatus)


def test_timestamps_round_trip_through_their_redis_form() -> None:
    now = utcnow()
    assert from_timestamp(to_timestamp(now)) == now
    assert from_timestamp(None) is None and from_timestamp("") is None
