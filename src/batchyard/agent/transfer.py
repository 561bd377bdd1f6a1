"""Plain-HTTP transfers of the agent: blob downloads (with a per-node cache), container listing and
uploads, all with SAS URLs (a node never holds a storage key). Everything streams: no file is ever
held whole in memory. Blocking; callers run these in threads.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from batchyard.agent import safe_files

CHUNK = 1024 * 1024
TIMEOUT = 60.0
BLOCK_SIZE = 8 * 1024 * 1024  # uploads above one block go as Put Block + Put Block List
API_VERSION = "2021-08-06"


class TransferError(Exception):
    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}" if status else reason)
        self.status = status
        self.reason = reason


def public(url: str) -> str:
    """A URL without its query (SAS signatures stay out of logs and failure details)."""
    return url.split("?", 1)[0]


def with_query(url: str, **params: str) -> str:
    base, _, query = url.partition("?")
    extra = urllib.parse.urlencode(params)
    return f"{base}?{query}&{extra}" if query else f"{base}?{extra}"


def blob_url(container_url: str, name: str) -> str:
    base, _, query = container_url.partition("?")
    url = f"{base.rstrip('/')}/{urllib.parse.quote(name)}"
    return f"{url}?{query}" if query else url


def _open(request: urllib.request.Request | str) -> http.client.HTTPResponse:
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            raise
        raise TransferError(exc.code, str(exc.reason)) from None
    except urllib.error.URLError as exc:
        url = request if isinstance(request, str) else request.full_url
        raise TransferError(None, f"cannot reach {public(url)}: {exc.reason}") from None


def _stream(response: http.client.HTTPResponse) -> Callable[[BinaryIO], None]:
    def fill(out: BinaryIO) -> None:
        while chunk := response.read(CHUNK):
            out.write(chunk)

    return fill


def save(target: Path, fill: Callable[[BinaryIO], None], mode: int | None = None) -> None:
    """Write `target` as `<name>.partial` and rename that over it. Both names are in a directory a task
    can write to, so the partial file is created new under the directory's descriptor (a link an earlier
    attempt left at either name is replaced, never written through); `mode` is set before the rename."""
    directory = safe_files.open_dir(target.parent)
    partial = target.name + ".partial"
    try:
        fd = safe_files.create_at(directory, partial)
        try:
            with os.fdopen(fd, "wb") as out:
                if mode is not None:
                    os.fchmod(out.fileno(), mode)
                fill(out)
            os.replace(partial, target.name, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            try:
                os.unlink(partial, dir_fd=directory)
            except OSError:
                pass
            raise
    finally:
        os.close(directory)


class BlobCache:
    """Blobs one node has fetched, keyed by URL without its SAS, revalidated with conditional GETs.

    Many tasks on a node that need the same blob cost one transfer: later ones get 304 Not Modified
    (the server still checks their SAS) and a local copy. Concurrent fetches of one blob wait for
    each other instead of downloading in parallel.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def fetch(self, url: str, target: Path, mode: int | None = None) -> None:
        key = hashlib.sha256(public(url).encode()).hexdigest()
        data, meta_path = self.directory / key, self.directory / f"{key}.json"
        with self._lock(key):
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # for the agent only (node_layout.py)
            headers = {}
            if data.exists() and meta_path.exists():
                meta = json.loads(meta_path.read_text())
                if meta.get("etag"):
                    headers["If-None-Match"] = meta["etag"]
                if meta.get("modified"):
                    headers["If-Modified-Since"] = meta["modified"]
            try:
                response = _open(urllib.request.Request(url, headers=headers))
            except urllib.error.HTTPError:  # 304: the cached copy is current
                _copy(data, target, mode)
                return
            with response:
                etag = response.headers.get("ETag")
                modified = response.headers.get("Last-Modified")
                if not etag and not modified:
                    save(target, _stream(response), mode)  # nothing to revalidate with: do not cache
                    return
                save(data, _stream(response))
            meta = json.dumps({"etag": etag, "modified": modified}).encode()
            save(meta_path, lambda out: _write(out, meta))
            _copy(data, target, mode)


def _write(out: BinaryIO, data: bytes) -> None:
    out.write(data)


def _copy(source: Path, target: Path, mode: int | None) -> None:
    # A copy, not a link: a task may change or chmod its file without touching the cache.
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as data:
        save(target, lambda out: shutil.copyfileobj(data, out, CHUNK), mode)


def download(url: str, target: Path, cache: BlobCache | None, mode: int | None = None) -> None:
    """Stream `url` to `target` (written under a temporary name, then renamed), with file mode `mode`."""
    if cache is not None:
        cache.fetch(url, target, mode)
        return
    with _open(url) as response:
        save(target, _stream(response), mode)


def list_blobs(container_url: str, prefix: str | None) -> Iterator[str]:
    """Blob names of a container (List Blobs over plain HTTP with the URL's SAS), following markers."""
    marker = ""
    while True:
        params = {"restype": "container", "comp": "list"}
        if prefix:
            params["prefix"] = prefix
        if marker:
            params["marker"] = marker
        request = urllib.request.Request(with_query(container_url, **params), headers={"x-ms-version": API_VERSION})
        with _open(request) as response:
            root = ET.fromstring(response.read())
        for blob in root.iter("Blob"):
            name = blob.findtext("Name")
            if name:
                yield name
        marker = root.findtext("NextMarker") or ""
        if not marker:
            return


def upload(url: str, path: Path, headers: dict[str, str]) -> None:
    """Upload a file as a block blob: one Put Blob when small, else blocks (each streamed from disk)."""
    size = path.stat().st_size
    base = {"x-ms-version": API_VERSION, **headers}
    if size <= BLOCK_SIZE:
        with open(path, "rb") as body:
            _put(url, body.read(), {**base, "x-ms-blob-type": "BlockBlob"})
        return
    ids = []
    with open(path, "rb") as source:
        index = 0
        while block := source.read(BLOCK_SIZE):
            block_id = base64.b64encode(f"{index:08d}".encode()).decode()  # Base64, all of one length
            ids.append(block_id)
            _put(with_query(url, comp="block", blockid=block_id), block, {"x-ms-version": API_VERSION})
            index += 1
    block_list = "<?xml version='1.0' encoding='utf-8'?><BlockList>" + "".join(f"<Latest>{i}</Latest>" for i in ids)
    _put(with_query(url, comp="blocklist"), (block_list + "</BlockList>").encode(), _blocklist_headers(base))


def _blocklist_headers(headers: dict[str, str]) -> dict[str, str]:
    # On Put Block List the blob's own properties travel as x-ms-blob-* headers.
    out = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in ("content-type", "content-encoding", "content-language", "content-disposition", "cache-control"):
            out[f"x-ms-blob-{lower}"] = value
        else:
            out[name] = value
    return out


def _put(url: str, data: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=data, method="PUT", headers=headers)
    with _open(request):
        pass
