"""The identity provider of one service: its directory, signing key and URLs, and the client credentials grant.

URLs follow Azure AD's, below the service's HTTPS URL (the *authority host* clients are given):
`{authority}/{tenant}/v2.0/.well-known/openid-configuration`, `{authority}/{tenant}/oauth2/v2.0/token`,
`{authority}/{tenant}/discovery/v2.0/keys`; tokens are issued by `{authority}/{tenant}/v2.0`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from batchyard.service.identity import tokens
from batchyard.service.identity.directory import Directory, Principal
from batchyard.service.identity.signing import SigningKey


class OAuthError(Exception):
    """An answer of the token endpoint's error shape: `error`, and `AADSTS<code>: <description>`."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"{error}: AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description


class IdentityProvider:
    def __init__(self, directory: Directory, authority: str) -> None:
        self.directory = directory
        self.authority = authority  # the service's HTTPS URL

    @classmethod
    def open(cls, data_dir: Path, authority: str) -> IdentityProvider:
        directory = Directory(data_dir)
        directory.set_authority(authority)
        return cls(directory, authority)

    @functools.cached_property
    def key(self) -> SigningKey:
        """Made on first use (a 2048-bit RSA key takes up to a few tenths of a second): a service that is never
        asked for a token or shown one does not pay for it."""
        return SigningKey.load_or_create(self.directory.path)

    @property
    def tenant_id(self) -> str:
        return self.directory.tenant_id

    @property
    def issuer(self) -> str:
        return f"{self.authority}/{self.tenant_id}/v2.0"

    def check_tenant(self, tenant: str) -> None:
        if tenant.lower() != self.tenant_id:
            raise OAuthError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. This service's tenant is {self.tenant_id}.",
            )

    def openid_configuration(self) -> dict[str, Any]:
        base = f"{self.authority}/{self.tenant_id}"
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",  # MSAL needs it named; not served
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256"],
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": [f"{resource}/.default" for resource in tokens.RESOURCES],
            "claims_supported": ["aud", "iss", "iat", "nbf", "exp", "oid", "sub", "tid", "appid", "azp", "ver"],
            "tenant_region_scope": None,
            "cloud_instance_name": "batchyard",
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.jwk(self.issuer)]}

    def instance_discovery(self) -> dict[str, Any]:
        host = self.authority.removeprefix("https://")
        return {
            "tenant_discovery_endpoint": f"{self.authority}/{self.tenant_id}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }

    def client(self, client_id: str) -> Principal:
        principal = self.directory.by_client_id(client_id)
        if principal is None:
            raise OAuthError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{self.tenant_id}'.",
            )
        return principal

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token"

    def token(self, principal: Principal, scope: str) -> tokens.Issued:
        """An access token for `principal` (authenticated by the caller) for `scope`."""
        try:
            audience = tokens.audience_for(scope)
        except tokens.ScopeError as exc:
            raise OAuthError(400, "invalid_scope", 500011, str(exc)) from None
        return tokens.issue(self.key, principal, self.tenant_id, self.issuer, audience)
