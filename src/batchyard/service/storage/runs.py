"""What runs get from the linked storage account: resolved SAS URLs and application packages.

Nodes get only SAS URLs (never the account key): `autoStorageContainerName` becomes a container SAS
URL (read + list), and application package references become blob SAS URLs of their zips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchyard.service.config import Settings
from batchyard.service.engine.account_keys import SERVICE_ACCOUNT
from batchyard.service.errors import BatchError
from batchyard.service.ports import Store
from batchyard.service.storage.applications import ApplicationRegistries
from batchyard.service.storage.linked import LinkedStorage


@dataclass(frozen=True)
class RunResources:
    """The linked account (None: not configured) and the accounts' application registries (None: none at all)."""

    storage: LinkedStorage | None = None
    applications: ApplicationRegistries | None = None

    def resolve_files(self, files: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        """Resource files as a node downloads them: autoStorageContainerName -> storageContainerUrl with a SAS.

        Without a linked account the name stays, and the agent fails the run with AutoStorageNotConfigured.
        """
        out = []
        for item in files or []:
            name = item.get("autoStorageContainerName")
            if name and self.storage is not None:
                item = {k: v for k, v in item.items() if k != "autoStorageContainerName"}
                item["storageContainerUrl"] = self.storage.container_sas_url(name, "rl")
            out.append(item)
        return out

    def resolve_packages(
        self, refs: list[dict[str, Any]] | None, account: str | None
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """Package references of `account` -> install instructions, or the failureInfo when one cannot be
        deployed."""
        if not refs:
            return []
        if self.applications is None:
            return package_failure("The Batch service has no application registry.")
        try:
            return self.applications.of(account).resolve(refs)
        except BatchError as error:
            return package_failure(error.message)

    def storage_fields(self, doc: dict[str, Any], account: str | None = SERVICE_ACCOUNT) -> dict[str, Any]:
        """The run-message fields of a task of `account`: files, outputs, packages (or the deployment failure)."""
        packages = self.resolve_packages(doc.get("applicationPackageReferences"), account)
        fields: dict[str, Any] = {"files": self.resolve_files(doc.get("resourceFiles"))}
        if doc.get("outputFiles"):
            fields["outputs"] = doc["outputFiles"]
        if isinstance(packages, dict):
            fields["prefail"] = packages
        elif packages:
            fields["packages"] = packages
        return fields


def linked_resources(settings: Settings, store: Store) -> tuple[RunResources, ApplicationRegistries]:
    """The service's linked account (from its connection string) and the accounts' application registries, as
    runs see them, and the registries themselves (for the applications APIs)."""
    storage = (
        LinkedStorage.from_connection_string(settings.storage_connection_string)
        if settings.storage_connection_string
        else None
    )
    registries = ApplicationRegistries(store, storage, settings.application_quota, settings.package_quota)
    return RunResources(storage, registries), registries


def package_failure(message: str) -> dict[str, Any]:
    return {
        "category": "usererror",
        "code": "ApplicationPackageDeploymentFailed",
        "message": f"An application package could not be deployed: {message}",
    }
