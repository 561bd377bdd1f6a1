"""What the engine adds to run messages from the linked account: resolved SAS URLs and packages.

Nodes get only SAS URLs (never the account key): `autoStorageContainerName` becomes a container SAS
URL (read + list), and application package references become blob SAS URLs of their zips.
"""

from __future__ import annotations

from typing import Any

from batchyard.service.config import Settings
from batchyard.service.errors import BatchError
from batchyard.service.ports import Store
from batchyard.service.storage.applications import ApplicationRegistry
from batchyard.service.storage.linked import LinkedStorage


def attach_storage(engine: Any, settings: Settings, store: Store) -> ApplicationRegistry:
    """Give the engine its linked account (or None) and the application registry."""
    storage = (
        LinkedStorage.from_connection_string(settings.storage_connection_string)
        if settings.storage_connection_string
        else None
    )
    registry = ApplicationRegistry(store, storage, settings.application_quota, settings.package_quota)
    engine.storage = storage
    engine.applications = registry
    return registry


def resolve_files(engine: Any, files: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Resource files as a node downloads them: autoStorageContainerName -> storageContainerUrl with a SAS.

    Without a linked account the name stays, and the agent fails the run with AutoStorageNotConfigured.
    """
    storage: LinkedStorage | None = getattr(engine, "storage", None)
    out = []
    for item in files or []:
        name = item.get("autoStorageContainerName")
        if name and storage is not None:
            item = {k: v for k, v in item.items() if k != "autoStorageContainerName"}
            item["storageContainerUrl"] = storage.container_sas_url(name, "rl")
        out.append(item)
    return out


def resolve_packages(engine: Any, refs: list[dict[str, Any]] | None) -> list[dict[str, Any]] | dict[str, Any]:
    """Package references -> install instructions, or the failureInfo when one cannot be deployed."""
    registry: ApplicationRegistry | None = getattr(engine, "applications", None)
    if not refs:
        return []
    if registry is None:
        return package_failure("The Batch service has no application registry.")
    try:
        return registry.resolve(refs)
    except BatchError as error:
        return package_failure(error.message)


def package_failure(message: str) -> dict[str, Any]:
    return {
        "category": "usererror",
        "code": "ApplicationPackageDeploymentFailed",
        "message": f"An application package could not be deployed: {message}",
    }


def storage_fields(engine: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """The run-message fields of a task or start task: files, outputs, packages (or the deployment failure)."""
    packages = resolve_packages(engine, doc.get("applicationPackageReferences"))
    fields: dict[str, Any] = {"files": resolve_files(engine, doc.get("resourceFiles"))}
    if doc.get("outputFiles"):
        fields["outputs"] = doc["outputFiles"]
    if isinstance(packages, dict):
        fields["prefail"] = packages
    elif packages:
        fields["packages"] = packages
    return fields
