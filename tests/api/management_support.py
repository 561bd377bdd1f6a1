"""What the management-plane tests share (tests/api/test_management.py, test_cli_account.py): a service of
the test module's own (it changes the account's keys and modes), a contributor principal, and the official
management and data-plane clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.mgmt.batch import BatchManagementClient

from batchyard.service.config import DEV_ACCOUNT_NAME
from tests.api.test_identity import create_principal, credential
from tests.conftest import Service, start_service

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
GROUP = "batchyard"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"
API_VERSION = "2024-07-01"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_service(tmp_path_factory.mktemp("management"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def contributor(svc: Service) -> dict[str, Any]:
    return create_principal(svc, "--name", "operator")


C = TypeVar("C")


def arm_client(client_class: Callable[..., C], svc: Service, principal: dict[str, Any], **kwargs: Any) -> C:
    """An azure-mgmt client (BatchManagementClient, MonitorManagementClient, ...) as a user points it at the
    service: the principal's token for Resource Manager, the service's HTTPS URL and CA."""
    return client_class(
        credential(principal),
        SUBSCRIPTION,
        base_url=svc.https_url,
        credential_scopes=[MANAGEMENT_SCOPE],
        connection_verify=str(svc.ca),
        **kwargs,
    )


def management_client(svc: Service, principal: dict[str, Any], **kwargs: Any) -> BatchManagementClient:
    return arm_client(BatchManagementClient, svc, principal, **kwargs)


def data_client(svc: Service, endpoint: str, key: str) -> BatchClient:
    """A data-plane client as a user builds it from the management plane's answers."""
    return BatchClient(
        "https://" + endpoint, AzureNamedKeyCredential(DEV_ACCOUNT_NAME, key), connection_verify=str(svc.ca)
    )


def account_path(name: str = DEV_ACCOUNT_NAME) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Batch/batchAccounts/{name}"


def arm_code(exc: HttpResponseError) -> str:
    assert exc.error is not None, exc
    return str(exc.error.code)
