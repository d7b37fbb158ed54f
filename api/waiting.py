"""Waking requests that wait for a job (GET /jobs/{id}?wait=N) when it finishes.

One pub/sub subscription per gateway process on redis_keys.JOB_DONE_CHANNEL feeds a
map job id -> events. A request registers its event *before* re-reading the job, so a
completion between the read and the wait is never missed. Messages published while the
subscription is down are lost, so every waiter is woken after each (re)subscribe to
re-read its job; waiters also re-read every few seconds as a last safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from shared import redis_keys
from shared.job_record import JobRecord
from shared.redis_protocol import as_text

log = logging.getLogger(__name__)

# Longest a waiter sleeps without re-reading its job, in case a wake-up was lost.
SAFETY_REREAD_S = 5.0
# How often an idle subscription is checked (PING) so a dead connection is noticed.
HEALTH_CHECK_INTERVAL_S = 10
POLL_INTERVAL_S = 1.0
MAX_RECONNECT_DELAY_S = 5.0


class JobDoneListener:
    def __init__(self, redis_url: str, channel: str = redis_keys.JOB_DONE_CHANNEL) -> None:
        self._channel = channel
        # A dedicated client: the subscription holds its connection for good. No silent
        # retries inside redis-py: a dropped connection must surface here, so the loop
        # can resubscribe and wake every waiter.
        self._redis = Redis.from_url(
            redis_url,
            socket_connect_timeout=2,
            health_check_interval=HEALTH_CHECK_INTERVAL_S,
            retry=Retry(NoBackoff(), 0),
        )
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.subscribed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="job-done-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()
        self._wake_all()

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set when ``job_id`` may have finished; register before reading the job."""
        event = asyncio.Event()
        self._waiters[job_id].add(event)
        try:
            yield event
        finally:
            events = self._waiters.get(job_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[job_id]

    def _wake(self, job_id: str) -> None:
        for event in self._waiters.get(job_id, ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()

    async def _run(self) -> None:
        delay = POLL_INTERVAL_S / 4
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self.subscribed = True
                    delay = POLL_INTERVAL_S / 4
                    log.info("Subscribed to %s", self._channel)
                    self._wake_all()
                    while True:
                        message = await pubsub.get_message(timeout=POLL_INTERVAL_S)
                        if message and message.get("type") == "message":
                            data = message["data"]
                            self._wake(as_text(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: resubscribe after a pause, never die
                if self.subscribed:
                    log.warning("Lost the %s subscription (%r); reconnecting", self._channel, exc)
                self.subscribed = False
                # Waiters are not woken here: they re-read on their own every few seconds,
                # and all of them are woken once the subscription is back.
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RECONNECT_DELAY_S)


async def wait_until_terminal(
    listener: JobDoneListener,
    job_id: str,
    load: Callable[[str], Awaitable[JobRecord | None]],
    timeout_s: float,
) -> JobRecord | None:
    """The job once it is terminal, or as it is when ``timeout_s`` has passed (None: no such job)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with listener.watch(job_id) as done:
        record = await load(job_id)
        while record is not None and not record.status.is_terminal():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), min(remaining, SAFETY_REREAD_S))
            # Cleared before the read: a wake-up arriving during the read sets it again.
            done.clear()
            record = await load(job_id)
    return record
