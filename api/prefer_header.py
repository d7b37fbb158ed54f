"""The RFC 7240 ``Prefer: wait=N`` header."""

from __future__ import annotations

import math


def prefer_wait(header: str | None) -> float | None:
    """Seconds from ``Prefer: ..., wait=N``; None when absent or unusable.

    RFC 7240 says a server ignores preferences it does not understand, so a malformed
    value is ignored rather than refused.
    """
    if not header:
        return None
    for preference in header.split(","):
        token, _, value = preference.split(";", 1)[0].partition("=")
        if token.strip().lower() != "wait":
            continue
        try:
            seconds = float(value.strip().strip('"'))
        except ValueError:
            return None
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


def format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
