"""Diagnostic settings on the Batch account (Microsoft.Insights) with the official azure-mgmt-monitor client over
HTTPS: a setting that sends the ServiceLog category to the linked storage account (a real Azurite) turns the
Service Logs on at once, its deletion turns them off, and a restart keeps it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.monitor.v2021_05_01_preview import models as mon

from batchyard.service.management.resources import storage_account_id
from batchyard.service.storage.linked import LinkedStorage
from tests.api.diagnostics_support import LogTarget, of
from tests.api.helpers import create_pool, readme_code_block, signed_request
from tests.api.management_support import GROUP, SUBSCRIPTION, account_path, arm_client, arm_code
from tests.api.storage_support import shared_azurite, start_linked_service
from tests.api.test_identity import create_principal
from tests.conftest import Service, make_client, start_service, wait_for

ACCOUNT = account_path()


@pytest.fixture(scope="module")
def storage() -> LinkedStorage:
    return shared_azurite()


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_linked_service(tmp_path_factory.mktemp("diagnostic-settings"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def monitor(svc: Service) -> MonitorManagementClient:
    return monitor_client(svc, create_principal(svc, "--name", "monitoring"))


@pytest.fixture(autouse=True)
def no_setting_outlives_its_test(monitor: MonitorManagementClient) -> Iterator[None]:
    """A test that fails midway leaves no setting on for the next ones (whose stream checks would then hang)."""
    yield
    for setting in monitor.diagnostic_settings.list(ACCOUNT):
        monitor.diagnostic_settings.delete(ACCOUNT, str(setting.name))


@pytest.fixture(scope="module")
def target(storage: LinkedStorage) -> LogTarget:
    """The account's log folder: the management plane's subscription and resource group."""
    return LogTarget(storage, SUBSCRIPTION, GROUP)


def monitor_client(svc: Service, principal: dict[str, Any]) -> MonitorManagementClient:
    return arm_client(MonitorManagementClient, svc, principal)


def to_storage(account: str, **log: Any) -> mon.DiagnosticSettingsResource:
    return mon.DiagnosticSettingsResource(
        storage_account_id=storage_account_id(account), logs=[mon.LogSettings(enabled=True, **log)]
    )


def pool_logged(target: LogTarget, pool_id: str) -> bool:
    return bool(of(target.records(), "PoolCreateEvent", id=pool_id))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_the_batch_log_and_metric_categories(monitor: MonitorManagementClient) -> None:
    categories = {c.name: c for c in list(monitor.diagnostic_settings_category.list(ACCOUNT))}
    assert set(categories) == {"AuditLog", "ServiceLog", "AllMetrics"}
    assert categories["ServiceLog"].category_type == "Logs"
    assert categories["ServiceLog"].category_groups == ["allLogs"]
    assert categories["AuditLog"].category_groups == ["allLogs", "audit"]
    assert categories["AllMetrics"].category_type == "Metrics"
    assert monitor.diagnostic_settings_category.get(ACCOUNT, "ServiceLog").id.endswith(
        "/diagnosticSettingsCategories/ServiceLog"
    )
    with pytest.raises(ResourceNotFoundError):
        monitor.diagnostic_settings_category.get(ACCOUNT, "NoSuchCategory")


def test_a_setting_turns_service_logs_on_and_its_deletion_turns_them_off(
    svc: Service, monitor: MonitorManagementClient, storage: LinkedStorage, target: LogTarget
) -> None:
    client = make_client(svc.url)
    before, during, after, again = (unique(name) for name in ("before", "during", "after", "again"))
    create_pool(client, before, nodes=0)
    assert signed_request(svc.url, "GET", "/_batchyard/events").status_code == 409  # off: the stream says so

    put = monitor.diagnostic_settings.create_or_update(
        ACCOUNT, "to-storage", to_storage(storage.account_name, category="ServiceLog")
    )
    assert put.name == "to-storage" and put.storage_account_id == storage_account_id(storage.account_name)
    assert put.id == f"{ACCOUNT}/providers/microsoft.insights/diagnosticSettings/to-storage"
    got = monitor.diagnostic_settings.get(ACCOUNT, "to-storage")
    assert [(log.category, log.enabled) for log in got.logs] == [("ServiceLog", True)]
    assert [s.name for s in list(monitor.diagnostic_settings.list(ACCOUNT))] == ["to-storage"]

    create_pool(client, during, nodes=0)
    wait_for(lambda: pool_logged(target, during), what="the pool's create event in the storage account")
    names = [name for name, line in target.lines() if during.encode() in line]
    assert names and all(target.hour_path().match(name) for name in names)
    assert not pool_logged(target, before)  # records are shipped in order: the earlier pool had none

    monitor.diagnostic_settings.delete(ACCOUNT, "to-storage")
    with pytest.raises(ResourceNotFoundError):
        monitor.diagnostic_settings.get(ACCOUNT, "to-storage")
    assert list(monitor.diagnostic_settings.list(ACCOUNT)) == []
    create_pool(client, after, nodes=0)

    # on again, through the allLogs group this time: the pool made in between has no record
    monitor.diagnostic_settings.create_or_update(
        ACCOUNT, "all-logs", to_storage(storage.account_name, category_group="allLogs")
    )
    create_pool(client, again, nodes=0)
    wait_for(lambda: pool_logged(target, again), what="the create event once the setting is back")
    assert not pool_logged(target, after)
    monitor.diagnostic_settings.delete(ACCOUNT, "all-logs")


def test_a_disabled_category_writes_nothing(
    svc: Service, monitor: MonitorManagementClient, storage: LinkedStorage
) -> None:
    setting = mon.DiagnosticSettingsResource(
        storage_account_id=storage_account_id(storage.account_name),
        logs=[
            mon.LogSettings(category="ServiceLog", enabled=False),
            mon.LogSettings(category="AuditLog", enabled=True),
        ],
        metrics=[mon.MetricSettings(category="AllMetrics", enabled=True)],
    )
    kept = monitor.diagnostic_settings.create_or_update(ACCOUNT, "audit-only", setting)
    assert [(log.category, log.enabled) for log in kept.logs] == [("ServiceLog", False), ("AuditLog", True)]
    assert [(metric.category, metric.enabled) for metric in kept.metrics] == [("AllMetrics", True)]
    assert signed_request(svc.url, "GET", "/_batchyard/events").status_code == 409
    monitor.diagnostic_settings.delete(ACCOUNT, "audit-only")


@pytest.mark.parametrize(
    ("setting", "code", "words"),
    [
        (to_storage("devstoreaccount1", category="NoSuchLog"), "BadRequest", "Category 'NoSuchLog' is not supported"),
        (to_storage("devstoreaccount1", category_group="noSuchGroup"), "BadRequest", "'noSuchGroup' is not supported"),
        (to_storage("elsewhere", category="ServiceLog"), "BadRequest", "'elsewhere' is not known"),
        (
            mon.DiagnosticSettingsResource(
                workspace_id="/subscriptions/x/resourceGroups/y/providers/Microsoft.OperationalInsights/workspaces/w",
                logs=[mon.LogSettings(category="ServiceLog", enabled=True)],
            ),
            "BadRequest",
            "'workspaceId' is not supported",
        ),
        (
            mon.DiagnosticSettingsResource(storage_account_id="not-an-id", logs=[]),
            "LinkedInvalidPropertyId",
            "'not-an-id'",
        ),
    ],
)
def test_settings_the_service_cannot_honour_are_refused(
    monitor: MonitorManagementClient, setting: mon.DiagnosticSettingsResource, code: str, words: str
) -> None:
    with pytest.raises(HttpResponseError) as refused:
        monitor.diagnostic_settings.create_or_update(ACCOUNT, "refused", setting)
    assert refused.value.status_code == 400 and arm_code(refused.value) == code
    assert words in str(refused.value.message)
    assert list(monitor.diagnostic_settings.list(ACCOUNT)) == []


def test_a_category_goes_to_one_destination_once(monitor: MonitorManagementClient, storage: LinkedStorage) -> None:
    monitor.diagnostic_settings.create_or_update(
        ACCOUNT, "first", to_storage(storage.account_name, category="ServiceLog")
    )
    try:
        with pytest.raises(HttpResponseError) as refused:
            monitor.diagnostic_settings.create_or_update(
                ACCOUNT, "second", to_storage(storage.account_name, category_group="allLogs")
            )
        assert refused.value.status_code == 400
        assert "already used in diagnostic setting 'first' for category 'ServiceLog'" in str(refused.value.message)
    finally:
        monitor.diagnostic_settings.delete(ACCOUNT, "first")


def test_a_reader_may_look_but_not_change(svc: Service, storage: LinkedStorage) -> None:
    reader = monitor_client(svc, create_principal(svc, "--name", "monitor-reader", "--role", "reader"))
    assert list(reader.diagnostic_settings.list(ACCOUNT)) == []
    with pytest.raises(HttpResponseError) as refused:
        reader.diagnostic_settings.create_or_update(
            ACCOUNT, "nope", to_storage(storage.account_name, category="ServiceLog")
        )
    assert refused.value.status_code == 403 and arm_code(refused.value) == "AuthorizationFailed"
    assert "Microsoft.Insights/diagnosticSettings/write" in str(refused.value.message)


def test_another_account_and_a_missing_setting_are_not_found(monitor: MonitorManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError):
        list(monitor.diagnostic_settings.list(account_path("otheraccount")))
    with pytest.raises(ResourceNotFoundError):
        monitor.diagnostic_settings.get(ACCOUNT, "never-made")


def test_a_restart_keeps_the_setting_and_its_effect(
    svc: Service, monitor: MonitorManagementClient, storage: LinkedStorage, target: LogTarget
) -> None:
    monitor.diagnostic_settings.create_or_update(
        ACCOUNT, "kept", to_storage(storage.account_name, category="ServiceLog")
    )
    svc.stop()
    svc.restart()
    kept = monitor.diagnostic_settings.get(ACCOUNT, "kept")
    assert kept.storage_account_id == storage_account_id(storage.account_name)
    pool_id = unique("restarted")
    create_pool(make_client(svc.url), pool_id, nodes=0)
    wait_for(lambda: pool_logged(target, pool_id), what="the create event after the restart")
    monitor.diagnostic_settings.delete(ACCOUNT, "kept")


def test_the_readme_example(
    svc: Service, monitor: MonitorManagementClient, storage: LinkedStorage, tmp_path: Path
) -> None:
    assert storage.account_name == "devstoreaccount1"  # the name the example gives (Azurite's)
    (tmp_path / "principal.json").write_text(json.dumps(create_principal(svc, "--name", "readme-monitoring")))
    script = tmp_path / "settings.py"
    script.write_text(readme_code_block("Diagnostic settings on the account", "python"))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "service-logs ['ServiceLog']"
    assert monitor.diagnostic_settings.get(ACCOUNT, "service-logs").storage_account_id == storage_account_id(
        "devstoreaccount1"
    )
    monitor.diagnostic_settings.delete(ACCOUNT, "service-logs")


@pytest.mark.parametrize(
    ("linked", "option", "status", "words"),
    [
        (False, [], 400, "it has no linked storage account"),
        (True, ["--diagnostic-logs", "stream"], 409, "where its --diagnostic-logs option says"),
    ],
)
def test_a_service_that_cannot_write_where_the_setting_says_refuses_it(
    tmp_path: Path, storage: LinkedStorage, linked: bool, option: list[str], status: int, words: str
) -> None:
    storage_args = ["--storage-connection-string", storage.connection_string] if linked else []
    service = start_service(tmp_path / "svc", *storage_args, *option)
    try:
        monitor = monitor_client(service, create_principal(service, "--name", "refused"))
        with pytest.raises(HttpResponseError) as refused:
            monitor.diagnostic_settings.create_or_update(
                ACCOUNT, "nowhere", to_storage(storage.account_name, category="ServiceLog")
            )
        assert refused.value.status_code == status and words in str(refused.value.message)
    finally:
        service.stop()
