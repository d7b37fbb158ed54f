"""Optional API keys: ``Authorization: Bearer <key>`` on every route but health and docs.

With no key configured (AMULET_API_KEYS empty) every request passes. Keys are compared in
constant time against every configured key, so neither the answer's timing nor an early
exit tells a caller how close a guess was or which key matched.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.dependencies import SettingsDep
from api.errors import ApiError

# auto_error=False: a missing or non-Bearer header reaches us as None, so the answer is our
# error body (401 + WWW-Authenticate) rather than FastAPI's. It also puts the scheme in OpenAPI.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="One of the keys in AMULET_API_KEYS, sent as `Authorization: Bearer <key>`. "
    "Only needed when the server has keys configured.",
)


def key_matches(presented: str, configured: list[str]) -> bool:
    presented_bytes = presented.encode()
    matched = False
    for key in configured:
        # No short-circuit: every key is compared whatever the outcome.
        matched |= hmac.compare_digest(presented_bytes, key.encode())
    return matched


async def require_api_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    if not settings.API_KEYS:
        return
    if credentials is None or not credentials.credentials:
        raise ApiError(
            401,
            "unauthorized",
            "This server needs an API key: send the header 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not key_matches(credentials.credentials, [k.get_secret_value() for k in settings.API_KEYS]):
        raise ApiError(403, "forbidden", "The API key is not valid for this server.")


RequireApiKey = Depends(require_api_key)
