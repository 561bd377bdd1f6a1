"""`batchyard applications ...`: manage applications and package versions over the service's
management REST surface (see README, Storage), signed with the account's Shared Key."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from batchyard.service.config import DEFAULT_PORT, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

API_VERSION = "2025-06-01.21.0"


class CommandError(Exception):
    pass


def add_application_commands(commands: Any) -> None:
    apps = commands.add_parser("applications", help="manage applications and their package versions")
    apps.add_argument("--endpoint", default=os.environ.get("BATCHYARD_ENDPOINT", f"http://127.0.0.1:{DEFAULT_PORT}"))
    apps.add_argument("--account-name", default=os.environ.get("BATCHYARD_ACCOUNT_NAME", DEV_ACCOUNT_NAME))
    apps.add_argument("--account-key", default=os.environ.get("BATCHYARD_ACCOUNT_KEY", DEV_ACCOUNT_KEY))
    actions = apps.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="applications with their settings")
    create = actions.add_parser("create", help="create an application")
    create.add_argument("application")
    create.add_argument("--display-name")
    create.add_argument("--no-updates", action="store_true", help="packages can then be added but never changed")
    update = actions.add_parser("update", help="change an application's settings")
    update.add_argument("application")
    update.add_argument("--display-name")
    update.add_argument("--allow-updates", choices=["true", "false"])
    update.add_argument("--default-version")
    delete = actions.add_parser("delete", help="delete an application (it must have no packages)")
    delete.add_argument("application")
    packages = actions.add_parser("packages", help="an application's package versions")
    packages.add_argument("application")
    add = actions.add_parser("add-package", help="upload a zip as a version and activate it")
    add.add_argument("application")
    add.add_argument("version")
    add.add_argument("zip", type=Path)
    remove = actions.add_parser("delete-package", help="delete a package version")
    remove.add_argument("application")
    remove.add_argument("version")


def run_application_command(args: argparse.Namespace) -> int:
    try:
        result = _run(args)
    except CommandError as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


def _run(args: argparse.Namespace) -> Any:
    base = "/management/applications"
    app = urllib.parse.quote(getattr(args, "application", "") or "")
    if args.action == "list":
        return _call(args, "GET", base)
    if args.action == "create":
        props = {"displayName": args.display_name, "allowUpdates": not args.no_updates}
        return _call(args, "PUT", f"{base}/{app}", {"properties": props})
    if args.action == "update":
        props: dict[str, Any] = {}
        if args.display_name is not None:
            props["displayName"] = args.display_name
        if args.allow_updates is not None:
            props["allowUpdates"] = args.allow_updates == "true"
        if args.default_version is not None:
            props["defaultVersion"] = args.default_version
        return _call(args, "PATCH", f"{base}/{app}", {"properties": props})
    if args.action == "delete":
        return _call(args, "DELETE", f"{base}/{app}")
    if args.action == "packages":
        return _call(args, "GET", f"{base}/{app}/versions")
    version = urllib.parse.quote(args.version)
    if args.action == "delete-package":
        return _call(args, "DELETE", f"{base}/{app}/versions/{version}")
    # add-package: create the version, upload the zip to its SAS URL, then activate it.
    if not args.zip.is_file():
        raise CommandError(f"{args.zip} is not a file")
    created = _call(args, "PUT", f"{base}/{app}/versions/{version}", {})
    from batchyard.agent.transfer import TransferError, upload

    try:
        upload(created["properties"]["storageUrl"], args.zip, {"Content-Type": "application/zip"})
    except TransferError as exc:
        raise CommandError(f"uploading {args.zip} to the linked storage account failed: {exc}") from None
    return _call(args, "POST", f"{base}/{app}/versions/{version}/activate", {"format": "zip"})


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
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
        try:
            error = json.loads(detail)
            detail = f"{error['code']}: {error['message']['value']}"
        except (ValueError, KeyError, TypeError):
            pass
        raise CommandError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        raise CommandError(f"cannot reach the service at {args.endpoint}: {exc.reason}") from None
    return json.loads(raw) if raw else None
