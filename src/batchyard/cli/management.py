"""How the `batchyard account` commands call the management plane: a bearer token for Resource Manager from
the service's own identity provider (a client-credentials grant with a principal's secret), then ARM JSON
requests over HTTPS, both with urllib as `cli/client.py` calls the data plane.

The identity provider answers on the same HTTPS listener as the management plane, so the token endpoint is
`{management endpoint}/{tenant}/oauth2/v2.0/token` (the `authority` that `batchyard principals create` prints).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from batchyard.cli.client import CommandError, UsageError, tls_context
from batchyard.service.config import DEFAULT_PORT
from batchyard.service.management.resources import SUBSCRIPTION_ID

ARM_API_VERSION = "2024-07-01"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"


def add_management_options(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--management-endpoint",
        default=env("BATCHYARD_MANAGEMENT_ENDPOINT") or f"https://127.0.0.1:{DEFAULT_PORT + 1}",
        help="the service's HTTPS URL (or BATCHYARD_MANAGEMENT_ENDPOINT; default: the local service's)",
    )
    parser.add_argument("--tenant-id", default=env("BATCHYARD_TENANT_ID"), help="the principal's tenantId")
    parser.add_argument("--client-id", default=env("BATCHYARD_CLIENT_ID"), help="the principal's clientId")
    parser.add_argument(
        "--client-secret",
        default=env("BATCHYARD_CLIENT_SECRET"),
        help="the principal's clientSecret (better: BATCHYARD_CLIENT_SECRET, which other local users cannot read)",
    )
    parser.add_argument(
        "--ca-file",
        type=Path,
        help="PEM file of the CA to trust (default: DATA_DIR/tls/ca.pem with --data-dir, else SSL_CERT_FILE)",
    )
    parser.add_argument("--data-dir", type=Path, help="the service's data directory (for its CA)")


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext:
    return tls_context(args.ca_file or (args.data_dir / "tls" / "ca.pem" if args.data_dir else None))


def _open(args: argparse.Namespace, request: urllib.request.Request) -> Any:
    """The decoded JSON answer (None when empty); an HTTP error as its body (a dict) in CommandError."""
    try:
        with urllib.request.urlopen(request, timeout=60, context=_tls_context(args)) as response:
            raw = response.read()
        return json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        raise CommandError(text, exc.code, body) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"cannot reach the management endpoint {args.management_endpoint}: {reason}") from None


def _token(args: argparse.Namespace) -> str:
    missing = [
        f"--{name.replace('_', '-')}" for name in ("tenant_id", "client_id", "client_secret") if not getattr(args, name)
    ]
    if missing:
        raise UsageError(
            f"{', '.join(missing)} required (or BATCHYARD_TENANT_ID, BATCHYARD_CLIENT_ID, BATCHYARD_CLIENT_SECRET): "
            "a principal from `batchyard principals create`"
        )
    url = f"{args.management_endpoint.rstrip('/')}/{urllib.parse.quote(args.tenant_id, safe='')}/oauth2/v2.0/token"
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": args.client_id,
            "client_secret": args.client_secret,
            "scope": MANAGEMENT_SCOPE,
        }
    ).encode()
    request = urllib.request.Request(
        url, data=form, method="POST", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    try:
        answer = _open(args, request)
    except CommandError as exc:
        if exc.status is None:
            raise
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = f"{body.get('error')}: {body.get('error_description')}" if body.get("error") else str(exc)
        raise CommandError(f"token for client {args.client_id}: HTTP {exc.status}: {detail}", exc.status) from None
    token: str = answer["access_token"]
    return token


def arm_call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """One ARM request on the service's subscription (`path` after it); its JSON answer, or CommandError with
    ARM's error code and message."""
    token = _token(args)
    full_path = f"/subscriptions/{SUBSCRIPTION_ID}{path}"
    url = f"{args.management_endpoint.rstrip('/')}{full_path}?api-version={ARM_API_VERSION}"
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["content-type"] = "application/json"
    try:
        return _open(args, urllib.request.Request(url, data=data, method=method, headers=headers))
    except CommandError as exc:
        if exc.status is None:
            raise
        error = exc.body.get("error") if isinstance(exc.body, dict) else None
        detail = f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else str(exc)
        raise CommandError(f"{method} {full_path}: HTTP {exc.status}: {detail}", exc.status) from None
