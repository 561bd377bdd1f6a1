"""What a handler acts on is what was signed: repeated names are refused, Content-MD5 is checked, and a
body is refused on its declared size before it is read."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Callable, Iterator

import httpx
import orjson

from batchyard.service.auth import format_ocp_date, sign_request
from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from tests.api.helpers import API_VERSION, signed_request
from tests.conftest import Service

Unique = Callable[[str], str]


def _values(response: httpx.Response) -> dict[str, str]:
    return {item["key"]: item["value"] for item in response.json().get("values", [])}


def _signed_headers(method: str, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"ocp-date": format_ocp_date(), **(extra or {})}
    if method not in ("GET", "HEAD") and "content-length" not in headers:
        headers["content-length"] = "0"
    headers["Authorization"] = sign_request(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY, method, url, headers)
    return headers


def _create_job(service: Service, job_id: str) -> None:
    response = signed_request(service.url, "POST", "/jobs", body={"id": job_id, "poolInfo": {"poolId": "nowhere"}})
    assert response.status_code == 201, response.text


def test_a_query_parameter_appended_after_signing_is_refused(service: Service, unique: Unique) -> None:
    for index in range(2):
        _create_job(service, unique(f"q{index}"))
    url = f"{service.url}/jobs?api-version={API_VERSION}&maxresults=1"
    headers = _signed_headers("GET", url)
    assert len(httpx.get(url, headers=headers).json()["value"]) == 1
    tampered = httpx.get(url + "&maxresults=2", headers=headers)
    assert tampered.status_code == 400, tampered.text
    assert tampered.json()["code"] == "InvalidQueryParameterValue"
    assert _values(tampered)["QueryParameterName"] == "maxresults"
    # A repeat is refused even when the signer signed it, so that no handler has to choose one of the values.
    both = f"{service.url}/jobs?api-version={API_VERSION}&maxresults=1&maxresults=1"
    assert httpx.get(both, headers=_signed_headers("GET", both)).status_code == 400


def test_an_if_match_header_added_after_signing_is_refused(service: Service, unique: Unique) -> None:
    job_id = unique("ifmatch")
    _create_job(service, job_id)
    url = f"{service.url}/jobs/{job_id}?api-version={API_VERSION}"
    signed = _signed_headers("DELETE", url, {"If-Match": '"0x0BOGUS"'})
    assert httpx.delete(url, headers=signed).status_code == 412
    signed = _signed_headers("DELETE", url, {"If-Match": '"0x0BOGUS"'})
    # The unsigned copy goes first, where a handler reading the first value would find it.
    sent = [("If-Match", "*"), *signed.items()]
    tampered = httpx.delete(url, headers=sent)
    assert tampered.status_code == 400, tampered.text
    assert tampered.json()["code"] == "InvalidHeaderValue"
    assert _values(tampered)["HeaderName"] == "if-match"
    still_there = signed_request(service.url, "GET", f"/jobs/{job_id}")
    assert still_there.status_code == 200
    assert still_there.json()["state"] == "active"


def test_an_ocp_header_given_twice_is_refused(service: Service) -> None:
    url = f"{service.url}/pools?api-version={API_VERSION}"
    signed = _signed_headers("GET", url)
    response = httpx.get(url, headers=[*signed.items(), ("ocp-date", signed["ocp-date"])])
    assert response.status_code == 400
    assert _values(response)["HeaderName"] == "ocp-date"


def test_content_md5_is_compared_with_the_body(service: Service, unique: Unique) -> None:
    job_id = unique("md5")
    content = orjson.dumps({"id": job_id, "poolInfo": {"poolId": "nowhere"}})
    wrong = base64.b64encode(hashlib.md5(content + b" ").digest()).decode()
    refused = signed_request(service.url, "POST", "/jobs", content=content, headers={"Content-MD5": wrong})
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "Md5Mismatch"
    assert _values(refused)["UserSpecifiedMd5"] == wrong
    assert signed_request(service.url, "GET", f"/jobs/{job_id}").status_code == 404
    garbled = signed_request(service.url, "POST", "/jobs", content=content, headers={"Content-MD5": "not-md5"})
    assert garbled.status_code == 400
    assert garbled.json()["code"] == "InvalidHeaderValue"
    right = base64.b64encode(hashlib.md5(content).digest()).decode()
    accepted = signed_request(service.url, "POST", "/jobs", content=content, headers={"Content-MD5": right})
    assert accepted.status_code == 201, accepted.text


def test_a_body_declared_too_large_is_refused_before_it_is_sent(service: Service) -> None:
    """Only the headers go out: the service answers 413 without waiting for (or holding) 300 MB."""
    url = f"{service.url}/jobs?api-version={API_VERSION}"
    headers = _signed_headers("POST", url, {"content-type": "application/json", "content-length": str(300 << 20)})
    host, port = service.url.removeprefix("http://").split(":")
    request = f"POST /jobs?api-version={API_VERSION} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.encode() + b'{"id": ')
        answer = _read_response(sock)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "RequestBodyTooLarge" in answer


def _read_response(sock: socket.socket) -> str:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def test_a_chunked_body_is_cut_off_past_the_limit(service: Service) -> None:
    url = f"{service.url}/jobs?api-version={API_VERSION}"
    headers = _signed_headers("POST", url, {"content-type": "application/json"})
    headers.pop("content-length")
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 64 MiB offered, 4 MiB allowed
            sent += 1
            yield b" " * (1 << 20)

    try:
        response = httpx.post(url, content=body(), headers=headers, timeout=30)
    except httpx.HTTPError:
        # The service may close the connection while the client is still sending; the answer was a refusal.
        assert sent < 64
        return
    # The client sends its whole body before it reads the answer; the service stopped keeping it at 4 MiB.
    assert response.status_code == 413, response.text
