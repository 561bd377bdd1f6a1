"""Contract rules for pools, their nodes, images, mounts and user accounts that the JSON schema cannot
express. Some normalize in place: vmSize lower-cased, image version "latest" when omitted.

Each rule takes the normalized object and its property path, and raises BatchError naming the property.
"""

from __future__ import annotations

import re
from typing import Any

from batchyard.service.errors import invalid_property, missing_property

from .. import catalog, durations
from .checks import HOUR, MINUTE, Rule, at_least, check_id, duration_at_least, in_range, join, non_empty, show, ticks
from .endpoints import check_network_endpoints

# Shortest autoScaleEvaluationInterval (ticks). The contract's 5 minutes; `batchyard serve
# --autoscale-min-interval` lowers it for development (README, Autoscale), through
# `set_autoscale_min_interval`, called once by the service's composition root (service/app.py).
AUTOSCALE_MIN_INTERVAL = [5 * MINUTE]


def set_autoscale_min_interval(seconds: float) -> None:
    AUTOSCALE_MIN_INTERVAL[0] = round(seconds * durations.TICKS_PER_SECOND)


def _pool_sizing(pool: dict[str, Any], path: str) -> None:
    """enableAutoScale / autoScaleFormula / target node rules from the contract text.

    The contract says a fixed-size pool "must set either targetDedicatedNodes, targetLowPriorityNodes, or
    both", but Azure creates one without either with targets of 0 (`defaults.pool_spec`), so it is not refused.
    """
    if pool.get("enableAutoScale"):
        if not pool.get("autoScaleFormula"):
            raise missing_property(join(path, "autoScaleFormula"))
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if name in pool:
                raise invalid_property(
                    join(path, name),
                    str(pool[name]),
                    f"{name} must not be specified when enableAutoScale is true.",
                )
        interval = pool.get("autoScaleEvaluationInterval")
        if interval is not None and not AUTOSCALE_MIN_INTERVAL[0] <= ticks(interval) <= 168 * HOUR:
            raise invalid_property(
                join(path, "autoScaleEvaluationInterval"),
                interval,
                _autoscale_interval_reason(),
            )
    else:
        if "autoScaleFormula" in pool:
            raise invalid_property(
                join(path, "autoScaleFormula"),
                pool["autoScaleFormula"],
                "autoScaleFormula must not be specified when enableAutoScale is false.",
            )
    at_least(pool, path, "targetDedicatedNodes", 0)
    at_least(pool, path, "targetLowPriorityNodes", 0)


_UNSUPPORTED_SIZES = frozenset({"standard_a0", "extrasmall"})


def _vm_size(pool: dict[str, Any], path: str) -> None:
    non_empty(pool, path, "vmSize")
    size = pool["vmSize"] = catalog.canonical_vm_size(pool["vmSize"])
    if size in _UNSUPPORTED_SIZES:
        raise invalid_property(join(path, "vmSize"), size, "Batch does not support the STANDARD_A0 VM size.")


def _package_count(out: dict[str, Any], path: str) -> None:
    packages = out.get("applicationPackageReferences")
    if packages is not None and len(packages) > 10:
        raise invalid_property(
            join(path, "applicationPackageReferences"),
            str(len(packages)),
            "A Pool can have at most 10 package references.",
        )


def _pool_spec(pool: dict[str, Any], path: str) -> None:
    _vm_size(pool, path)
    if "virtualMachineConfiguration" not in pool:
        raise missing_property(join(path, "virtualMachineConfiguration"))
    _user_accounts_for_os(pool, path)
    in_range(pool, path, "taskSlotsPerNode", 1, 256)
    duration_at_least(pool, path, "resizeTimeout", 5 * MINUTE, "5 minutes")
    _pool_sizing(pool, path)
    _package_count(pool, path)


def _pool_create(pool: dict[str, Any], path: str) -> None:
    check_id(pool["id"], join(path, "id"))
    _pool_spec(pool, path)


