"""The one way the `batchyard` commands call a running service: Shared Key signed JSON requests."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from batchyard.service.config import DEFAULT_PORT, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

API_VERSION = "2025-06-01.21.0"


class CommandError(Exception):
    """A request the service refused or could not get; printed as `batchyard: <message>`."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    default_url = os.environ.get("BATCHYARD_ENDPOINT") or os.environ.get("BATCHYARD_URL")
    parser.add_argument(
        "--endpoint", "--url", dest="endpoint", default=default_url or f"http://127.0.0.1:{DEFAULT_PORT}"
    )
    parser.add_argument("--account-name", default=os.environ.get("BATCHYARD_ACCOUNT_NAME", DEV_ACCOUNT_NAME))
    parser.add_argument("--account-key", default=os.environ.get("BATCHYARD_ACCOUNT_KEY", DEV_ACCOUNT_KEY))


def call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """Send a signed request; the decoded JSON answer (None when empty), or CommandError."""
    from batchyard.service.auth import format_ocp_date, sign_request

    url = f"{args.endpoint.rstrip('/')}{path}?api-version={API_VERSION}"
    data = json.dumps(body).encode() if body is not None else None
    headers = {"ocp-date": format_ocp_date()}
    if data is not None:
        headers.update({"content-type": "application/json", "content-length": str(len(data))})
    headers["Authorization"] = sign_request(args.account_name, args.account_key, method, url, headers)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        error: Any = None
        try:
            error = json.loads(detail)
            detail = f"{error['code']}: {error['message']['value']}"
        except (ValueError, KeyError, TypeError):
            pass
        raise CommandError(f"{method} {path}: HTTP {exc.code}: {detail}", exc.code, error) from None
    except urllib.error.URLError as exc:
        raise CommandError(f"cannot reach the service at {args.endpoint}: {exc.reason}") from None
    return json.loads(raw) if raw else None


def print_result(run: Callable[[], Any]) -> int:
    """A command's exit status: its JSON answer printed (0), or the error on stderr (1)."""
    try:
        result = run()
    except CommandError as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0
