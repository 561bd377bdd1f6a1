"""Dashboard sessions: a credential traded once for a random session id kept in an HttpOnly cookie.

An account key is checked at sign-in (a POST body, so it never appears in a URL or the access log) and
is not kept: such a session has the key's authority. An access token (Azure AD, from the service's
identity provider) is kept with its session and sent with each proxied call, so the token's own role
and expiry decide every call. The browser holds only the session id, which names an entry of this
in-memory table. Sessions end when they expire, at sign-out, or when the service restarts.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

COOKIE = "batchyard_ui_session"
LIFETIME_SECONDS = 8 * 3600


@dataclass(frozen=True)
class _Session:
    expiry: float
    bearer: str | None  # the access token a token session calls with; None: the account key's authority


class DashboardSessions:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions: dict[str, _Session] = {}
        self._clock = clock

    def open(self, bearer: str | None = None) -> str:
        """A new session's id (256 random bits)."""
        self._forget_expired()
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = _Session(self._clock() + LIFETIME_SECONDS, bearer)
        return session_id

    def valid(self, session_id: str | None) -> bool:
        return self._live(session_id) is not None

    def bearer_of(self, session_id: str | None) -> str | None:
        """The access token a live token session calls with (None for a key session or no session)."""
        session = self._live(session_id)
        return session.bearer if session is not None else None

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        """How many sessions are kept (expired ones until the next sign-in forgets them)."""
        return len(self._sessions)

    def _live(self, session_id: str | None) -> _Session | None:
        session = self._sessions.get(session_id) if session_id else None
        return session if session is not None and session.expiry > self._clock() else None

    def _forget_expired(self) -> None:
        now = self._clock()
        for session_id in [s for s, session in self._sessions.items() if session.expiry <= now]:
            del self._sessions[session_id]


def key_matches(offered: str, keys: Iterable[str]) -> bool:
    """Whether `offered` is one of the account's keys (compared in constant time, each key every time)."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(offered.encode(), key.encode())
    return matched
