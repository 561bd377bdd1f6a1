"""Calls about the subscription rather than the account: location quotas and name availability
(Location_*), the provider's operations (Operations_List), and the subscription and resource-group calls
clients make first (`az login` lists the subscriptions)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from batchyard.service.account_paths import ACCOUNT_NAME
from batchyard.service.config import Settings
from batchyard.service.identity.provider import IdentityProvider
from batchyard.service.management import resources
from batchyard.service.management.account_directory import AccountDirectory
from batchyard.service.management.cloud_error import invalid_body
from batchyard.service.management.routing import (
    LOCATION_PATH,
    RESOURCE_GROUP_PATH,
    SUBSCRIPTION,
    Call,
    Operation,
    json_response,
    operation,
)


async def location_quotas(call: Call) -> Response:
    resources.check_location(call.params["location"])
    settings: Settings = call.request.app.state.settings
    return json_response({"accountQuota": settings.account_quota})


async def check_name_availability(call: Call) -> Response:
    resources.check_location(call.params["location"])
    body = await call.body()
    name, kind = body.get("name"), body.get("type")
    if not isinstance(name, str):
        raise invalid_body("'name' is required (a string).")
    # the type is a constant some clients leave out (azure-mgmt-batch 19)
    if kind is not None and (not isinstance(kind, str) or kind.lower() != resources.ACCOUNT_TYPE.lower()):
        raise invalid_body(f"'type' must be '{resources.ACCOUNT_TYPE}', not {kind!r}.")
    accounts: AccountDirectory = call.request.app.state.accounts
    if accounts.get(name) is not None:
        taken = f"An account named '{name}' is already in use."
        return json_response({"nameAvailable": False, "reason": "AlreadyExists", "message": taken})
    if not ACCOUNT_NAME.fullmatch(name):
        return json_response(
            {
                "nameAvailable": False,
                "reason": "Invalid",
                "message": "Account name must be 3 to 24 characters long and use numbers and lower-case letters only.",
            }
        )
    return json_response({"nameAvailable": True})


async def list_operations(call: Call) -> Response:
    return json_response(resources.operations())


def _subscription(call: Call) -> dict[str, Any]:
    identity: IdentityProvider = call.request.app.state.identity  # the caller was authenticated by it
    return resources.subscription(identity.tenant_id)


async def get_subscription(call: Call) -> Response:
    return json_response(_subscription(call))


async def list_subscriptions(call: Call) -> Response:
    return json_response({"value": [_subscription(call)], "count": {"type": "Total", "value": 1}})


def _group(call: Call) -> str:
    # check_scope has refused every other group; answer with the name as the caller spelled it, as ARM does
    return call.params["group"]


async def get_resource_group(call: Call) -> Response:
    return json_response(resources.resource_group(_group(call)))


async def resource_group_exists(call: Call) -> Response:
    return Response(status_code=204)


async def list_resource_groups(call: Call) -> Response:
    return json_response({"value": [resources.resource_group(resources.RESOURCE_GROUP)]})


OPERATIONS: list[Operation] = [
    operation("GET", LOCATION_PATH + "/quotas", location_quotas),
    operation("POST", LOCATION_PATH + "/checknameavailability", check_name_availability),
    operation("GET", r"/providers/microsoft\.batch/operations", list_operations),
    operation("GET", "/subscriptions", list_subscriptions, provider="resources"),
    operation("GET", SUBSCRIPTION, get_subscription, provider="resources"),
    operation("GET", SUBSCRIPTION + "/resourcegroups", list_resource_groups, provider="resources"),
    operation("GET", RESOURCE_GROUP_PATH, get_resource_group, provider="resources"),
    operation("HEAD", RESOURCE_GROUP_PATH, resource_group_exists, provider="resources"),
]
