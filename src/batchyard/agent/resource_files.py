"""Resource files: download what a task needs into its working directory before it starts.

The four sources of the contract: `httpUrl` (one file at `filePath`), `storageContainerUrl` (every
blob of the container, or those under `blobPrefix`, kept with their paths under the `filePath`
directory), and `autoStorageContainerName` (the service resolves it to a container URL with a SAS
before the run reaches the node). Downloads stream to disk (never whole in memory), go through the
node's blob cache, and every target stays inside the working directory: `..`, absolute paths and
links that lead out are refused before anything is written.
"""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import Any

from batchyard.agent import transfer
from batchyard.agent.transfer import BlobCache, TransferError


class DownloadError(Exception):
    def __init__(self, failure: dict[str, Any]) -> None:
        super().__init__(failure["message"])
        self.failure = failure


def _failure(code: str, message: str, path: str | None = None, url: str | None = None) -> DownloadError:
    details = [{"name": "FilePath", "value": path}] if path else []
    if url:
        details.append({"name": "Url", "value": transfer.public(url)})
    return DownloadError({"category": "usererror", "code": code, "message": message, "details": details})


def target_path(working_dir: Path, file_path: str | None, url: str) -> Path:
    """Where a resource file goes: `filePath` under the working dir, else the URL's last segment."""
    relative = file_path or transfer.public(url).rstrip("/").rsplit("/", 1)[-1]
    if not relative or os.path.isabs(relative):
        raise _failure(
            "ResourceFileCreateFailed", f"The resource file path '{relative}' is not a relative path.", relative
        )
    root = working_dir.resolve()
    target = (root / relative).resolve()  # follows links already there: a link out is caught here
    if root not in target.parents:
        raise _failure(
            "ResourceFileCreateFailed",
            f"The resource file path '{relative}' leads outside the task working directory.",
            relative,
        )
    return target


def _prepare(working_dir: Path, target: Path, relative: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Re-check after creating directories: a link planted between check and mkdir must not win.
    root, parent = working_dir.resolve(), target.parent.resolve()
    if parent != root and root not in parent.parents:
        raise _failure(
            "ResourceFileCreateFailed", f"The resource file path '{relative}' leads outside the working directory."
        )


def _fetch(url: str, target: Path, relative: str, mode: str | None, cache: BlobCache | None) -> None:
    try:
        bits = int(mode, 8) if mode else None
    except ValueError:
        raise _failure("ResourceFileCreateFailed", f"The file mode '{mode}' is not an octal number.") from None
    try:
        transfer.download(url, target, cache, bits)  # the mode is set on the new file, not through a path
    except TransferError as exc:
        code = {403: "BlobAccessDenied", 404: "BlobNotFound"}.get(exc.status or 0, "BlobDownloadMiscError")
        raise _failure(code, f"Failed to download resource file {relative}: {exc}", relative, url) from None
    except TimeoutError:
        message = f"Timed out downloading resource file {relative}"
        raise _failure("BlobDownloadTimedOut", message, relative, url) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _failure("DiskFull", f"The node disk is full: cannot download {relative}", relative, url) from None
        raise _failure("ResourceFileWriteFailed", f"Cannot write resource file {relative}: {exc}", relative) from None
    except ValueError as exc:  # a malformed URL
        message = f"Failed to download resource file {relative}: {exc}"
        raise _failure("BlobDownloadMiscError", message, relative) from None


def _container_files(item: dict[str, Any], working_dir: Path) -> list[tuple[str, Path, str]]:
    """(blob URL, target, relative path) of every blob of a storageContainerUrl source."""
    container = item["storageContainerUrl"]
    directory = (item.get("filePath") or "").strip("/")
    try:
        names = list(transfer.list_blobs(container, item.get("blobPrefix")))
    except TransferError as exc:
        code = {403: "BlobAccessDenied", 404: "ContainerNotFound"}.get(exc.status or 0, "BlobDownloadMiscError")
        raise _failure(
            code, f"Failed to list the container of resource files {transfer.public(container)}: {exc}", url=container
        ) from None
    out = []
    for name in names:
        if name.endswith("/"):
            continue  # a directory marker, not a file
        relative = f"{directory}/{name}" if directory else name
        out.append((transfer.blob_url(container, name), target_path(working_dir, relative, ""), relative))
    return out


def _download_one(item: dict[str, Any], working_dir: Path, cache: BlobCache | None) -> None:
    mode = item.get("fileMode")
    if item.get("httpUrl"):
        url = item["httpUrl"]
        target = target_path(working_dir, item.get("filePath"), url)
        relative = item.get("filePath") or target.name
        _prepare(working_dir, target, relative)
        _fetch(url, target, relative, mode, cache)
    elif item.get("storageContainerUrl"):
        for url, target, relative in _container_files(item, working_dir):
            _prepare(working_dir, target, relative)
            _fetch(url, target, relative, mode, cache)
    elif item.get("autoStorageContainerName"):
        raise _failure(
            "AutoStorageNotConfigured",
            f"The resource files of container {item['autoStorageContainerName']} need a linked storage account, "
            "and the Batch service has none.",
        )
    else:
        raise _failure("ResourceFileSourceUnsupported", "A resource file has no source.")


async def download_resource_files(
    files: list[dict[str, Any]], working_dir: Path, cache: BlobCache | None = None
) -> None:
    for item in files:
        await asyncio.to_thread(_download_one, item, working_dir, cache)
