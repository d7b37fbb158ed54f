"""The four workloads of `make bench`, each with its baselines measured in the same run."""

from __future__ import annotations

import asyncio
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import soundfile as sf

from bench import load, models
from deploy.local import stack

SENTENCE = "The quick brown fox jumps over the lazy dog."


@dataclass
class Row:
    workload: str
    metric: str
    amulet: float
    baselines: dict[str, float]
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class Sizes:
    http_seconds: float
    round_trips: int
    embed_jobs: int
    transcribe_jobs: int
    whisper_shape: str
    whisper_tokens: int
    sweep: list[int]


FULL = Sizes(8, 300, 1500, 24, "tiny", 24, [1, 2, 4, 8, 16, 32])
QUICK = Sizes(1, 20, 40, 4, "toy", 4, [1, 4])


class Env:
    """Redis for the whole run; each stack gets its own database so nothing leaks between them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis = stack.start_redis(workdir / "redis")
        self._next_db = 1

    def db(self) -> int:
        self._next_db += 1
        return self._next_db

    def worker(self, name: str, db: int, models_: dict, queues: str, extra: dict | None = None) -> stack.Proc:
        health = self.workdir / f"{name}.health"
        env = stack.worker_env(self.redis.url(db), models_, queues=queues, health_file=health, extra=extra)
        env["AMULET_LOG_LEVEL"] = "WARNING"
        return stack.start_worker(name, env, self.workdir / f"{name}.log", self.redis.client(db))

    def gateway(self, name: str, db: int, queues: str = "text", extra: dict | None = None) -> stack.Gateway:
        return stack.start_gateway(
            name,
            self.redis.url(db),
            self.workdir / f"{name}.log",
            {"AMULET_REQUIRED_QUEUES": queues, "AMULET_LOG_LEVEL": "WARNING", **(extra or {})},
        )

    def stop(self) -> None:
        self.redis.stop()


# -- 1. POST /jobs throughput --------------------------------------------------------------
def gateway_throughput(env: Env, sizes: Sizes) -> Row:
    bare = stack.spawn(
        "bare-fastapi",
        [stack.PYTHON, "-m", "uvicorn", "--factory", "bench.bare_api:create_app", "--host", "127.0.0.1",
         "--port", str(port := stack.free_port()), "--log-level", "warning"],
        env.workdir / "bare-fastapi.log",
    )  # fmt: skip
    up = lambda: httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200  # noqa: E731
    stack.wait_for(up, 30, "bare api", bare)
    # No worker on this database: POST /jobs only queues (what is measured is the gateway). Nothing
    # drains the queue, so its limit is lifted: a run must measure jobs created, not 429s.
    gw = env.gateway("gateway-w1", env.db(), extra={"AMULET_MAX_QUEUE_DEPTH": str(10**9)})
    try:
        base = load.wrk_post(f"http://127.0.0.1:{port}/jobs", sizes.http_seconds, 32)
        ours = load.wrk_post(f"{gw.base_url}/jobs", sizes.http_seconds, 32)
    finally:
        gw.stop()
        bare.stop()
    ratio = ours.rps / base.rps
    return Row(
        "1. POST /jobs (32 connections, 1 gateway process)",
        "requests/s",
        ours.rps,
        {"bare FastAPI": base.rps},
        ratio,
        ">= 0.33 of bare",
        ratio >= 1 / 3,
        f"p50/p99 ms: Amulet {ours.p50_ms:.1f}/{ours.p99_ms:.1f}, bare {base.p50_ms:.1f}/{base.p99_ms:.1f}; "
        f"non-2xx: {ours.errors}",
    )


# -- 2. round trip of a trivial job ---------------------------------------------------------
def round_trip(env: Env, sizes: Sizes) -> Row:
    from deploy.local.tiny_models import cached

    classifier = cached("classifier")
    db = env.db()
    worker = env.worker("worker-w2", db, {"classify": classifier}, "text")
    gw = env.gateway("gateway-w2", db)
    bare_db = env.db()
    bare = stack.spawn(
        "bare-celery",
        [stack.PYTHON, "-m", "celery", "-A", "bench.bare_celery", "worker", "--pool=threads", "-c", "1",
         "-Q", "bench-bare", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        env.workdir / "bare-celery.log",
        {"BENCH_REDIS_URL": env.redis.url(bare_db)},
    )  # fmt: skip
    try:
        from bench.bare_celery import make_app

        app = make_app(env.redis.url(bare_db))
        noop = app.tasks["bench.noop"]
        stack.wait_for(lambda: noop.delay().get(timeout=2) == "ok", 60, "bare celery worker", bare)
        with gw.client() as client:
            body = {"task": "classify", "input": {"text": "fine"}}
            timings: list[dict] = []

            def job() -> None:
                # One request: POST /jobs holds the answer until the job is done (Prefer: wait).
                r = client.post("/jobs", json=body, headers=load.PREFER_WAIT)
                finished = r.json()
                assert r.status_code == 201 and finished["status"] == "succeeded", r.text
                timings.append(finished["timings"])

            def job_then_get() -> None:
                # Two requests, as a client without Prefer: wait does it.
                job_id = client.post("/jobs", json=body).json()["id"]
                assert client.get(f"/jobs/{job_id}", params={"wait": 10}).json()["status"] == "succeeded"

            for _ in range(10):
                job()
                job_then_get()
            timings.clear()  # the warm-up's
            ours, two_requests = load.timed_alternately([job, job_then_get], sizes.round_trips)
        for _ in range(10):
            noop.delay().get(timeout=10)
        base = load.timed(lambda: noop.delay().get(timeout=10), sizes.round_trips)
        app.close()
    finally:
        bare.stop()
        gw.stop()
        worker.stop(timeout=30)
    model_ms = _classifier_call_ms(classifier, sizes.round_trips)
    ours50, base50 = load.median(ours), load.median(base)
    added = ours50 - base50 - model_ms
    # Where Amulet's round trip goes, from the jobs' own timings: created -> started (the POST's
    # write, Celery's delivery, the start script), started -> finished (the model and the worker
    # around it), and the rest (HTTP both ways, the finish script, the wake-up of the waiting POST).
    queue_ms = load.median([t["queue_wait_s"] * 1000 for t in timings])
    run_ms = load.median([t["run_s"] * 1000 for t in timings])
    return Row(
        "2. trivial job round trip (submit, wait, result)",
        "p50 ms",
        ours50,
        {"bare Celery (no-op, Redis backend)": base50},
        None,
        "adds <= 2 ms p50",
        added <= 2.0,
        f"added p50 {added:.2f} ms after the model's own {model_ms:.2f} ms; p99 Amulet "
        f"{load.percentile(ours, 0.99):.1f} ms, bare {load.percentile(base, 0.99):.1f} ms; "
        f"POST with Prefer: wait; POST then GET ?wait: p50 {load.median(two_requests):.1f} ms; "
        f"Amulet p50 split: created to started {queue_ms:.2f} ms, started to finished {run_ms:.2f} ms, "
        f"rest {ours50 - queue_ms - run_ms:.2f} ms",
        {"added_ms": added},
    )


def _classifier_call_ms(path: Path, n: int) -> float:
    import torch
    from transformers import pipeline

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    pipe = pipeline("text-classification", model=str(path), device="cpu", top_k=None)
    for _ in range(5):
        pipe(["fine"], truncation=True)
    return load.median(load.timed(lambda: pipe(["fine"], truncation=True, batch_size=1), n))


# -- 3. embed at saturation ------------------------------------------------------------------
def embed_sweep(sizes: Sizes) -> dict[int, float]:
    """Sentences/s of the bare model at each batch size (a tight loop, no queue)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(models.minilm()), device="cpu")
    out = {}
    for batch in sizes.sweep:
        texts = [f"{SENTENCE} {i}" for i in range(batch)]
        model.encode(texts, batch_size=batch, show_progress_bar=False)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < (2.0 if len(sizes.sweep) > 2 else 0.3):
            model.encode(texts, batch_size=batch, show_progress_bar=False)
            n += batch
        out[batch] = n / (time.perf_counter() - start)
    return out


