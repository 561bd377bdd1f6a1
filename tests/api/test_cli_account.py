"""`batchyard account ...` (a real process) against a real service's management plane over HTTPS: the
principal comes from `batchyard principals create`, its secret through BATCHYARD_CLIENT_SECRET (never on the
command line), the CA from --data-dir, --ca-file or SSL_CERT_FILE. What `keys renew` and `set` change is
checked through the CLI's own data-plane commands."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, DEV_ACCOUNT_SECONDARY_KEY
from tests.api import management_support
from tests.api.cli_support import batchyard, table_rows
from tests.api.management_support import account_path
from tests.api.test_identity import create_principal
from tests.conftest import Service

# this module's own service and principal (fixtures: the tests change the account's keys and modes)
svc = management_support.svc
contributor = management_support.contributor

ALL_MODES = ["SharedKey", "AAD", "TaskAuthenticationToken"]


def principal_env(svc: Service, principal: dict[str, Any], **extra: str) -> dict[str, str]:
    return {
        "BATCHYARD_MANAGEMENT_ENDPOINT": svc.https_url,
        "BATCHYARD_TENANT_ID": principal["tenantId"],
        "BATCHYARD_CLIENT_ID": principal["clientId"],
        "BATCHYARD_CLIENT_SECRET": principal["clientSecret"],
        **extra,
    }


def account(svc: Service, principal: dict[str, Any], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`batchyard account ARGS` as the principal, trusting the service's CA through --data-dir."""
    return batchyard(svc, "account", *args, "--data-dir", str(svc.data_dir), **principal_env(svc, principal, **extra))


