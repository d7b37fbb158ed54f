"""Per-task time limits (AMULET_<TASK>_TIME_LIMIT_S): a job over its task's limit ends ``failed``
with ``timeout`` and no result, and the worker serves the next job.

- generate (1 s limit, a 2000-token generation of several seconds): stopped at the limit;
- classify (a limit far below one forward pass): cannot be interrupted, failed after the fact.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.jobs import create_json_job, wait_job
from tests.utils.lone_stack import LoneStack, lone_stack

pytestmark = pytest.mark.timeout(300)

GENERATE_LIMIT_S = 1.0


@pytest.fixture(scope="module")
def limited_stack(run_dir: Path, tiny_model_dirs: dict[str, Path]) -> Iterator[LoneStack]:
    models = {"generate": tiny_model_dirs["generate"], "classify": tiny_model_dirs["classify"]}
    with lone_stack(run_dir / "limits-stack", models) as s:
        s.start_worker(
            "limited-worker",
            {
                "AMULET_MAX_NEW_TOKENS": "2000",
                "AMULET_GENERATE_TIME_LIMIT_S": str(GENERATE_LIMIT_S),
                "AMULET_CLASSIFY_TIME_LIMIT_S": "0.000001",
            },
        )
        yield s


def test_generation_over_its_limit_fails_with_timeout(limited_stack: LoneStack) -> None:
    with limited_stack.gateway.client(timeout=60) as c:
        long = create_json_job(c, "generate", {"prompt": "Tell me a long story."}, {"max_new_tokens": 2000})
        job = wait_job(c, long["id"], timeout=120)
        print(
            f"\ngenerate over its {GENERATE_LIMIT_S:g} s limit: failed after {job['timings']['run_s']:.2f} s"
        )
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "timeout", job
        assert "AMULET_GENERATE_TIME_LIMIT_S" in job["error"]["message"]
        assert job["result"] is None
        assert limited_stack.db().scard("amulet:running") == 0

        short = wait_job(c, create_json_job(c, "generate", {"prompt": "Hi"}, {"max_new_tokens": 4})["id"])
        assert short["status"] == "succeeded", short


def test_a_forward_pass_over_its_limit_fails_after_the_fact(limited_stack: LoneStack) -> None:
    with limited_stack.gateway.client(timeout=60) as c:
        job = wait_job(c, create_json_job(c, "classify", {"text": "Too slow for its limit."})["id"])
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "timeout", job
        assert job["result"] is None
        # The worker carries on.
        short = wait_job(c, create_json_job(c, "generate", {"prompt": "Hi"}, {"max_new_tokens": 4})["id"])
        assert short["status"] == "succeeded", short
