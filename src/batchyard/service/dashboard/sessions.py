"""Dashboard sessions: an account key traded once for a random session id kept in an HttpOnly cookie.

The key is checked at sign-in (a POST body, so it never appears in a URL or the access log) and is not
kept: the browser holds only the session id, which names an entry of this in-memory table. Sessions end
when they expire, at sign-out, or when the service restarts (the user signs in again).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterable

COOKIE = "batchyard_ui_session"
LIFETIME_SECONDS = 8 * 3600


class DashboardSessions:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._expiry: dict[str, float] = {}
        self._clock = clock

    def open(self) -> str:
        """A new session's id (256 random bits)."""
        self._forget_expired()
        session_id = secrets.token_urlsafe(32)
        self._expiry[session_id] = self._clock() + LIFETIME_SECONDS
        return session_id

    def valid(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        expiry = self._expiry.get(session_id)
        return expiry is not None and expiry > self._clock()

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._expiry.pop(session_id, None)

    def __len__(self) -> int:
        """How many sessions are kept (expired ones until the next sign-in forgets them)."""
        return len(self._expiry)

    def _forget_expired(self) -> None:
        now = self._clock()
        for session_id in [s for s, expiry in self._expiry.items() if expiry <= now]:
            del self._expiry[session_id]


def key_matches(offered: str, keys: Iterable[str]) -> bool:
    """Whether `offered` is one of the account's keys (compared in constant time, each key every time)."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(offered.encode(), key.encode())
    return matched
