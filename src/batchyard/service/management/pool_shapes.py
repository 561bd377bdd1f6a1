"""A pool in ARM's shape (BatchManagement.json `Pool`) and back to the data plane's (the Batch API's pool).

ARM nests what the Batch API keeps flat: the image under `deploymentConfiguration`, the targets or the
formula under `scaleSettings`, inter-node communication as `Enabled`/`Disabled`, application packages and
certificates as ARM resource ids. Enum values it spells in PascalCase (`Admin`, `TaskCompletion`); the Batch
API's parser takes either spelling, so only answers are respelled; so are the three keys ARM spells otherwise
(`nodeAgentSkuId`).
"""

from __future__ import annotations

from typing import Any

from batchyard.service.management import resources
from batchyard.service.management.cloud_error import invalid_body

POOL_TYPE = "Microsoft.Batch/batchAccounts/pools"
# Properties the two shapes spell alike.
_SAME = (
    "displayName",
    "vmSize",
    "taskSlotsPerNode",
    "taskSchedulingPolicy",
    "userAccounts",
    "metadata",
    "startTask",
    "networkConfiguration",
    "mountConfiguration",
    "upgradePolicy",
    "resourceTags",
    "targetNodeCommunicationMode",
)
# What ARM answers and a client may send back unchanged (a read-modify-write): ignored, as ARM does.
_READ_ONLY = {
    "provisioningState",
    "provisioningStateTransitionTime",
    "allocationState",
    "allocationStateTransitionTime",
    "creationTime",
    "lastModified",
    "currentDedicatedNodes",
    "currentLowPriorityNodes",
    "autoScaleRun",
    "resizeOperationStatus",
    "currentNodeCommunicationMode",
}
# Enum-valued keys and the ARM spelling of their values, by the Batch API's (lower-case) spelling.
_ENUM_KEYS = {
    "elevationLevel",
    "scope",
    "nodeFillType",
    "nodeDeallocationOption",
    "provision",
    "access",
    "protocol",
    "loginMode",
    "storeLocation",
    "visibility",
    "type",
    "targetNodeCommunicationMode",
    "currentNodeCommunicationMode",
    "caching",
    "policy",
}
_ARM_SPELLING = {
    spelled.lower(): spelled
    for spelled in (
        "Admin",
        "NonAdmin",
        "Task",
        "Pool",
        "Spread",
        "Pack",
        "Requeue",
        "Terminate",
        "TaskCompletion",
        "RetainedData",
        "BatchManaged",
        "UserManaged",
        "NoPublicIPAddresses",
        "Allow",
        "Deny",
        "TCP",
        "UDP",
        "Batch",
        "Interactive",
        "CurrentUser",
        "LocalMachine",
        "StartTask",
        "RemoteUser",
        "DockerCompatible",
        "CriCompatible",
        "Default",
        "Classic",
        "Simplified",
        "None",
        "ReadOnly",
        "ReadWrite",
        "Regional",
        "Zonal",
    )
}
# Keys ARM spells otherwise (the Batch API's parser matches keys case-insensitively, so only answers differ).
_ARM_KEYS = {
    "nodeAgentSKUId": "nodeAgentSkuId",
    "inboundNATPools": "inboundNatPools",
    "dynamicVNetAssignmentScope": "dynamicVnetAssignmentScope",
}
_ALLOCATION_STATES = {"steady": "Steady", "resizing": "Resizing", "stopping": "Stopping"}


def pool_id(account: str, pool: str) -> str:
    return f"{resources.account_id(account)}/pools/{pool}"


# --- ARM -> Batch API ----------------------------------------------------------------------------


