"""The management-plane client the suite's preparers ask for (`create_mgmt_client(BatchManagementClient)`),
answered here by batchyard: a Batch account is a batchyard service started for it (accounts.py), its
applications go through the service's management surface (/management/applications, see README), and a
pool created "through ARM" becomes the same pool created through the service's Batch API. Only the calls
batch_preparers.py makes exist; anything else fails loudly (AttributeError)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import httpx

from batchyard.service.auth import format_ocp_date, sign_request

from . import accounts

API_VERSION = "2025-06-01"


def call(account: accounts.LocalAccount, method: str, path: str, body: Any = None) -> Any:
    url = f"{account.service.url}{path}?api-version={API_VERSION}"
    content = b"" if body is None else json.dumps(body).encode()
    headers = {"ocp-date": format_ocp_date(), "content-type": "application/json; odata=minimalmetadata"}
    if content:
        headers["content-length"] = str(len(content))
    headers["Authorization"] = sign_request(account.name, account.key, method, url, headers)
    answer = httpx.request(method, url, content=content, headers=headers, timeout=60)
    if answer.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text}")
    return answer.json() if answer.content else None


class _Done:
    def __init__(self, value: Any = None) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value

    def wait(self) -> None:
        return None


class _Accounts:
    def begin_create(self, group: str, name: str, parameters: Any) -> _Done:
        account = accounts.create_account(name, with_storage=parameters.auto_storage is not None)
        return _Done(SimpleNamespace(name=name, account_endpoint=account.account_endpoint))

    def get(self, group: str, name: str) -> Any:
        # An "existing" account (a user-subscription one in Azure): made on first use.
        try:
            account = accounts.account(name)
        except KeyError:
            account = accounts.create_account(name, with_storage=False)
        return SimpleNamespace(name=name, account_endpoint=account.account_endpoint)

    def get_keys(self, group: str, name: str) -> Any:
        account = accounts.account(name)
        return SimpleNamespace(account_name=account.name, primary=account.key, secondary=account.key)

    def begin_delete(self, group: str, name: str) -> _Done:
        accounts.delete_account(name)
        return _Done()


class _Applications:
    def create(self, group: str, account_name: str, application: str, parameters: Any = None) -> None:
        call(accounts.account(account_name), "PUT", f"/management/applications/{application}", {})


class _ApplicationPackages:
    def create(self, group: str, account_name: str, application: str, version: str, parameters: Any = None) -> Any:
        path = f"/management/applications/{application}/versions/{version}"
        doc = call(accounts.account(account_name), "PUT", path, {})
        return SimpleNamespace(storage_url=doc["properties"]["storageUrl"])

    def activate(self, group: str, account_name: str, application: str, version: str, parameters: Any) -> None:
        path = f"/management/applications/{application}/versions/{version}/activate"
        call(accounts.account(account_name), "POST", path, dict(parameters))


class _Pools:
    def create(self, group: str, account_name: str, pool_name: str, parameters: Any) -> Any:
        call(accounts.account(account_name), "POST", "/pools", batch_pool(pool_name, parameters.as_dict()))
        return self.get(group, account_name, pool_name)

    def get(self, group: str, account_name: str, pool_name: str) -> Any:
        from azure.mgmt.batch import models

        account = accounts.account(account_name)
        for _ in range(600):
            pool = call(account, "GET", f"/pools/{pool_name}")
            if pool["allocationState"] == "steady":
                break
            time.sleep(0.1)
        steady = models.AllocationState.STEADY if pool["allocationState"] == "steady" else pool["allocationState"]
        return SimpleNamespace(
            name=pool_name, id=pool_name, allocation_state=steady, current_dedicated_nodes=pool["currentDedicatedNodes"]
        )

    def begin_delete(self, group: str, account_name: str, pool_name: str) -> _Done:
        try:
            call(accounts.account(account_name), "DELETE", f"/pools/{pool_name}")
        except (KeyError, RuntimeError):
            pass  # the account (service) is gone already, or so is the pool
        return _Done()


def batch_pool(pool_id: str, arm: dict[str, Any]) -> dict[str, Any]:
    """An ARM pool (Microsoft.Batch/batchAccounts/pools properties) as the Batch API's pool."""
    props = arm.get("properties", arm)
    pool: dict[str, Any] = {"id": pool_id, "vmSize": props["vmSize"]}
    for same in ("displayName", "startTask", "applicationPackages", "metadata", "taskSlotsPerNode"):
        if same in props:
            pool[same] = props[same]
    if "userAccounts" in props:
        # ARM spells the elevation level "Admin", the Batch API "admin".
        pool["userAccounts"] = [
            user | {"elevationLevel": user["elevationLevel"].lower()} if "elevationLevel" in user else user
            for user in props["userAccounts"]
        ]
    if "virtualMachineConfiguration" in props.get("deploymentConfiguration", {}):
        pool["virtualMachineConfiguration"] = props["deploymentConfiguration"]["virtualMachineConfiguration"]
    fixed = props.get("scaleSettings", {}).get("fixedScale")
    if fixed is not None:
        pool["targetDedicatedNodes"] = fixed.get("targetDedicatedNodes", 0)
        pool["targetLowPriorityNodes"] = fixed.get("targetLowPriorityNodes", 0)
    auto = props.get("scaleSettings", {}).get("autoScale")
    if auto is not None:
        pool["enableAutoScale"] = True
        pool["autoScaleFormula"] = auto["formula"]
    endpoints = props.get("networkConfiguration", {}).get("endpointConfiguration")
    if endpoints is not None:
        pool["networkConfiguration"] = {"endpointConfiguration": {"inboundNATPools": endpoints["inboundNatPools"]}}
    return pool


class LocalBatchManagementClient:
    """What `BatchManagementClient` offers the preparers."""

    def __init__(self) -> None:
        self.batch_account = _Accounts()
        self.application = _Applications()
        self.application_package = _ApplicationPackages()
        self.pool = _Pools()
