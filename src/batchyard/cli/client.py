"""The one way the `batchyard` commands call a running service: Shared Key signed JSON requests."""

from __future__ import annotations

import argparse
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.client import HTTPResponse
from pathlib import Path
from typing import Any

from batchyard.service.config import DEFAULT_PORT, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

API_VERSION = "2025-06-01.21.0"


class UsageError(Exception):
    """Bad input found before anything was sent (exit status 2)."""


class CommandError(Exception):
    """A request the service refused or could not get; printed as `batchyard: <message>`."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    default_url = os.environ.get("BATCHYARD_ENDPOINT") or os.environ.get("BATCHYARD_URL")
    parser.add_argument(
        "--endpoint",
        "--url",
        dest="endpoint",
        default=default_url or f"http://127.0.0.1:{DEFAULT_PORT}",
        help="the service's URL (or BATCHYARD_ENDPOINT; default: the local development service)",
    )
    parser.add_argument(
        "--account-name",
        default=os.environ.get("BATCHYARD_ACCOUNT_NAME", DEV_ACCOUNT_NAME),
        help="the Batch account (or BATCHYARD_ACCOUNT_NAME; default: the development account)",
    )
    parser.add_argument(
        "--account-key",
        default=os.environ.get("BATCHYARD_ACCOUNT_KEY", DEV_ACCOUNT_KEY),
        help="its base64 Shared Key (or BATCHYARD_ACCOUNT_KEY, which other local users cannot read)",
    )
    parser.add_argument(
        "--ca-file",
        type=Path,
        default=os.environ.get("BATCHYARD_CA_FILE"),
        help="PEM file of the CA to trust for an https:// endpoint (or BATCHYARD_CA_FILE; the service's is "
        "DATA_DIR/tls/ca.pem; default: SSL_CERT_FILE or the system's)",
    )


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context trusting `ca_file` (PEM) or, without one, OpenSSL's default paths (which SSL_CERT_FILE
    overrides); an unreadable or invalid file is bad usage."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"CA file {ca_file}: {exc}") from None


def open_request(
    args: argparse.Namespace,
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
    timeout: float | None = 60,
    headers: dict[str, str] | None = None,
) -> HTTPResponse:
    """Send a signed request; the open response (the caller reads and closes it), or CommandError."""
    from batchyard.service.auth import format_ocp_date, sign_request

    params = urllib.parse.urlencode({"api-version": API_VERSION, **(query or {})}, quote_via=urllib.parse.quote)
    url = f"{args.endpoint.rstrip('/')}{path}?{params}"
    data = json.dumps(body).encode() if body is not None else None
    headers = {"ocp-date": format_ocp_date(), **(headers or {})}
    if data is not None:
        headers.update({"content-type": "application/json; odata=minimalmetadata", "content-length": str(len(data))})
    headers["Authorization"] = sign_request(args.account_name, args.account_key, method, url, headers)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    context = tls_context(args.ca_file) if url.startswith("https:") else None
    try:
        response: HTTPResponse = urllib.request.urlopen(request, timeout=timeout, context=context)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        error: Any = None
        try:
            error = json.loads(detail)
            detail = f"{error['code']}: {error['message']['value']}"
        except (ValueError, KeyError, TypeError):
            pass
        raise CommandError(f"{method} {path}: HTTP {exc.code}: {detail}", exc.code, error) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"cannot reach the service at {args.endpoint}: {reason}") from None
    return response


def call(
    args: argparse.Namespace, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> Any:
    """Send a signed request; the decoded JSON answer (None when empty), or CommandError."""
    with open_request(args, method, path, body, query) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def list_all(args: argparse.Namespace, path: str, query: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """Every item of a Batch list, following odata.nextLink from page to page."""
    page = call(args, "GET", path, query=query)
    while True:
        yield from page.get("value", [])
        next_link = page.get("odata.nextLink")
        if not next_link:
            return
        split = urllib.parse.urlsplit(next_link)
        params = dict(urllib.parse.parse_qsl(split.query))
        params.pop("api-version", None)
        # the link's path has the endpoint's own path in front (an account's endpoint: `/accounts/{name}`)
        endpoint_path = urllib.parse.urlsplit(args.endpoint).path.rstrip("/")
        page = call(args, "GET", split.path.removeprefix(endpoint_path), query=params)
