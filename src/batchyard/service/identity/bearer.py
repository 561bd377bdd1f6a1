"""The data plane's check of `Authorization: Bearer <access token>` and of the caller's role on the account.

A token is taken over HTTPS only (as Azure does; azure-core will not send one over HTTP either). Its
signature, issuer, audience (the Batch resource), expiry and not-before are checked; then the principal it
names (`oid`) must still exist and hold a role on this account: a `reader` may get and list (GET, HEAD), a
`contributor` may do everything. The service's own routes (`/_batchyard/...`) take the account key only.

A token that is not valid is a 401 `AuthenticationFailed` with a `WWW-Authenticate: Bearer` challenge naming
the authority; a valid token without the permission is a 403 `InsufficientAccountPermissions`.
"""

from __future__ import annotations

from batchyard.service.errors import BatchError
from batchyard.service.identity.provider import IdentityProvider
from batchyard.service.identity.tokens import BATCH_RESOURCE, TokenError, verify

READ_METHODS = frozenset({"GET", "HEAD"})
ADMIN_PREFIX = "/_batchyard/"


def is_access_token(token: str) -> bool:
    """A JWT (header.payload.signature); a job's task token has one dot (service/tokens.py)."""
    return token.count(".") == 2


def authorize_bearer(
    provider: IdentityProvider | None, token: str, scheme: str, method: str, path: str, account: str
) -> None:
    """Return if the access token lets its holder call `method path` on `account`; raise a BatchError if not."""
    if provider is None:
        raise unauthorized(None, "Bearer tokens need HTTPS, which this service was started without (--no-https).")
    if scheme != "https":
        raise unauthorized(provider, f"Bearer tokens are accepted over HTTPS only: use {provider.authority}.")
    try:
        claims = verify(token, provider.key, provider.issuer, [BATCH_RESOURCE])
    except TokenError as exc:
        raise unauthorized(provider, str(exc)) from None
    principal = provider.directory.by_object_id(str(claims["oid"]))
    if principal is None:
        raise unauthorized(provider, f"The principal the access token was issued to (oid {claims['oid']}) is gone.")
    if path.startswith(ADMIN_PREFIX):
        raise forbidden(f"{method} {path} takes the account's Shared Key, not a bearer token.")
    if principal.account.casefold() != account.casefold():
        raise forbidden(f"The principal '{principal.name}' has no role on the account '{account}'.")
    if principal.role != "contributor" and method.upper() not in READ_METHODS:
        raise forbidden(
            f"The principal '{principal.name}' has the role '{principal.role}' on the account '{account}', "
            f"which allows reading only, not {method.upper()} {path}."
        )


def unauthorized(provider: IdentityProvider | None, detail: str) -> BatchError:
    headers = {}
    if provider is not None:
        # RFC 6750's challenge, as Azure services send it: printable ASCII (a token's claims are the caller's
        # text), and no double quote inside the quoted value
        description = "".join(c if " " <= c <= "~" and c != '"' else "'" if c == '"' else "?" for c in detail)
        headers["WWW-Authenticate"] = (
            f'Bearer authorization_uri="{provider.authority}/{provider.tenant_id}", error="invalid_token", '
            f'error_description="{description}"'
        )
    return BatchError(
        401,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the access token is valid for this service.",
        {"AuthenticationErrorDetail": detail},
        headers,
    )


def forbidden(detail: str) -> BatchError:
    return BatchError(
        403,
        "InsufficientAccountPermissions",
        "The account being accessed does not have sufficient permissions to execute this operation.",
        {"AuthorizationErrorDetail": detail},
    )
