"""`batchyard account ...`: az batch's account commands (show, list, create, delete, keys list|renew, set) and
the location's quotas, through the management plane with a principal's bearer token (`cli/management.py`)."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from batchyard.cli.commands import Command, CommandError, seg
from batchyard.cli.management import add_management_options, arm_call
from batchyard.cli.output import Column
from batchyard.service.config import AUTHENTICATION_MODES, DEV_ACCOUNT_NAME
from batchyard.service.management.resources import ACCOUNT_TYPE, LOCATION, RESOURCE_GROUP

COLUMNS = (
    Column("Name", "name"),
    Column("Location", "location"),
    Column("Endpoint", "properties.accountEndpoint"),
    Column("State", "properties.provisioningState"),
    Column("Auth modes", "join(', ', properties.allowedAuthenticationModes)"),
)
KEY_COLUMNS = (Column("Account", "accountName"), Column("Primary", "primary"), Column("Secondary", "secondary"))
QUOTA_COLUMNS = (Column("Account quota", "accountQuota"),)


def _group(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-g", "--resource-group", default=RESOURCE_GROUP, help=f"the resource group (default: {RESOURCE_GROUP})"
    )


def _account(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--name",
        default=os.environ.get("BATCHYARD_ACCOUNT_NAME", DEV_ACCOUNT_NAME),
        help="the Batch account (or BATCHYARD_ACCOUNT_NAME; default: the development account)",
    )
    _group(parser)


def _path(args: argparse.Namespace, suffix: str = "") -> str:
    return f"/resourceGroups/{seg(args.resource_group)}/providers/{ACCOUNT_TYPE}/{seg(args.name)}{suffix}"


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-g", "--resource-group", help="only this resource group's accounts")


def _list(args: argparse.Namespace) -> Any:
    group = f"/resourceGroups/{seg(args.resource_group)}" if args.resource_group else ""
    return arm_call(args, "GET", f"{group}/providers/{ACCOUNT_TYPE}")["value"]


def _renew_arguments(parser: argparse.ArgumentParser) -> None:
    _account(parser)
    parser.add_argument(
        "--key-name", required=True, type=str.lower, choices=("primary", "secondary"), help="the key to replace"
    )


def _set_arguments(parser: argparse.ArgumentParser) -> None:
    _account(parser)
    parser.add_argument(
        "--allowed-authentication-modes",
        nargs="+",
        required=True,
        choices=AUTHENTICATION_MODES,
        metavar="MODE",
        help=f"the modes the data plane takes: {', '.join(AUTHENTICATION_MODES)} (space-separated)",
    )


def _set(args: argparse.Namespace) -> Any:
    body = {"properties": {"allowedAuthenticationModes": args.allowed_authentication_modes}}
    return arm_call(args, "PATCH", _path(args), body)


def _create_arguments(parser: argparse.ArgumentParser) -> None:
    _account(parser)
    parser.add_argument("-l", "--location", default=LOCATION, help=f"the location (default: {LOCATION})")


def _create(args: argparse.Namespace) -> Any:
    return arm_call(args, "PUT", _path(args), {"location": args.location})


DELETE_TIMEOUT = 300.0  # seconds for the account's pools' nodes to go


def _delete(args: argparse.Namespace) -> Any:
    """Delete the account and wait until it is gone (ARM's delete is long-running: each DELETE of an account
    being deleted says whether it is done, and a GET then answers 404)."""
    deadline = time.monotonic() + DELETE_TIMEOUT
    while True:
        arm_call(args, "DELETE", _path(args))
        try:
            arm_call(args, "GET", _path(args))
        except CommandError as exc:
            if exc.status == 404:
                return {"deleted": args.name}
            raise
        if time.monotonic() > deadline:
            raise CommandError(f"the account {args.name} is still being deleted after {DELETE_TIMEOUT:.0f} s")
        time.sleep(1)


def _quotas_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-l", "--location", default=LOCATION, help=f"the location (default: {LOCATION})")


def _command(
    words: tuple[str, ...],
    help: str,
    run: Callable[[argparse.Namespace], Any],
    arguments: Callable[[argparse.ArgumentParser], None],
    columns: Sequence[Column],
    default_output: str = "json",
) -> Command:
    return Command(
        ("account", *words), help, run, arguments, columns, default_output, connection=add_management_options
    )


COMMANDS: tuple[Command, ...] = (
    _command(
        ("show",),
        "show the Batch account",
        lambda args: arm_call(args, "GET", _path(args)),
        _account,
        COLUMNS,
    ),
    _command(("list",), "list the Batch accounts the principal may read", _list, _list_arguments, COLUMNS, "table"),
    _command(
        ("create",), "create a Batch account (or update the one of that name)", _create, _create_arguments, COLUMNS
    ),
    _command(
        ("delete",),
        "delete a Batch account with its pools, jobs and the rest; waits until it is gone",
        _delete,
        _account,
        (Column("Deleted", "deleted"),),
    ),
    _command(
        ("keys", "list"),
        "show the account's Shared Keys",
        lambda args: arm_call(args, "POST", _path(args, "/listKeys")),
        _account,
        KEY_COLUMNS,
    ),
    _command(
        ("keys", "renew"),
        "replace one of the account's Shared Keys (the old one stops working at once); prints the keys",
        lambda args: arm_call(args, "POST", _path(args, "/regenerateKeys"), {"keyName": args.key_name.capitalize()}),
        _renew_arguments,
        KEY_COLUMNS,
    ),
    _command(("set",), "update the account's allowedAuthenticationModes", _set, _set_arguments, COLUMNS),
    _command(
        ("quotas",),
        "the Batch account quota of a location",
        lambda args: arm_call(args, "GET", f"/providers/Microsoft.Batch/locations/{seg(args.location)}/quotas"),
        _quotas_arguments,
        QUOTA_COLUMNS,
    ),
)
