"""Pool application packages and container images on a booting node: installed (pulled) before its
start task, or it is unusable.

The deployment travels as a run of kind "packages" (aid PACKAGES_AID), so it has the agent's result
delivery and acknowledgement for free; the node stays `starting` until the result arrives. A pool with a
`containerConfiguration` always sends one: its `containerImageNames` are pulled with its
`containerRegistries`, and a node without a container runtime is unusable rather than idle.
"""

from __future__ import annotations

from typing import Any

from batchyard.service.engine.account_keys import account_of
from batchyard.service.engine.records import NodeRecord, NodeRun, PoolRecord, RunKind
from batchyard.service.engine.run_builder import build_run, container_config
from batchyard.service.storage.runs import RunResources

PACKAGES_RUN_ID = "packages"


def send_pool_packages(resources: RunResources, node: NodeRecord, pool: PoolRecord | None) -> bool:
    """Start deploying the pool's packages; False when it has none (boot goes on at once)."""
    refs = (pool.doc.get("applicationPackageReferences") if pool else None) or []
    containers = container_config(pool.doc if pool else None)
    if (not refs and containers is None) or node.session is None:
        return False
    resolved = resources.resolve_packages(refs, account_of(pool.key) if pool else None)
    run = build_run(RunKind.PACKAGES, PACKAGES_RUN_ID, "startup", "", {})
    if containers is not None:
        run["images"] = {
            "names": list(containers.get("containerImageNames") or []),
            "registries": list(containers.get("containerRegistries") or []),
        }
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
    if failure.get("code") == "ContainerInvalidImage":  # an image the pool names could not be pulled
        code, details = failure["code"], list(failure.get("details") or [])
    else:
        code = "ApplicationPackageDeploymentFailed"
        details = [{"name": "Message", "value": failure.get("message", "")}] + list(failure.get("details") or [])
    node.doc["errors"] = [
        {
            "code": code,
            "message": failure.get("message", "An application package could not be deployed."),
            "errorDetails": details,
        }
    ]
    return True
