"""Pool application packages on a booting node: installed before its start task, or it is unusable.

The deployment travels as a run of kind "packages" (aid PACKAGES_AID), so it has the agent's result
delivery and acknowledgement for free; the node stays `starting` until the result arrives.
"""

from __future__ import annotations

from typing import Any

from batchyard.service.engine.records import NodeRecord, NodeRun, PoolRecord, RunKind
from batchyard.service.engine.run_builder import build_run
from batchyard.service.storage.runs import RunResources

PACKAGES_RUN_ID = "packages"


def send_pool_packages(resources: RunResources, node: NodeRecord, pool: PoolRecord | None) -> bool:
    """Start deploying the pool's packages; False when it has none (boot goes on at once)."""
    refs = (pool.doc.get("applicationPackageReferences") if pool else None) or []
    if not refs or node.session is None:
        return False
    resolved = resources.resolve_packages(refs)
    run = build_run(RunKind.PACKAGES, PACKAGES_RUN_ID, "startup", "", {})
    if isinstance(resolved, dict):
        run["prefail"] = resolved  # the agent reports it back: one path for every failure
    else:
        run["packages"] = resolved
    node.runs[PACKAGES_RUN_ID] = NodeRun("", "", 0, PACKAGES_RUN_ID, RunKind.PACKAGES)
    node.session.send({"t": "run", "runs": [run]})
    return True


def packages_failed(node: NodeRecord, result: dict[str, Any]) -> bool:
    """Record a failed deployment on the node (the caller makes it unusable); False if it succeeded."""
    failure = result.get("failure")
    if not failure:
        return False
    details = [{"name": "Message", "value": failure.get("message", "")}] + list(failure.get("details") or [])
    node.doc["errors"] = [
        {
            "code": "ApplicationPackageDeploymentFailed",
            "message": failure.get("message", "An application package could not be deployed."),
            "errorDetails": details,
        }
    ]
    return True
