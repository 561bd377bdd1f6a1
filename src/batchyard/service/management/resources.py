"""The management plane's resources as JSON (BatchManagement.json, 2024-07-01): the account, its keys,
the subscription, resource groups, location quotas and the operations served."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from batchyard.service.config import Settings
from batchyard.service.engine.account_keys import account_path
from batchyard.service.management.account_state import AccountState
from batchyard.service.management.cloud_error import CloudError

if TYPE_CHECKING:  # azure-storage-blob takes 0.15 s to import: not for every CLI command
    from batchyard.service.storage.linked import LinkedStorage

# The one subscription, resource group and location the service's account lives in (README, Management plane).
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
SUBSCRIPTION_NAME = "batchyard"
RESOURCE_GROUP = "batchyard"
LOCATION = "local"
ACCOUNT_TYPE = "Microsoft.Batch/batchAccounts"


def check_location(location: str) -> None:
    """400 LocationNotAvailableForResourceType for a location other than the service's."""
    if location.replace(" ", "").lower() != LOCATION:
        raise CloudError(
            400,
            "LocationNotAvailableForResourceType",
            f"The provided location '{location}' is not available for resource type '{ACCOUNT_TYPE}'. "
            f"List of available regions for the resource type is '{LOCATION}'.",
        )


def resource_group_id(group: str = RESOURCE_GROUP) -> str:
    return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}"


def account_id(name: str) -> str:
    return f"{resource_group_id()}/providers/{ACCOUNT_TYPE}/{name}"


def storage_account_id(name: str) -> str:
    """The resource id the linked storage account goes by (same subscription and group as the account)."""
    return f"{resource_group_id()}/providers/Microsoft.Storage/storageAccounts/{name}"


_STORAGE_ACCOUNT_ID = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.storage/storageaccounts/(?P<name>[^/]+)$",
    re.IGNORECASE,
)


def storage_account_name(resource_id: str) -> str | None:
    """The storage account a `Microsoft.Storage/storageAccounts` resource id names; None if it names none."""
    match = _STORAGE_ACCOUNT_ID.match(resource_id)
    return match["name"] if match else None


def account_endpoint(settings: Settings, engine_account: str | None) -> str:
    """Host and port of the HTTPS listener, and the account's path there (engine/account_keys.account_path):
    clients call `"https://" + accountEndpoint`."""
    return urlsplit(settings.https_url or settings.base_url).netloc + account_path(engine_account)


def account(
    state: AccountState, engine_account: str | None, settings: Settings, linked: LinkedStorage | None
) -> dict[str, Any]:
    """The account resource (`engine_account`: its name as the engine keys it, None for the service's own)."""
    properties: dict[str, Any] = {
        "accountEndpoint": account_endpoint(settings, engine_account),
        "provisioningState": "Deleting" if state.deleting else "Succeeded",
        "poolAllocationMode": "BatchService",
        "publicNetworkAccess": "Enabled",
        "encryption": {"keySource": "Microsoft.Batch"},
        "dedicatedCoreQuota": settings.core_quota,
        "lowPriorityCoreQuota": settings.low_priority_core_quota,
        "dedicatedCoreQuotaPerVMFamilyEnforced": False,
        "dedicatedCoreQuotaPerVMFamily": [],
        "activeJobAndJobScheduleQuota": settings.job_quota,
        "poolQuota": settings.pool_quota,
        "allowedAuthenticationModes": list(state.modes),
    }
    if linked is not None:
        properties["autoStorage"] = {
            "storageAccountId": storage_account_id(linked.account_name),
            "lastKeySync": state.last_key_sync,
            "authenticationMode": "StorageKeys",
        }
    return {
        "id": account_id(state.name),
        "name": state.name,
        "type": ACCOUNT_TYPE,
        "location": LOCATION,
        "tags": state.tags,
        "identity": {"type": "None"},
        "properties": properties,
    }


def keys(state: AccountState) -> dict[str, Any]:
    return {"accountName": state.name, "primary": state.key("Primary"), "secondary": state.key("Secondary")}


def subscription(tenant_id: str) -> dict[str, Any]:
    """The one subscription (Microsoft.Resources Subscriptions_Get), in the identity provider's tenant."""
    return {
        "id": f"/subscriptions/{SUBSCRIPTION_ID}",
        "subscriptionId": SUBSCRIPTION_ID,
        "tenantId": tenant_id,
        "displayName": SUBSCRIPTION_NAME,
        "state": "Enabled",
        "subscriptionPolicies": {"spendingLimit": "Off"},
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "tags": {},
    }


def resource_group(name: str) -> dict[str, Any]:
    return {
        "id": resource_group_id(name),
        "name": name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": LOCATION,
        "properties": {"provisioningState": "Succeeded"},
    }


# (operation, description) of each Microsoft.Batch operation this service serves
_OPERATIONS = (
    ("batchAccounts/read", "Batch Accounts", "List or Get Batch Accounts", "Lists or gets Batch accounts."),
    ("batchAccounts/write", "Batch Accounts", "Update Batch Account", "Updates a Batch account."),
    ("batchAccounts/listKeys/action", "Batch Accounts", "List Batch Account Keys", "Lists the account's keys."),
    (
        "batchAccounts/regenerateKeys/action",
        "Batch Accounts",
        "Regenerate Batch Account Keys",
        "Regenerates the account's primary or secondary key.",
    ),
    ("batchAccounts/applications/read", "Applications", "List or Get Applications", "Lists or gets applications."),
    (
        "batchAccounts/applications/write",
        "Applications",
        "Create or Update Application",
        "Creates or updates an application.",
    ),
    ("batchAccounts/applications/delete", "Applications", "Delete Application", "Deletes an application."),
    (
        "batchAccounts/applications/versions/write",
        "Application Packages",
        "Create Application Package",
        "Creates an application package and returns where to upload it.",
    ),
    (
        "batchAccounts/applications/versions/activate/action",
        "Application Packages",
        "Activate Application Package",
        "Activates an uploaded application package.",
    ),
    ("batchAccounts/pools/read", "Pools", "List or Get Pools", "Lists or gets pools."),
    ("batchAccounts/pools/write", "Pools", "Create or Update Pool", "Creates or updates a pool."),
    ("batchAccounts/pools/delete", "Pools", "Delete Pool", "Deletes a pool."),
    (
        "batchAccounts/syncAutoStorageKeys/action",
        "Batch Accounts",
        "Synchronize Auto Storage Keys",
        "Synchronizes the keys of the account's linked storage account.",
    ),
    ("locations/quotas/read", "Locations", "Get Batch Quotas", "Gets the Batch quotas of a location."),
    (
        "locations/checkNameAvailability/action",
        "Locations",
        "Check Batch Account Name Availability",
        "Checks that an account name is valid and not in use.",
    ),
    ("operations/read", "Operations", "List Operations", "Lists the operations of Microsoft.Batch."),
)


def operations() -> dict[str, Any]:
    return {
        "value": [
            {
                "name": f"Microsoft.Batch/{name}",
                "isDataAction": False,
                "origin": "user,system",
                "display": {
                    "provider": "Microsoft Batch",
                    "resource": resource,
                    "operation": operation,
                    "description": description,
                },
            }
            for name, resource, operation, description in _OPERATIONS
        ]
    }
