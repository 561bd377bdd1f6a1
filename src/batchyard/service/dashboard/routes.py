"""`/ui`: the dashboard's page and static files, sign-in and sign-out, and its proxy to the Batch API.

GET    /ui                 the single page (its views are `#/...` fragments, so one document serves them all)
GET    /ui/static/...      its modules and style sheet (package data, no build step)
POST   /ui/session         {"accountKey": "..."} or {"accessToken": "<Azure AD access token>"}: 204 with an
                           HttpOnly, SameSite=Strict session cookie, or the Batch error (403
                           AuthenticationFailed, 401 for a token refused); the credential travels in the
                           body, never in a URL
DELETE /ui/session         sign out
*      /ui/api/<path>      the Batch API (and `/_batchyard/...`) at `/<path>`, with the session's authority

The proxy hands the request to the service's own routes in-process. A key session's request is marked in the
ASGI scope (which no client can set) as authorised by the session; service/request_auth.py honours the mark.
A token session's request carries its token (`Authorization: Bearer`), checked as any bearer call is. Requests
other than GET and HEAD must also carry `X-Batchyard-Dashboard: 1`, which a cross-site form cannot send.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from batchyard.service import errors
from batchyard.service.config import AAD, SHARED_KEY
from batchyard.service.dashboard.sessions import COOKIE, LIFETIME_SECONDS, DashboardSessions, key_matches
from batchyard.service.errors import BatchError
from batchyard.service.http import base_url, error_response
from batchyard.service.identity.bearer import authorize_bearer
from batchyard.service.request_auth import DASHBOARD_SESSION

STATIC = Path(__file__).parent / "static"
API_PREFIX = "/ui/api"
CSRF_HEADER = "x-batchyard-dashboard"
_MAX_SIGN_IN_BODY = 4096
# The page loads only its own files and talks only to its own origin.
_PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def sessions_of(request: Request) -> DashboardSessions:
    sessions: DashboardSessions = request.app.state.dashboard_sessions
    return sessions


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)


async def sign_in(request: Request) -> Response:
    try:
        kind, credential = _offered_credential(await _small_body(request))
        state = request.app.state
        modes = state.accounts.own.modes
        bearer: str | None = None
        if kind == "accessToken":
            if AAD not in modes:
                raise errors.auth_failed("This account does not allow AAD authentication.")
            # A token that may read the account's pools may sign in; each call is then checked with it.
            authorize_bearer(state.identity, credential, request.url.scheme, "GET", "/pools", state.accounts.own.name)
            bearer = credential
        else:
            if SHARED_KEY not in modes:
                raise errors.auth_failed("This account does not allow SharedKey authentication.")
            if not key_matches(credential, state.accounts.own.shared_key.keys):
                raise errors.auth_failed("The account key is not one of this account's keys.")
    except BatchError as error:
        return error_response(error, base_url(request))
    response = Response(status_code=204)
    response.set_cookie(
        _cookie(request),
        sessions_of(request).open(bearer),
        max_age=LIFETIME_SECONDS,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _cookie(request: Request) -> str:
    """The session cookie's name, one per listening port: a browser keeps cookies per host, and services (or
    one service's HTTP and HTTPS listeners) on one host would otherwise replace each other's session."""
    port = request.url.port or (443 if request.url.scheme == "https" else 80)
    return f"{COOKIE}_{port}"


async def sign_out(request: Request) -> Response:
    sessions_of(request).close(request.cookies.get(_cookie(request)))
    response = Response(status_code=204)
    response.delete_cookie(_cookie(request), path="/ui", httponly=True, samesite="strict")
    return response


async def _small_body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_SIGN_IN_BODY:
            raise errors.request_too_large()
    return body


def _offered_credential(body: bytes) -> tuple[str, str]:
    """("accountKey" or "accessToken", its value) from the sign-in body."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise errors.invalid_body("The request body is not valid JSON.") from None
    for kind in ("accountKey", "accessToken"):
        value = parsed.get(kind) if isinstance(parsed, dict) else None
        if isinstance(value, str) and value:
            return kind, value
    raise errors.invalid_property("accountKey", None, "An account key or an access token (a string) is required.")


class DashboardApiProxy:
    """ASGI app: the request, minus the `/ui/api` prefix, through the whole service, marked as authorised."""

    __name__ = "dashboard_api"  # the operation name the request metrics give the outer request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        path = scope["path"][len(API_PREFIX) :]
        refusal = None
        if not sessions_of(request).valid(request.cookies.get(_cookie(request))):
            refusal = BatchError(  # 401, not 403: the page then shows its sign-in form
                401, "AuthenticationFailed", "Sign in to the dashboard first (the session is missing or has expired)."
            )
        elif request.method not in ("GET", "HEAD") and request.headers.get(CSRF_HEADER) != "1":
            refusal = errors.auth_failed(f"A dashboard request that changes something needs {CSRF_HEADER}: 1.")
        elif path.startswith("/ui"):
            refusal = BatchError(404, "InvalidUri", "The requested URI does not represent any resource on the server.")
        if refusal is not None:
            await error_response(refusal, base_url(request))(scope, receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        # The page's own Authorization header, if any, never reaches the API: the session decides.
        headers = [(name, value) for name, value in scope["headers"] if name != b"authorization"]
        inner = {**scope, "path": path, "raw_path": raw_path[len(API_PREFIX) :], "root_path": "", "headers": headers}
        bearer = sessions_of(request).bearer_of(request.cookies.get(_cookie(request)))
        if bearer is None:
            inner[DASHBOARD_SESSION] = True
        else:
            headers.append((b"authorization", b"Bearer " + bearer.encode("latin-1")))
        await scope["app"](inner, receive, send)


routes: list[BaseRoute] = [
    Route("/ui", page, methods=["GET"]),
    Route("/ui/session", sign_in, methods=["POST"]),
    Route("/ui/session", sign_out, methods=["DELETE"]),
    Mount("/ui/static", app=StaticFiles(directory=STATIC), name="dashboard_static"),
    Route(API_PREFIX + "/{rest:path}", DashboardApiProxy()),
]
