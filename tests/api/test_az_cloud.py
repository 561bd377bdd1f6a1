"""azure-cli against the service as a registered custom cloud (README, "azure-cli (`az`) as a custom cloud").

`az cloud register` finds the service's endpoints from its Resource Manager URL alone (the service's
`/metadata/endpoints`), `az login --service-principal` signs in with a principal of the service's identity
provider (MSAL's instance discovery off), `az batch account` manages the account through the management
plane (with the account's linked storage: `az batch application` uploads a package through it), and
`az batch` runs a task on the principal's Batch tokens and then on the account's key. az runs in a
configuration directory of its own, trusting the service's CA through REQUESTS_CA_BUNDLE. The service is this
module's own: a test renews the account's primary key.
"""

from __future__ import annotations

import configparser
import json
import os
import ssl
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, DEV_ACCOUNT_SECONDARY_KEY
from tests.api.az_support import AzSession, az_program
from tests.api.diagnostics_support import LogTarget, of
from tests.api.helpers import completed, create_pool, readme_code_block
from tests.api.management_support import GROUP, MANAGEMENT_SCOPE, SUBSCRIPTION, account_path
from tests.api.storage_support import shared_azurite, start_linked_service
from tests.api.test_identity import create_principal, credential
from tests.conftest import Service, make_client, wait_for


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """This module's own service (it renews the account's primary key), linked to Azurite (application
    packages)."""
    service = start_linked_service(tmp_path_factory.mktemp("azcloud-service"))
    yield service
    service.stop()


CLOUD = "batchyard"
ACCOUNT = ("-g", GROUP, "-n", DEV_ACCOUNT_NAME)
BATCH_AUDIENCE = "https://batch.core.windows.net/"
IMAGE = "canonical:0001-com-ubuntu-server-jammy:22_04-lts"
AGENT = "batch.node.ubuntu 22.04"
README_HTTPS_URL = "https://127.0.0.1:8651"  # what the README's example registers (scripts/serve.sh)
README_DATA_DIR = "batchyard-data"


@pytest.fixture(scope="module")
def principal(svc: Service) -> dict[str, Any]:
    return create_principal(svc, "--name", "az")


@pytest.fixture(scope="module")
def az(svc: Service, tmp_path_factory: pytest.TempPathFactory) -> AzSession:
    program = az_program()
    if program is None:
        pytest.skip("azure-cli is not installed: scripts/test.sh installs it into .venv-az (see its output)")
    return AzSession(program, tmp_path_factory.mktemp("azcloud"), svc.ca)


@pytest.fixture(scope="module")
def login(az: AzSession, svc: Service, principal: dict[str, Any]) -> list[dict[str, Any]]:
    """The README's steps up to the login: register the cloud, make it az's, turn MSAL's instance discovery off
    (it would ask login.microsoftonline.com about the authority), log in; what `az login` printed."""
    assert az("cloud", "register", "-n", CLOUD, "--endpoint-resource-manager", svc.https_url) is None
    az("cloud", "set", "-n", CLOUD)
    az("config", "set", "core.instance_discovery=false")
    logged_in: list[dict[str, Any]] = az(
        "login", "--service-principal", "-u", principal["clientId"], "-p", principal["clientSecret"],
        "--tenant", principal["tenantId"],
    )  # fmt: skip
    return logged_in


def batch_settings(az: AzSession) -> dict[str, str]:
    """The [batch] section `az batch account login` writes into az's configuration."""
    config = configparser.ConfigParser()
    config.read(az.config_dir / "config")
    return dict(config["batch"]) if config.has_section("batch") else {}


