"""Shared Key verification against signatures made by the real azure-batch 15.x signer."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from azure.batch import BatchClient, models
from azure.batch._patch import BatchSharedKeyAuthPolicy
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest
from requests.utils import requote_uri

from batchyard.service.auth import (
    SharedKeyAccount,
    format_ocp_date,
    sign_request,
    string_to_sign,
    verify_request,
)
from batchyard.service.errors import BatchError

ACCOUNT = "devaccount"
PRIMARY = base64.b64encode(b"primary-key-bytes-0123456789abcdef").decode()
SECONDARY = base64.b64encode(b"secondary-key-bytes-0123456789abcd").decode()
OTHER = base64.b64encode(b"some-other-key-nobody-configured!!").decode()
BASE = "https://devaccount.westus.batch.azure.com"
API = {"api-version": "2025-06-01"}


@dataclass(frozen=True)
class Wire:
    """A request as the service receives it: raw path, raw query, lower-case headers."""

    method: str
    raw_path: str
    query: str
    headers: dict[str, str]

    def with_header(self, name: str, value: str | None) -> Wire:
        headers = dict(self.headers)
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
        return replace(self, headers=headers)


def sdk_sign(request: HttpRequest, key: str = PRIMARY, account: str = ACCOUNT) -> HttpRequest:
    policy = BatchSharedKeyAuthPolicy(AzureNamedKeyCredential(account, key))
    policy.on_request(PipelineRequest(request, PipelineContext(None)))
    return request


def to_wire(request: HttpRequest) -> Wire:
    """What the requests transport puts on the wire (it re-quotes the URL and adds Content-Length: 0)."""
    parts = urlsplit(requote_uri(request.url))
    headers = {name.lower(): value for name, value in request.headers.items()}
    if request.method not in ("GET", "HEAD") and "content-length" not in headers:
        headers["content-length"] = "0"
    return Wire(request.method, parts.path, parts.query, headers)


def verify(wire: Wire, account: SharedKeyAccount | None = None, **kwargs: object) -> None:
    account = account or SharedKeyAccount(ACCOUNT, (PRIMARY,))
    verify_request(account, wire.method, wire.raw_path, wire.query, wire.headers, **kwargs)  # type: ignore[arg-type]


def assert_rejected(wire: Wire, **kwargs: object) -> BatchError:
    with pytest.raises(BatchError) as info:
        verify(wire, **kwargs)
    err = info.value
    assert (err.status, err.code) == (403, "AuthenticationFailed")
    return err


def get_jobs() -> HttpRequest:
    return sdk_sign(
        HttpRequest("GET", f"{BASE}/jobs", params={**API, "$filter": "state eq 'active'", "maxresults": "10"})
    )


def post_job() -> HttpRequest:
    body = json.dumps({"id": "job-1", "poolInfo": {"poolId": "pool-1"}})
    headers = {"content-type": "application/json; odata=minimalmetadata"}
    return sdk_sign(HttpRequest("POST", f"{BASE}/jobs", params=API, headers=headers, content=body))


# --- requests signed by the 15.x policy --------------------------------------------------------------


def test_get_with_filter_verifies() -> None:
    request = get_jobs()
    assert request.headers["Authorization"].startswith(f"SharedKey {ACCOUNT}:")
    verify(to_wire(request))


def test_post_with_json_body_verifies() -> None:
    wire = to_wire(post_job())
    assert wire.headers["content-length"] == str(len(json.dumps({"id": "job-1", "poolInfo": {"poolId": "pool-1"}})))
    verify(wire)


def test_post_without_body_verifies_with_content_length_zero_or_absent() -> None:
    request = sdk_sign(HttpRequest("POST", f"{BASE}/jobs/job-1/disable", params=API))
    wire = to_wire(request)
    verify(wire)
    verify(wire.with_header("content-length", None))  # e.g. a chunked or HTTP/2 request


def test_streamed_body_signed_with_zero_length_verifies() -> None:
    # A streamed body has no Content-Length: 15.x signs "0" while the wire is chunked (no content-length).
    request = sdk_sign(HttpRequest("PUT", f"{BASE}/jobs/j", params=API, content=iter([b'{"a": 1}'])))
    assert "Content-Length" not in request.headers
    verify(to_wire(request).with_header("content-length", None).with_header("transfer-encoding", "chunked"))


def test_get_verifies_when_a_proxy_adds_content_length_zero() -> None:
    verify(to_wire(get_jobs()).with_header("content-length", "0"))


def test_encoded_path_characters_verify() -> None:
    # The SDK quotes path arguments with quote(safe=""): "/" -> %2F, " " -> %20, non-ASCII as UTF-8.
    url = f"{BASE}/jobs/job%201/tasks/t%C3%A9/files/wd%2Fout%20put.txt"
    params = {**API, "recursive": "true", "$select": "name,url"}
    wire = to_wire(sdk_sign(HttpRequest("GET", url, params=params)))
    assert wire.raw_path == "/jobs/job%201/tasks/t%C3%A9/files/wd%2Fout%20put.txt"
    verify(wire)


def test_lower_case_percent_escapes_verify() -> None:
    wire = to_wire(sdk_sign(HttpRequest("GET", f"{BASE}/jobs/a%2Fb", params=API)))
    verify(replace(wire, raw_path="/jobs/a%2fb"))


def test_optional_ocp_and_conditional_headers_are_signed() -> None:
    headers = {
        "If-Match": '"0x8D"',
        "If-Unmodified-Since": "Tue, 01 Jul 2025 10:00:00 GMT",
        "client-request-id": "abc",
        "ocp-range": "bytes=0-99",
    }
    wire = to_wire(sdk_sign(HttpRequest("GET", f"{BASE}/jobs/j/tasks/t/files/f", params=API, headers=headers)))
    verify(wire)
    assert_rejected(wire.with_header("if-match", '"0x8E"'))
    assert_rejected(wire.with_header("ocp-range", "bytes=0-100"))
    verify(wire.with_header("client-request-id", "changed"))  # not a signed header


def test_blank_query_parameters_are_left_out_as_the_sdk_does() -> None:
    url = f"{BASE}/jobs?maxresults=5&api-version=2025-06-01&timeout="
    wire = to_wire(sdk_sign(HttpRequest("GET", url)))
    assert wire.query == url.split("?")[1]
    verify(wire)
    assert_rejected(replace(wire, query=wire.query.replace("maxresults=5", "maxresults=7")))


def test_every_value_of_a_repeated_query_parameter_is_signed() -> None:
    """Azure canonicalises all values (sorted, comma-joined); the SDK's first-value signature does not cover a
    second value, so a value appended after signing cannot pass. (The HTTP layer refuses repeats anyway.)"""
    url = f"{BASE}/jobs?maxresults=5&api-version=2025-06-01"
    wire = to_wire(sdk_sign(HttpRequest("GET", url)))
    verify(wire)
    assert_rejected(replace(wire, query=wire.query + "&maxresults=6"))
    text = string_to_sign("GET", ACCOUNT, f"{BASE}/jobs?b=2&a=x&b=1", {})
    assert text.endswith("\na:x\nb:1,2")


def test_secondary_key_verifies() -> None:
    account = SharedKeyAccount(ACCOUNT, (PRIMARY, SECONDARY))
    verify(to_wire(sdk_sign(HttpRequest("GET", f"{BASE}/pools", params=API), key=SECONDARY)), account)
    with pytest.raises(BatchError):
        verify(to_wire(sdk_sign(HttpRequest("GET", f"{BASE}/pools", params=API), key=OTHER)), account)


def test_account_name_is_case_insensitive() -> None:
    verify(to_wire(sdk_sign(HttpRequest("GET", f"{BASE}/pools", params=API), account="DevAccount")))


# --- tampering and bad requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda w: replace(w, method="DELETE"), id="method"),
        pytest.param(lambda w: replace(w, raw_path="/jobs/job-2"), id="path"),
        pytest.param(lambda w: replace(w, query=w.query.replace("active", "completed")), id="query"),
        pytest.param(lambda w: replace(w, query=w.query + "&$top=1"), id="extra-query"),
        pytest.param(lambda w: w.with_header("content-length", "12"), id="content-length"),
        pytest.param(lambda w: w.with_header("content-type", "text/plain"), id="content-type"),
        pytest.param(
            lambda w: w.with_header("ocp-date", format_ocp_date(datetime.now(UTC) - timedelta(minutes=1))),
            id="ocp-date",
        ),
    ],
)
def test_tampered_request_fails(tamper: object) -> None:
    wire = to_wire(get_jobs())
    tampered = tamper(wire)  # type: ignore[operator]
    err = assert_rejected(tampered)
    detail = err.values["AuthenticationErrorDetail"]
    assert "computed signature" in detail
    # Neither the expected signature nor the string to sign is revealed.
    assert "\n" not in detail
    expected = sign_request(ACCOUNT, PRIMARY, tampered.method, f"{BASE}{tampered.raw_path}", tampered.headers)
    assert expected.split(":", 1)[1] not in detail


def test_tampered_body_length_fails() -> None:
    wire = to_wire(post_job())
    assert_rejected(wire.with_header("content-length", str(int(wire.headers["content-length"]) + 1)))
    assert_rejected(wire.with_header("content-length", "0"))


def test_wrong_account_fails() -> None:
    err = assert_rejected(to_wire(sdk_sign(HttpRequest("GET", f"{BASE}/pools", params=API), account="other")))
    assert "account name" in err.values["AuthenticationErrorDetail"]


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "Bearer abc",
        "SharedKey devaccount",
        "SharedKey devaccount:",
        "SharedKey :abc=",
        "SharedKey a:!!",
    ],
)
def test_missing_or_malformed_authorization_fails(value: str | None) -> None:
    assert_rejected(to_wire(get_jobs()).with_header("authorization", value))


def test_clock_skew_fails() -> None:
    wire = to_wire(get_jobs())
    now = datetime.now(UTC)
    verify(wire, now=now + timedelta(minutes=14))
    err = assert_rejected(wire, now=now + timedelta(minutes=16))
    assert "too old" in err.values["AuthenticationErrorDetail"]
    assert_rejected(wire, now=now - timedelta(minutes=16))
    verify(wire, now=now + timedelta(hours=1), max_skew=timedelta(hours=2))


def test_missing_or_unparseable_date_fails() -> None:
    wire = to_wire(get_jobs())
    assert_rejected(wire.with_header("ocp-date", None))
    assert_rejected(wire.with_header("ocp-date", "yesterday"))


def test_sdk_always_sends_ocp_date() -> None:
    signed = sdk_sign(HttpRequest("GET", f"{BASE}/pools", params=API, headers={"Date": format_ocp_date()}))
    assert signed.headers["ocp-date"]


def test_date_header_is_used_without_ocp_date() -> None:
    headers = {"Date": format_ocp_date()}
    auth = sign_request(ACCOUNT, PRIMARY, "GET", f"{BASE}/pools?api-version=2025-06-01", headers)
    verify(Wire("GET", "/pools", "api-version=2025-06-01", {"date": headers["Date"], "authorization": auth}))


def test_invalid_configured_key_is_refused() -> None:
    with pytest.raises(ValueError):
        SharedKeyAccount(ACCOUNT, ("not base64!",))
    with pytest.raises(ValueError):
        SharedKeyAccount(ACCOUNT, ())


# --- our own signer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("GET", f"{BASE}/jobs?api-version=2025-06-01&%24filter=state%20eq%20%27active%27", {}),
        (
            "POST",
            f"{BASE}/jobs?api-version=2025-06-01",
            {"Content-Type": "application/json", "Content-Length": "9"},
        ),
        ("POST", f"{BASE}/jobs/j/terminate?api-version=2025-06-01", {}),
        ("HEAD", f"{BASE}/jobs/j%2Fk/tasks/t/files/a%20b?api-version=2025-06-01", {"If-None-Match": "*"}),
        ("PUT", f"{BASE}/pools/p;x?api-version=2025-06-01&a=1&b=", {"Ocp-Ignored": "x", "ocp-y": "1"}),
    ],
)
def test_sign_request_matches_the_sdk(method: str, url: str, headers: Mapping[str, str]) -> None:
    headers = {**headers, "ocp-date": format_ocp_date()}
    ours = sign_request(ACCOUNT, PRIMARY, method, url, headers)
    theirs = sdk_sign(HttpRequest(method, url, headers=dict(headers))).headers["Authorization"]
    assert ours == theirs


def test_sign_request_round_trips_through_verify() -> None:
    url = f"{BASE}/jobs/a%20b?api-version=2025-06-01&$filter=id eq 'x'"
    headers = {"ocp-date": format_ocp_date(), "Content-Type": "application/json"}
    auth = sign_request(ACCOUNT, PRIMARY, "PATCH", url, headers)
    parts = urlsplit(requote_uri(url))
    lowered = {k.lower(): v for k, v in headers.items()} | {"authorization": auth, "content-length": "0"}
    verify(Wire("PATCH", parts.path, parts.query, lowered))


def test_string_to_sign_layout() -> None:
    headers = {"ocp-date": "Tue, 01 Jul 2025 10:00:00 GMT", "Content-Type": "application/json"}
    text = string_to_sign("POST", "acct", f"{BASE}/jobs?api-version=2025-06-01&$filter=a+b", headers)
    assert text == (
        "POST\n\n\n0\n\napplication/json\n\n\n\n\n\n\n"
        "ocp-date:Tue, 01 Jul 2025 10:00:00 GMT\n"
        "/acct/jobs\n$filter:a b\napi-version:2025-06-01"
    )


def test_format_ocp_date() -> None:
    assert format_ocp_date(datetime(2025, 7, 1, 10, 0, tzinfo=UTC)) == "Tue, 01 Jul 2025 10:00:00 GMT"
    assert format_ocp_date(datetime(2025, 7, 1, 10, 0)) == "Tue, 01 Jul 2025 10:00:00 GMT"


# --- end to end: the real BatchClient over a socket --------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    seen: list[Wire]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.seen.append(Wire(self.command, parts.path, parts.query, headers))  # type: ignore[attr-defined]
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


def test_real_client_requests_verify(recorder: tuple[str, list[Wire]]) -> None:
    endpoint, seen = recorder
    client = BatchClient(endpoint, AzureNamedKeyCredential(ACCOUNT, SECONDARY), retry_total=0)
    calls = [
        lambda: list(client.list_jobs(filter="state eq 'active' and id ge 'a+b'", select=["id", "state"])),
        lambda: client.get_job("job-1"),
        lambda: client.create_job(models.BatchJobCreateOptions(id="j", pool_info=models.BatchPoolInfo(pool_id="p"))),
        lambda: client.begin_terminate_job(
            "job-1", models._models.BatchJobTerminateOptions(termination_reason="stop"), service_timeout=20
        ),
        lambda: client.begin_delete_job("job-1", if_unmodified_since=datetime(2025, 7, 1, tzinfo=UTC)),
        lambda: client.download_task_file("job-1", "task-1", "wd/out put é.txt"),
        lambda: client.get_task_file_properties("job-1", "task-1", "stdout.txt"),
    ]
    for call in calls:
        with pytest.raises(HttpResponseError):
            call()
    assert [w.method for w in seen] == ["GET", "GET", "POST", "POST", "DELETE", "GET", "HEAD"]
    account = SharedKeyAccount(ACCOUNT, (PRIMARY, SECONDARY))
    for wire in seen:
        verify(wire, account)
    assert "%2F" in seen[5].raw_path
