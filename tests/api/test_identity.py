"""The local identity provider and bearer tokens on the data plane, through the official clients over HTTPS.

Principals are made with `batchyard principals create` (a real subprocess) or the admin API; tokens are got
by azure-identity's ClientSecretCredential (MSAL inside) from the service's token endpoint and used by
azure-batch 15.x's BatchClient. Tokens that must be refused (expired, not yet valid, wrong issuer, unknown
key) are signed by the test with the service's own key file, the way only the identity provider could.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import msal
import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientSecretCredential
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.api.helpers import API_VERSION, completed, create_job, error_code, run_task, signed_request, temp_pool
from tests.api.test_https import https_client
from tests.api.test_job_manager import manager
from tests.conftest import Service, start_service, wait_for

BATCH_SCOPE = "https://batch.core.windows.net//.default"  # what azure-batch asks for


def create_principal(service: Service, *args: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "batchyard.cli.main", "principals", "create", "--data-dir", str(service.data_dir)]
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, check=True)
    created: dict[str, Any] = json.loads(result.stdout)
    return created


def credential(principal: dict[str, Any]) -> ClientSecretCredential:
    """What a user writes: the printed tenant, client, secret, authority and CA; instance discovery off (the
    authority is not one Azure AD knows)."""
    return ClientSecretCredential(
        principal["tenantId"],
        principal["clientId"],
        principal["clientSecret"],
        authority=principal["authority"],
        disable_instance_discovery=True,
        connection_verify=principal["caCertificate"],
    )


def bearer_client(service: Service, principal: dict[str, Any]) -> Any:
    return BatchClient(service.https_url, credential(principal), connection_verify=str(service.ca))


def raw_get(service: Service, token: str, path: str = "/pools", base: str | None = None) -> httpx.Response:
    verify = ssl.create_default_context(cafile=service.ca)
    return httpx.get(
        f"{base or service.https_url}{path}",
        params={"api-version": API_VERSION},
        headers={"Authorization": f"Bearer {token}"},
        verify=verify,
    )


def signing_key(service: Service) -> Any:
    return serialization.load_pem_private_key((service.data_dir / "identity" / "signing-key.pem").read_bytes(), None)


def forged(service: Service, principal: dict[str, Any], key: Any = None, kid: str | None = None, **claims: Any) -> str:
    """A token as the provider would sign it, with `claims` changed."""
    genuine = credential(principal).get_token(BATCH_SCOPE).token
    body = jwt.decode(genuine, options={"verify_signature": False}) | claims
    header = jwt.get_unverified_header(genuine)
    return jwt.encode(body, key or signing_key(service), algorithm="RS256", headers={"kid": kid or header["kid"]})


def detail(answer: httpx.Response) -> str:
    values = {item["key"]: item["value"] for item in answer.json().get("values", [])}
    return values.get("AuthenticationErrorDetail") or values.get("AuthorizationErrorDetail") or ""


def test_principals_create_prints_what_azure_identity_needs(service: Service) -> None:
    created = create_principal(service, "--name", "printer", "--role", "reader")
    assert set(created) >= {"tenantId", "clientId", "clientSecret", "authority", "objectId", "caCertificate"}
    assert created["authority"] == service.https_url
    assert created["caCertificate"] == str(service.ca)
    assert created["role"] == "reader" and created["account"] == "devbatchaccount1"
    stored = service.data_dir / "identity" / "principals.json"
    assert created["clientSecret"] not in stored.read_text()  # only a hash is kept
    assert oct(stored.stat().st_mode & 0o777) == "0o600"
    listed = subprocess.run(
        [sys.executable, "-m", "batchyard.cli.main", "principals", "list", "--data-dir", str(service.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert created["clientId"] in listed and "clientSecret" not in listed and "secret" not in listed


def test_principals_create_refuses_bad_input(tmp_path: Path) -> None:
    def principals(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "batchyard.cli.main", "principals", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    missing = principals("create", "--name", "x", "--data-dir", str(tmp_path / "none"))
    assert missing.returncode == 2 and "no data directory" in missing.stderr
    bad_role = principals("create", "--name", "x", "--role", "owner", "--data-dir", str(tmp_path))
    assert bad_role.returncode == 2 and "invalid choice: 'owner'" in bad_role.stderr
    unknown = principals("delete", "--client-id", "nobody", "--data-dir", str(tmp_path))
    assert unknown.returncode == 2 and "no principal has the client id 'nobody'" in unknown.stderr


def test_contributor_runs_a_task_with_a_client_secret_credential(service: Service, unique: Any) -> None:
    principal = create_principal(service, "--name", "contributor")
    client = bearer_client(service, principal)
    pool_id, job_id = unique("bearer-pool"), unique("bearer-job")
    with temp_pool(client, pool_id):
        create_job(client, job_id, pool_id)
        task = run_task(client, job_id, "t1", "/bin/sh -c 'echo from-a-token'", timeout=60)
        assert task.execution_info.exit_code == 0
        assert client.get_pool(pool_id).id == pool_id
        assert [job.id for job in client.list_jobs(filter=f"id eq '{job_id}'")] == [job_id]
        # the same account with its Shared Key, over the same HTTPS listener, sees the same pool and job
        shared_key = https_client(service)
        assert shared_key.get_job(job_id).pool_info.pool_id == pool_id
        assert [t.id for t in shared_key.list_tasks(job_id)] == ["t1"]


def test_reader_reads_but_may_not_write(service: Service, unique: Any) -> None:
    writer = https_client(service)
    job_id = unique("reader-job")
    create_job(writer, job_id, "some-pool")
    reader = bearer_client(service, create_principal(service, "--name", "auditor", "--role", "reader"))
    assert reader.get_job(job_id).id == job_id
    assert job_id in [job.id for job in reader.list_jobs()]
    with pytest.raises(HttpResponseError) as refused:
        reader.create_job(m.BatchJobCreateOptions(id=unique("nope"), pool_info=m.BatchPoolInfo(pool_id="p")))
    assert refused.value.status_code == 403
    assert error_code(refused.value) == "InsufficientAccountPermissions"
    with pytest.raises(HttpResponseError) as refused:
        reader.begin_terminate_job(job_id, {"terminateReason": "reader"})
    assert refused.value.status_code == 403
    assert writer.get_job(job_id).state == "active"


def test_principal_on_another_account_is_refused(service: Service) -> None:
    stranger = bearer_client(service, create_principal(service, "--name", "stranger", "--account", "otheraccount"))
    with pytest.raises(HttpResponseError) as refused:
        list(stranger.list_pools())
    assert refused.value.status_code == 403 and error_code(refused.value) == "InsufficientAccountPermissions"


def test_tokens_that_must_be_refused(service: Service) -> None:
    principal = create_principal(service, "--name", "checked")
    now = int(time.time())
    assert raw_get(service, credential(principal).get_token(BATCH_SCOPE).token).status_code == 200
    cases = {
        "expired": (forged(service, principal, iat=now - 7200, nbf=now - 7200, exp=now - 3600), "expired at"),
        "not yet valid": (forged(service, principal, nbf=now + 3600, exp=now + 7200), "not valid before"),
        "wrong issuer": (forged(service, principal, iss="https://login.example.test/x/v2.0"), "issuer"),
        "unknown key": (
            forged(service, principal, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "signature is not valid",
        ),
        "unknown kid": (forged(service, principal, kid="another-key"), "key this service does not know"),
        "wrong audience": (
            credential(principal).get_token("https://management.azure.com/.default").token,
            "audience 'https://management.azure.com'",
        ),
        "not a JWT": ("a.b.c", "malformed"),
    }
    genuine = credential(principal).get_token(BATCH_SCOPE).token
    head, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["oid"] = "00000000-0000-0000-0000-000000000000"
    tampered_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    cases["tampered"] = (f"{head}.{tampered_payload}.{signature}", "signature is not valid")
    for what, (token, reason) in cases.items():
        answer = raw_get(service, token)
        assert answer.status_code == 401, what
        assert answer.json()["code"] == "AuthenticationFailed", what
        assert reason in detail(answer), (what, detail(answer))
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith(f'Bearer authorization_uri="{service.https_url}/'), what
        assert 'error="invalid_token"' in challenge, what


def test_bearer_tokens_are_refused_over_plain_http(service: Service) -> None:
    token = credential(create_principal(service, "--name", "plain")).get_token(BATCH_SCOPE).token
    answer = httpx.get(
        f"{service.url}/pools", params={"api-version": API_VERSION}, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 401
    assert f"over HTTPS only: use {service.https_url}" in detail(answer)
    # a local client cannot claim HTTPS with a proxy's header
    forwarded = httpx.get(
        f"{service.url}/pools",
        params={"api-version": API_VERSION},
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.1"},
    )
    assert forwarded.status_code == 401 and "over HTTPS only" in detail(forwarded)


def test_a_deleted_principal_loses_access_at_once(service: Service) -> None:
    principal = create_principal(service, "--name", "leaving")
    token = credential(principal).get_token(BATCH_SCOPE).token
    assert raw_get(service, token).status_code == 200
    subprocess.run(
        [sys.executable, "-m", "batchyard.cli.main", "principals", "delete", "--client-id", principal["clientId"]]
        + ["--data-dir", str(service.data_dir)],
        check=True,
        capture_output=True,
    )
    answer = raw_get(service, token)
    assert answer.status_code == 401 and "is gone" in detail(answer)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        ClientSecretCredential(
            principal["tenantId"],
            principal["clientId"],
            principal["clientSecret"],
            authority=principal["authority"],
            disable_instance_discovery=True,
            connection_verify=principal["caCertificate"],
        ).get_token(BATCH_SCOPE)


def test_token_endpoint_errors_reach_azure_identity(service: Service) -> None:
    principal = create_principal(service, "--name", "errors")
    wrong_secret = credential(principal | {"clientSecret": "not-the-secret"})
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215: Invalid client secret"):
        wrong_secret.get_token(BATCH_SCOPE)
    with pytest.raises(ClientAuthenticationError, match="AADSTS500011: The resource principal named https://vault"):
        credential(principal).get_token("https://vault.azure.net/.default")
    other = "f0000000-0000-0000-0000-000000000000"
    # MSAL's words for a tenant whose OpenID configuration is not found (as with Azure AD), then ours
    with pytest.raises(ClientAuthenticationError, match=f"Unable to get authority configuration for .*/{other}"):
        credential(principal | {"tenantId": other}).get_token(BATCH_SCOPE)
    answer = httpx.get(
        f"{service.https_url}/{other}/v2.0/.well-known/openid-configuration",
        verify=ssl.create_default_context(cafile=service.ca),
    )
    assert answer.status_code == 400 and answer.json()["error_codes"] == [90002]
    assert f"Tenant '{other}' not found" in answer.json()["error_description"]


def test_msal_finds_the_provider_through_instance_discovery(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """MSAL used directly may point instance discovery at the service instead of turning it off. It trusts the
    CA through REQUESTS_CA_BUNDLE (which, when set, wins over a requests session's own `verify`)."""
    principal = create_principal(service, "--name", "msal")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", principal["caCertificate"])
    app = msal.ConfidentialClientApplication(
        principal["clientId"],
        client_credential=principal["clientSecret"],
        authority=f"{principal['authority']}/{principal['tenantId']}",
        instance_discovery=f"{principal['authority']}/common/discovery/instance",
    )
    result = app.acquire_token_for_client(scopes=["https://batch.core.windows.net/.default"])
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://batch.core.windows.net"
    assert claims["appid"] == principal["clientId"] and claims["oid"] == principal["objectId"]
    assert claims["iss"] == f"{service.https_url}/{principal['tenantId']}/v2.0"
    assert claims["exp"] - claims["iat"] == 3600


def test_tokens_verify_against_the_published_jwks(service: Service) -> None:
    principal = create_principal(service, "--name", "jwks")
    token = credential(principal).get_token(BATCH_SCOPE).token
    verify = ssl.create_default_context(cafile=service.ca)
    base = f"{service.https_url}/{principal['tenantId']}"
    configuration = httpx.get(f"{base}/v2.0/.well-known/openid-configuration", verify=verify).json()
    keys = jwt.PyJWKClient(configuration["jwks_uri"], ssl_context=verify).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        keys.key,
        algorithms=["RS256"],
        audience="https://batch.core.windows.net/",
        issuer=configuration["issuer"],
    )
    assert claims["tid"] == principal["tenantId"]
    # over plain HTTP the provider does not answer
    assert httpx.get(f"{service.url}/{principal['tenantId']}/discovery/v2.0/keys").status_code == 400


