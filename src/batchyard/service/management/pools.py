"""Pools through ARM (Pool_*): the data plane's pools, the same state, in ARM's shape (pool_shapes.py).

A pool created here is the pool the data plane lists and jobs run on, and the reverse. Create (PUT) of an
existing pool updates it, as ARM's PUT does; an update resizes or switches autoscale when its
`scaleSettings` change. Delete is a long-running operation: 202 with a Location that answers 202 while the
pool is still being deleted and 200 once it is gone.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from batchyard.service.api.common import conditions
from batchyard.service.engine.facade import BatchService
from batchyard.service.engine.records import PoolRecord
from batchyard.service.management.accounts import account_service, batch_account
from batchyard.service.management.cloud_error import CloudError
from batchyard.service.management.pool_shapes import arm_etag, arm_pool, batch_properties, fold_scale
from batchyard.service.management.routing import (
    ACCOUNT,
    DELETE_STATUS_SUFFIX,
    Call,
    Operation,
    deleting,
    json_response,
    operation,
)
from batchyard.service.models import pools as pool_models

POOLS = ACCOUNT + "/pools"
POOL = POOLS + r"/(?P<pool>[^/]+)"


def _service(call: Call, action: str) -> tuple[str, BatchService]:
    """The account's name and the service, once the caller may do `action` on its pools."""
    account = batch_account(call, f"pools/{action}")
    return account.name, account_service(call, account)


def _answer(account: str, pool: PoolRecord) -> Response:
    response = json_response(arm_pool(account, pool.doc))
    response.headers["ETag"] = arm_etag(pool.doc)
    return response


async def list_pools(call: Call) -> Response:
    account, service = _service(call, "read")
    for unsupported in ("$filter", "$select"):
        if unsupported in call.request.query_params:
            raise CloudError(
                400,
                "InvalidQueryParameterValue",
                f"'{unsupported}' is not supported on this service's pool list: list all and choose on the client.",
            )
    pools = sorted(service.pools(), key=lambda pool: pool.doc["id"].lower())
    return json_response({"value": [arm_pool(account, pool.doc) for pool in pools]})


async def get_pool(call: Call) -> Response:
    account, service = _service(call, "read")
    return _answer(account, service.pool(call.params["pool"]))


async def create_pool(call: Call) -> Response:
    """PUT: a new pool, or (when it exists and the conditions allow) an update of the existing one."""
    account, service = _service(call, "write")
    body = await call.body()
    batch, scale = batch_properties(body.get("properties") or {})
    existing = service.find_pool(call.params["pool"])
    if existing is not None:
        return await _update(call, account, service, existing, batch, scale)
    if call.request.headers.get("if-match") is not None:
        raise CloudError(412, "ConditionNotMet", f"The pool '{call.params['pool']}' does not exist (If-Match).")
    fold_scale(batch, scale)
    spec = pool_models.parse_pool_create({"id": call.params["pool"], **batch})
    return _answer(account, service.create_pool(spec))


async def update_pool(call: Call) -> Response:
    account, service = _service(call, "write")
    body = await call.body()
    batch, scale = batch_properties(body.get("properties") or {})
    return await _update(call, account, service, service.pool(call.params["pool"]), batch, scale)


async def _update(
    call: Call,
    account: str,
    service: BatchService,
    pool: PoolRecord,
    batch: dict[str, Any],
    scale: dict[str, Any] | None,
) -> Response:
    """Apply what changes: properties through the data plane's update (its rules: some only on an empty
    pool), then the scale settings as a resize or an autoscale switch."""
    pool_id = pool.doc["id"]
    parsed = pool_models.parse_pool_update(batch) if batch else {}
    changes = {name: value for name, value in parsed.items() if pool.doc.get(name) != value}
    if changes:
        pool = service.patch_pool(pool_id, changes, conditions(call.request))
    else:
        conditions(call.request)(pool.doc)
    if scale is not None and "autoScale" in scale:
        auto = scale["autoScale"]
        spec = {"autoScaleFormula": auto["formula"]}
        if "evaluationInterval" in auto:
            spec["autoScaleEvaluationInterval"] = auto["evaluationInterval"]
        pool = service.enable_autoscale(pool_id, pool_models.parse_pool_enable_autoscale(spec))
    elif scale is not None:
        fixed = scale["fixedScale"]
        resize = pool_models.parse_pool_resize(fixed)
        targets = ("targetDedicatedNodes", "targetLowPriorityNodes")
        if pool.doc.get("enableAutoScale"):
            pool = service.disable_autoscale(pool_id)
        if any(resize.get(name, 0) != pool.doc.get(name, 0) for name in targets):
            pool = service.resize_pool(pool_id, resize)
    return _answer(account, pool)


async def delete_pool(call: Call) -> Response:
    _, service = _service(call, "delete")
    pool = service.pool(call.params["pool"])
    if pool.doc["state"] != "deleting":
        service.delete_pool(pool.doc["id"], conditions(call.request))
    return deleting(call)


async def delete_status(call: Call) -> Response:
    """The Location of a pool's delete: 202 while the pool is being deleted, 200 once it is gone."""
    _, service = _service(call, "read")
    if service.find_pool(call.params["pool"]) is not None:
        return deleting(call)
    return Response(status_code=200)


async def disable_autoscale(call: Call) -> Response:
    account, service = _service(call, "write")
    return _answer(account, service.disable_autoscale(call.params["pool"]))


async def stop_resize(call: Call) -> Response:
    account, service = _service(call, "write")
    return _answer(account, service.stop_resize_pool(call.params["pool"]))


OPERATIONS: list[Operation] = [
    operation("GET", POOLS, list_pools),
    operation("GET", POOL, get_pool),
    operation("PUT", POOL, create_pool),
    operation("PATCH", POOL, update_pool),
    operation("DELETE", POOL, delete_pool),
    operation("GET", POOL + DELETE_STATUS_SUFFIX, delete_status),
    operation("POST", POOL + "/disableautoscale", disable_autoscale),
    operation("POST", POOL + "/stopresize", stop_resize),
]
