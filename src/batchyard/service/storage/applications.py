"""Applications and their package versions: the account's registry, with the zips in linked storage.

The registry is small (20 applications × 40 versions by default): it is loaded whole at start, and each
application (with its packages) is one document in the store, written when it changes.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from batchyard.service import errors
from batchyard.service.engine.account_keys import SERVICE_ACCOUNT, id_in, scoped_key
from batchyard.service.errors import BatchError
from batchyard.service.ports import Store
from batchyard.service.storage.linked import LinkedStorage

PACKAGE_CONTAINER = "batchyard-application-packages"
UPLOAD_SAS_LIFETIME = timedelta(hours=4)
_APP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_VERSION = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def no_storage() -> BatchError:
    return errors.conflict(
        "AutoStorageNotConfigured",
        "The Batch account has no linked storage account; application packages and autoStorageContainerName need "
        "one (start the service with --azurite or a storage account, see README, Storage).",
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApplicationRegistry:
    """One account's applications (`account`, None: the service's own; engine/account_keys.py)."""

    def __init__(
        self,
        store: Store,
        storage: LinkedStorage | None,
        app_quota: int,
        package_quota: int,
        account: str | None = SERVICE_ACCOUNT,
    ) -> None:
        self.store = store
        self.storage = storage
        self.app_quota = app_quota
        self.package_quota = package_quota
        self.account = account
        self.apps: dict[str, dict[str, Any]] = {}
        for key, app in store.load_applications():
            if (app_key := id_in(account, key)) is not None:
                self.apps[app_key] = app
        self._container_ready = False

    def _save(self, app: dict[str, Any]) -> None:
        with self.store.transaction():
            self.store.put_application(scoped_key(self.account, app["id"]), app)

    def _storage(self) -> LinkedStorage:
        if self.storage is None:
            raise no_storage()
        return self.storage

    # --- lookups --------------------------------------------------------------------------------

    def get(self, app_id: str) -> dict[str, Any]:
        app = self.apps.get(app_id.lower())
        if app is None:
            raise errors.not_found("ApplicationNotFound", f"The application {app_id} does not exist.")
        return app

    def package(self, app_id: str, version: str) -> dict[str, Any]:
        package = self.get(app_id)["packages"].get(version.lower())
        if package is None:
            raise errors.not_found(
                "ApplicationPackageNotFound", f"The version {version} of application {app_id} does not exist."
            )
        return package

    def usable_versions(self, app: dict[str, Any]) -> list[str]:
        return [p["version"] for p in app["packages"].values() if p["state"] == "active"]

    # --- applications ---------------------------------------------------------------------------

    def create(self, app_id: str, props: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(app_id, str) or not _APP_ID.fullmatch(app_id):
            raise errors.invalid_property("applicationId", app_id, "Letters, digits, - and _; at most 64.")
        if app_id.lower() in self.apps:
            raise errors.conflict("ApplicationExists", f"The application {app_id} already exists.")
        if len(self.apps) >= self.app_quota:
            raise errors.conflict(
                "ApplicationQuotaReached", f"The account already has its maximum of {self.app_quota} applications."
            )
        app: dict[str, Any] = {
            "id": app_id,
            "displayName": None,
            "allowUpdates": True,
            "defaultVersion": None,
            "packages": {},
        }
        self.apps[app_id.lower()] = app
        try:
            self._apply(app, props)
        except BatchError:
            del self.apps[app_id.lower()]
            raise
        self._save(app)
        return app

    def update(self, app_id: str, props: dict[str, Any]) -> dict[str, Any]:
        app = self.get(app_id)
        before = dict(app)
        try:
            self._apply(app, props)
        except BatchError:
            app.update(before)
            raise
        self._save(app)
        return app

    def _apply(self, app: dict[str, Any], props: dict[str, Any]) -> None:
        if not isinstance(props, dict):
            raise errors.invalid_body("properties must be an object")
        if "displayName" in props:
            if props["displayName"] is not None and not isinstance(props["displayName"], str):
                raise errors.invalid_property("properties.displayName", props["displayName"])
            app["displayName"] = props["displayName"]
        if "allowUpdates" in props:
            if not isinstance(props["allowUpdates"], bool):
                raise errors.invalid_property("properties.allowUpdates", props["allowUpdates"])
            app["allowUpdates"] = props["allowUpdates"]
        if "defaultVersion" in props:
            version = props["defaultVersion"]
            if version is not None:
                if not isinstance(version, str) or version.lower() not in app["packages"]:
                    raise errors.invalid_property(
                        "properties.defaultVersion", version, "The default version must be an existing package."
                    )
                version = app["packages"][version.lower()]["version"]
            app["defaultVersion"] = version

    def delete(self, app_id: str) -> None:
        app = self.get(app_id)
        if app["packages"]:
            raise errors.conflict(
                "ApplicationHasPackages",
                f"The application {app['id']} has packages; delete them before the application.",
            )
        del self.apps[app_id.lower()]
        with self.store.transaction():
            self.store.delete_application(scoped_key(self.account, app_id))

    # --- packages -------------------------------------------------------------------------------

    def create_package(self, app_id: str, version: str) -> tuple[dict[str, Any], str]:
        """A new (pending) version, or a re-upload of an existing one; returns it and a write SAS URL."""
        storage = self._storage()
        if not isinstance(version, str) or not _VERSION.fullmatch(version):
            raise errors.invalid_property("version", version, "Letters, digits, -, _ and .; at most 64.")
        app = self.apps.get(app_id.lower()) or self.create(app_id, {})  # the first package creates the app
        package = app["packages"].get(version.lower())
        if package is not None and not app["allowUpdates"]:
            raise errors.conflict(
                "ApplicationUpdatesNotAllowed",
                f"The application {app['id']} does not allow updates: version {package['version']} cannot change.",
            )
        if package is None and len(app["packages"]) >= self.package_quota:
            raise errors.conflict(
                "ApplicationPackageQuotaReached",
                f"The application {app['id']} already has its maximum of {self.package_quota} packages.",
            )
        if package is None:
            package = {"version": version, "state": "pending", "format": None, "lastActivationTime": None}
            app["packages"][version.lower()] = package
        # A fresh blob name per upload: nodes that installed the old content keep a consistent copy.
        # Under the account's key: accounts share the packages container.
        app_key = scoped_key(self.account, app["id"])
        package["pendingBlob"] = f"{app_key}/{version.lower()}/{secrets.token_hex(8)}.zip"
        self._save(app)
        url = storage.blob_sas_url(PACKAGE_CONTAINER, package["pendingBlob"], "rcw", UPLOAD_SAS_LIFETIME)
        return package, url

    def blob_to_activate(self, app_id: str, version: str) -> str | None:
        package = self.package(app_id, version)
        return package.get("pendingBlob") or package.get("blob")

    def activate(self, app_id: str, version: str, fmt: object, head: bytes | None) -> tuple[dict[str, Any], list[str]]:
        """Activate once the package was uploaded (`head`: its first bytes, read by the caller off the event
        loop; None when nothing was uploaded).

        Returns the package and blobs that are no longer used (the caller deletes them).
        """
        self._storage()
        package = self.package(app_id, version)
        if not isinstance(fmt, str) or fmt.lower() != "zip":
            raise errors.invalid_property("format", fmt, "Only the zip format is supported.")
        if head is None:
            raise errors.conflict(
                "ApplicationPackageBlobNotExists", "Upload the package to its storageUrl before activating it."
            )
        # What was uploaded is not looked into, as on Azure: a package that is no zip activates, and fails
        # where it is deployed (the task's or the node's ApplicationPackageDeploymentFailed).
        old = package.get("blob")
        blob = package.pop("pendingBlob", None) or old
        package.update({"state": "active", "format": "zip", "lastActivationTime": _now(), "blob": blob})
        self._save(self.get(app_id))
        return package, [old] if old and old != blob else []

    def delete_package(self, app_id: str, version: str) -> list[str]:
        """Remove a version; returns its blobs for the caller to delete."""
        app = self.get(app_id)
        package = self.package(app_id, version)
        if not app["allowUpdates"]:
            raise errors.conflict(
                "ApplicationUpdatesNotAllowed",
                f"The application {app['id']} does not allow updates: its packages cannot be deleted.",
            )
        del app["packages"][version.lower()]
        if (app["defaultVersion"] or "").lower() == version.lower():
            app["defaultVersion"] = None
        self._save(app)
        return [blob for blob in (package.get("blob"), package.get("pendingBlob")) if blob]

    # --- deployment -----------------------------------------------------------------------------

    def resolve(self, refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Package references of a pool or task -> what an agent installs (read SAS URLs, no key).

        Raises BatchError(ApplicationPackageNotFound...) naming the first reference that cannot be used.
        """
        resolved = []
        for ref in refs:
            app_id, version = ref.get("applicationId", ""), ref.get("version")
            app = self.apps.get(str(app_id).lower())
            label = f"{app_id}:{version or 'default'}"
            if app is None:
                raise errors.conflict("ApplicationPackageNotFound", f"The application {app_id} does not exist.")
            chosen = version or app["defaultVersion"]
            if not chosen:
                raise errors.conflict(
                    "ApplicationPackageNotFound", f"{label}: no version given and the application has no default."
                )
            package = app["packages"].get(chosen.lower())
            if package is None or package["state"] != "active" or self.storage is None:
                raise errors.conflict("ApplicationPackageNotFound", f"{label}: no usable package version {chosen}.")
            resolved.append(
                {
                    "id": app["id"],
                    "version": package["version"],
                    "default": version is None,
                    "blob": package["blob"],  # identity of the content: a re-upload gets a new blob
                    "url": self.storage.blob_sas_url(PACKAGE_CONTAINER, package["blob"]),
                }
            )
        return resolved

    # --- storage --------------------------------------------------------------------------------

    def ensure_container(self) -> None:
        """Create the packages container once (blocking: call it in a thread)."""
        storage = self._storage()
        if self._container_ready:
            return
        from azure.core.exceptions import ResourceExistsError

        try:
            storage.client().create_container(PACKAGE_CONTAINER)
        except ResourceExistsError:
            pass
        self._container_ready = True

    def read_head(self, blob: str) -> bytes | None:
        """The first bytes of a package blob, None if it is missing (blocking: call it in a thread)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            client = self._storage().client().get_blob_client(PACKAGE_CONTAINER, blob)
            return client.download_blob(offset=0, length=4).readall()
        except ResourceNotFoundError:
            return None

    def delete_blobs(self, blobs: list[str]) -> None:
        """Delete package blobs (blocking: call it in a thread)."""
        from azure.core.exceptions import ResourceNotFoundError

        if self.storage is None:
            return
        client = self.storage.client().get_container_client(PACKAGE_CONTAINER)
        for blob in blobs:
            try:
                client.get_blob_client(blob).delete_blob()
            except ResourceNotFoundError:
                pass

    # --- what both management surfaces do (api/applications.py, management/applications.py) ------

    async def new_package(self, app_id: str, version: str) -> tuple[dict[str, Any], str, str]:
        """A pending version (or a re-upload) with its write SAS URL and the URL's expiry time."""
        await asyncio.to_thread(self.ensure_container)
        package, url = self.create_package(app_id, version)
        expiry = (datetime.now(UTC) + UPLOAD_SAS_LIFETIME).strftime("%Y-%m-%dT%H:%M:%SZ")
        return package, url, expiry

    async def activate_uploaded(self, app_id: str, version: str, fmt: object) -> dict[str, Any]:
        """Activate a version whose package was uploaded; the blob it replaces is deleted."""
        blob = self.blob_to_activate(app_id, version)
        head = await asyncio.to_thread(self.read_head, blob) if blob and self.storage is not None else None
        package, unused = self.activate(app_id, version, fmt, head)
        if unused:
            await asyncio.to_thread(self.delete_blobs, unused)
        return package

    async def remove_package(self, app_id: str, version: str) -> None:
        await asyncio.to_thread(self.delete_blobs, self.delete_package(app_id, version))

    async def delete_all(self) -> None:
        """Delete every application with its packages (the account is deleted)."""
        blobs = [
            blob
            for app in self.apps.values()
            for package in app["packages"].values()
            for blob in (package.get("blob"), package.get("pendingBlob"))
            if blob
        ]
        with self.store.transaction():
            for app in self.apps.values():
                self.store.delete_application(scoped_key(self.account, app["id"]))
        self.apps.clear()
        if blobs:
            await asyncio.to_thread(self.delete_blobs, blobs)


class ApplicationRegistries:
    """Every account's application registry, each made when first used."""

    def __init__(self, store: Store, storage: LinkedStorage | None, app_quota: int, package_quota: int) -> None:
        self.store = store
        self.storage = storage
        self._quotas = (app_quota, package_quota)
        self._registries: dict[str | None, ApplicationRegistry] = {}

    def of(self, account: str | None) -> ApplicationRegistry:
        registry = self._registries.get(account)
        if registry is None:
            registry = ApplicationRegistry(self.store, self.storage, *self._quotas, account=account)
            self._registries[account] = registry
        return registry

    def forget(self, account: str) -> None:
        self._registries.pop(account, None)
