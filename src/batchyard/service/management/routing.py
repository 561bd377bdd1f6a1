"""The management plane's routes: ARM paths matched case-insensitively (ARM's paths are), each call
authenticated (management/bearer.py) and its api-version checked before its handler runs; every failure
answered in ARM's error shape."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.errors import BatchError
from batchyard.service.management import bearer
from batchyard.service.management.api_version import (
    check_batch_version,
    check_insights_version,
    check_resources_version,
)
from batchyard.service.management.cloud_error import CloudError, cloud_error_of, invalid_body
from batchyard.service.management.resources import RESOURCE_GROUP, SUBSCRIPTION_ID

log = logging.getLogger("batchyard.management")

MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Call:
    """A management request matched to its operation: who calls, and the path's parameters."""

    request: Request
    caller: bearer.Caller
    params: dict[str, str]

    async def body(self) -> dict[str, Any]:
        raw = await self.request.body()
        if len(raw) > MAX_BODY:
            raise invalid_body(f"The request body is larger than {MAX_BODY} bytes.")
        try:
            parsed = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError as exc:
            raise invalid_body(f"The request body is not valid JSON: {exc}.") from None
        if not isinstance(parsed, dict):
            raise invalid_body("The request body must be a JSON object.")
        return parsed


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    provider: str  # "batch", "insights" or "resources": which api-versions it takes


SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"
RESOURCE_GROUP_PATH = SUBSCRIPTION + r"/resourcegroups/(?P<group>[^/]+)"
ACCOUNTS = RESOURCE_GROUP_PATH + r"/providers/microsoft\.batch/batchaccounts"
ACCOUNT = ACCOUNTS + r"/(?P<account>[^/]+)"
LOCATION_PATH = SUBSCRIPTION + r"/providers/microsoft\.batch/locations/(?P<location>[^/]+)"


def operation(method: str, path: str, handler: Handler, provider: str = "batch") -> Operation:
    return Operation(method, re.compile(path, re.IGNORECASE), handler, provider)


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json; charset=utf-8")


DELETE_STATUS_SUFFIX = "/operationresults/delete"
_RETRY_AFTER = "1"  # seconds between a client's polls of a long-running delete


def deleting(call: Call) -> Response:
    """ARM's answer to a delete still under way: 202 with a Location (the resource's path +
    DELETE_STATUS_SUFFIX, served by the resource's module) that a poller follows until it answers 200."""
    path = call.request.url.path.rstrip("/")
    if not path.lower().endswith(DELETE_STATUS_SUFFIX):
        path += DELETE_STATUS_SUFFIX
    version = call.request.query_params.get("api-version", "")
    location = str(call.request.url.replace(path=path, query=f"api-version={version}"))
    return Response(status_code=202, headers={"Location": location, "Retry-After": _RETRY_AFTER})


def check_scope(params: dict[str, str]) -> None:
    """404 for a subscription or resource group other than the service's (resources.py)."""
    subscription = params.get("subscription")
    if subscription is not None and subscription.lower() != SUBSCRIPTION_ID:
        raise CloudError(
            404,
            "SubscriptionNotFound",
            f"The subscription '{subscription}' could not be found. This service's subscription is {SUBSCRIPTION_ID}.",
        )
    group = params.get("group")
    if group is not None and group.lower() != RESOURCE_GROUP:
        raise CloudError(
            404,
            "ResourceGroupNotFound",
            f"Resource group '{group}' could not be found. This service's resource group is '{RESOURCE_GROUP}'.",
        )


def routes(operations: list[Operation]) -> list[Route]:
    """Starlette routes for the ARM path prefixes, dispatching to `operations`."""

    async def dispatch(request: Request) -> Response:
        try:
            response = await _dispatch(request, operations)
        except CloudError as error:
            response = error.response()
        except BatchError as error:  # the data plane's refusal of what ARM passed on, in ARM's shape
            response = cloud_error_of(error).response()
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            response = CloudError(500, "InternalServerError", "The server encountered an internal error.").response()
        response.headers["x-ms-request-id"] = str(uuid.uuid4())
        if client_request_id := request.headers.get("x-ms-client-request-id"):
            response.headers["x-ms-client-request-id"] = client_request_id
        return response

    methods = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
    return [
        Route("/subscriptions", dispatch, methods=methods),
        Route("/subscriptions/{rest:path}", dispatch, methods=methods),
        Route("/providers/{rest:path}", dispatch, methods=methods),
    ]


async def _dispatch(request: Request, operations: list[Operation]) -> Response:
    state = request.app.state
    authorization = request.headers.get("authorization", "")
    caller = bearer.authenticate(state.identity, authorization, request.url.scheme, state.settings.account_name)
    path = request.url.path.rstrip("/")
    matched = [(op, match) for op in operations if (match := op.pattern.fullmatch(path))]
    if not matched:
        raise CloudError(
            404, "InvalidResourceType", f"The resource path '{path}' is not served by this service's management plane."
        )
    chosen = next(((op, match) for op, match in matched if op.method == request.method), None)
    if chosen is None:
        raise CloudError(405, "MethodNotAllowed", f"The resource does not support the HTTP method {request.method}.")
    op, match = chosen
    version = request.query_params.get("api-version")
    if op.provider == "batch":
        check_batch_version(version)
    elif op.provider == "insights":
        check_insights_version(version)
    else:
        check_resources_version(version)
    params = match.groupdict()
    check_scope(params)
    return await op.handler(Call(request, caller, params))
