"""Resource files: download what a task needs into its working directory before it starts.

Downloads stream to disk (never whole in memory) and every target stays inside the working
directory: `..`, absolute paths and links that lead out are refused.
"""

from __future__ import annotations

import asyncio
import errno
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024
TIMEOUT = 60.0


class DownloadError(Exception):
    def __init__(self, failure: dict[str, Any]) -> None:
        super().__init__(failure["message"])
        self.failure = failure


def _failure(code: str, message: str, url: str | None = None) -> DownloadError:
    details = [{"name": "FilePath", "value": url}] if url else []
    return DownloadError({"category": "usererror", "code": code, "message": message, "details": details})


def target_path(working_dir: Path, file_path: str | None, url: str) -> Path:
    """Where a resource file goes: `filePath` under the working dir, else the URL's last segment."""
    relative = file_path or url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if not relative or os.path.isabs(relative):
        raise _failure("ResourceFileCreateFailed", f"The resource file path '{relative}' is not a relative path.")
    root = working_dir.resolve()
    target = (root / relative).resolve()
    if root not in target.parents:
        raise _failure(
            "ResourceFileCreateFailed", f"The resource file path '{relative}' leads outside the task working directory."
        )
    return target


def _download(url: str, target: Path, mode: str | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(partial, "wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        partial.unlink(missing_ok=True)
        code = {403: "BlobAccessDenied", 404: "BlobNotFound"}.get(exc.code, "BlobDownloadMiscError")
        raise _failure(
            code, f"Failed to download resource file {target.name}: HTTP {exc.code} {exc.reason}", url
        ) from None
    except TimeoutError:
        partial.unlink(missing_ok=True)
        raise _failure("BlobDownloadTimedOut", f"Timed out downloading resource file {target.name}", url) from None
    except OSError as exc:
        partial.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise _failure("DiskFull", f"The node disk is full: cannot download {target.name}", url) from None
        if not isinstance(exc, urllib.error.URLError):
            raise _failure("ResourceFileWriteFailed", f"Cannot write resource file {target.name}: {exc}", url) from None
        raise _failure("BlobDownloadMiscError", f"Failed to download resource file {target.name}: {exc}", url) from None
    except ValueError as exc:
        partial.unlink(missing_ok=True)
        raise _failure("BlobDownloadMiscError", f"Failed to download resource file {target.name}: {exc}", url) from None
    os.replace(partial, target)
    if mode:
        try:
            os.chmod(target, int(mode, 8))
        except ValueError:
            raise _failure("ResourceFileCreateFailed", f"The file mode '{mode}' is not an octal number.") from None


async def download_resource_files(files: list[dict[str, Any]], working_dir: Path) -> None:
    for item in files:
        url = item.get("httpUrl")
        if not url:
            raise _failure(
                "ResourceFileSourceUnsupported",
                "Only httpUrl resource files are supported without a linked storage account.",
            )
        target = target_path(working_dir, item.get("filePath"), url)
        await asyncio.to_thread(_download, url, target, item.get("fileMode"))