def _pool_update(pool: dict[str, Any], path: str) -> None:
    if "vmSize" in pool:
        _vm_size(pool, path)
    in_range(pool, path, "taskSlotsPerNode", 1, 256)
    _package_count(pool, path)


def _vm_configuration(vmc: dict[str, Any], path: str) -> None:
    sku = vmc.get("nodeAgentSKUId")
    if sku is not None and not catalog.is_supported_agent_sku(sku):
        raise invalid_property(
            join(path, "nodeAgentSKUId"),
            sku,
            "The node agent SKU is not supported: use one of the supported images' (batch.node.*, for example "
            "'batch.node.ubuntu 22.04' or 'batch.node.windows amd64').",
        )
    if "windowsConfiguration" in vmc and not catalog.is_windows_agent_sku(sku):
        raise invalid_property(
            join(path, "windowsConfiguration"),
            show(vmc["windowsConfiguration"]),
            "windowsConfiguration can only be specified on a Windows Pool (nodeAgentSKUId 'batch.node.windows amd64').",
        )


_GALLERY_IDS = ("virtualMachineImageId", "sharedGalleryImageId", "communityGalleryImageId")


_MARKETPLACE = ("publisher", "offer", "sku")
# The ARM ids the contract gives for virtualMachineImageId: a Compute Gallery image (its latest version, or
# one version), and the managed image of older API versions.
_IMAGE_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/"
    r"(?:galleries/[^/]+/images/[^/]+(?:/versions/[^/]+)?|images/[^/]+)",
    re.IGNORECASE,
)


def _image_reference(ref: dict[str, Any], path: str) -> None:
    ids = [name for name in _GALLERY_IDS if ref.get(name)]
    marketplace = [name for name in _MARKETPLACE if ref.get(name)]
    if len(ids) > 1 or (ids and marketplace):
        other = (ids + marketplace)[1]
        raise invalid_property(
            join(path, other),
            show(ref[other]),
            f"{ids[0]} is mutually exclusive with other image properties.",
        )
    image_id = ref.get("virtualMachineImageId")
    if image_id and not _IMAGE_ID.fullmatch(image_id):
        raise invalid_property(
            join(path, "virtualMachineImageId"),
            image_id,
            "The value must be the ARM resource id of an Azure Compute Gallery image: /subscriptions/{subscriptionId}"
            "/resourceGroups/{resourceGroup}/providers/Microsoft.Compute/galleries/{galleryName}/images/"
            "{imageDefinitionName}[/versions/{versionId}].",
        )
    if not ids:
        for name in _MARKETPLACE:
            if name not in marketplace:
                raise missing_property(join(path, name))
        ref.setdefault("version", "latest")  # contract: "If omitted, the default is 'latest'."


def _resize(out: dict[str, Any], path: str) -> None:
    at_least(out, path, "targetDedicatedNodes", 0)
    at_least(out, path, "targetLowPriorityNodes", 0)
    duration_at_least(out, path, "resizeTimeout", 5 * MINUTE, "5 minutes")


def _remove_nodes(out: dict[str, Any], path: str) -> None:
    nodes = out["nodeList"]
    if not 1 <= len(nodes) <= 100:
        raise invalid_property(
            join(path, "nodeList"), str(len(nodes)), "Between 1 and 100 nodes may be removed per request."
        )
    duration_at_least(out, path, "resizeTimeout", 5 * MINUTE, "5 minutes")


def _enable_autoscale(out: dict[str, Any], path: str) -> None:
    interval = out.get("autoScaleEvaluationInterval")
    if interval is not None and not AUTOSCALE_MIN_INTERVAL[0] <= ticks(interval) <= 168 * HOUR:
        raise invalid_property(
            join(path, "autoScaleEvaluationInterval"),
            interval,
            _autoscale_interval_reason(),
        )


def _autoscale_interval_reason() -> str:
    low = AUTOSCALE_MIN_INTERVAL[0]
    shown = "5 minutes" if low == 5 * MINUTE else f"{low / durations.TICKS_PER_SECOND:g} seconds"
    return f"The value must be between {shown} and 168 hours."


