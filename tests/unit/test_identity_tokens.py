"""Access tokens in-process: scopes to audiences, the checks of `verify`, the 401 challenge's text."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from batchyard.service.config import SettingsError, parse_authentication_modes
from batchyard.service.identity.bearer import unauthorized
from batchyard.service.identity.provider import IdentityProvider
from batchyard.service.identity.tokens import ScopeError, TokenError, audience_for, issue, verify

AUTHORITY = "https://127.0.0.1:8651"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    return IdentityProvider.open(tmp_path_factory.mktemp("data"), AUTHORITY)


@pytest.mark.parametrize(
    ("scope", "audience"),
    [
        ("https://batch.core.windows.net//.default", "https://batch.core.windows.net/"),
        ("https://batch.core.windows.net/.default", "https://batch.core.windows.net"),
        ("https://management.azure.com/.default offline_access openid profile", "https://management.azure.com"),
    ],
)
def test_the_audience_is_the_scope_without_default(scope: str, audience: str) -> None:
    assert audience_for(scope) == audience


@pytest.mark.parametrize(
    "scope",
    ["", "openid", "https://batch.core.windows.net/user_impersonation", "https://vault.azure.net/.default", "a b"],
)
def test_scopes_that_name_no_resource_of_ours(scope: str) -> None:
    with pytest.raises(ScopeError):
        audience_for(scope)


def test_a_token_without_an_object_id_or_with_another_algorithm_is_refused(provider: IdentityProvider) -> None:
    now = int(time.time())
    claims = {"aud": "https://batch.core.windows.net/", "iss": provider.issuer, "iat": now, "nbf": now}
    no_oid = jwt.encode(claims | {"exp": now + 60}, provider.key.private_key, "RS256", {"kid": provider.key.kid})
    with pytest.raises(TokenError, match="no 'oid' claim"):
        verify(no_oid, provider.key, provider.issuer, ["https://batch.core.windows.net"])
    hs256 = jwt.encode(claims | {"exp": now + 60, "oid": "x"}, "a shared secret of thirty-two bytes!", "HS256")
    with pytest.raises(TokenError, match="signing algorithm 'HS256' is not RS256"):
        verify(hs256, provider.key, provider.issuer, ["https://batch.core.windows.net"])


def test_an_issued_token_verifies_and_names_the_principal(provider: IdentityProvider) -> None:
    principal, _ = provider.directory.create("unit", "reader", "acct")
    issued = issue(provider.key, principal, provider.tenant_id, provider.issuer, "https://batch.core.windows.net/")
    claims = verify(issued.access_token, provider.key, provider.issuer, ["https://batch.core.windows.net"])
    assert claims["oid"] == principal.object_id and claims["appid"] == principal.client_id
    assert claims["tid"] == provider.tenant_id and issued.expires_in == 3600


def test_the_challenge_is_printable_ascii_without_quotes(provider: IdentityProvider) -> None:
    error = unauthorized(provider, 'audience "évil"\r\nX-Injected: 1')
    challenge = error.headers["WWW-Authenticate"]
    assert challenge.isascii() and "\r" not in challenge and "\n" not in challenge
    assert challenge.endswith("""error_description="audience '?vil'??X-Injected: 1\"""")


def test_the_key_and_tenant_are_kept(provider: IdentityProvider, tmp_path: Path) -> None:
    again = IdentityProvider.open(provider.directory.path.parent, AUTHORITY)
    assert again.key.kid == provider.key.kid and again.tenant_id == provider.tenant_id
    assert IdentityProvider.open(tmp_path, AUTHORITY).key.kid != provider.key.kid


def test_authentication_modes_are_azures_names() -> None:
    assert parse_authentication_modes("aad, SharedKey") == ("AAD", "SharedKey")
    for wrong in ("", "Kerberos", "AAD,Kerberos"):
        with pytest.raises(SettingsError):
            parse_authentication_modes(wrong)


def test_client_secrets_never_start_with_a_dash() -> None:
    """`az login -p SECRET` would take a secret starting with "-" for an option (1 in 64 of plain token_urlsafe)."""
    from batchyard.service.identity.directory import new_secret

    made = [new_secret() for _ in range(500)]
    assert not [secret for secret in made if secret.startswith("-")]
    assert len(set(made)) == 500 and all(len(secret) == 40 for secret in made)
