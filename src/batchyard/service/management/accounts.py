"""Batch account operations (BatchAccount_*): get, list, create, update, delete, listKeys, regenerateKeys and
syncAutoStorageKeys, over the service's accounts (management/account_directory.py).

The service's own account (the command line's) cannot be deleted; the others can, and their pools, jobs,
job schedules, certificates and applications go with them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from batchyard.service.account_paths import ACCOUNT_NAME
from batchyard.service.api.common import service_of
from batchyard.service.config import AUTHENTICATION_MODES, SHARED_KEY, Settings
from batchyard.service.engine.facade import BatchService
from batchyard.service.management import resources
from batchyard.service.management.account_directory import AccountDirectory
from batchyard.service.management.account_state import KEY_NAMES, AccountState
from batchyard.service.management.cloud_error import SERVICE_ACCOUNT_CODE, CloudError, invalid_body
from batchyard.service.management.routing import (
    ACCOUNT,
    ACCOUNTS,
    DELETE_STATUS_SUFFIX,
    Call,
    Operation,
    deleting,
    json_response,
    operation,
)
from batchyard.service.storage.linked import LinkedStorage

ACTION = "Microsoft.Batch/batchAccounts"
# Account properties a create or update may carry, with the only value this service has for them.
_FIXED_PROPERTIES = {
    "encryption": {"keySource": "Microsoft.Batch"},
    "publicNetworkAccess": "Enabled",
    "poolAllocationMode": "BatchService",
}


def directory(request: Request) -> AccountDirectory:
    accounts: AccountDirectory = request.app.state.accounts
    return accounts


def account_service(call: Call, state: AccountState) -> BatchService:
    """The data plane's operations, acting for this account."""
    return service_of(call.request).for_account(directory(call.request).engine_account(state))


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _linked(call: Call) -> LinkedStorage | None:
    """The account's linked (auto-storage) account, from `serve --storage-connection-string`."""
    return service_of(call.request).applications.storage


def _account(call: Call, state: AccountState) -> dict[str, Any]:
    engine_account = directory(call.request).engine_account(state)
    return resources.account(state, engine_account, _settings(call.request), _linked(call))


def batch_account(call: Call, action: str) -> AccountState:
    """the_account for a Microsoft.Batch action on the account or below it (`read`, `pools/write`)."""
    return the_account(call, f"{ACTION}/{action}")


def the_account(call: Call, action: str) -> AccountState:
    """The account the path names when the caller may do `action` on it (a provider's action, as
    `Microsoft.Batch/batchAccounts/read`); 404 for a name the service has no account of."""
    name = call.params["account"]
    state = directory(call.request).get(name)
    if state is None:
        raise CloudError(
            404,
            "ResourceNotFound",
            f"The Resource '{ACTION}/{name}' under resource group '{call.params['group']}' was not found.",
        )
    call.caller.require(state.name, call.request.method, action, resources.account_id(state.name))
    return state


async def get_account(call: Call) -> Response:
    state = batch_account(call, "read")
    return json_response(_account(call, state))


async def list_accounts(call: Call) -> Response:
    visible = [_account(call, state) for state in directory(call.request).all() if call.caller.may_read(state.name)]
    return json_response({"value": visible})