def succeeded(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def pools_with_key(svc: Service, key: str) -> subprocess.CompletedProcess[str]:
    """The CLI's own data-plane `pool list` with a Shared Key."""
    return batchyard(svc, "pool", "list", "-o", "json", BATCHYARD_ACCOUNT_KEY=key)


def test_show_list_and_quotas(svc: Service, contributor: dict[str, Any]) -> None:
    shown = json.loads(succeeded(account(svc, contributor, "show")))
    assert shown["id"] == account_path() and shown["name"] == DEV_ACCOUNT_NAME and shown["location"] == "local"
    assert shown["properties"]["accountEndpoint"] == svc.https_url.removeprefix("https://")
    assert shown["properties"]["allowedAuthenticationModes"] == ALL_MODES
    rows = table_rows(succeeded(account(svc, contributor, "list")))  # list prints a table by default
    assert rows[0] == ["Name", "Location", "Endpoint", "State", "Auth modes"]
    assert rows[1][:4] == [DEV_ACCOUNT_NAME, "local", svc.https_url.removeprefix("https://"), "Succeeded"]
    assert len(rows) == 2
    listed = json.loads(succeeded(account(svc, contributor, "list", "-g", "batchyard", "-o", "json")))
    assert [a["id"] for a in listed] == [account_path()]
    endpoint = succeeded(account(svc, contributor, "show", "--query", "properties.accountEndpoint", "-o", "tsv"))
    assert endpoint == svc.https_url.removeprefix("https://") + "\n"
    quotas = json.loads(succeeded(account(svc, contributor, "quotas", "--location", "local")))
    assert quotas == {"accountQuota": 3}
    assert table_rows(succeeded(account(svc, contributor, "quotas", "-o", "table"))) == [["Account quota"], ["3"]]
    elsewhere = account(svc, contributor, "quotas", "--location", "westeurope")
    assert elsewhere.returncode == 1 and "HTTP 400: LocationNotAvailableForResourceType" in elsewhere.stderr
    missing = account(svc, contributor, "show", "--name", "someotheraccount")
    assert missing.returncode == 1 and "HTTP 404: ResourceNotFound" in missing.stderr
    assert "Traceback" not in missing.stderr + elsewhere.stderr


def test_keys_list_and_renew_then_the_old_key_fails_on_the_data_plane(
    svc: Service, contributor: dict[str, Any]
) -> None:
    keys = json.loads(succeeded(account(svc, contributor, "keys", "list")))
    assert keys == {"accountName": DEV_ACCOUNT_NAME, "primary": DEV_ACCOUNT_KEY, "secondary": DEV_ACCOUNT_SECONDARY_KEY}
    assert succeeded(pools_with_key(svc, DEV_ACCOUNT_KEY)).strip() == "[]"
    renewed = json.loads(succeeded(account(svc, contributor, "keys", "renew", "--key-name", "primary")))
    assert renewed["primary"] not in (None, DEV_ACCOUNT_KEY) and renewed["secondary"] == DEV_ACCOUNT_SECONDARY_KEY
    old = pools_with_key(svc, DEV_ACCOUNT_KEY)
    assert old.returncode == 1 and "HTTP 403" in old.stderr, old.stderr
    assert succeeded(pools_with_key(svc, renewed["primary"])).strip() == "[]"
    assert succeeded(pools_with_key(svc, DEV_ACCOUNT_SECONDARY_KEY)).strip() == "[]"
    # the table of keys, and the same keys listed again
    rows = table_rows(succeeded(account(svc, contributor, "keys", "list", "-o", "table", COLUMNS="400")))
    assert rows == [
        ["Account", "Primary", "Secondary"],
        [DEV_ACCOUNT_NAME, renewed["primary"], DEV_ACCOUNT_SECONDARY_KEY],
    ]
    bad = account(svc, contributor, "keys", "renew", "--key-name", "tertiary")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_set_allowed_authentication_modes(svc: Service, contributor: dict[str, Any]) -> None:
    key = json.loads(succeeded(account(svc, contributor, "keys", "list")))["primary"]
    updated = account(
        svc,
        contributor,
        "set",
        "--allowed-authentication-modes",
        "AAD",
        "--query",
        "properties.allowedAuthenticationModes",
    )
    try:
        assert json.loads(succeeded(updated)) == ["AAD"]
        refused = pools_with_key(svc, key)
        assert refused.returncode == 1 and "does not allow SharedKey" in refused.stderr, refused.stderr
        no_keys = account(svc, contributor, "keys", "list")
        assert no_keys.returncode == 1 and "HTTP 409: OperationNotAllowed" in no_keys.stderr
        unknown = account(svc, contributor, "set", "--allowed-authentication-modes", "Kerberos")
        assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    finally:
        restored = account(svc, contributor, "set", "--allowed-authentication-modes", *ALL_MODES)
    assert json.loads(succeeded(restored))["properties"]["allowedAuthenticationModes"] == ALL_MODES
    assert succeeded(pools_with_key(svc, key)).strip() == "[]"


def test_a_reader_cannot_renew_and_a_wrong_secret_is_refused(svc: Service, contributor: dict[str, Any]) -> None:
    reader = create_principal(svc, "--name", "cli-reader", "--role", "reader")
    assert json.loads(succeeded(account(svc, reader, "show", "--query", "name"))) == DEV_ACCOUNT_NAME
    renew = account(svc, reader, "keys", "renew", "--key-name", "secondary")
    assert renew.returncode == 1 and renew.stdout == ""
    assert "HTTP 403: AuthorizationFailed" in renew.stderr
    assert "Microsoft.Batch/batchAccounts/regenerateKeys/action" in renew.stderr
    assert renew.stderr.startswith("batchyard: POST ") and "Traceback" not in renew.stderr
    wrong = account(svc, contributor, "show", BATCHYARD_CLIENT_SECRET="not-the-secret")
    assert wrong.returncode == 1 and "HTTP 401: invalid_client: AADSTS7000215" in wrong.stderr, wrong.stderr
    assert "not-the-secret" not in wrong.stderr and "Traceback" not in wrong.stderr


def test_connection_options(svc: Service, contributor: dict[str, Any]) -> None:
    """The CA from --ca-file or SSL_CERT_FILE, the principal on the command line; none of them: exit 2 or 3."""
    env = principal_env(svc, contributor)
    by_file = batchyard(svc, "account", "show", "--ca-file", str(svc.ca), "--query", "name", **env)
    assert json.loads(succeeded(by_file)) == DEV_ACCOUNT_NAME
    by_env = batchyard(svc, "account", "show", "--query", "name", SSL_CERT_FILE=str(svc.ca), **env)
    assert json.loads(succeeded(by_env)) == DEV_ACCOUNT_NAME
    options = batchyard(
        svc,
        "account",
        "show",
        "--management-endpoint",
        svc.https_url,
        "--tenant-id",
        contributor["tenantId"],
        "--client-id",
        contributor["clientId"],
        "--ca-file",
        str(svc.ca),
        "--query",
        "name",
        BATCHYARD_CLIENT_SECRET=contributor["clientSecret"],
    )
    assert json.loads(succeeded(options)) == DEV_ACCOUNT_NAME
    untrusted = batchyard(svc, "account", "show", **env)  # no CA: the service's certificate is not trusted
    assert untrusted.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr, untrusted.stderr
    no_ca = batchyard(svc, "account", "show", "--ca-file", str(svc.data_dir / "nothing.pem"), **env)
    assert no_ca.returncode == 2 and "nothing.pem" in no_ca.stderr and "Traceback" not in no_ca.stderr
    no_principal = batchyard(svc, "account", "show", "--ca-file", str(svc.ca))
    assert no_principal.returncode == 2 and "--tenant-id, --client-id, --client-secret required" in no_principal.stderr


def test_create_use_and_delete_another_account(svc: Service, contributor: dict[str, Any]) -> None:
    made = json.loads(succeeded(account(svc, contributor, "create", "--name", "teamcli")))
    endpoint = made["properties"]["accountEndpoint"]
    assert endpoint == svc.https_url.removeprefix("https://") + "/accounts/teamcli"
    keys = json.loads(succeeded(account(svc, contributor, "keys", "list", "--name", "teamcli")))
    assert keys["accountName"] == "teamcli" and keys["primary"] != DEV_ACCOUNT_KEY
    # the data-plane commands against its endpoint (on the HTTP listener) with its name and key
    theirs = {
        "BATCHYARD_ENDPOINT": f"{svc.url}/accounts/teamcli",
        "BATCHYARD_ACCOUNT_NAME": "teamcli",
        "BATCHYARD_ACCOUNT_KEY": keys["primary"],
    }
    succeeded(batchyard(svc, "pool", "create", "--id", "cli-pool", "--target-dedicated-nodes", "0", **theirs))
    assert [pool["id"] for pool in json.loads(succeeded(batchyard(svc, "pool", "list", "-o", "json", **theirs)))] == [
        "cli-pool"
    ]
    own_key = json.loads(succeeded(account(svc, contributor, "keys", "list")))["primary"]
    assert "cli-pool" not in succeeded(pools_with_key(svc, own_key))
    # pages of a list follow odata.nextLink below the account's endpoint
    for index in range(3):
        succeeded(batchyard(svc, "pool", "create", "--id", f"more-{index}", "--target-dedicated-nodes", "0", **theirs))
    paged = batchyard(svc, "pool", "list", "--max-results", "2", "--query", "length(@)", "-o", "tsv", **theirs)
    assert succeeded(paged).strip() == "4"
    deleted = json.loads(succeeded(account(svc, contributor, "delete", "--name", "teamcli")))
    assert deleted == {"deleted": "teamcli"}
    gone = account(svc, contributor, "show", "--name", "teamcli")
    assert gone.returncode == 1 and "HTTP 404: ResourceNotFound" in gone.stderr
    refused = batchyard(svc, "pool", "list", "-o", "json", **theirs)
    assert refused.returncode != 0 and "AccountNotFound" in refused.stderr
