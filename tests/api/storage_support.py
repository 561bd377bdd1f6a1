"""One Azurite for the whole test session (started on first use, gone with the session), and a
service linked to it. Imported by the storage and application test modules."""

from __future__ import annotations

import atexit
import tempfile
from pathlib import Path

from batchyard.service.storage.azurite import Azurite
from batchyard.service.storage.linked import LinkedStorage
from tests.conftest import Service, start_service

_azurite: Azurite | None = None


def shared_azurite() -> LinkedStorage:
    global _azurite
    if _azurite is None:
        azurite = Azurite(Path(tempfile.mkdtemp(prefix="batchyard-azurite-")))
        azurite.start()
        atexit.register(azurite.stop)
        _azurite = azurite
    return _azurite.storage


def start_linked_service(data_dir: Path, *extra: str) -> Service:
    """A service whose linked storage account is the shared Azurite."""
    return start_service(data_dir, "--storage-connection-string", shared_azurite().connection_string, *extra)


def create_container(storage: LinkedStorage, name: str) -> None:
    from azure.core.exceptions import ResourceExistsError

    try:
        storage.client().create_container(name)
    except ResourceExistsError:
        pass


def upload(storage: LinkedStorage, container: str, name: str, data: bytes) -> None:
    storage.client().get_blob_client(container, name).upload_blob(data, overwrite=True)


def download(storage: LinkedStorage, container: str, name: str) -> bytes:
    return storage.client().get_blob_client(container, name).download_blob().readall()


def blob_names(storage: LinkedStorage, container: str) -> list[str]:
    return sorted(blob.name for blob in storage.client().get_container_client(container).list_blobs())