def test_the_cloud_is_registered_from_the_services_metadata_and_login_finds_its_subscription(
    az: AzSession, login: list[dict[str, Any]], svc: Service, principal: dict[str, Any]
) -> None:
    assert login == [
        {
            "cloudName": CLOUD,
            "homeTenantId": principal["tenantId"],
            "id": SUBSCRIPTION,
            "isDefault": True,
            "managedByTenants": [],
            "name": "batchyard",
            "state": "Enabled",
            "tenantId": principal["tenantId"],
            "user": {"name": principal["clientId"], "type": "servicePrincipal"},
        }
    ]
    endpoints = az("cloud", "show", "-n", CLOUD)["endpoints"]
    assert endpoints["resourceManager"].rstrip("/") == svc.https_url
    assert endpoints["activeDirectory"] == svc.https_url  # from the metadata: the service signs in
    assert endpoints["activeDirectoryResourceId"] == "https://management.core.windows.net/"
    assert endpoints["batchResourceId"] == BATCH_AUDIENCE
    # by hand, without the metadata (README): the same endpoints
    by_hand = {
        "resourceManager": svc.https_url,
        "activeDirectory": svc.https_url,
        "activeDirectoryResourceId": "https://management.core.windows.net/",
        "batchResourceId": BATCH_AUDIENCE,
    }
    config = json.dumps({"endpoints": by_hand})
    az("cloud", "register", "-n", "byhand", "--skip-endpoint-discovery", "--cloud-config", config)
    registered = az("cloud", "show", "-n", "byhand")["endpoints"]
    assert {name: registered[name] for name in by_hand} == {name: endpoints[name] for name in by_hand}
    assert az("account", "show", "--query", "[environmentName, id, tenantId]") == [
        CLOUD,
        SUBSCRIPTION,
        principal["tenantId"],
    ]
    assert az("group", "show", "-n", GROUP)["id"] == f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}"


def test_batch_account_commands(az: AzSession, login: list[dict[str, Any]], svc: Service) -> None:
    shown = az("batch", "account", "show", *ACCOUNT)
    assert (shown["id"], shown["location"], shown["provisioningState"]) == (account_path(), "local", "Succeeded")
    assert shown["accountEndpoint"] == svc.https_url.removeprefix("https://")
    assert az("batch", "account", "list", "--query", "[].name") == [DEV_ACCOUNT_NAME]
    assert az("batch", "account", "keys", "list", *ACCOUNT) == {
        "accountName": DEV_ACCOUNT_NAME,
        "primary": DEV_ACCOUNT_KEY,
        "secondary": DEV_ACCOUNT_SECONDARY_KEY,
    }
    # the service's own account: creating it again is idempotent and applies the tags
    created = az("batch", "account", "create", *ACCOUNT, "-l", "local", "--tags", "made=az")
    assert (created["id"], created["tags"]) == (account_path(), {"made": "az"})
    # another account, with its own endpoint and keys, then deleted
    another = az("batch", "account", "create", "-g", GROUP, "-n", "anotheraccount", "-l", "local")
    assert another["accountEndpoint"] == svc.https_url.removeprefix("https://") + "/accounts/anotheraccount"
    assert sorted(az("batch", "account", "list", "--query", "[].name")) == sorted([DEV_ACCOUNT_NAME, "anotheraccount"])
    assert az("batch", "account", "keys", "list", "-g", GROUP, "-n", "anotheraccount")["primary"] != DEV_ACCOUNT_KEY
    az("batch", "account", "delete", "-g", GROUP, "-n", "anotheraccount", "--yes")
    assert az("batch", "account", "list", "--query", "[].name") == [DEV_ACCOUNT_NAME]
    assert az("batch", "location", "quotas", "show", "-l", "local") == {"accountQuota": 3}


