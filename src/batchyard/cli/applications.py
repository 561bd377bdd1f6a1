"""`batchyard applications ...`: manage applications and package versions over the service's
management REST surface (see README, Storage), signed with the account's Shared Key."""

from __future__ import annotations

import argparse
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from batchyard.cli.client import CommandError, add_connection_options, call
from batchyard.cli.commands import Done, finish
from batchyard.cli.output import Answer, Column, add_output_options

COLUMNS = (
    Column("Application", "name"),
    Column("Display name", "properties.displayName"),
    Column("Updates", "properties.allowUpdates"),
    Column("Default", "properties.defaultVersion"),
)
PACKAGE_COLUMNS = (
    Column("Version", "name"),
    Column("State", "properties.state"),
    Column("Format", "properties.format"),
    Column("Activated", "properties.lastActivationTime"),
)


def add_application_commands(commands: Any) -> None:
    apps = commands.add_parser("applications", help="manage applications and their package versions")
    add_connection_options(apps)
    actions = apps.add_subparsers(dest="action", required=True)
    add_output_options(actions.add_parser("list", help="applications with their settings"), "table")
    create = actions.add_parser("create", help="create an application")
    create.add_argument("application", help="the application's id")
    create.add_argument("--display-name", help="a name for people")
    create.add_argument("--no-updates", action="store_true", help="packages can then be added but never changed")
    update = actions.add_parser("update", help="change an application's settings")
    update.add_argument("application", help="the application's id")
    update.add_argument("--display-name", help="a name for people")
    update.add_argument("--allow-updates", choices=["true", "false"], help="whether a version may be replaced")
    update.add_argument("--default-version", help="the version pools get when they name none")
    delete = actions.add_parser("delete", help="delete an application (it must have no packages)")
    delete.add_argument("application", help="the application's id")
    packages = actions.add_parser("packages", help="an application's package versions")
    packages.add_argument("application", help="the application's id")
    add_output_options(packages, "table")
    add = actions.add_parser("add-package", help="upload a zip as a version and activate it")
    add.add_argument("application", help="the application's id")
    add.add_argument("version", help="the package's version")
    add.add_argument("zip", type=Path, help="the zip file")
    remove = actions.add_parser("delete-package", help="delete a package version")
    remove.add_argument("application", help="the application's id")
    remove.add_argument("version", help="the package's version")
    for leaf in (create, update, delete, add, remove):
        add_output_options(leaf)


def run_application_command(args: argparse.Namespace) -> int:
    return finish(args, lambda: _run(args), COLUMNS)


def _run(args: argparse.Namespace) -> Any:
    base = "/management/applications"
    app = urllib.parse.quote(getattr(args, "application", "") or "")
    if args.action == "list":
        return call(args, "GET", base)["value"]
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
        call(args, "DELETE", f"{base}/{app}")
        return Done(f"Deleted application {args.application}")
    if args.action == "packages":
        return Answer(call(args, "GET", f"{base}/{app}/versions")["value"], PACKAGE_COLUMNS)
    version = urllib.parse.quote(args.version)
    if args.action == "delete-package":
        call(args, "DELETE", f"{base}/{app}/versions/{version}")
        return Done(f"Deleted version {args.version} of application {args.application}")
    # add-package: create the version, upload the zip to its SAS URL, then activate it.
    if not args.zip.is_file():
        raise CommandError(f"{args.zip} is not a file")
    created = call(args, "PUT", f"{base}/{app}/versions/{version}", {})
    from batchyard.agent.transfer import TransferError, upload

    try:
        upload(created["properties"]["storageUrl"], args.zip, {"Content-Type": "application/zip"})
    except TransferError as exc:
        raise CommandError(f"uploading {args.zip} to the linked storage account failed: {exc}") from None
    activated = call(args, "POST", f"{base}/{app}/versions/{version}/activate", {"format": "zip"})
    return Answer(activated, PACKAGE_COLUMNS)
