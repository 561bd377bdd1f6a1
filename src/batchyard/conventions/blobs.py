"""The few Blob operations the conventions need, over plain HTTP with a container SAS URL.

Standard library only, so task code can use it on a node that has nothing but Python.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from batchyard.agent.transfer import TransferError, upload

API_VERSION = "2021-08-06"
APPEND_LIMIT = 4 * 1024 * 1024  # largest Append Block


class Container:
    def __init__(self, url: str) -> None:
        base, _, self.sas = url.partition("?")
        self.base = base.rstrip("/")

    def url(self, name: str, **params: str) -> str:
        query = "&".join(q for q in (self.sas, urllib.parse.urlencode(params)) if q)
        path = f"{self.base}/{urllib.parse.quote(name)}" if name else self.base
        return f"{path}?{query}" if query else path

    def _request(
        self, url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        request = urllib.request.Request(
            url, data=data, method=method, headers={"x-ms-version": API_VERSION, **(headers or {})}
        )
        try:
            return urllib.request.urlopen(request, timeout=60)
        except urllib.error.HTTPError as exc:
            raise TransferError(exc.code, str(exc.reason)) from None
        except urllib.error.URLError as exc:
            raise TransferError(None, f"cannot reach {self.base}: {exc.reason}") from None

    def upload_file(self, name: str, path: Path, content_type: str | None = None) -> None:
        upload(self.url(name), path, {"Content-Type": content_type} if content_type else {})

    def list(self, prefix: str) -> list[str]:
        names, marker = [], ""
        while True:
            params = {"restype": "container", "comp": "list", "prefix": prefix}
            if marker:
                params["marker"] = marker
            with self._request(self.url("", **params)) as response:
                root = ET.fromstring(response.read())
            names += [n for blob in root.iter("Blob") if (n := blob.findtext("Name"))]
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return names

    def download(self, name: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with self._request(self.url(name)) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 1024 * 1024)
        os.replace(partial, target)

    def read(self, name: str) -> bytes:
        with self._request(self.url(name)) as response:
            return bytes(response.read())

    def create_append_blob(self, name: str) -> None:
        with self._request(self.url(name), "PUT", b"", {"x-ms-blob-type": "AppendBlob"}):
            pass

    def append(self, name: str, data: bytes) -> None:
        for start in range(0, len(data), APPEND_LIMIT):
            with self._request(self.url(name, comp="appendblock"), "PUT", data[start : start + APPEND_LIMIT]):
                pass