async def create_account(call: Call) -> Response:
    """Create an account, or update it when it exists (ARM's PUT); made at once, so the answer is final."""
    name = call.params["account"]
    accounts = directory(call.request)
    body = await call.body()
    location = body.get("location")
    if not isinstance(location, str):
        raise invalid_body("A Batch account's 'location' is required (a string).")
    existing = accounts.get(name)
    if location.replace(" ", "").lower() != resources.LOCATION:
        if existing is not None:
            raise CloudError(
                409,
                "InvalidResourceLocation",
                f"The resource '{existing.name}' already exists in location '{resources.LOCATION}' in resource "
                f"group '{resources.RESOURCE_GROUP}'. A resource with the same name cannot be created in location "
                f"'{location}'.",
            )
        resources.check_location(location)
    if existing is not None and existing.deleting:
        raise CloudError(
            409,
            "AccountBeingDeleted",
            f"The account '{existing.name}' is being deleted; its name can be used again once the delete is done.",
        )
    if existing is not None:
        state = batch_account(call, "write")
        _apply(state, body, _linked(call))
        return json_response(_account(call, state))
    call.caller.require(name, call.request.method, f"{ACTION}/write", resources.account_id(name), creating=True)
    if not ACCOUNT_NAME.fullmatch(name):
        raise CloudError(
            400,
            "AccountNameInvalid",
            f"'{name}' is not a valid Batch account name: 3 to 24 characters, numbers and lower-case letters only.",
        )
    quota = _settings(call.request).account_quota
    if len(accounts.all()) >= quota:
        raise CloudError(
            409,
            "AccountQuotaExceeded",
            f"The subscription has reached its quota of {quota} Batch accounts in location '{resources.LOCATION}' "
            "(`batchyard serve --account-quota`).",
        )
    modes = _requested_modes(body)
    state = accounts.create(name, modes)
    try:
        _apply(state, body, _linked(call))
    except CloudError:
        accounts.remove(state)  # nothing half-made
        raise
    return json_response(_account(call, state))


def _requested_modes(body: dict[str, Any]) -> tuple[str, ...]:
    """A new account's allowedAuthenticationModes: as asked, else all of them (as Azure makes accounts)."""
    properties = body.get("properties")
    asked = properties.get("allowedAuthenticationModes") if isinstance(properties, dict) else None
    return _modes(asked) if asked is not None else AUTHENTICATION_MODES


async def update_account(call: Call) -> Response:
    state = batch_account(call, "write")
    _apply(state, await call.body(), _linked(call))
    return json_response(_account(call, state))


async def delete_account(call: Call) -> Response:
    """Delete an account made through the management plane, with everything in it: its data plane refuses
    every request at once, and the delete is a long-running operation (202, routing.deleting) until its pools'
    nodes are gone; then the account is (its name is free again)."""
    accounts = directory(call.request)
    if accounts.get(call.params["account"]) is None:
        return Response(status_code=204)  # ARM: deleting what is not there succeeds
    state = batch_account(call, "delete")
    if accounts.is_own(state):
        raise CloudError(
            409,
            SERVICE_ACCOUNT_CODE,
            f"'{state.name}' is the service's own account (`batchyard serve --account-name`), which cannot be "
            "deleted: stop the service and remove its data directory instead.",
        )
    if not state.deleting:
        state.deleting = True
        await account_service(call, state).delete_account_data()
    return _deletion_status(call, state)


async def delete_status(call: Call) -> Response:
    """The Location of an account's delete: 202 while its data goes, 200 once the account is gone."""
    state = directory(call.request).get(call.params["account"])
    if state is None or not state.deleting:
        return Response(status_code=200)
    call.caller.require(state.name, "DELETE", f"{ACTION}/delete", resources.account_id(state.name))
    return _deletion_status(call, state)


def _deletion_status(call: Call, state: AccountState) -> Response:
    if not account_service(call, state).account_is_empty():
        return deleting(call)
    directory(call.request).remove(state)
    service_of(call.request).forget_account(state.name)
    return Response(status_code=200)


async def list_keys(call: Call) -> Response:
    state = batch_account(call, "listKeys/action")
    _require_shared_key(state)
    return json_response(resources.keys(state))


async def regenerate_key(call: Call) -> Response:
    state = batch_account(call, "regenerateKeys/action")
    _require_shared_key(state)
    body = await call.body()
    spelled = {name.lower(): name for name in KEY_NAMES}
    key_name = body.get("keyName")
    if not isinstance(key_name, str) or key_name.lower() not in spelled:
        raise invalid_body(f"'keyName' must be one of {', '.join(KEY_NAMES)}, not {key_name!r}.")
    state.regenerate(spelled[key_name.lower()])
    return json_response(resources.keys(state))


