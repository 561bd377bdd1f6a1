"""Access tokens: RS256 JWTs for one resource (`aud`), shaped like Azure AD's app-only tokens, and their check.

A client asks for `<resource>/.default` (azure-batch asks for `https://batch.core.windows.net//.default`);
the token's audience is the scope without `/.default`, as Azure AD writes it. The services that take
tokens accept their resource's identifier with or without the trailing slash.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from batchyard.service.identity.directory import Principal
from batchyard.service.identity.signing import SigningKey

BATCH_RESOURCE = "https://batch.core.windows.net"
# Resources a token may be asked for: the Batch data plane and Azure Resource Manager (both of its names).
RESOURCES = (BATCH_RESOURCE, "https://management.azure.com", "https://management.core.windows.net")
DEFAULT_SCOPE_SUFFIX = "/.default"
TOKEN_LIFETIME = 3600  # seconds, Azure AD's default for access tokens
CLOCK_SKEW = 300  # seconds of clock difference forgiven on exp/nbf, as Azure services do
# Scopes MSAL may add to any request; they ask for nothing here.
_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


class ScopeError(ValueError):
    """The scope names no resource this provider issues tokens for, or more than one."""


class TokenError(ValueError):
    """A bearer token that is not valid here; the message says why (never echoes a signature)."""


@dataclass(frozen=True)
class Issued:
    access_token: str
    expires_in: int


def audience_for(scope: str) -> str:
    """The audience of a token asked for with `scope` (space-separated, as OAuth 2.0 sends it)."""
    asked = [item for item in scope.split() if item not in _OIDC_SCOPES]
    if len(asked) != 1 or not asked[0].endswith(DEFAULT_SCOPE_SUFFIX):
        raise ScopeError(
            "The client credentials flow takes one scope of the form <resource>/.default "
            f"(e.g. {BATCH_RESOURCE}/.default), not '{scope}'."
        )
    audience = asked[0].removesuffix(DEFAULT_SCOPE_SUFFIX)
    if audience.rstrip("/") not in RESOURCES:
        raise ScopeError(
            f"The resource principal named {audience} was not found in the tenant. "
            f"Tokens are issued for: {', '.join(RESOURCES)}."
        )
    return audience


def issue(
    key: SigningKey,
    principal: Principal,
    tenant_id: str,
    issuer: str,
    audience: str,
    lifetime: int = TOKEN_LIFETIME,
) -> Issued:
    now = int(time.time())
    claims = {
        "aud": audience,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": principal.client_id,
        "azp": principal.client_id,
        "appidacr": "1",  # authenticated with a client secret
        "idtyp": "app",
        "oid": principal.object_id,
        "sub": principal.object_id,
        "tid": tenant_id,
        "uti": uuid.uuid4().hex,
        "ver": "2.0",
    }
    token = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})
    return Issued(token, lifetime)


def verify(token: str, key: SigningKey, issuer: str, audiences: Iterable[str]) -> dict[str, Any]:
    """The claims of a genuine, current token for one of `audiences` from `issuer`; TokenError otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise TokenError("The access token is malformed: it is not a JSON Web Token.") from None
    if header.get("alg") != "RS256":
        raise TokenError(f"The access token's signing algorithm '{header.get('alg')}' is not RS256.")
    if header.get("kid") != key.kid:
        raise TokenError(
            f"The access token is signed with a key this service does not know (kid '{header.get('kid')}')."
        )
    accepted = sorted({form for audience in audiences for form in (audience.rstrip("/"), audience.rstrip("/") + "/")})
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=["RS256"],
            audience=accepted,
            issuer=issuer,
            leeway=CLOCK_SKEW,
            options={"require": ["exp", "nbf", "iat", "aud", "iss", "oid"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError(f"The access token expired at {_when(_unverified(token).get('exp'))}.") from None
    except jwt.ImmatureSignatureError:
        raise TokenError(f"The access token is not valid before {_when(_unverified(token).get('nbf'))}.") from None
    except jwt.InvalidAudienceError:
        raise TokenError(
            f"The access token's audience '{_unverified(token).get('aud')}' is not this service "
            f"(accepted: {', '.join(accepted)})."
        ) from None
    except jwt.InvalidIssuerError:
        raise TokenError(f"The access token's issuer '{_unverified(token).get('iss')}' is not {issuer}.") from None
    except jwt.InvalidSignatureError:
        raise TokenError("The access token's signature is not valid.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"The access token has no '{exc.claim}' claim.") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"The access token is not valid: {exc}.") from None
    return claims


def _unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _when(timestamp: Any) -> str:
    if not isinstance(timestamp, int | float):
        return str(timestamp)
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")
