"""Applications and application packages through ARM (Application_*, ApplicationPackage_*).

They are the account's one registry (storage/applications.py): a package created and activated here is the
package the data plane lists and pools and tasks deploy, and the reverse. A package's `storageUrl` is a write
SAS URL in the linked storage (Azurite locally); the client uploads the zip there, then activates.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from batchyard.service.management import resources
from batchyard.service.management.accounts import account_service, batch_account
from batchyard.service.management.cloud_error import invalid_body
from batchyard.service.management.routing import ACCOUNT, Call, Operation, json_response, operation
from batchyard.service.storage.applications import ApplicationRegistry

APPLICATION_TYPE = "Microsoft.Batch/batchAccounts/applications"
PACKAGE_TYPE = "Microsoft.Batch/batchAccounts/applications/versions"
APPLICATIONS = ACCOUNT + "/applications"
APPLICATION = APPLICATIONS + r"/(?P<application>[^/]+)"
VERSIONS = APPLICATION + "/versions"
VERSION = VERSIONS + r"/(?P<version>[^/]+)"
# ARM spells a package's state in PascalCase (PackageState), the registry as the data plane does.
_PACKAGE_STATES = {"pending": "Pending", "active": "Active"}


def application_id(account: str, app_id: str) -> str:
    return f"{resources.account_id(account)}/applications/{app_id}"


def _application(account: str, app: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": application_id(account, app["id"]),
        "name": app["id"],
        "type": APPLICATION_TYPE,
        "properties": {
            "displayName": app["displayName"],
            "allowUpdates": app["allowUpdates"],
            "defaultVersion": app["defaultVersion"],
        },
    }


def _package(account: str, app: dict[str, Any], package: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {"state": _PACKAGE_STATES.get(package["state"], package["state"])}
    for name in ("format", "lastActivationTime"):
        if package.get(name) is not None:
            properties[name] = package[name]
    return {
        "id": f"{application_id(account, app['id'])}/versions/{package['version']}",
        "name": package["version"],
        "type": PACKAGE_TYPE,
        "properties": properties,
    }


def _registry(call: Call, action: str) -> tuple[str, ApplicationRegistry]:
    """The account's name and application registry, once the caller may do `action` on applications."""
    account = batch_account(call, action)
    return account.name, account_service(call, account).applications


async def _properties(call: Call) -> dict[str, Any]:
    body = await call.body()
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise invalid_body("'properties' must be an object.")
    unknown = sorted(set(properties) - {"displayName", "allowUpdates", "defaultVersion"})
    if unknown:
        raise invalid_body(f"An application has no property '{unknown[0]}'.")
    return properties


async def list_applications(call: Call) -> Response:
    account, registry = _registry(call, "applications/read")
    apps = sorted(registry.apps.values(), key=lambda app: app["id"].lower())
    return json_response({"value": [_application(account, app) for app in apps]})


async def get_application(call: Call) -> Response:
    account, registry = _registry(call, "applications/read")
    return json_response(_application(account, registry.get(call.params["application"])))


async def create_application(call: Call) -> Response:
    """PUT creates the application, or sets the properties it names when it exists (ARM's PUT is idempotent)."""
    account, registry = _registry(call, "applications/write")
    properties = await _properties(call)
    name = call.params["application"]
    if name.lower() in registry.apps:
        app = registry.update(name, properties)
    else:
        app = registry.create(name, properties)
    return json_response(_application(account, app))


async def update_application(call: Call) -> Response:
    account, registry = _registry(call, "applications/write")
    app = registry.update(call.params["application"], await _properties(call))
    return json_response(_application(account, app))


async def delete_application(call: Call) -> Response:
    _, registry = _registry(call, "applications/delete")
    registry.delete(call.params["application"])
    return Response(status_code=200)


async def list_packages(call: Call) -> Response:
    account, registry = _registry(call, "applications/versions/read")
    app = registry.get(call.params["application"])
    return json_response({"value": [_package(account, app, package) for package in app["packages"].values()]})


async def get_package(call: Call) -> Response:
    account, registry = _registry(call, "applications/versions/read")
    app_id, version = call.params["application"], call.params["version"]
    return json_response(_package(account, registry.get(app_id), registry.package(app_id, version)))


async def create_package(call: Call) -> Response:
    """A pending version (the application is made with its first one) and where to upload it."""
    account, registry = _registry(call, "applications/versions/write")
    app_id = call.params["application"]
    package, url, expiry = await registry.new_package(app_id, call.params["version"])
    document = _package(account, registry.get(app_id), package)
    document["properties"].update({"storageUrl": url, "storageUrlExpiry": expiry})
    return json_response(document)


async def activate_package(call: Call) -> Response:
    account, registry = _registry(call, "applications/versions/activate/action")
    app_id = call.params["application"]
    body = await call.body()
    if "format" not in body:
        raise invalid_body("Activating a package needs its 'format' (zip).")
    package = await registry.activate_uploaded(app_id, call.params["version"], body["format"])
    return json_response(_package(account, registry.get(app_id), package))


async def delete_package(call: Call) -> Response:
    _, registry = _registry(call, "applications/versions/delete")
    await registry.remove_package(call.params["application"], call.params["version"])
    return Response(status_code=200)


OPERATIONS: list[Operation] = [
    operation("GET", APPLICATIONS, list_applications),
    operation("GET", APPLICATION, get_application),
    operation("PUT", APPLICATION, create_application),
    operation("PATCH", APPLICATION, update_application),
    operation("DELETE", APPLICATION, delete_application),
    operation("GET", VERSIONS, list_packages),
    operation("GET", VERSION, get_package),
    operation("PUT", VERSION, create_package),
    operation("DELETE", VERSION, delete_package),
    operation("POST", VERSION + "/activate", activate_package),
]
