"""Dashboard sessions: opened with a key, valid until they expire or are closed."""

from __future__ import annotations

from batchyard.service.dashboard.sessions import LIFETIME_SECONDS, DashboardSessions, key_matches


def test_a_session_is_valid_until_it_expires_or_is_closed() -> None:
    now = [1000.0]
    sessions = DashboardSessions(clock=lambda: now[0])
    first, second = sessions.open(), sessions.open()
    assert first != second and len(first) >= 43  # 256 random bits, URL-safe base64
    assert sessions.valid(first) and sessions.valid(second)
    assert not sessions.valid("") and not sessions.valid(None) and not sessions.valid("made-up")
    sessions.close(first)
    assert not sessions.valid(first) and sessions.valid(second)
    now[0] += LIFETIME_SECONDS
    assert not sessions.valid(second)


def test_expired_sessions_are_forgotten_when_another_opens() -> None:
    now = [0.0]
    sessions = DashboardSessions(clock=lambda: now[0])
    sessions.open()
    sessions.open()
    now[0] += LIFETIME_SECONDS + 1
    sessions.open()
    assert len(sessions) == 1


def test_a_key_matches_only_one_of_the_accounts_keys() -> None:
    keys = ("cHJpbWFyeQ==", "c2Vjb25kYXJ5")
    assert key_matches("cHJpbWFyeQ==", keys) and key_matches("c2Vjb25kYXJ5", keys)
    assert not key_matches("cHJpbWFyeQ", keys) and not key_matches("", keys)


def test_a_token_session_keeps_its_token_and_a_key_session_none() -> None:
    sessions = DashboardSessions()
    by_token, by_key = sessions.open(bearer="header.claims.signature"), sessions.open()
    assert sessions.bearer_of(by_token) == "header.claims.signature"
    assert sessions.bearer_of(by_key) is None and sessions.valid(by_key)
    sessions.close(by_token)
    assert sessions.bearer_of(by_token) is None and not sessions.valid(by_token)
