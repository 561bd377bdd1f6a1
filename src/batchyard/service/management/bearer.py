"""Who may call the management plane: a bearer token for Azure Resource Manager, and the caller's role.

Only an access token whose audience is ARM (`https://management.azure.com/` or
`https://management.core.windows.net/`) is taken, over HTTPS; a data-plane (Batch) token, a token that is
not genuine or current, or no token is a 401 with ARM's codes. A principal's role assignment on the account
(identity/directory.py) is its role at the account's scope: a `reader` may read (GET, HEAD), a `contributor`
may do everything; a principal without a role on the account may not touch it (403 AuthorizationFailed).
A role on the service's own account is a role on the subscription: its contributors create and delete the
other accounts, and its principals have their role on every account here (on the management plane; the data
plane takes a principal on its own account only, identity/bearer.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from batchyard.service.identity.directory import Principal
from batchyard.service.identity.provider import IdentityProvider
from batchyard.service.identity.tokens import TokenError, verify
from batchyard.service.management.cloud_error import CloudError

MANAGEMENT_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")
READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Caller:
    principal: Principal
    service_account: str  # the service's own account: a role on it is a role on the subscription

    @property
    def on_subscription(self) -> bool:
        return self.principal.account.casefold() == self.service_account.casefold()

    def may_read(self, account: str) -> bool:
        return self.on_subscription or self.principal.account.casefold() == account.casefold()

    def require(self, account: str, method: str, action: str, scope: str, creating: bool = False) -> None:
        """Raise 403 AuthorizationFailed unless the caller may do `action` (a `Microsoft.Batch/...` action);
        `creating`: a new account, which takes a role on the subscription."""
        reads = self.on_subscription if creating else self.may_read(account)
        allowed = reads and (self.principal.role == "contributor" or method.upper() in READ_METHODS)
        if not allowed:
            oid = self.principal.object_id
            raise CloudError(
                403,
                "AuthorizationFailed",
                f"The client '{self.principal.client_id}' with object id '{oid}' does not have authorization to "
                f"perform action '{action}' over scope '{scope}' or the scope is invalid.",
            )


def authenticate(provider: IdentityProvider | None, authorization: str, scheme: str, service_account: str) -> Caller:
    """The caller a management request's `Authorization` header proves; CloudError 401 if it proves none."""
    if provider is None or scheme != "https":
        raise CloudError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The management plane takes bearer tokens over HTTPS only"
            + (": this service was started without HTTPS (--no-https)." if provider is None else "."),
        )
    if not authorization.startswith("Bearer "):
        missing = "Authentication failed. The 'Authorization' header is missing."
        raise _unauthorized(provider, "AuthenticationFailed", missing)
    token = authorization[7:].strip()
    try:
        claims = verify(token, provider.key, provider.issuer, MANAGEMENT_AUDIENCES)
    except TokenError as exc:
        raise _token_refused(provider, token, str(exc)) from None
    principal = provider.directory.by_object_id(str(claims["oid"]))
    if principal is None:
        raise _unauthorized(
            provider,
            "InvalidAuthenticationToken",
            f"The access token is invalid: the principal it was issued to (oid {claims['oid']}) is gone.",
        )
    return Caller(principal, service_account)


def _token_refused(provider: IdentityProvider, token: str, detail: str) -> CloudError:
    try:
        audience = jwt.decode(token, options={"verify_signature": False}).get("aud")
    except jwt.InvalidTokenError:
        audience = None
    accepted = {form for audience in MANAGEMENT_AUDIENCES for form in (audience, audience + "/")}
    if isinstance(audience, str) and audience not in accepted and detail.startswith("The access token's audience"):
        allowed = "','".join(sorted(accepted))
        return _unauthorized(
            provider,
            "InvalidAuthenticationTokenAudience",
            f"The access token has been obtained for wrong audience or resource '{audience}'. It should exactly "
            f"match with one of the allowed audiences '{allowed}'.",
        )
    if detail.startswith("The access token expired"):
        return _unauthorized(provider, "ExpiredAuthenticationToken", f"{detail} Get a new token and retry.")
    return _unauthorized(provider, "InvalidAuthenticationToken", f"The access token is invalid. {detail}")


def _unauthorized(provider: IdentityProvider, code: str, message: str) -> CloudError:
    # ARM's challenge names the authority to get a token from
    challenge = f'Bearer authorization_uri="{provider.authority}/{provider.tenant_id}", error="invalid_token"'
    return CloudError(401, code, message, {"WWW-Authenticate": challenge})