def batch_properties(properties: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """An ARM pool's properties as the Batch API's pool properties, and its scale settings apart
    (`{"fixedScale": ...}` or `{"autoScale": ...}`, None when not given): a create folds them in, an update
    resizes or enables autoscale."""
    if not isinstance(properties, dict):
        raise invalid_body("'properties' must be an object.")
    batch: dict[str, Any] = {}
    scale: dict[str, Any] | None = None
    for name, value in properties.items():
        if name in _SAME:
            batch[name] = value
        elif name in _READ_ONLY:
            continue
        elif name == "deploymentConfiguration":
            batch["virtualMachineConfiguration"] = _virtual_machine_configuration(value)
        elif name == "scaleSettings":
            scale = _scale_settings(value)
        elif name == "interNodeCommunication":
            batch["enableInterNodeCommunication"] = _enabled(value)
        elif name == "applicationPackages":
            batch["applicationPackageReferences"] = [_package_reference(ref) for ref in _list(name, value)]
        elif name == "certificates":
            batch["certificateReferences"] = [_certificate_reference(ref) for ref in _list(name, value)]
        else:
            raise invalid_body(f"A pool has no property '{name}' that this service can set.")
    return batch, scale


def fold_scale(batch: dict[str, Any], scale: dict[str, Any] | None) -> None:
    """Put a create's scale settings into the Batch API's pool (a fixed scale of 0 when none are given)."""
    if scale is not None and "autoScale" in scale:
        auto = scale["autoScale"]
        batch["enableAutoScale"] = True
        batch["autoScaleFormula"] = auto["formula"]
        if "evaluationInterval" in auto:
            batch["autoScaleEvaluationInterval"] = auto["evaluationInterval"]
        return
    fixed = (scale or {}).get("fixedScale", {})
    batch["targetDedicatedNodes"] = fixed.get("targetDedicatedNodes", 0)
    batch["targetLowPriorityNodes"] = fixed.get("targetLowPriorityNodes", 0)
    if "resizeTimeout" in fixed:
        batch["resizeTimeout"] = fixed["resizeTimeout"]


def _list(name: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_body(f"'{name}' must be an array.")
    return value


def _object(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_body(f"'{name}' must be an object.")
    return value


def _virtual_machine_configuration(value: Any) -> Any:
    deployment = _object("deploymentConfiguration", value)
    other = sorted(set(deployment) - {"virtualMachineConfiguration"})
    if other or "virtualMachineConfiguration" not in deployment:
        raise invalid_body(
            "'deploymentConfiguration' must give a 'virtualMachineConfiguration'"
            + (f" ('{other[0]}' is not served: cloud service pools are retired)." if other else ".")
        )
    return deployment["virtualMachineConfiguration"]


def _scale_settings(value: Any) -> dict[str, Any]:
    scale = _object("scaleSettings", value)
    kinds = [kind for kind in ("fixedScale", "autoScale") if scale.get(kind) is not None]
    if len(kinds) != 1 or set(scale) - {"fixedScale", "autoScale"}:
        raise invalid_body("'scaleSettings' must give exactly one of 'fixedScale' and 'autoScale'.")
    settings = _object(f"scaleSettings.{kinds[0]}", scale[kinds[0]])
    if kinds[0] == "autoScale" and not isinstance(settings.get("formula"), str):
        raise invalid_body("'scaleSettings.autoScale.formula' is required (a string).")
    return {kinds[0]: settings}


def _enabled(value: Any) -> bool:
    if not isinstance(value, str) or value.lower() not in ("enabled", "disabled"):
        raise invalid_body(f"'interNodeCommunication' must be 'Enabled' or 'Disabled', not {value!r}.")
    return value.lower() == "enabled"


def _last_segment(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip("/"):
        raise invalid_body(f"'{name}' must be a resource id (a string).")
    return value.rstrip("/").rsplit("/", 1)[-1]


def _package_reference(ref: Any) -> dict[str, Any]:
    """`{id: .../applications/APP, version}` -> `{applicationId: APP, version}`."""
    ref = _object("applicationPackages[]", ref)
    batch = {"applicationId": _last_segment("applicationPackages[].id", ref.get("id"))}
    if ref.get("version") is not None:
        batch["version"] = ref["version"]
    return batch


def _certificate_reference(ref: Any) -> dict[str, Any]:
    """`{id: .../certificates/sha1-THUMBPRINT, ...}` -> `{thumbprint, thumbprintAlgorithm: sha1, ...}`."""
    ref = _object("certificates[]", ref)
    name = _last_segment("certificates[].id", ref.get("id"))
    algorithm, _, thumbprint = name.partition("-")
    if not thumbprint:
        raise invalid_body(f"A certificate's id must end in ALGORITHM-THUMBPRINT (sha1-...), not '{name}'.")
    rest = {key: value for key, value in ref.items() if key != "id"}
    return {"thumbprint": thumbprint, "thumbprintAlgorithm": algorithm, **rest}


# --- Batch API -> ARM ----------------------------------------------------------------------------


def arm_pool(account: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The data plane's pool document as ARM's Pool resource."""
    properties: dict[str, Any] = {name: doc[name] for name in _SAME if doc.get(name) is not None}
    properties.update(
        {
            "creationTime": doc["creationTime"],
            "lastModified": doc["lastModified"],
            "provisioningState": "Deleting" if doc["state"] == "deleting" else "Succeeded",
            "provisioningStateTransitionTime": doc["stateTransitionTime"],
            "allocationState": _ALLOCATION_STATES.get(doc["allocationState"], doc["allocationState"]),
            "allocationStateTransitionTime": doc["allocationStateTransitionTime"],
            "currentDedicatedNodes": doc.get("currentDedicatedNodes", 0),
            "currentLowPriorityNodes": doc.get("currentLowPriorityNodes", 0),
            "interNodeCommunication": "Enabled" if doc.get("enableInterNodeCommunication") else "Disabled",
            "scaleSettings": _arm_scale(doc),
        }
    )
    if "virtualMachineConfiguration" in doc:
        properties["deploymentConfiguration"] = {"virtualMachineConfiguration": doc["virtualMachineConfiguration"]}
    if doc.get("autoScaleRun") is not None:
        properties["autoScaleRun"] = doc["autoScaleRun"]
    if doc.get("resizeErrors"):
        properties["resizeOperationStatus"] = {
            "targetDedicatedNodes": doc.get("targetDedicatedNodes", 0),
            "targetLowPriorityNodes": doc.get("targetLowPriorityNodes", 0),
            "errors": doc["resizeErrors"],
        }
    if doc.get("currentNodeCommunicationMode") is not None:
        properties["currentNodeCommunicationMode"] = doc["currentNodeCommunicationMode"]
    if doc.get("applicationPackageReferences"):
        properties["applicationPackages"] = [
            {"id": f"{resources.account_id(account)}/applications/{ref['applicationId']}"}
            | ({"version": ref["version"]} if ref.get("version") else {})
            for ref in doc["applicationPackageReferences"]
        ]
    if doc.get("certificateReferences"):
        properties["certificates"] = [
            {"id": f"{resources.account_id(account)}/certificates/{ref['thumbprintAlgorithm']}-{ref['thumbprint']}"}
            | {key: value for key, value in ref.items() if key not in ("thumbprint", "thumbprintAlgorithm")}
            for ref in doc["certificateReferences"]
        ]
    return {
        "id": pool_id(account, doc["id"]),
        "name": doc["id"],
        "type": POOL_TYPE,
        "etag": arm_etag(doc),
        "properties": _respelled(properties),
    }


def arm_etag(doc: dict[str, Any]) -> str:
    return f'"{doc["eTag"]}"'


def _arm_scale(doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("enableAutoScale"):
        auto = {"formula": doc.get("autoScaleFormula", "")}
        if doc.get("autoScaleEvaluationInterval"):
            auto["evaluationInterval"] = doc["autoScaleEvaluationInterval"]
        return {"autoScale": auto}
    fixed = {
        "targetDedicatedNodes": doc.get("targetDedicatedNodes", 0),
        "targetLowPriorityNodes": doc.get("targetLowPriorityNodes", 0),
    }
    if doc.get("resizeTimeout"):
        fixed["resizeTimeout"] = doc["resizeTimeout"]
    return {"fixedScale": fixed}


def _respelled(value: Any, key: str = "") -> Any:
    """Keys and the enum values of the keys in _ENUM_KEYS in ARM's spelling, anywhere in the document."""
    if isinstance(value, dict):
        return {_ARM_KEYS.get(name, name): _respelled(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_respelled(item, key) for item in value]
    if key in _ENUM_KEYS and isinstance(value, str):
        return _ARM_SPELLING.get(value.lower(), value)
    return value