def _embed_request(i: int) -> dict:
    return {"task": "embed", "input": {"texts": [f"{SENTENCE} {i}"]}}


_EMBED_COUNTER = iter(range(10**9))  # a different sentence per job


async def _post_embed(client: aiohttp.ClientSession) -> dict:
    async with client.post("/jobs", json=_embed_request(next(_EMBED_COUNTER)), headers=load.PREFER_WAIT) as r:
        return await r.json()


@dataclass
class Saturation:
    rate: float  # jobs/s
    jobs: list[dict]  # the finished jobs as the API answered them
    cpu_ms_per_job: dict[str, float]  # CPU time per finished job of each process (Linux only)

    def cpu_note(self) -> str:
        """Where each job's CPU went, and the rate all the machine's cores would allow at that cost."""
        if not self.cpu_ms_per_job:
            return ""
        total = sum(self.cpu_ms_per_job.values())
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in self.cpu_ms_per_job.items())
        cores = os.cpu_count() or 1
        ceiling = cores * 1000 / total
        return f"; CPU ms/job: {parts} (total {total:.2f}: {cores} cores allow <= {ceiling:.0f} jobs/s)"


def _amulet_saturation(env: Env, name: str, models_: dict, queues: str, extra: dict, jobs: int,
                       users: int, post) -> Saturation:  # fmt: skip
    db = env.db()
    worker = env.worker(name, db, models_, queues, extra)
    gw = env.gateway(f"{name}-gateway", db, queues)
    try:
        asyncio.run(load.saturate(gw.base_url, post, max(4, jobs // 10), users))  # warm up
        pids = {
            "worker": worker.popen.pid,
            "gateway": gw.proc.popen.pid,
            "Redis": env.redis.proc.popen.pid,
            "client": os.getpid(),
        }
        before = {name: load.cpu_seconds(pid) for name, pid in pids.items()}
        rate, done = asyncio.run(load.saturate(gw.base_url, post, jobs, users))
        after = {name: load.cpu_seconds(pid) for name, pid in pids.items()}
    finally:
        gw.stop()
        worker.stop(timeout=30)
    cpu = {
        name: (after[name] - before[name]) * 1000 / len(done)
        for name in pids
        if before[name] is not None and after[name] is not None
    }
    return Saturation(rate, done, cpu)


def embed_saturation(env: Env, sizes: Sizes, sweep: dict[int, float]) -> Row:
    from shared.tasks import TaskName
    from worker.batch_limits import DEFAULTS

    default = DEFAULTS["cpu"][TaskName.EMBED]
    users = 2 * default.max_batch_size
    model = {"embed": models.minilm()}
    batched = _amulet_saturation(env, "worker-w3-batched", model, "text", {}, sizes.embed_jobs, users,
                                 _post_embed)  # fmt: skip
    off = _amulet_saturation(env, "worker-w3-off", model, "text", {"AMULET_EMBED_MAX_BATCH_SIZE": "1"},
                             sizes.embed_jobs, users, _post_embed).rate  # fmt: skip
    on, on_jobs = batched.rate, batched.jobs
    bare_batch = default.max_batch_size if default.max_batch_size in sweep else max(sweep, key=sweep.get)
    bare = sweep[bare_batch]
    sizes_seen = [j["timings"].get("batch_size") or 0 for j in on_jobs]
    vs_off, vs_bare = on / off, on / bare
    return Row(
        "3. embed, 1 sentence/job, MiniLM-L6 (saturation)",
        "jobs/s",
        on,
        {"batching off (batch 1)": off, f"bare loop (batch {bare_batch})": bare},
        vs_off,
        ">= 2x off and >= 0.6 of bare",
        vs_off >= 2 and vs_bare >= 0.6,
        f"vs off {vs_off:.2f}x, vs bare {vs_bare:.2f}; mean batch {np.mean(sizes_seen):.1f}; {users} clients"
        f"{batched.cpu_note()}",
        {"vs_bare": vs_bare, "cpu_ms_per_job": batched.cpu_ms_per_job},
    )


# -- 4. transcribe at saturation -----------------------------------------------------------------
def clip_bytes(seconds: float = 3.0) -> bytes:
    rng = np.random.default_rng(0)
    samples = (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, samples, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def whisper_sweep(model_dir: Path, batches: list[int], device: str, seconds: float = 3.0) -> dict[int, float]:
    import torch
    from transformers import pipeline

    dtype = torch.float16 if device == "cuda" else torch.float32
    pipe = pipeline("automatic-speech-recognition", model=str(model_dir), device=device, dtype=dtype)
    samples = (0.1 * np.random.default_rng(0).standard_normal(int(16000 * seconds))).astype(np.float32)
    kwargs = {"generate_kwargs": {"language": "en", "task": "transcribe"}, "return_timestamps": False}
    out = {}
    for batch in batches:

        def inputs(batch: int = batch) -> list[dict]:
            return [{"raw": samples.copy(), "sampling_rate": 16000} for _ in range(batch)]

        pipe(inputs(), batch_size=batch, **kwargs)
        start, n = time.perf_counter(), 0
        while n < max(batch, 4) or time.perf_counter() - start < 1.0:
            pipe(inputs(), batch_size=batch, **kwargs)
            n += batch
        out[batch] = n / (time.perf_counter() - start)
    return out


def transcribe_saturation(env: Env, sizes: Sizes, model_dir: Path, sweep: dict[int, float], device: str,
                          batched: int) -> Row:  # fmt: skip
    audio = clip_bytes()

    async def post(client: aiohttp.ClientSession) -> dict:
        form = aiohttp.FormData()
        form.add_field("task", "transcribe")
        form.add_field("params", '{"language": "en", "return_timestamps": false}')
        form.add_field("file", audio, filename="clip.wav", content_type="audio/wav")
        async with client.post("/jobs", data=form, headers=load.PREFER_WAIT) as r:
            return await r.json()

    model = {"transcribe": model_dir}
    extra = {"AMULET_DEVICE": device}
    users = 2 * batched
    batched_run = _amulet_saturation(env, "worker-w4-batched", model, "speech",
                                     {**extra, "AMULET_TRANSCRIBE_MAX_BATCH_SIZE": str(batched),
                                      "AMULET_TRANSCRIBE_MAX_WAIT_MS": "50"},
                                     sizes.transcribe_jobs, users, post)  # fmt: skip
    off = _amulet_saturation(env, "worker-w4-off", model, "speech",
                             {**extra, "AMULET_TRANSCRIBE_MAX_BATCH_SIZE": "1"},
                             sizes.transcribe_jobs, users, post).rate  # fmt: skip
    on, on_jobs = batched_run.rate, batched_run.jobs
    bare = sweep.get(batched, max(sweep.values()))
    failed = sum(j["status"] != "succeeded" for j in on_jobs)
    return Row(
        f"4. transcribe, 3 s clips, Whisper-shaped '{sizes.whisper_shape}', "
        f"{sizes.whisper_tokens} tokens ({device})",
        "jobs/s",
        on,
        {"batching off (batch 1)": off, f"bare loop (batch {batched})": bare},
        on / off,
        "GPU: >= 5x off and >= 0.85 of bare; CPU: default is batch 1",
        None,
        f"Amulet at batch {batched}: vs off {on / off:.2f}x, vs bare {on / bare:.2f}; failed jobs {failed}",
        {"vs_bare": on / bare},
    )