def test_application_packages_through_the_linked_storage(
    az: AzSession, login: list[dict[str, Any]], svc: Service, tmp_path: Path
) -> None:
    linked = az("batch", "account", "show", *ACCOUNT, "--query", "autoStorage")
    assert linked["storageAccountId"].endswith("/storageAccounts/devstoreaccount1")
    assert az("batch", "account", "autostorage-keys", "sync", *ACCOUNT) is None
    archive = tmp_path / "hello.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("hello.sh", "echo hello\n")
    app = ("--application-name", "azapp")
    assert az("batch", "application", "create", *ACCOUNT, *app)["name"] == "azapp"
    # az creates the package, uploads the zip to its storageUrl and activates it
    package = az("batch", "application", "package", "create", *ACCOUNT, *app, "--version-name", "1.0",
                 "--package-file", str(archive))  # fmt: skip
    assert (package["name"], package["state"], package["format"]) == ("1.0", "Active", "zip")
    assert az("batch", "application", "set", *ACCOUNT, *app, "--default-version", "1.0")["defaultVersion"] == "1.0"
    assert az("batch", "application", "package", "list", *ACCOUNT, *app, "--query", "[].name") == ["1.0"]
    # the data plane lists the same application, with its active version
    assert make_client(svc.url).get_application("azapp").versions == ["1.0"]


def test_a_task_runs_on_the_principals_batch_tokens(
    az: AzSession, login: list[dict[str, Any]], svc: Service, principal: dict[str, Any]
) -> None:
    shown = az("batch", "account", "login", *ACCOUNT, "--show")
    assert (shown["endpoint"], shown["resource"], shown["tokenType"]) == (svc.https_url + "/", BATCH_AUDIENCE, "Bearer")
    claims = jwt.decode(shown["accessToken"], options={"verify_signature": False})
    assert (claims["aud"], claims["appid"]) == (BATCH_AUDIENCE, principal["clientId"])
    # no key anywhere: az batch authenticates with the principal's tokens alone
    assert batch_settings(az) == {
        "account": DEV_ACCOUNT_NAME,
        "endpoint": svc.https_url + "/",
        "auth_mode": "aad",
    }
    az(
        "batch", "pool", "create", "--id", "aadpool", "--vm-size", "standard_d2s_v3", "--image", IMAGE,
        "--node-agent-sku-id", AGENT, "--target-dedicated-nodes", "1",
    )  # fmt: skip
    assert "aadpool" in az("batch", "pool", "list", "--query", "[].id")
    az("batch", "job", "create", "--id", "aadjob", "--pool-id", "aadpool")
    created = az(
        "batch", "task", "create", "--job-id", "aadjob", "--task-id", "hello",
        "--command-line", "/bin/sh -c 'echo hello from az'",
    )  # fmt: skip
    assert created["id"] == "hello"
    client = make_client(svc.url, DEV_ACCOUNT_SECONDARY_KEY)  # the secondary: a later test renews the primary
    wait_for(lambda: completed(client, "aadjob", "hello"), timeout=120, what="the az task")
    task = az("batch", "task", "show", "--job-id", "aadjob", "--task-id", "hello")
    assert (task["state"], task["executionInfo"]["exitCode"], task["executionInfo"]["result"]) == (
        "completed",
        0,
        "success",
    )
    stdout = az.config_dir / "hello-stdout.txt"
    az(
        "batch", "task", "file", "download", "--job-id", "aadjob", "--task-id", "hello",
        "--file-path", "stdout.txt", "--destination", str(stdout),
    )  # fmt: skip
    assert stdout.read_text() == "hello from az\n"


def test_shared_key_login_stores_the_accounts_key(az: AzSession, login: list[dict[str, Any]]) -> None:
    primary = az("batch", "account", "keys", "list", *ACCOUNT)["primary"]
    shown = az("batch", "account", "login", *ACCOUNT, "--shared-key-auth", "--show")
    assert shown["primaryKey"] == primary
    assert batch_settings(az) == {
        "account": DEV_ACCOUNT_NAME,
        "endpoint": shown["endpoint"],
        "auth_mode": "shared_key",
        "access_key": primary,
    }
    assert isinstance(az("batch", "pool", "list"), list)
    # the stored key is what signs: once renewed, it is refused until the next login
    renewed = az("batch", "account", "keys", "renew", *ACCOUNT, "--key-name", "primary")["primary"]
    assert renewed != primary
    assert "AuthenticationFailed" in az.fails("batch", "pool", "list")
    az("batch", "account", "login", *ACCOUNT, "--shared-key-auth")
    assert batch_settings(az)["access_key"] == renewed
    assert isinstance(az("batch", "pool", "list"), list)


