"""`batchyard join-token` (a pool's token for agents on other hosts) and `batchyard install-azurite`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from batchyard.cli.client import CommandError, add_connection_options, call


def add_setup_commands(commands: Any) -> None:
    commands.add_parser("install-azurite", help="install the Azure Storage emulator (npm) that --azurite starts")
    join = commands.add_parser("join-token", help="print the token agents on other hosts use to join a pool")
    add_connection_options(join)
    join.add_argument("--pool", required=True, help="the pool the agents join")
    join.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)  # older scripts pass it; the service answers


def join_token(args: argparse.Namespace) -> int:
    """Ask the running service (signed with the account key) for the pool's join token."""
    from urllib.parse import quote

    try:
        answer = call(args, "GET", f"/_batchyard/pools/{quote(args.pool, safe='')}/jointoken")
    except CommandError as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        return 2
    print(answer["joinToken"])
    return 0


def install_azurite() -> int:
    from batchyard.service.storage.azurite import AzuriteError, ensure_installed

    try:
        print(ensure_installed())
    except AzuriteError as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        return 2
    return 0