def create_through_api(service: Service, body: dict[str, Any]) -> httpx.Response:
    """POST /_batchyard/principals, Shared Key signed, over HTTPS."""
    return signed_request(service.https_url, "POST", "/_batchyard/principals", ca=service.ca, body=body)


def test_admin_api_makes_principals_and_takes_the_account_key_only(service: Service) -> None:
    plain = signed_request(service.url, "POST", "/_batchyard/principals", body={"name": "api", "role": "reader"})
    assert plain.status_code == 400 and "created over HTTPS only" in plain.json()["message"]["value"]
    answer = create_through_api(service, {"name": "api", "role": "reader"})
    assert answer.status_code == 201
    created = answer.json()
    assert created["authority"] == service.https_url and created["role"] == "reader"
    token = credential(created).get_token(BATCH_SCOPE).token
    assert raw_get(service, token).status_code == 200
    listed = signed_request(service.url, "GET", "/_batchyard/principals").json()["value"]
    assert created["clientId"] in [p["clientId"] for p in listed]
    refused = raw_get(service, token, "/_batchyard/principals")
    assert refused.status_code == 403 and "takes the account's Shared Key" in detail(refused)
    bad = create_through_api(service, {"name": "x", "role": "owner"})
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidPropertyValue"
    not_pem = create_through_api(service, {"name": "x", "certificate": "no"})
    assert not_pem.status_code == 400 and {"key": "PropertyName", "value": "certificate"} in not_pem.json()["values"]
    no_name = create_through_api(service, {"role": "reader"})
    assert no_name.status_code == 400 and no_name.json()["code"] == "MissingRequiredProperty"
    gone = signed_request(service.url, "DELETE", f"/_batchyard/principals/{created['clientId']}")
    assert gone.status_code == 200
    assert signed_request(service.url, "GET", f"/_batchyard/principals/{created['clientId']}").status_code == 404


