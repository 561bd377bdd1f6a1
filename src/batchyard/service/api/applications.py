"""Applications: the data-plane list/get (usable versions only) and the management surface.

Management follows the shapes of Azure's management API (Microsoft.Batch applications and
application packages) under `/management/applications`, signed with the account's Shared Key:

  GET    /management/applications                                   list
  PUT    /management/applications/{app}                             create {properties: {displayName, allowUpdates}}
  GET    /management/applications/{app}
  PATCH  /management/applications/{app}                             {properties: {displayName, allowUpdates,
                                                                                  defaultVersion}}
  DELETE /management/applications/{app}                             Conflict while it has packages
  GET    /management/applications/{app}/versions
  PUT    /management/applications/{app}/versions/{version}          -> properties.storageUrl (write SAS)
  GET    /management/applications/{app}/versions/{version}
  DELETE /management/applications/{app}/versions/{version}
  POST   /management/applications/{app}/versions/{version}/activate {format: "zip"}
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service import errors
from batchyard.service.api.common import page, service_of, skip_token, url_for
from batchyard.service.http import endpoint, json_response, list_response, parse_max_results, read_json
from batchyard.service.storage.applications import ApplicationRegistry


def _registry(request: Request) -> ApplicationRegistry:
    return service_of(request).applications


# --- data plane ----------------------------------------------------------------------------------


def _wire(registry: ApplicationRegistry, app: dict[str, Any]) -> dict[str, Any]:
    return {"id": app["id"], "displayName": app["displayName"] or app["id"], "versions": registry.usable_versions(app)}


def _usable(registry: ApplicationRegistry) -> list[dict[str, Any]]:
    """Applications a pool or task can reference: those with at least one active package."""
    return [app for app in registry.apps.values() if registry.usable_versions(app)]


@endpoint
async def list_applications(request: Request) -> Response:
    registry = _registry(request)
    size = parse_max_results(request)
    apps = sorted(_usable(registry), key=lambda app: app["id"].lower())
    positions = {id(app): index for index, app in enumerate(apps, 1)}
    chosen, token = page(apps, lambda app: positions[id(app)], skip_token(request), size)
    return list_response(request, "applications", [_wire(registry, app) for app in chosen], token)


@endpoint
async def get_application(request: Request) -> Response:
    registry = _registry(request)
    app = registry.apps.get(request.path_params["app"].lower())
    if app is None or not registry.usable_versions(app):
        raise errors.not_found("ApplicationNotFound", "The specified application does not exist.")
    body = {"odata.metadata": f"{url_for(request, '')}/$metadata#applications/@Element", **_wire(registry, app)}
    return json_response(body)


# --- management ----------------------------------------------------------------------------------


def _app_doc(request: Request, app: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": url_for(request, f"/management/applications/{app['id']}"),
        "name": app["id"],
        "type": "Microsoft.Batch/batchAccounts/applications",
        "properties": {
            "displayName": app["displayName"],
            "allowUpdates": app["allowUpdates"],
            "defaultVersion": app["defaultVersion"],
        },
    }


def _package_doc(request: Request, app: dict[str, Any], package: dict[str, Any]) -> dict[str, Any]:
    props = {k: package[k] for k in ("state", "format", "lastActivationTime") if package.get(k) is not None}
    return {
        "id": url_for(request, f"/management/applications/{app['id']}/versions/{package['version']}"),
        "name": package["version"],
        "type": "Microsoft.Batch/batchAccounts/applications/versions",
        "properties": props,
    }


async def _properties(request: Request) -> dict[str, Any]:
    body = await read_json(request, optional=True)
    if not isinstance(body, dict):
        raise errors.invalid_body("The request body must be a JSON object.")
    props = body.get("properties", {})
    if not isinstance(props, dict):
        raise errors.invalid_property("properties", props, "properties must be an object.")
    return props


@endpoint
async def manage_list(request: Request) -> Response:
    registry = _registry(request)
    apps = sorted(registry.apps.values(), key=lambda app: app["id"].lower())
    return json_response({"value": [_app_doc(request, app) for app in apps]})


@endpoint
async def manage_app(request: Request) -> Response:
    registry = _registry(request)
    app_id = request.path_params["app"]
    if request.method == "GET":
        return json_response(_app_doc(request, registry.get(app_id)))
    if request.method == "DELETE":
        registry.delete(app_id)
        return Response(status_code=200)
    props = await _properties(request)
    if request.method == "PUT":
        return json_response(_app_doc(request, registry.create(app_id, props)), status=201)
    return json_response(_app_doc(request, registry.update(app_id, props)))


@endpoint
async def manage_versions(request: Request) -> Response:
    registry = _registry(request)
    app = registry.get(request.path_params["app"])
    return json_response({"value": [_package_doc(request, app, package) for package in app["packages"].values()]})


@endpoint
async def manage_version(request: Request) -> Response:
    registry = _registry(request)
    app_id, version = request.path_params["app"], request.path_params["version"]
    if request.method == "GET":
        return json_response(_package_doc(request, registry.get(app_id), registry.package(app_id, version)))
    if request.method == "DELETE":
        await registry.remove_package(app_id, version)
        return Response(status_code=200)
    package, url, expiry = await registry.new_package(app_id, version)
    doc = _package_doc(request, registry.get(app_id), package)
    doc["properties"].update({"storageUrl": url, "storageUrlExpiry": expiry})
    return json_response(doc, status=201)


@endpoint
async def activate_version(request: Request) -> Response:
    registry = _registry(request)
    app_id, version = request.path_params["app"], request.path_params["version"]
    body = await read_json(request, optional=True)
    fmt = body.get("format", "zip") if isinstance(body, dict) else None
    package = await registry.activate_uploaded(app_id, version, fmt)
    return json_response(_package_doc(request, registry.get(app_id), package))


routes = [
    Route("/applications", list_applications, methods=["GET"]),
    Route("/applications/{app}", get_application, methods=["GET"]),
    Route("/management/applications", manage_list, methods=["GET"]),
    Route("/management/applications/{app}", manage_app, methods=["GET", "PUT", "PATCH", "DELETE"]),
    Route("/management/applications/{app}/versions", manage_versions, methods=["GET"]),
    Route("/management/applications/{app}/versions/{version}", manage_version, methods=["GET", "PUT", "DELETE"]),
    Route("/management/applications/{app}/versions/{version}/activate", activate_version, methods=["POST"]),
]
