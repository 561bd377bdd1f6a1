"""`batchyard applications ...`: manage applications and package versions over the service's
management REST surface (see README, Storage), signed with the account's Shared Key."""

from __future__ import annotations

import argparse
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from batchyard.cli.client import CommandError, add_connection_options, call, print_result


def add_application_commands(commands: Any) -> None:
    apps = commands.add_parser("applications", help="manage applications and their package versions")
    add_connection_options(apps)
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
    return print_result(lambda: _run(args))


def _run(args: argparse.Namespace) -> Any:
    base = "/management/applications"
    app = urllib.parse.quote(getattr(args, "application", "") or "")
    if args.action == "list":
        return call(args, "GET", base)
    props: dict[str, Any]
    if args.action == "create":
        props = {"displayName": args.display_name, "allowUpdates": not args.no_updates}
        return call(args, "PUT", f"{base}/{app}", {"properties": props})
    if args.action == "update":
        props = {}
        if args.display_name is not None:
            props["displayName"] = args.display_name
        if args.allow_updates is not None:
            props["allowUpdates"] = args.allow_updates == "true"
        if args.default_version is not None:
            props["defaultVersion"] = args.default_version
        return call(args, "PATCH", f"{base}/{app}", {"properties": props})
    if args.action == "delete":
        return call(args, "DELETE", f"{base}/{app}")
    if args.action == "packages":
        return call(args, "GET", f"{base}/{app}/versions")
    version = urllib.parse.quote(args.version)
    if args.action == "delete-package":
        return call(args, "DELETE", f"{base}/{app}/versions/{version}")
    # add-package: create the version, upload the zip to its SAS URL, then activate it.
    if not args.zip.is_file():
        raise CommandError(f"{args.zip} is not a file")
    created = call(args, "PUT", f"{base}/{app}/versions/{version}", {})
    from batchyard.agent.transfer import TransferError, upload

    try:
        upload(created["properties"]["storageUrl"], args.zip, {"Content-Type": "application/zip"})
    except TransferError as exc:
        raise CommandError(f"uploading {args.zip} to the linked storage account failed: {exc}") from None
    return call(args, "POST", f"{base}/{app}/versions/{version}/activate", {"format": "zip"})
