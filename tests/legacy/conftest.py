"""Fixtures for the legacy-SDK suite, run by its own venv: `.venv-legacy/bin/python -m pytest tests/legacy -q`.

That venv has azure-batch 14.2.0 (msrest, `BatchServiceClient`) and batchyard installed editable
(scripts/test.sh does it), but not azure-batch 15.x. The parent tests/conftest.py is loaded by pytest as
usual: its `service` and `unique` fixtures (a real service process) work here, because they import only
httpx, pytest and batchyard; `make_client`/`client` (15.x) must not be used.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
# The repo root (for `from tests.conftest import ...` under a bare `pytest` too) and src (if batchyard
# was not installed into this venv).
for _path in (str(_ROOT), str(_ROOT / "src")):
    if _path not in sys.path:
        sys.path.insert(0, _path)


@pytest.fixture(scope="session")
def legacy_client(service: Any) -> Any:
    """A legacy `BatchServiceClient` with Shared Key credentials, as the seed's tutorial creates it."""
    batch = pytest.importorskip("azure.batch", reason="needs the legacy azure-batch SDK")
    batch_auth = pytest.importorskip("azure.batch.batch_auth", reason="needs the legacy azure-batch 12.x-14.x SDK")
    from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

    credentials = batch_auth.SharedKeyCredentials(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY)
    return batch.BatchServiceClient(credentials, batch_url=service.url)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server for resource files (the tutorial's Storage containers): (base URL, its directory)."""
    directory = tmp_path_factory.mktemp("served")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", directory
    finally:
        server.shutdown()
        server.server_close()
