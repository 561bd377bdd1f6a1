"""uploadbatchservicelogs on the node: choose the agent's log files, then PUT them as block blobs.

As on Azure, the service answers once the files are chosen (their number) and the upload runs afterwards;
how it ended goes back to the service in a `logsuploaded` message (a failure becomes a node error).
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger("batchyard.agent.services")

LOG_FILES = ("agent.log",)  # under the node root: where the local provider sends the agent's output


def container_url_problem(container_url: str) -> str | None:
    """Why the URL cannot be a container's (checked before answering), or None."""
    parts = urllib.parse.urlsplit(container_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "The container URL is not an http(s) URL."
    return None


def choose_logs(root: Path, start: float) -> list[Path]:
    """The log files written since `start`: whole files, as the Batch service sends them (any file with a
    message in the window goes; the window's end does not narrow it, a later file may still hold some)."""
    chosen = []
    for name in LOG_FILES:
        path = root / name
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if info.st_mtime >= start:
            chosen.append(path)
    return chosen


def put_logs(files: list[Path], container_url: str, directory: str) -> dict[str, Any]:
    """PUT each file as a block blob under `directory` of the container: {ok, message?}."""
    parts = urllib.parse.urlsplit(container_url)
    for path in files:
        blob = urllib.parse.quote(f"{directory}/{path.name}")
        url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"{parts.path.rstrip('/')}/{blob}", parts.query, ""))
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # removed since it was chosen (a reimage): nothing left to send
        request = urllib.request.Request(
            url,
            data=data,
            method="PUT",
            headers={"x-ms-blob-type": "BlockBlob", "x-ms-version": "2021-08-06", "Content-Type": "text/plain"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            log.warning("uploading %s failed: %s", path.name, exc)
            return {"ok": False, "message": f"Uploading {path.name} to the container failed: {exc}"}
    return {"ok": True}
