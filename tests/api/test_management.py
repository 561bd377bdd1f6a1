"""The management plane (Microsoft.Batch through ARM) with the official clients over HTTPS.

azure-mgmt-batch's BatchManagementClient, unchanged, is pointed at the service (`base_url`, the management
scope) and authenticates with azure-identity's ClientSecretCredential against the service's own identity
provider; principals are made with `batchyard principals create`. What the management plane changes (keys,
allowedAuthenticationModes) is checked on the data plane with azure-batch. The service here is this module's
own: it regenerates the account's keys.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.mgmt.batch import models as mm

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, DEV_ACCOUNT_SECONDARY_KEY
from batchyard.service.management.account_state import new_key
from batchyard.service.management.resources import storage_account_id
from tests.api import management_support
from tests.api.helpers import readme_code_block
from tests.api.management_support import (
    API_VERSION,
    GROUP,
    MANAGEMENT_SCOPE,
    SUBSCRIPTION,
    account_path,
    arm_code,
    data_client,
    management_client,
)
from tests.api.test_identity import BATCH_SCOPE, create_principal, credential
from tests.conftest import Service, start_service

# this module's own service and principal (fixtures; it changes the account's keys and modes)
svc = management_support.svc
contributor = management_support.contributor


def arm_get(svc: Service, path: str, token: str | None, api_version: str | None = API_VERSION) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"api-version": api_version} if api_version else {}
    verify = ssl.create_default_context(cafile=str(svc.ca))
    return httpx.get(svc.https_url + path, params=params, headers=headers, verify=verify)


def test_get_and_list_the_account(svc: Service, contributor: dict[str, Any]) -> None:
    client = management_client(svc, contributor)
    account = client.batch_account.get(GROUP, DEV_ACCOUNT_NAME)
    assert account.name == DEV_ACCOUNT_NAME and account.location == "local"
    assert account.id == account_path()
    assert account.provisioning_state == "Succeeded"
    assert account.account_endpoint == svc.https_url.removeprefix("https://")
    assert account.allowed_authentication_modes == ["SharedKey", "AAD", "TaskAuthenticationToken"]
    assert account.active_job_and_job_schedule_quota == 300 and account.dedicated_core_quota == 500
    assert account.pool_quota == 100 and account.low_priority_core_quota == 100
    assert [a.name for a in client.batch_account.list()] == [DEV_ACCOUNT_NAME]
    # azure-mgmt-batch 19 speaks 2025-06-01; 2024-07-01 (the contract followed) is served too
    older = management_client(svc, contributor, api_version="2024-07-01").batch_account.get(GROUP, DEV_ACCOUNT_NAME)
    assert older.account_endpoint == account.account_endpoint
    assert [a.id for a in client.batch_account.list_by_resource_group(GROUP)] == [account.id]
    # the endpoint works as clients use it
    assert account.account_endpoint is not None
    assert list(data_client(svc, account.account_endpoint, DEV_ACCOUNT_KEY).list_pools()) == []
    with pytest.raises(HttpResponseError) as missing:
        client.batch_account.get(GROUP, "someotheraccount")
    assert missing.value.status_code == 404 and arm_code(missing.value) == "ResourceNotFound"
    with pytest.raises(HttpResponseError) as no_group:
        client.batch_account.get("elsewhere", DEV_ACCOUNT_NAME)
    assert no_group.value.status_code == 404 and arm_code(no_group.value) == "ResourceGroupNotFound"


def test_regenerated_key_replaces_the_old_one_at_once_and_for_good(svc: Service, contributor: dict[str, Any]) -> None:
    client = management_client(svc, contributor)
    keys = client.batch_account.get_keys(GROUP, DEV_ACCOUNT_NAME)
    assert (keys.account_name, keys.primary, keys.secondary) == (
        DEV_ACCOUNT_NAME,
        DEV_ACCOUNT_KEY,
        DEV_ACCOUNT_SECONDARY_KEY,
    )
    endpoint = svc.https_url.removeprefix("https://")
    regenerated = client.batch_account.regenerate_key(
        GROUP, DEV_ACCOUNT_NAME, mm.BatchAccountRegenerateKeyParameters(key_name="Primary")
    )
    assert regenerated.primary not in (None, DEV_ACCOUNT_KEY) and regenerated.secondary == DEV_ACCOUNT_SECONDARY_KEY
    assert regenerated.primary is not None
    new_key = regenerated.primary

    def refused(key: str) -> None:
        with pytest.raises(HttpResponseError) as failed:
            list(data_client(svc, endpoint, key).list_pools())
        assert failed.value.status_code == 403

    refused(DEV_ACCOUNT_KEY)
    assert list(data_client(svc, endpoint, new_key).list_pools()) == []
    assert list(data_client(svc, endpoint, DEV_ACCOUNT_SECONDARY_KEY).list_pools()) == []
    svc.stop()
    svc.restart()  # the same command line: the regenerated key stays
    assert client.batch_account.get_keys(GROUP, DEV_ACCOUNT_NAME).primary == new_key
    refused(DEV_ACCOUNT_KEY)
    assert list(data_client(svc, endpoint, new_key).list_pools()) == []
    assert not (svc.data_dir / "management" / "account.json").exists()  # kept in the store (failover)


def test_quotas_name_availability_and_operations(svc: Service, contributor: dict[str, Any]) -> None:
    client = management_client(svc, contributor)
    assert client.location.get_quotas("local").account_quota == 3  # Azure's default per region

    def check(name: str) -> mm.CheckNameAvailabilityResult:
        return client.location.check_name_availability("local", mm.CheckNameAvailabilityParameters(name=name))

    taken = check(DEV_ACCOUNT_NAME)
    assert (taken.name_available, taken.reason) == (False, "AlreadyExists")
    invalid = check("Not_Valid")
    assert (invalid.name_available, invalid.reason) == (False, "Invalid")
    assert check("anotheraccount").name_available is True
    with pytest.raises(HttpResponseError) as elsewhere:
        client.location.get_quotas("westeurope")
    assert elsewhere.value.status_code == 400 and arm_code(elsewhere.value) == "LocationNotAvailableForResourceType"
    names = {operation.name for operation in client.operations.list()}
    assert {"Microsoft.Batch/batchAccounts/read", "Microsoft.Batch/batchAccounts/regenerateKeys/action"} <= names


def test_without_linked_storage_there_is_no_auto_storage(svc: Service, contributor: dict[str, Any]) -> None:
    client = management_client(svc, contributor)
    assert client.batch_account.get(GROUP, DEV_ACCOUNT_NAME).auto_storage is None
    with pytest.raises(HttpResponseError) as sync:
        client.batch_account.synchronize_auto_storage_keys(GROUP, DEV_ACCOUNT_NAME)
    assert sync.value.status_code == 409 and arm_code(sync.value) == "AutoStorageNotConfigured"
    linking = mm.BatchAccountUpdateParameters(
        auto_storage=mm.AutoStorageBaseProperties(storage_account_id=storage_account_id("any"))
    )
    with pytest.raises(HttpResponseError) as refused:
        client.batch_account.update(GROUP, DEV_ACCOUNT_NAME, linking)
    assert refused.value.status_code == 400 and "--storage-connection-string" in str(refused.value.message)


def test_the_services_own_account_is_created_idempotently_and_never_deleted(
    svc: Service, contributor: dict[str, Any]
) -> None:
    client = management_client(svc, contributor)
    same = client.batch_account.begin_create(
        GROUP, DEV_ACCOUNT_NAME, mm.BatchAccountCreateParameters(location="local", tags={"team": "hpc"})
    ).result()
    assert same.name == DEV_ACCOUNT_NAME and same.tags == {"team": "hpc"}
    with pytest.raises(HttpResponseError) as moved:
        client.batch_account.begin_create(GROUP, DEV_ACCOUNT_NAME, mm.BatchAccountCreateParameters(location="eastus"))
    assert moved.value.status_code == 409 and arm_code(moved.value) == "InvalidResourceLocation"
    with pytest.raises(HttpResponseError) as kept:
        client.batch_account.begin_delete(GROUP, DEV_ACCOUNT_NAME).result()
    assert kept.value.status_code == 409 and arm_code(kept.value) == "ServiceAccountCannotBeDeleted"
    assert client.batch_account.get(GROUP, DEV_ACCOUNT_NAME).tags == {"team": "hpc"}


def test_update_allowed_authentication_modes_is_enforced(svc: Service, contributor: dict[str, Any]) -> None:
    client = management_client(svc, contributor)
    key = client.batch_account.get_keys(GROUP, DEV_ACCOUNT_NAME).primary
    assert key is not None
    endpoint = svc.https_url.removeprefix("https://")
    updated = client.batch_account.update(
        GROUP,
        DEV_ACCOUNT_NAME,
        mm.BatchAccountUpdateParameters(allowed_authentication_modes=["AAD"]),
    )
    try:
        assert updated.allowed_authentication_modes == ["AAD"]
        with pytest.raises(HttpResponseError) as refused:
            list(data_client(svc, endpoint, key).list_pools())
        assert refused.value.status_code == 403 and "does not allow SharedKey" in str(refused.value.response.json())
        with pytest.raises(HttpResponseError) as no_keys:
            client.batch_account.get_keys(GROUP, DEV_ACCOUNT_NAME)
        assert no_keys.value.status_code == 409 and arm_code(no_keys.value) == "OperationNotAllowed"
        with pytest.raises(HttpResponseError) as bad:
            client.batch_account.update(
                GROUP, DEV_ACCOUNT_NAME, mm.BatchAccountUpdateParameters(allowed_authentication_modes=["Kerberos"])
            )
        assert bad.value.status_code == 400 and arm_code(bad.value) == "InvalidRequestBody"
    finally:
        client.batch_account.update(
            GROUP,
            DEV_ACCOUNT_NAME,
            mm.BatchAccountUpdateParameters(
                allowed_authentication_modes=["SharedKey", "AAD", "TaskAuthenticationToken"]
            ),
        )
    assert list(data_client(svc, endpoint, key).list_pools()) == []


def test_reader_and_strangers_are_refused_writes(svc: Service) -> None:
    reader = management_client(svc, create_principal(svc, "--name", "mgmt-reader", "--role", "reader"))
    assert reader.batch_account.get(GROUP, DEV_ACCOUNT_NAME).name == DEV_ACCOUNT_NAME
    with pytest.raises(HttpResponseError) as refused:
        reader.batch_account.regenerate_key(
            GROUP, DEV_ACCOUNT_NAME, mm.BatchAccountRegenerateKeyParameters(key_name="Secondary")
        )
    assert refused.value.status_code == 403 and arm_code(refused.value) == "AuthorizationFailed"
    assert "Microsoft.Batch/batchAccounts/regenerateKeys/action" in str(refused.value)
    with pytest.raises(HttpResponseError) as no_keys:
        reader.batch_account.get_keys(GROUP, DEV_ACCOUNT_NAME)
    assert no_keys.value.status_code == 403 and arm_code(no_keys.value) == "AuthorizationFailed"
    stranger = management_client(svc, create_principal(svc, "--name", "mgmt-stranger", "--account", "elsewhere1"))
    assert list(stranger.batch_account.list()) == []
    with pytest.raises(HttpResponseError) as hidden:
        stranger.batch_account.get(GROUP, DEV_ACCOUNT_NAME)
    assert hidden.value.status_code == 403 and arm_code(hidden.value) == "AuthorizationFailed"


def test_tokens_and_requests_that_are_refused(svc: Service, contributor: dict[str, Any]) -> None:
    management_token = credential(contributor).get_token(MANAGEMENT_SCOPE).token
    assert arm_get(svc, account_path(), management_token).status_code == 200
    batch_token = credential(contributor).get_token(BATCH_SCOPE).token
    wrong_audience = arm_get(svc, account_path(), batch_token)
    assert wrong_audience.status_code == 401
    assert wrong_audience.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    assert wrong_audience.headers["www-authenticate"].startswith("Bearer authorization_uri=")
    tampered = management_token[:-4] + ("AAAA" if not management_token.endswith("AAAA") else "BBBB")
    assert arm_get(svc, account_path(), tampered).json()["error"]["code"] == "InvalidAuthenticationToken"
    plain_http = httpx.get(
        svc.url + account_path(),
        params={"api-version": API_VERSION},
        headers={"Authorization": f"Bearer {management_token}"},
    )
    assert plain_http.status_code == 401 and "over HTTPS only" in plain_http.json()["error"]["message"]
    no_token = arm_get(svc, account_path(), None)
    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == "AuthenticationFailed"
    # the management token does not open the data plane
    verify = ssl.create_default_context(cafile=str(svc.ca))
    data_plane = httpx.get(
        svc.https_url + "/pools",
        params={"api-version": "2025-06-01.21.0"},
        headers={"Authorization": f"Bearer {management_token}"},
        verify=verify,
    )
    assert data_plane.status_code == 401
    missing = arm_get(svc, account_path(), management_token, api_version=None)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "MissingApiVersionParameter"
    old = arm_get(svc, account_path(), management_token, api_version="2017-09-01")
    assert old.status_code == 400 and old.json()["error"]["code"] == "InvalidResourceTypeApiVersion"
    unknown = arm_get(svc, f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Batch/nothing", management_token)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "InvalidResourceType"
    other_subscription = arm_get(
        svc, account_path().replace(SUBSCRIPTION, "11111111-1111-1111-1111-111111111111"), management_token
    )
    assert other_subscription.status_code == 404
    assert other_subscription.json()["error"]["code"] == "SubscriptionNotFound"


def test_resource_group_calls(svc: Service, contributor: dict[str, Any]) -> None:
    token = credential(contributor).get_token(MANAGEMENT_SCOPE).token
    group = arm_get(svc, f"/subscriptions/{SUBSCRIPTION}/resourcegroups/{GROUP}", token, "2024-03-01")
    assert group.status_code == 200
    assert group.json() | {} == {
        "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}",
        "name": GROUP,
        "type": "Microsoft.Resources/resourceGroups",
        "location": "local",
        "properties": {"provisioningState": "Succeeded"},
    }
    listed = arm_get(svc, f"/subscriptions/{SUBSCRIPTION}/resourcegroups", token, "2024-03-01")
    assert [g["name"] for g in listed.json()["value"]] == [GROUP]
    missing = arm_get(svc, f"/subscriptions/{SUBSCRIPTION}/resourcegroups/nosuchgroup", token, "2024-03-01")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceGroupNotFound"
    verify = ssl.create_default_context(cafile=str(svc.ca))
    for group_name, status in ((GROUP, 204), ("nosuchgroup", 404)):
        exists = httpx.head(
            f"{svc.https_url}/subscriptions/{SUBSCRIPTION}/resourcegroups/{group_name}",
            params={"api-version": "2024-03-01"},
            headers={"Authorization": f"Bearer {token}"},
            verify=verify,
        )
        assert exists.status_code == status


def test_the_readme_management_example(svc: Service, contributor: dict[str, Any], tmp_path: Path) -> None:
    snippet = readme_code_block("Managing the account from Python", "python")
    (tmp_path / "principal.json").write_text(json.dumps(contributor))
    script = tmp_path / "manage.py"
    script.write_text(snippet)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{svc.https_url.removeprefix('https://')} []"


def test_a_new_command_line_key_wins_over_a_regenerated_one(tmp_path: Path) -> None:
    """Regenerated keys belong to the command line they were made from (README, Management plane)."""
    first, second = new_key(), new_key()
    service = start_service(tmp_path / "svc", "--account-name", "keyed", "--account-key", first)
    try:
        principal = create_principal(service, "--name", "keyed-admin", "--account", "keyed")
        client = management_client(service, principal)
        regenerated = client.batch_account.regenerate_key(
            GROUP, "keyed", mm.BatchAccountRegenerateKeyParameters(key_name="Primary")
        ).primary
        assert regenerated is not None and regenerated != first
        service.stop()
        service.args = [
            *service.args[: service.args.index(first)],
            second,
            *service.args[service.args.index(first) + 1 :],
        ]
        service.restart()
        keys = client.batch_account.get_keys(GROUP, "keyed")
        assert (keys.primary, keys.secondary) == (second, None)
        endpoint = service.https_url.removeprefix("https://")

        def pools(key: str) -> list[Any]:
            return list(
                BatchClient(
                    "https://" + endpoint, AzureNamedKeyCredential("keyed", key), connection_verify=str(service.ca)
                ).list_pools()
            )

        assert pools(second) == []
        with pytest.raises(HttpResponseError) as refused:
            pools(regenerated)
        assert refused.value.status_code == 403
    finally:
        service.stop()
