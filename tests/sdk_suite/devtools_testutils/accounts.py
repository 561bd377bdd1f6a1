"""Batch accounts for the SDK suite: each account the suite's preparers create is a batchyard service of
its own (started like the project's API tests start one, tests/conftest.py:start_service), reached over
its HTTPS listener; accounts with auto-storage share one Azurite (tests/api/storage_support.py)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from tests.api.storage_support import shared_azurite
from tests.conftest import Service, passable_for_task_users, start_service


@dataclass
class LocalAccount:
    name: str  # the account name the services answer to (the SDK signs with it)
    key: str
    service: Service

    @property
    def account_endpoint(self) -> str:
        # The preparers prefix "https://" to this, as they do to an Azure account's endpoint.
        return self.service.https_url.removeprefix("https://")


_accounts: dict[str, LocalAccount] = {}
_root = Path(tempfile.mkdtemp(prefix="batchyard-sdk-suite-"))
passable_for_task_users(_root)
# One certificate for every account's service, made by the runner (runner.py:suite_certificates), whose CA
# the clients trust through SSL_CERT_FILE / REQUESTS_CA_BUNDLE.
_tls_dir = Path(os.environ["BATCHYARD_SDK_SUITE_TLS"])


def create_account(name: str, with_storage: bool) -> LocalAccount:
    extra = ["--tls-cert", str(_tls_dir / "server.pem"), "--tls-key", str(_tls_dir / "server.key")]
    if with_storage:
        extra += ["--storage-connection-string", shared_azurite().connection_string]
    service = start_service(_root / name, *extra)
    account = LocalAccount(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY, service)
    _accounts[name] = account
    return account


def account(name: str) -> LocalAccount:
    return _accounts[name]


def current_account() -> LocalAccount:
    """The account made last: the one the running test's client is for (tests run one at a time)."""
    return _accounts[next(reversed(_accounts))]


def delete_account(name: str) -> None:
    gone = _accounts.pop(name, None)
    if gone is not None:
        gone.service.stop()


@atexit.register
def _stop_all() -> None:
    for name in list(_accounts):
        delete_account(name)
    shutil.rmtree(_root, ignore_errors=True)
