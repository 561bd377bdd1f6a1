"""`batchyard serve`: accounts, the loopback rule for the development key, readiness and the ready line."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import HttpResponseError

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from tests.conftest import Service, make_client, start_service


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "batchyard.cli.main", "serve", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_refuses_the_development_key_on_a_non_loopback_address(tmp_path: Path) -> None:
    result = _serve("--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr
    result = _serve(
        "--host", "0.0.0.0", "--data-dir", str(tmp_path), "--account-name", "a", "--account-key", DEV_ACCOUNT_KEY
    )
    assert result.returncode == 2


def test_development_account_is_announced_and_ready_endpoint_needs_no_auth(service: Service) -> None:
    log = service.log()
    assert f"well-known development account {DEV_ACCOUNT_NAME}" in log
    assert f"Batch service listening on {service.url}" in log
    answer = httpx.get(service.url + "/")
    assert answer.status_code == 200
    assert answer.json()["account"] == DEV_ACCOUNT_NAME


def test_account_from_the_environment(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(64)).decode()
    svc = start_service(tmp_path / "svc", env={"BATCHYARD_ACCOUNT_NAME": "myaccount", "BATCHYARD_ACCOUNT_KEY": key})
    try:
        assert "development account" not in svc.log()
        assert list(make_client(svc.url, key=key, name="myaccount").list_pools()) == []
        with pytest.raises(HttpResponseError) as info:
            list(make_client(svc.url).list_pools())  # the development key is not valid here
        assert info.value.status_code == 403
    finally:
        svc.stop()
