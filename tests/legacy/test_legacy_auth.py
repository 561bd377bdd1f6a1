"""Shared Key verification against the azure-batch 12.x-14.x signer (`batch_auth.SharedKeyCredentials`).

Run by the legacy venv: `.venv-legacy/bin/python -m pytest tests/legacy -q` (azure-batch==14.2.0, whose
`batch_auth.py` is byte-identical to 12.0.0's). Skipped where only azure-batch 15.x is installed.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

batch_auth = pytest.importorskip(
    "azure.batch.batch_auth", reason="needs the legacy azure-batch 12.x-14.x SDK (the .venv-legacy venv)"
)

import requests  # noqa: E402
from azure.batch import BatchServiceClient, models  # noqa: E402

from batchyard.service.api_versions import check_api_version  # noqa: E402
from batchyard.service.auth import SharedKeyAccount, sign_request, verify_request  # noqa: E402
from batchyard.service.errors import BatchError  # noqa: E402

ACCOUNT = "legacyaccount"
PRIMARY = base64.b64encode(b"legacy-primary-key-0123456789abcdef").decode()
SECONDARY = base64.b64encode(b"legacy-secondary-key-0123456789abcd").decode()
KEYS = SharedKeyAccount(ACCOUNT, (PRIMARY, SECONDARY))

Wire = tuple[str, str, str, dict[str, str]]  # method, raw path, raw query, lower-case headers


def verify(wire: Wire, **kwargs: object) -> None:
    method, path, query, headers = wire
    verify_request(KEYS, method, path, query, headers, **kwargs)  # type: ignore[arg-type]


def prepared_wire(prepared: requests.PreparedRequest) -> Wire:
    parts = urlsplit(prepared.url or "")
    headers = {name.lower(): str(value) for name, value in prepared.headers.items()}
    return (prepared.method or "", parts.path, parts.query, headers)


def legacy_sign(request: requests.Request, key: str = PRIMARY) -> requests.PreparedRequest:
    prepared = request.prepare()
    prepared.prepare_auth(batch_auth.SharedKeyAuth("Authorization", ACCOUNT, key))
    return prepared


def test_legacy_signer_get_with_filter() -> None:
    url = "https://x.batch.azure.com/jobs"
    params = {"api-version": "2024-02-01.19.0", "$filter": "state eq 'active'", "timeout": "30"}
    verify(prepared_wire(legacy_sign(requests.Request("GET", url, params=params))))


def test_legacy_signer_post_body_and_secondary_key() -> None:
    body = json.dumps({"id": "job-1", "poolInfo": {"poolId": "p"}})
    request = requests.Request(
        "POST",
        "https://x.batch.azure.com/jobs?api-version=2024-02-01.19.0",
        data=body,
        headers={"Content-Type": "application/json; odata=minimalmetadata; charset=utf-8"},
    )
    wire = prepared_wire(legacy_sign(request, key=SECONDARY))
    assert wire[3]["content-length"] == str(len(body))
    verify(wire)
    method, path, query, headers = wire
    with pytest.raises(BatchError):
        verify((method, path, query, {**headers, "content-length": str(len(body) - 1)}))


def test_legacy_signer_post_without_body_and_encoded_path() -> None:
    request = requests.Request("POST", "https://x.batch.azure.com/jobs/a%20b/disable?api-version=2024-02-01.19.0")
    wire = prepared_wire(legacy_sign(request))
    assert wire[3]["content-length"] == "0"
    verify(wire)
    method, path, query, headers = wire
    verify((method, path, query, {k: v for k, v in headers.items() if k != "content-length"}))


def test_legacy_and_our_signer_agree() -> None:
    url = "https://x.batch.azure.com/pools/p%2Fq?api-version=2024-02-01.19.0&$select=id,state&a=1&b="
    headers = {"ocp-date": "Tue, 01 Jul 2025 10:00:00 GMT", "If-Match": '"0x1"', "client-request-id": "c"}
    for method in ("GET", "DELETE", "PATCH"):
        prepared = legacy_sign(requests.Request(method, url, headers=dict(headers)))
        unsigned = {k: v for k, v in prepared.headers.items() if k != "Authorization"}
        assert sign_request(ACCOUNT, PRIMARY, method, prepared.url or "", unsigned) == prepared.headers["Authorization"]


def test_legacy_tampering_and_skew_fail() -> None:
    wire = prepared_wire(legacy_sign(requests.Request("GET", "https://x.batch.azure.com/jobs/j?api-version=1")))
    method, path, query, headers = wire
    for bad in [
        ("PUT", path, query, headers),
        (method, "/jobs/k", query, headers),
        (method, path, "api-version=2", headers),
        (method, path, query, {**headers, "ocp-date": "Tue, 01 Jul 2025 10:00:00 GMT"}),
    ]:
        with pytest.raises(BatchError):
            verify(bad)
    with pytest.raises(BatchError):
        verify(wire, now=datetime.now(UTC) + timedelta(minutes=20))


# --- end to end: the real 14.x BatchServiceClient over a socket --------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.seen.append((self.command, parts.path, parts.query, headers))  # type: ignore[attr-defined]
        body = json.dumps({"code": "JobNotFound", "message": {"lang": "en-US", "value": "nope"}}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json;odata=minimalmetadata")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[Wire]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def test_real_legacy_client_requests_verify(recorder: tuple[str, list[Wire]]) -> None:
    endpoint, seen = recorder
    client = BatchServiceClient(batch_auth.SharedKeyCredentials(ACCOUNT, PRIMARY), batch_url=endpoint)
    client.config.retry_policy.retries = 0
    calls = [
        lambda: list(client.job.list(models.JobListOptions(filter="state eq 'active' and id ge 'a+b'", max_results=5))),
        lambda: client.job.get("job-1"),
        lambda: client.job.add(models.JobAddParameter(id="j", pool_info=models.PoolInformation(pool_id="p"))),
        lambda: client.job.terminate("job-1"),
        lambda: client.job.disable("job-1", "requeue"),
        lambda: client.job.delete("job-1"),
        lambda: client.file.get_from_task("job-1", "task-1", "wd/out put é.txt"),
        lambda: client.file.get_properties_from_task("job-1", "task-1", "stdout.txt"),
    ]
    for call in calls:
        with pytest.raises(Exception):  # noqa: B017 - the recorder answers 404 to everything
            call()
    assert [w[0] for w in seen] == ["GET", "GET", "POST", "POST", "POST", "DELETE", "GET", "HEAD"]
    for wire in seen:
        verify(wire)
        assert check_api_version({k: v[0] for k, v in parse_qs(wire[2]).items()}) == "2024-02-01.19.0"
    assert "%2F" in seen[6][1]