def test_cloud_metadata_and_subscription_over_http(svc: Service, principal: dict[str, Any]) -> None:
    verify = ssl.create_default_context(cafile=str(svc.ca))

    def get(path: str, api_version: str | None, token: str | None = None) -> httpx.Response:
        params = {"api-version": api_version} if api_version else {}
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(svc.https_url + path, params=params, headers=headers, verify=verify)

    # before any token: what a tool needs to get one (the single-cloud shape from 2022-09-01, a list before)
    cloud = get("/metadata/endpoints", "2022-09-01").json()
    assert cloud["resourceManager"] == svc.https_url + "/" and cloud["batch"] == BATCH_AUDIENCE
    assert cloud["authentication"]["loginEndpoint"] == svc.https_url
    assert cloud["authentication"]["audiences"][0] == "https://management.core.windows.net/"
    assert get("/metadata/endpoints", "2019-05-01").json() == [cloud]
    missing = get("/metadata/endpoints", None)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "MissingApiVersionParameter"

    assert get("/subscriptions", "2022-12-01").status_code == 401
    token = credential(principal).get_token(MANAGEMENT_SCOPE).token
    listed = get("/subscriptions", "2022-12-01", token).json()
    subscription = get(f"/subscriptions/{SUBSCRIPTION}", "2022-12-01", token).json()
    assert listed["value"] == [subscription]
    assert (subscription["id"], subscription["tenantId"]) == (f"/subscriptions/{SUBSCRIPTION}", principal["tenantId"])
    other = get("/subscriptions/11111111-1111-1111-1111-111111111111", "2022-12-01", token)
    assert other.status_code == 404 and other.json()["error"]["code"] == "SubscriptionNotFound"


def test_the_readme_az_cloud_example(az: AzSession, svc: Service, tmp_path: Path) -> None:
    script = readme_code_block("azure-cli (`az`) as a custom cloud", "sh")
    assert script.count(README_HTTPS_URL) == 1
    script = script.replace(README_HTTPS_URL, svc.https_url).replace(README_DATA_DIR, str(svc.data_dir))
    path = f"{az.program.parent}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "BATCHYARD_"))}
    env |= {"HOME": str(tmp_path), "PATH": path, "AZURE_CORE_COLLECT_TELEMETRY": "false"}
    result = subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert svc.https_url.removeprefix("https://") in lines  # the account's endpoint, from the management plane
    assert lines[-1] == "0"  # the task's exit code, read with the account's key
    assert (tmp_path / ".azure-batchyard" / "config").is_file()  # az's state stayed in its own directory


def test_az_monitor_sends_the_service_logs_to_the_linked_storage(
    az: AzSession, login: list[dict[str, Any]], svc: Service
) -> None:
    storage_id = az("batch", "account", "show", *ACCOUNT, "--query", "autoStorage.storageAccountId")
    logs = json.dumps([{"category": "ServiceLog", "enabled": True}])
    made = az("monitor", "diagnostic-settings", "create", "-n", "servicelogs", "--resource", account_path(),
              "--storage-account", storage_id, "--logs", logs)  # fmt: skip
    assert made["storageAccountId"] == storage_id and made["logs"][0]["category"] == "ServiceLog"
    listed = az("monitor", "diagnostic-settings", "list", "--resource", account_path(), "--query", "[].name")
    assert listed == ["servicelogs"]
    pool_id = f"monitored-{uuid.uuid4().hex[:6]}"
    key = az("batch", "account", "keys", "list", *ACCOUNT, "--query", "primary")  # an earlier test renewed it
    create_pool(make_client(svc.url, key), pool_id, nodes=0)
    target = LogTarget(shared_azurite(), SUBSCRIPTION, GROUP)
    wait_for(lambda: of(target.records(), "PoolCreateEvent", id=pool_id), what="the pool's event in the storage")
    assert az("monitor", "diagnostic-settings", "delete", "-n", "servicelogs", "--resource", account_path()) is None
