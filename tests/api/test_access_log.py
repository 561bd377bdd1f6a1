"""The access log (`batchyard.access`): one line per request with its ids, and never a credential."""

from __future__ import annotations

import re
import socket
import ssl
import uuid
from typing import Any

import httpx

from batchyard.service.auth import format_ocp_date
from batchyard.service.config import DEV_ACCOUNT_KEY
from tests.api.helpers import signed_request
from tests.conftest import Service, wait_for


def access_line(service: Service, marker: str) -> str | None:
    return next((line for line in service.log().splitlines() if "batchyard.access" in line and marker in line), None)


def test_an_sdk_call_is_logged_with_status_duration_and_both_ids(service: Service, client: Any) -> None:
    sent: dict[str, Any] = {}

    def keep(pipeline_response: Any) -> None:
        sent["client-request-id"] = pipeline_response.http_request.headers["client-request-id"]
        sent["request-id"] = pipeline_response.http_response.headers["request-id"]

    list(client.list_pools(filter="id eq 'access-log'", raw_response_hook=keep))
    line = wait_for(lambda: access_line(service, sent["request-id"]), timeout=5, what="the access log line")
    pattern = (
        r" INFO batchyard\.access: GET /pools\?api-version=[^ ]*\$filter=id%20eq%20%27access-log%27 200 "
        rf"\d+\.\dms client-request-id={re.escape(sent['client-request-id'])} "
        rf"request-id={re.escape(sent['request-id'])}$"
    )
    assert re.search(pattern, line), line


def test_errors_are_logged_with_their_status(service: Service, client: Any) -> None:
    marker = str(uuid.uuid4())
    url = f"{service.url}/pools/no-such-pool?api-version=2025-06-01"
    answer = httpx.get(url, headers={"client-request-id": marker})
    assert answer.status_code in (401, 403)
    line = wait_for(lambda: access_line(service, marker), timeout=5, what="the access log line")
    assert f" GET /pools/no-such-pool?api-version=2025-06-01 {answer.status_code} " in line
    assert f"request-id={answer.headers['request-id']}" in line


def test_sas_signatures_and_authorization_never_reach_the_log(service: Service) -> None:
    marker = str(uuid.uuid4())
    secrets = {"sig": "SECRETSIGNATURE0123", "token": "SECRETTOKEN4567"}
    params = {**secrets, "sv": "2022-11-02", "se": "2030-01-01T00:00:00Z", "timeout": "30"}
    forged = "SharedKey devbatchaccount1:SECRETAUTHORIZATION89="
    answer = signed_request(
        service.url, "GET", "/pools", params=params, headers={"Authorization": forged, "client-request-id": marker}
    )
    assert answer.status_code == 403
    signed = signed_request(service.url, "GET", "/pools", params=params, headers={"client-request-id": marker + "-2"})
    assert signed.status_code == 200
    signature = signed.request.headers["Authorization"].split(":", 1)[1]
    line = wait_for(lambda: access_line(service, marker + "-2"), timeout=5, what="the access log line")
    assert "sig=REDACTED" in line and "token=REDACTED" in line and "sv=2022-11-02" in line
    assert access_line(service, marker) is not None
    log = service.log().split("Batch service listening on", 1)[1]  # the development key is printed before
    for secret in [*secrets.values(), "SECRETAUTHORIZATION89", signature, DEV_ACCOUNT_KEY[:20]]:
        assert secret not in log, secret


def test_https_to_the_http_port_is_logged_with_a_hint(service: Service) -> None:
    port = int(service.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")
        except (ssl.SSLError, OSError):
            pass
    wait_for(lambda: "a TLS handshake on the plain-HTTP port? use http://" in service.log(), timeout=5, what="hint")
    date = format_ocp_date()  # still serving
    assert httpx.get(service.url + "/", headers={"ocp-date": date}).status_code == 200