def test_tenant_key_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    svc = start_service(tmp_path / "svc")
    try:
        principal = create_principal(svc, "--name", "durable")
        token = credential(principal).get_token(BATCH_SCOPE).token
        svc.stop()
        svc.restart()
        assert raw_get(svc, token).status_code == 200  # same key, same tenant, same issuer
        again = credential(principal).get_token(BATCH_SCOPE).token
        assert jwt.get_unverified_header(again)["kid"] == jwt.get_unverified_header(token)["kid"]
    finally:
        svc.stop()


def certificate_pem(path: Path) -> tuple[str, str]:
    """A self-signed RSA certificate and its key, written together to `path` (what CertificateCredential reads)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "batchyard test client")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    path.write_text(key_pem + cert_pem)
    return key_pem, cert_pem


def test_certificate_credential(service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import CertificateCredential

    key_pem, cert_pem = certificate_pem(tmp_path / "client.pem")
    principal = create_principal(service, "--name", "with-cert", "--certificate", str(tmp_path / "client.pem"))
    assert len(principal["certificateThumbprint"]) == 40
    assert "PRIVATE KEY" not in (service.data_dir / "identity" / "principals.json").read_text()

    def certificate_credential(path: Path) -> CertificateCredential:
        return CertificateCredential(
            principal["tenantId"],
            principal["clientId"],
            certificate_path=str(path),
            authority=principal["authority"],
            disable_instance_discovery=True,
            connection_verify=principal["caCertificate"],
        )

    client = BatchClient(
        service.https_url, certificate_credential(tmp_path / "client.pem"), connection_verify=str(service.ca)
    )
    assert isinstance(list(client.list_pools()), list)
    # MSAL's other form: the certificate itself given, so a PS256 assertion with the SHA-256 thumbprint
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", principal["caCertificate"])
    app = msal.ConfidentialClientApplication(
        principal["clientId"],
        client_credential={"private_key": key_pem, "public_certificate": cert_pem},
        authority=f"{principal['authority']}/{principal['tenantId']}",
        instance_discovery=False,
    )
    assert "access_token" in app.acquire_token_for_client(scopes=["https://batch.core.windows.net/.default"])
    # a certificate that is not the principal's
    certificate_pem(tmp_path / "other.pem")
    with pytest.raises(ClientAuthenticationError, match="AADSTS700027: The client assertion names a certificate"):
        certificate_credential(tmp_path / "other.pem").get_token(BATCH_SCOPE)


def test_an_account_that_allows_tokens_only(tmp_path: Path) -> None:
    svc = start_service(tmp_path / "svc", "--authentication-modes", "AAD")
    try:
        with pytest.raises(HttpResponseError) as refused:
            list(https_client(svc).list_pools())
        assert refused.value.status_code == 403 and error_code(refused.value) == "AuthenticationFailed"
        assert "does not allow SharedKey authentication" in str(refused.value.response.json())
        # the account key still administers the service: here, it makes the principal
        answer = create_through_api(svc, {"name": "only-tokens"})
        assert answer.status_code == 201
        assert list(bearer_client(svc, answer.json()).list_pools()) == []
    finally:
        svc.stop()
    bad = subprocess.run(
        [sys.executable, "-m", "batchyard.cli.main", "serve", "--authentication-modes", "Kerberos"]
        + ["--data-dir", str(tmp_path / "bad")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "--authentication-modes takes one or more of SharedKey" in bad.stderr


def test_an_account_that_allows_shared_key_only(tmp_path: Path, unique: Any) -> None:
    svc = start_service(tmp_path / "svc", "--authentication-modes", "SharedKey")
    try:
        client = https_client(svc)
        token = credential(create_principal(svc, "--name", "no-tokens")).get_token(BATCH_SCOPE).token
        refused = raw_get(svc, token)
        assert refused.status_code == 403 and "does not allow AAD authentication" in detail(refused)
        pool_id, job_id = unique("sk-pool"), unique("sk-job")
        with temp_pool(client, pool_id):
            command = "/bin/bash -c 'echo $AZ_BATCH_AUTHENTICATION_TOKEN'"
            create_job(client, job_id, pool_id, job_manager_task=manager(command, kill_job_on_completion=False))
            wait_for(lambda: completed(client, job_id, "manager"), timeout=60, what="the manager")
            task_token = b"".join(client.download_task_file(job_id, "manager", "stdout.txt")).decode().strip()
            refused = raw_get(svc, task_token, f"/jobs/{job_id}")
            assert refused.status_code == 403
            assert "does not allow TaskAuthenticationToken authentication" in detail(refused)
    finally:
        svc.stop()
