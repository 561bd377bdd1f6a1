"""The dashboard's HTTP side without a browser: sign-in and proxy errors, token sessions, stopping with a stream open.

The browser tests are in test_dashboard.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from batchyard.service.config import DEV_ACCOUNT_KEY
from tests.conftest import Service, start_service


def test_the_sign_in_and_proxy_answer_bad_requests_with_batch_errors(service: Service) -> None:
    """Without a browser: what the page never sends still gets a Batch error, and sign-out ends the session."""
    url = service.url
    page = httpx.get(f"{url}/ui")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    for body, code in [(b"not json", "InvalidRequestBody"), (b"{}", "InvalidPropertyValue")]:
        answer = httpx.post(f"{url}/ui/session", content=body)
        assert answer.status_code == 400 and answer.json()["code"] == code, answer.text
    assert httpx.get(f"{url}/ui/static/nothing.js").json()["code"] == "InvalidUri"

    with httpx.Client(base_url=url) as browser_like:
        assert browser_like.post("/ui/session", json={"accountKey": DEV_ACCOUNT_KEY}).status_code == 204
        # The proxied call is the API's own: its checks (here the api-version) and its errors.
        answer = browser_like.get("/ui/api/pools")
        assert answer.status_code == 400 and answer.json()["code"] == "MissingRequiredQueryParameter", answer.text
        assert browser_like.get("/ui/api/pools?api-version=2025-06-01").status_code == 200
        assert browser_like.get("/ui/api/ui/session?api-version=2025-06-01").status_code == 404
        session = dict(browser_like.cookies)
        assert browser_like.delete("/ui/session").status_code == 204
    # The session is over in the service, not only forgotten by the client.
    answer = httpx.get(f"{url}/ui/api/pools?api-version=2025-06-01", cookies=session)
    assert answer.status_code == 401 and answer.json()["code"] == "AuthenticationFailed"


def test_an_open_event_stream_does_not_hold_up_the_service_when_it_stops(tmp_path: Path) -> None:
    """A dashboard left open keeps its event stream open; stopping the service ends the stream, not waits on it."""
    import threading
    import time

    from tests.api.diagnostics_support import event_stream

    svc = start_service(tmp_path / "service", "--diagnostic-logs", "stream")
    opened, ended = threading.Event(), threading.Event()

    def follow() -> None:
        with event_stream(svc.url) as events:
            opened.set()
            for _ in events:
                pass
        ended.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    try:
        assert opened.wait(10)
        started = time.monotonic()
        assert svc.stop(timeout=10) == 0
        assert time.monotonic() - started < 5
        assert ended.wait(5)
    finally:
        if svc.process.poll() is None:
            svc.process.kill()


def test_an_access_token_signs_in_over_https_and_keeps_its_role(service: Service) -> None:
    """A token session calls with its token: a reader reads and may not write, nor use the key-only routes."""
    import ssl

    from tests.api.test_identity import BATCH_SCOPE, create_principal, credential

    reader = create_principal(service, "--name", "dashboard-reader", "--role", "reader")
    token = credential(reader).get_token(BATCH_SCOPE).token
    refused = httpx.post(f"{service.url}/ui/session", json={"accessToken": token})  # plain HTTP
    assert refused.status_code == 401 and "HTTPS" in refused.text
    verify = ssl.create_default_context(cafile=service.ca)
    with httpx.Client(base_url=service.https_url, verify=verify) as browser_like:
        assert browser_like.post("/ui/session", json={"accessToken": token + "x"}).status_code == 401
        assert browser_like.post("/ui/session", json={"accessToken": token}).status_code == 204
        assert token not in str(browser_like.cookies)
        assert browser_like.get("/ui/api/pools?api-version=2025-06-01").status_code == 200
        write = browser_like.post(
            "/ui/api/pools/none/resize?api-version=2025-06-01", json={}, headers={"x-batchyard-dashboard": "1"}
        )
        assert write.status_code == 403 and "allows reading only" in write.text, write.text
        events = browser_like.get("/ui/api/_batchyard/events?api-version=2025-06-01")
        assert events.status_code == 403 and "Shared Key" in events.text, events.text
    assert token not in service.log()


def test_two_services_on_one_host_keep_their_own_sessions(service: Service, tmp_path: Path) -> None:
    """A browser keeps cookies per host, not per port: each service's session cookie has a name of its own."""
    other = start_service(tmp_path / "other")
    try:
        with httpx.Client() as browser_like:  # one cookie jar for 127.0.0.1, as a browser has
            for url in (service.url, other.url):
                assert browser_like.post(f"{url}/ui/session", json={"accountKey": DEV_ACCOUNT_KEY}).status_code == 204
            assert len(browser_like.cookies) == 2
            for url in (service.url, other.url):
                assert browser_like.get(f"{url}/ui/api/pools?api-version=2025-06-01").status_code == 200, url
    finally:
        other.stop()
