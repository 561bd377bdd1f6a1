"""`batchyard serve` options for the linked storage account, and starting Azurite for it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when used: agents share the CLI and need no storage SDK
    from batchyard.service.storage.azurite import Azurite
    from batchyard.service.storage.linked import LinkedStorage


def add_storage_options(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group("linked storage account (application packages, autoStorageContainerName)")
    group.add_argument(
        "--storage-connection-string", help="Azure Storage connection string (or BATCHYARD_STORAGE_CONNECTION_STRING)"
    )
    group.add_argument(
        "--storage-account-url", help="blob endpoint: https://ACCOUNT.blob.core.windows.net (or BATCHYARD_STORAGE_URL)"
    )
    group.add_argument("--storage-account-key", help="its account key (or BATCHYARD_STORAGE_KEY)")
    group.add_argument(
        "--azurite",
        action="store_true",
        help="start a local Azurite (installed with npm if needed) as the linked account, unless one is configured",
    )
    group.add_argument(
        "--azurite-port",
        type=int,
        default=10000,
        help="Azurite's blob port (Azurite's usual 10000; a free port when it is taken, or with 0)",
    )
    group.add_argument("--application-quota", type=int, default=20, help="applications per account")
    group.add_argument("--package-quota", type=int, default=40, help="package versions per application")


def configured_storage(args: argparse.Namespace) -> LinkedStorage | None:
    """The account given by flags or environment, or None. Raises StorageConfigError on a bad one."""
    from batchyard.service.storage.linked import LinkedStorage, StorageConfigError

    text = args.storage_connection_string or os.environ.get("BATCHYARD_STORAGE_CONNECTION_STRING")
    if text:
        return LinkedStorage.from_connection_string(text)
    url = args.storage_account_url or os.environ.get("BATCHYARD_STORAGE_URL")
    key = args.storage_account_key or os.environ.get("BATCHYARD_STORAGE_KEY")
    if url:
        if not key:
            raise StorageConfigError("--storage-account-url needs --storage-account-key (or BATCHYARD_STORAGE_KEY)")
        return LinkedStorage.from_url_and_key(url, key)
    if key:
        raise StorageConfigError("--storage-account-key needs --storage-account-url (or BATCHYARD_STORAGE_URL)")
    return None


def start_storage(args: argparse.Namespace, data_dir: Path) -> tuple[LinkedStorage | None, Azurite | None]:
    """The linked account: a configured one, else a fresh local Azurite when --azurite was given."""
    storage = configured_storage(args)
    if storage is not None or not args.azurite:
        return storage, None
    from batchyard.service.storage.azurite import Azurite

    azurite = Azurite(data_dir / "azurite", port=args.azurite_port)
    storage = azurite.start()
    print(f"batchyard: Azurite (linked storage account) listening on {storage.blob_endpoint}", flush=True)
    return storage, azurite
