"""Service principals of the local identity provider, under `/_batchyard/` (not in the Batch contract).

Shared Key signed only (a bearer token is refused on `/_batchyard/`, see identity/bearer.py).

GET    /_batchyard/principals              {"value": [principal, ...]} (never a secret)
POST   /_batchyard/principals              {name, role?: contributor|reader, account?: this account,
                                            certificate?: PEM (for client assertions)}; over HTTPS only
                                           -> 201 {tenantId, clientId, clientSecret, authority, ...}
GET    /_batchyard/principals/{clientId}   the principal
DELETE /_batchyard/principals/{clientId}   its tokens stop working at once
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service import errors
from batchyard.service.errors import BatchError
from batchyard.service.http import endpoint, json_response, read_json
from batchyard.service.identity.credentials import credentials
from batchyard.service.identity.directory import DirectoryError, Principal
from batchyard.service.identity.provider import IdentityProvider


def _provider(request: Request) -> IdentityProvider:
    provider: IdentityProvider | None = request.app.state.identity
    if provider is None:
        raise BatchError(404, "InvalidUri", "The identity provider is off: the service was started with --no-https.")
    return provider


def _principal(request: Request) -> Principal:
    client_id = request.path_params["clientId"]
    principal = _provider(request).directory.by_client_id(client_id)
    if principal is None:
        raise BatchError(
            404, "PrincipalNotFound", "The specified service principal does not exist.", {"clientId": client_id}
        )
    return principal


@endpoint
async def list_principals(request: Request) -> Response:
    return json_response({"value": [p.public() for p in _provider(request).directory.principals()]})


@endpoint
async def create_principal(request: Request) -> Response:
    provider = _provider(request)
    if request.url.scheme != "https":
        # the answer holds the client secret, which must not cross the network in clear
        raise BatchError(
            400,
            "HttpsRequired",
            f"Service principals are created over HTTPS only (the answer holds the secret): use {provider.authority}.",
        )
    body = await read_json(request)
    if not isinstance(body, dict):
        raise errors.invalid_property("body", body, "A JSON object {name, role, account} is required.")
    for name in ("name", "role", "account", "certificate"):
        if name in body and not isinstance(body[name], str):
            raise errors.invalid_property(name, body[name], "A string is required.")
    if "name" not in body:
        raise errors.missing_property("name")
    try:
        principal, secret = provider.directory.create(
            body["name"],
            body.get("role", "contributor"),
            body.get("account", request.app.state.accounts.own.name),
            body.get("certificate"),
        )
    except DirectoryError as exc:
        raise errors.invalid_property(exc.field, body.get(exc.field), str(exc)) from None
    return json_response(credentials(provider.directory, principal, secret, provider.authority), status=201)


@endpoint
async def get_principal(request: Request) -> Response:
    return json_response(_principal(request).public())


@endpoint
async def delete_principal(request: Request) -> Response:
    principal = _principal(request)
    _provider(request).directory.delete(principal.client_id)
    return Response(status_code=200)


routes = [
    Route("/_batchyard/principals", list_principals, methods=["GET"]),
    Route("/_batchyard/principals", create_principal, methods=["POST"]),
    Route("/_batchyard/principals/{clientId}", get_principal, methods=["GET"]),
    Route("/_batchyard/principals/{clientId}", delete_principal, methods=["DELETE"]),
]
