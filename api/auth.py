"""Optional API keys: ``Authorization: Bearer <key>`` on every route but health and docs, and who
the caller is.

With no key configured (AMULET_API_KEYS and AMULET_ADMIN_API_KEYS empty) every request passes and
every caller sees every job, as one user would. With keys, each job belongs to the key that
created it: the job records the key's id (a SHA-256 prefix, never the key), another key gets 404
for it, and keys in AMULET_ADMIN_API_KEYS see every job. Keys are compared in constant time
against every configured key, so neither the answer's timing nor an early exit tells a caller
how close a guess was or which key matched.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Depends
from fastapi.security import HTTPBearer
from starlette.requests import HTTPConnection, Request

from api.errors import ApiError, ApiErrorCode
from shared.job_record import JobRecord
from shared.settings import ApiSettings


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the id of its key ('' without keys) and whether it sees every job."""

    owner: str
    admin: bool

    def may_see(self, record: JobRecord) -> bool:
        return self.admin or record.owner == self.owner


# The caller when the server has no keys: every job is everyone's (jobs record owner '').
EVERYONE = Caller(owner="", admin=True)


def key_id(key: str) -> str:
    """A key's id, stored on its jobs: enough to tell keys apart, useless to recover the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class KeyRing:
    """The configured keys, each with the Caller it makes (built once per app)."""

    def __init__(self, settings: ApiSettings) -> None:
        admin = {k.get_secret_value() for k in settings.ADMIN_API_KEYS}
        keys = dict.fromkeys([k.get_secret_value() for k in settings.API_KEYS] + sorted(admin))
        self._entries = [(key.encode(), Caller(key_id(key), key in admin)) for key in keys]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def match(self, presented: str) -> Caller | None:
        presented_bytes = presented.encode()
        matched = None
        for key, caller in self._entries:
            # No short-circuit: every key is compared whatever the outcome.
            if hmac.compare_digest(presented_bytes, key):
                matched = caller
        return matched


class ApiKeyBearer(HTTPBearer):
    """The whole check as one dependency: the scheme itself, so OpenAPI still declares it on
    every protected route. A dependency that took the settings and HTTPBearer as sub-dependencies
    cost FastAPI three dependencies to solve per request, about 5% of POST /jobs's CPU. It leaves
    the Caller in ``request.state.caller`` (read by ``caller_of``).

    auto_error=False: a missing or non-Bearer header reaches the check as None, so the answer is
    our error body (401 + WWW-Authenticate) rather than FastAPI's.
    """

    async def __call__(self, request: HTTPConnection) -> None:
        keyring: KeyRing = request.app.state.keyring
        if not keyring:
            request.state.caller = EVERYONE
            return None
        credentials = await super().__call__(request)
        if credentials is None or not credentials.credentials:
            raise ApiError(
                401,
                ApiErrorCode.UNAUTHORIZED,
                "This server needs an API key: send the header 'Authorization: Bearer <key>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        caller = keyring.match(credentials.credentials)
        if caller is None:
            raise ApiError(403, ApiErrorCode.FORBIDDEN, "The API key is not valid for this server.")
        request.state.caller = caller
        return None


bearer_scheme = ApiKeyBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="One of the keys in AMULET_API_KEYS (or AMULET_ADMIN_API_KEYS), sent as "
    "`Authorization: Bearer <key>`. Only needed when the server has keys configured.",
)

RequireApiKey = Depends(bearer_scheme)


def caller_of(request: Request) -> Caller:
    """The caller, as RequireApiKey found it (every route that reads jobs depends on it)."""
    caller: Caller = request.state.caller
    return caller