def _user_account(account: dict[str, Any], path: str) -> None:
    name = account["name"]
    if not name.strip() or len(name) > 20:
        raise invalid_property(join(path, "name"), name, "The user name must be 1 to 20 characters long.")


def _user_accounts_for_os(pool: dict[str, Any], path: str) -> None:
    """Each user account's OS-specific configuration is the one of the pool's OS."""
    windows = catalog.is_windows_agent_sku(pool["virtualMachineConfiguration"].get("nodeAgentSKUId"))
    other, os_name = ("linuxUserConfiguration", "Linux") if windows else ("windowsUserConfiguration", "Windows")
    for index, account in enumerate(pool.get("userAccounts") or []):
        if other in account:
            raise invalid_property(
                join(path, f"userAccounts[{index}].{other}"),
                show(account[other]),
                f"{other} can only be specified on a {os_name} Pool.",
            )


def _exactly_one(out: dict[str, Any], path: str, names: tuple[str, ...]) -> None:
    given = [name for name in names if name in out]
    if len(given) > 1:
        raise invalid_property(
            join(path, given[1]), show(out[given[1]]), f"{given[1]} and {given[0]} are mutually exclusive."
        )
    if not given:
        raise invalid_property(path, show(out), f"Exactly one of {', '.join(names)} must be specified.")


def _mount(out: dict[str, Any], path: str) -> None:
    _exactly_one(
        out,
        path,
        (
            "azureBlobFileSystemConfiguration",
            "nfsMountConfiguration",
            "cifsMountConfiguration",
            "azureFileShareConfiguration",
        ),
    )


def _blobfuse(out: dict[str, Any], path: str) -> None:
    _exactly_one(out, path, ("accountKey", "sasKey", "identityReference"))


def _network(config: dict[str, Any], path: str) -> None:
    check_network_endpoints(config, path)
    # No virtual network exists here (none can be made without the management plane), so every subnet is
    # one that does not exist, which Azure refuses.
    subnet = config.get("subnetId")
    if subnet is not None:
        raise invalid_property(join(path, "subnetId"), subnet, "The specified subnet does not exist.")


def _data_disk(out: dict[str, Any], path: str) -> None:
    in_range(out, path, "lun", 0, 63)


def _linux_user(config: dict[str, Any], path: str) -> None:
    if ("uid" in config) != ("gid" in config):
        missing = "gid" if "uid" in config else "uid"
        raise missing_property(join(path, missing))


def _node_user(out: dict[str, Any], path: str) -> None:
    non_empty(out, path, "name")


#: Definition name -> its rule.
def _container_registry(registry: dict[str, Any], path: str) -> None:
    """Registries are reached with user name and password: there are no managed identities to use."""
    if registry.get("identityReference"):
        raise invalid_property(
            join(path, "identityReference"),
            show(registry["identityReference"]),
            "Managed identities are not supported: give the registry's username and password instead.",
        )


POOL_RULES: dict[str, Rule] = {
    "ContainerRegistryReference": _container_registry,
    "BatchPoolCreateOptions": _pool_create,
    "BatchPoolSpecification": _pool_spec,
    "BatchPoolUpdateOptions": _pool_update,
    "VirtualMachineConfiguration": _vm_configuration,
    "VirtualMachineConfigurationUpdate": _vm_configuration,
    "BatchPoolReplaceOptions": _package_count,
    "MountConfiguration": _mount,
    "AzureBlobFileSystemConfiguration": _blobfuse,
    "DataDisk": _data_disk,
    "NetworkConfiguration": _network,
    "BatchVmImageReference": _image_reference,
    "BatchPoolResizeOptions": _resize,
    "BatchNodeRemoveOptions": _remove_nodes,
    "BatchPoolEnableAutoScaleOptions": _enable_autoscale,
    "UserAccount": _user_account,
    "LinuxUserConfiguration": _linux_user,
    "BatchNodeUserCreateOptions": _node_user,
}