def _require_shared_key(state: AccountState) -> None:
    if SHARED_KEY not in state.modes:
        raise CloudError(
            409,
            "OperationNotAllowed",
            f"The account '{state.name}' does not allow SharedKey authentication (allowedAuthenticationModes: "
            f"{', '.join(state.modes)}), so it has no keys to list or regenerate.",
        )


def _apply(state: AccountState, body: dict[str, Any], linked: LinkedStorage | None) -> None:
    """Apply a create's or an update's tags and allowedAuthenticationModes; refuse what cannot change here."""
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())):
        raise invalid_body("'tags' must be an object of string values.")
    identity = body.get("identity")
    if identity is not None and (not isinstance(identity, dict) or identity.get("type", "None") != "None"):
        raise invalid_body("This service's Batch account has no managed identity: 'identity.type' must be 'None'.")
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise invalid_body("'properties' must be an object.")
    modes = None
    for name, value in properties.items():
        if name == "allowedAuthenticationModes":
            modes = _modes(value)
        elif name in _FIXED_PROPERTIES and value in (None, _FIXED_PROPERTIES[name]):
            continue
        elif name == "autoStorage":
            _check_auto_storage(value, linked)
        else:
            raise invalid_body(f"The property '{name}' (value {value!r}) cannot be set on this service's account.")
    state.update(modes, tags)


def _check_auto_storage(value: Any, linked: LinkedStorage | None) -> None:
    """An autoStorage that names the linked account (what a read-modify-write sends back) changes nothing;
    another account cannot be linked here: the link comes from the command line."""
    how = "the linked storage account is given with `batchyard serve --storage-connection-string`"
    if not isinstance(value, dict) or not isinstance(value.get("storageAccountId"), str):
        raise invalid_body("'autoStorage.storageAccountId' is required (a storage account's resource id).")
    if linked is None:
        raise invalid_body(f"This service's account has no linked storage account to name: {how}.")
    named = resources.storage_account_name(value["storageAccountId"])
    if named is None or named.lower() != linked.account_name.lower():
        raise invalid_body(
            f"The storage account '{value['storageAccountId']}' is not the linked one "
            f"('{resources.storage_account_id(linked.account_name)}'): {how}."
        )
    mode = value.get("authenticationMode")
    if mode is not None and str(mode).lower() != "storagekeys":
        raise invalid_body(f"'autoStorage.authenticationMode' can only be 'StorageKeys' here, not {mode!r}.")


async def sync_auto_storage_keys(call: Call) -> Response:
    """The linked account's key is the command line's: syncing takes no work, only a new lastKeySync."""
    state = batch_account(call, "syncAutoStorageKeys/action")
    if _linked(call) is None:
        raise CloudError(
            409,
            "AutoStorageNotConfigured",
            f"The account '{state.name}' has no linked storage account whose keys could be synchronized.",
        )
    state.keys_synced()
    return Response(status_code=204)


def _modes(value: Any) -> tuple[str, ...]:
    spelled = {mode.lower(): mode for mode in AUTHENTICATION_MODES}
    if not isinstance(value, list) or not value or not all(isinstance(m, str) and m.lower() in spelled for m in value):
        raise invalid_body(
            f"'allowedAuthenticationModes' must list one or more of {', '.join(AUTHENTICATION_MODES)}, not {value!r}."
        )
    return tuple(dict.fromkeys(spelled[mode.lower()] for mode in value))


OPERATIONS: list[Operation] = [
    operation("GET", r"/subscriptions/(?P<subscription>[^/]+)/providers/microsoft\.batch/batchaccounts", list_accounts),
    operation("GET", ACCOUNTS, list_accounts),
    operation("GET", ACCOUNT, get_account),
    operation("PUT", ACCOUNT, create_account),
    operation("PATCH", ACCOUNT, update_account),
    operation("DELETE", ACCOUNT, delete_account),
    operation("GET", ACCOUNT + DELETE_STATUS_SUFFIX, delete_status),
    operation("POST", ACCOUNT + "/listkeys", list_keys),
    operation("POST", ACCOUNT + "/regeneratekeys", regenerate_key),
    operation("POST", ACCOUNT + "/syncautostoragekeys", sync_auto_storage_keys),
]
