"""The identity provider's HTTP endpoints, in Azure AD's paths and answer shapes (what MSAL reads).

GET  /common/discovery/instance                       instance discovery (MSAL's `instance_discovery=<url>`)
GET  /{tenant}/v2.0/.well-known/openid-configuration  OpenID configuration (MSAL's tenant discovery)
GET  /{tenant}/discovery/v2.0/keys                    the JWKS that verifies tokens
POST /{tenant}/oauth2/v2.0/token                      client credentials grant: a client secret (form or Basic
                                                      header) or a client assertion (a principal's certificate)

They answer over HTTPS only: a client secret must not cross the network in clear, and MSAL takes https
authorities only anyway. Errors have the token endpoint's shape (`error`, `error_description` starting with
`AADSTS<code>:`, `error_codes`, `timestamp`, `trace_id`, `correlation_id`), which MSAL and azure-identity show.
"""

from __future__ import annotations

import base64
import binascii
import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from batchyard.service.identity.assertions import JWT_BEARER, AssertionRejected, check_assertion
from batchyard.service.identity.directory import Directory
from batchyard.service.identity.provider import IdentityProvider, OAuthError

MAX_FORM = 64 * 1024  # a token request is a few hundred bytes (a client assertion a few thousand)
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}

Handler = Callable[[Request, IdentityProvider], Awaitable[Response]]


def identity_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """HTTPS only, the provider present, OAuthError answered in Azure AD's shape."""

    @functools.wraps(handler)  # its name is the operation's (metrics)
    async def wrapped(request: Request) -> Response:
        provider: IdentityProvider | None = request.app.state.identity
        try:
            if provider is None:
                raise OAuthError(404, "invalid_request", 90002, "This service was started without HTTPS (--no-https).")
            if request.url.scheme != "https":
                raise OAuthError(
                    400,
                    "invalid_request",
                    900023,
                    f"The identity provider answers over HTTPS only: {provider.authority}",
                )
            if "tenant" in request.path_params:
                provider.check_tenant(request.path_params["tenant"])
            return await handler(request, provider)
        except OAuthError as error:
            return _error_response(error, request.headers.get("client-request-id"))

    return wrapped


@identity_endpoint
async def instance_discovery(request: Request, provider: IdentityProvider) -> Response:
    return JSONResponse(provider.instance_discovery())


@identity_endpoint
async def openid_configuration(request: Request, provider: IdentityProvider) -> Response:
    return JSONResponse(provider.openid_configuration())


@identity_endpoint
async def jwks(request: Request, provider: IdentityProvider) -> Response:
    return JSONResponse(provider.jwks())


@identity_endpoint
async def issue_token(request: Request, provider: IdentityProvider) -> Response:
    form = await _form(request)
    grant = form.get("grant_type", "")
    if grant != "client_credentials":
        raise OAuthError(
            400, "unsupported_grant_type", 70003, f"The grant type '{grant}' is not supported: use client_credentials."
        )
    client_id, secret = _client_credentials(request, form)
    principal = provider.client(client_id)
    if "client_assertion" in form:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise OAuthError(400, "invalid_request", 50027, f"client_assertion_type must be {JWT_BEARER}.")
        try:
            check_assertion(principal, form["client_assertion"], provider.token_endpoint)
        except AssertionRejected as exc:
            raise OAuthError(401, "invalid_client", 700027, str(exc)) from None
    elif not secret:
        raise OAuthError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    # scrypt takes a few tens of milliseconds: off the event loop
    elif not await run_in_threadpool(Directory.secret_matches, principal, secret):
        raise OAuthError(
            401,
            "invalid_client",
            7000215,
            f"Invalid client secret provided. Ensure the secret being sent in the request is the client "
            f"secret value for app '{principal.client_id}'.",
        )
    issued = provider.token(principal, form.get("scope", ""))
    body = {
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "ext_expires_in": issued.expires_in,
        "access_token": issued.access_token,
    }
    return JSONResponse(body, headers=_NO_STORE)


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body, one value per name (a repeated name is refused: which one would count?)."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        raise OAuthError(400, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise OAuthError(400, "invalid_request", 90014, "The request body is too large.")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError(400, "invalid_request", 90014, "The request body is not a valid form.") from None
    repeated = sorted(name for name, values in fields.items() if len(values) > 1)
    if repeated:
        raise OAuthError(400, "invalid_request", 90015, f"The parameter '{repeated[0]}' is given more than once.")
    return {name: values[0] for name, values in fields.items()}


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    """The client id and secret, from the form (client_secret_post) or a Basic header (client_secret_basic)."""
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError(401, "invalid_client", 7000216, "The Basic authorization header is malformed.") from None
        return unquote_plus(user), unquote_plus(password)
    client_id = form.get("client_id", "")
    if not client_id:
        raise OAuthError(
            400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
        )
    return client_id, form.get("client_secret", "")


def _error_response(error: OAuthError, correlation_id: str | None) -> Response:
    trace_id = str(uuid.uuid4())
    correlation_id = correlation_id or str(uuid.uuid4())
    timestamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body: dict[str, Any] = {
        "error": error.error,
        "error_description": (
            f"AADSTS{error.code}: {error.description} Trace ID: {trace_id} Correlation ID: {correlation_id} "
            f"Timestamp: {timestamp}"
        ),
        "error_codes": [error.code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
    }
    return JSONResponse(body, status_code=error.status, headers=_NO_STORE)


routes = [
    Route("/common/discovery/instance", instance_discovery, methods=["GET"]),
    Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    Route("/{tenant}/discovery/v2.0/keys", jwks, methods=["GET"]),
    Route("/{tenant}/oauth2/v2.0/token", issue_token, methods=["POST"]),
]
