"""Diagnostic settings on the Batch account (`Microsoft.Insights/diagnosticSettings`, 2021-05-01-preview) and
its diagnostic categories (`diagnosticSettingsCategories`): what azure-mgmt-monitor and
`az monitor diagnostic-settings` call.

    {account id}/providers/Microsoft.Insights/diagnosticSettings[/{name}]            GET (list), PUT, DELETE
    {account id}/providers/Microsoft.Insights/diagnosticSettingsCategories[/{name}]  GET

A setting's destination is a storage account, which must be the service's linked one (the only account it
writes to); Log Analytics, Event Hubs and partner destinations are refused. A setting that takes the
`ServiceLog` category (or the `allLogs` group) turns the Service Logs on (diagnostics/settings.py).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from batchyard.service.config import Settings
from batchyard.service.diagnostics.settings import (
    CATEGORY_GROUPS,
    LOG_CATEGORIES,
    METRIC_CATEGORIES,
    DiagnosticSettings,
    Setting,
    enabled_log_categories,
)
from batchyard.service.management import resources
from batchyard.service.management.accounts import the_account
from batchyard.service.management.cloud_error import CloudError
from batchyard.service.management.routing import ACCOUNT, Call, Operation, json_response, operation
from batchyard.service.storage.linked import LinkedStorage

ACTION = "Microsoft.Insights/diagnosticSettings"
SETTING_TYPE = "Microsoft.Insights/diagnosticSettings"
CATEGORY_TYPE = "Microsoft.Insights/diagnosticSettingsCategories"
SETTINGS_PATH = ACCOUNT + r"/providers/microsoft\.insights/diagnosticsettings"
CATEGORIES_PATH = ACCOUNT + r"/providers/microsoft\.insights/diagnosticsettingscategories"
MAX_SETTINGS = 5  # Azure's limit of diagnostic settings per resource
_NAME_FORBIDDEN = set("<>*%&:\\?+/")
# Destinations a setting may name that this service cannot write to.
_OTHER_DESTINATIONS = (
    "workspaceId",
    "eventHubAuthorizationRuleId",
    "eventHubName",
    "serviceBusRuleId",
    "marketplacePartnerId",
)


def _settings(request: Request) -> DiagnosticSettings:
    settings: DiagnosticSettings = request.app.state.diagnostic_settings
    return settings


def bad_request(message: str) -> CloudError:
    return CloudError(400, "BadRequest", message)


def _resource(account: str, setting: Setting) -> dict[str, Any]:
    name = setting["name"]
    return {
        "id": f"{resources.account_id(account)}/providers/microsoft.insights/diagnosticSettings/{name}",
        "name": name,
        "type": SETTING_TYPE,
        "properties": setting["properties"],
    }


def _category(account: str, name: str, kind: str, groups: tuple[str, ...]) -> dict[str, Any]:
    return {
        "id": f"{resources.account_id(account)}/providers/microsoft.insights/diagnosticSettingsCategories/{name}",
        "name": name,
        "type": CATEGORY_TYPE,
        "properties": {"categoryType": kind, "categoryGroups": list(groups)},
    }


def _categories(account: str) -> list[dict[str, Any]]:
    logs = [_category(account, name, "Logs", groups) for name, groups in LOG_CATEGORIES.items()]
    return logs + [_category(account, name, "Metrics", ()) for name in METRIC_CATEGORIES]


async def list_settings(call: Call) -> Response:
    state = the_account(call, f"{ACTION}/read")
    return json_response({"value": [_resource(state.name, s) for s in _settings(call.request).all()]})


async def get_setting(call: Call) -> Response:
    state = the_account(call, f"{ACTION}/read")
    name = call.params["name"]
    setting = _settings(call.request).get(name)
    if setting is None:
        raise CloudError(404, "ResourceNotFound", f"The diagnostic setting '{name}' does not exist.")
    return json_response(_resource(state.name, setting))


async def put_setting(call: Call) -> Response:
    state = the_account(call, f"{ACTION}/write")
    name = call.params["name"]
    if len(name) > 260 or _NAME_FORBIDDEN & set(name):
        raise bad_request(f"The diagnostic setting name '{name}' is invalid: it cannot contain any of <>*%&:\\?+/.")
    body = await call.body()
    properties = body.get("properties")
    if not isinstance(properties, dict):
        raise bad_request("A diagnostic setting's 'properties' is required (an object).")
    setting: Setting = {"name": name, "properties": _properties(call.request, properties)}
    store = _settings(call.request)
    _check_limit_and_sinks(store, setting)
    store.put(setting)
    return json_response(_resource(state.name, setting))


async def delete_setting(call: Call) -> Response:
    the_account(call, f"{ACTION}/delete")
    deleted = _settings(call.request).delete(call.params["name"])
    return Response(status_code=200 if deleted else 204)


async def list_categories(call: Call) -> Response:
    state = the_account(call, f"{ACTION}/read")
    return json_response({"value": _categories(state.name)})


async def get_category(call: Call) -> Response:
    state = the_account(call, f"{ACTION}/read")
    name = call.params["name"]
    for category in _categories(state.name):
        if category["name"].casefold() == name.casefold():
            return json_response(category)
    raise CloudError(404, "ResourceNotFound", f"The diagnostic category '{name}' is not supported.")


# --- a setting's body --------------------------------------------------------------------------------


def _properties(request: Request, given: dict[str, Any]) -> dict[str, Any]:
    for name in _OTHER_DESTINATIONS:
        if given.get(name) is not None:
            raise bad_request(
                f"The destination '{name}' is not supported by this service: diagnostic logs go to a storage "
                "account ('storageAccountId'), the service's linked one."
            )
    logs = given.get("logs") or []
    metrics = given.get("metrics") or []
    if not isinstance(logs, list) or not isinstance(metrics, list):
        raise bad_request("'logs' and 'metrics' must be arrays.")
    return {
        "storageAccountId": _storage_account(request, given.get("storageAccountId")),
        "logs": [_log(entry) for entry in logs],
        "metrics": [_metric(entry) for entry in metrics],
    }


def _storage_account(request: Request, value: Any) -> str:
    if value is None:
        raise bad_request("A diagnostic setting needs a destination: 'storageAccountId' (the linked storage account).")
    name = resources.storage_account_name(value) if isinstance(value, str) else None
    if name is None:
        raise CloudError(
            400,
            "LinkedInvalidPropertyId",
            f"Property id '{value}' at path 'properties.storageAccountId' is invalid. Expect a storage account's "
            "fully qualified resource id: '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
            "/providers/Microsoft.Storage/storageAccounts/{accountName}'.",
        )
    linked = _settings(request).linked_account
    if linked is None:
        raise bad_request(
            f"The storage account '{name}' is not known to this service: it has no linked storage account "
            "(start it with --storage-connection-string or --azurite)."
        )
    if name.casefold() != linked.casefold():
        raise bad_request(
            f"The storage account '{name}' is not known to this service: diagnostic logs can go only to its linked "
            f"storage account, '{linked}'."
        )
    _check_option_destination(request, linked)
    return value


def _check_option_destination(request: Request, linked: str) -> None:
    """`--diagnostic-logs` with another destination than the linked account keeps the records there: a
    service writes its records to one storage account."""
    option = _service_settings(request).diagnostic_logs
    if option is None:
        return
    target = option.storage_connection_string
    if target is None or LinkedStorage.from_connection_string(target).account_name.casefold() != linked.casefold():
        raise CloudError(
            409,
            "Conflict",
            "This service writes its diagnostic logs where its --diagnostic-logs option says, not to the linked "
            f"storage account '{linked}': restart it without the option to send them where diagnostic settings say.",
        )


def _service_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _log(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise bad_request("Each of 'logs' must be an object.")
    category, group = entry.get("category"), entry.get("categoryGroup")
    if (category is None) == (group is None):
        raise bad_request("Each of 'logs' names either a 'category' or a 'categoryGroup'.")
    if category is not None:
        return {
            "category": _spelled(category, tuple(LOG_CATEGORIES), "Category"),
            "categoryGroup": None,
            **_switches(entry),
        }
    return {"category": None, "categoryGroup": _spelled(group, CATEGORY_GROUPS, "Category group"), **_switches(entry)}


def _metric(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise bad_request("Each of 'metrics' must be an object.")
    time_grain = entry.get("timeGrain")
    if time_grain is not None and not isinstance(time_grain, str):
        raise bad_request("A metric's 'timeGrain' must be an ISO 8601 duration.")
    return {
        "timeGrain": time_grain,
        "category": _spelled(entry.get("category"), METRIC_CATEGORIES, "Category"),
        **_switches(entry),
    }


def _spelled(value: Any, known: tuple[str, ...], what: str) -> str:
    """`value` as `known` spells it (ARM's names are case-insensitive); 400 for a name not in it."""
    for name in known:
        if isinstance(value, str) and value.casefold() == name.casefold():
            return name
    raise bad_request(f"{what} '{value}' is not supported. The supported ones are {', '.join(known)}.")


def _switches(entry: dict[str, Any]) -> dict[str, Any]:
    """`enabled` and the (deprecated, kept but not applied) `retentionPolicy`."""
    enabled = entry.get("enabled")
    if not isinstance(enabled, bool):
        raise bad_request("Each log and metric setting needs 'enabled' (true or false).")
    retention = entry.get("retentionPolicy")
    if retention is None:
        return {"enabled": enabled, "retentionPolicy": {"enabled": False, "days": 0}}
    days = retention.get("days", 0) if isinstance(retention, dict) else None
    if not isinstance(retention, dict) or not isinstance(retention.get("enabled"), bool) or not _days(days):
        raise bad_request('A \'retentionPolicy\' is {"enabled": true or false, "days": a number of days >= 0}.')
    return {"enabled": enabled, "retentionPolicy": {"enabled": retention["enabled"], "days": days}}


def _days(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_limit_and_sinks(store: DiagnosticSettings, setting: Setting) -> None:
    """Azure's rules across settings: five per resource at most, and a category goes to one destination once."""
    others = [other for other in store.all() if other["name"].casefold() != setting["name"].casefold()]
    if len(others) >= MAX_SETTINGS:
        raise bad_request(f"A resource can have at most {MAX_SETTINGS} diagnostic settings.")
    sink = setting["properties"]["storageAccountId"]
    taken = enabled_log_categories(setting)
    for other in others:
        if other["properties"].get("storageAccountId", "").casefold() != sink.casefold():
            continue
        shared = sorted(taken & enabled_log_categories(other))
        if shared:
            raise bad_request(
                f"Data sink '{sink}' is already used in diagnostic setting '{other['name']}' for category "
                f"'{shared[0]}'. Data sinks can't be reused in different settings on the same category for the "
                "same resource."
            )


OPERATIONS: list[Operation] = [
    operation("GET", SETTINGS_PATH, list_settings, provider="insights"),
    operation("GET", SETTINGS_PATH + r"/(?P<name>[^/]+)", get_setting, provider="insights"),
    operation("PUT", SETTINGS_PATH + r"/(?P<name>[^/]+)", put_setting, provider="insights"),
    operation("DELETE", SETTINGS_PATH + r"/(?P<name>[^/]+)", delete_setting, provider="insights"),
    operation("GET", CATEGORIES_PATH, list_categories, provider="insights"),
    operation("GET", CATEGORIES_PATH + r"/(?P<name>[^/]+)", get_category, provider="insights"),
]
