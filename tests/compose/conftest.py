"""Client checks against a running compose stack, over its published port.

deploy/ci/e2e.sh (`make e2e`) starts the stack with `docker compose up --wait` and runs
``pytest tests/compose`` with AMULET_E2E_BASE_URL set. Without that variable nothing here is
collected, so `make test` never runs these tests (and e2e.sh fails when pytest reports a skip or
collects nothing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

BASE_URL = os.environ.get("AMULET_E2E_BASE_URL", "")

if not BASE_URL:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def stack() -> Iterator[httpx.Client]:
    """An HTTP client for the stack's gateway, as a user's client would talk to it."""
    with httpx.Client(base_url=BASE_URL, timeout=httpx.Timeout(60.0, connect=5.0)) as c:
        yield c


@pytest.fixture(scope="session")
def max_upload_bytes() -> int:
    return int(os.environ["AMULET_E2E_MAX_UPLOAD_BYTES"])
