"""`batchyard principals ...`: service principals of the local identity provider, in a data directory.

They work on `DATA_DIR/identity/` directly, whether the service runs or not (it sees changes at once);
`create` prints one JSON object with what azure-identity needs (tenantId, clientId, clientSecret, authority).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from batchyard.cli.output import Column, OutputError, add_output_options, emit
from batchyard.service.config import DEFAULT_PORT, DEV_ACCOUNT_NAME

COLUMNS = (
    Column("Client id", "clientId"),
    Column("Name", "name"),
    Column("Role", "role"),
    Column("Account", "account"),
)


def add_principal_commands(commands: Any) -> None:
    principals = commands.add_parser("principals", help="service principals that get tokens for the data plane")
    actions = principals.add_subparsers(dest="principal_action", required=True)
    create = actions.add_parser("create", help="a new principal; prints its credentials as JSON (the secret once)")
    create.add_argument("--name", required=True, help="display name")
    create.add_argument(
        "--role", choices=("contributor", "reader"), default="contributor", help="reader: read-only requests"
    )
    create.add_argument(
        "--account",
        default=os.environ.get("BATCHYARD_ACCOUNT_NAME", DEV_ACCOUNT_NAME),
        help="the Batch account the role is on (default: BATCHYARD_ACCOUNT_NAME or the development account)",
    )
    create.add_argument(
        "--certificate",
        type=Path,
        help="PEM file with the principal's certificate (RSA): it may then authenticate with assertions signed by "
        "the certificate's key (azure-identity's CertificateCredential); a private key in the file is not read",
    )
    listing = actions.add_parser("list", help="the principals (never their secrets) as JSON")
    delete = actions.add_parser("delete", help="remove a principal: its tokens stop working at once")
    delete.add_argument("--client-id", required=True, help="the principal's client id")
    for action in (create, listing, delete):
        action.add_argument("--data-dir", type=Path, default=Path("./batchyard-data"), help="the service's data")
        add_output_options(action, "table" if action is listing else "json")


def run_principal_command(args: argparse.Namespace) -> int:
    from batchyard.service.identity.credentials import credentials
    from batchyard.service.identity.directory import Directory, DirectoryError

    if not args.data_dir.is_dir():
        print(f"batchyard: no data directory at {args.data_dir} (the --data-dir of `batchyard serve`)", file=sys.stderr)
        return 2
    try:
        directory = Directory(args.data_dir.resolve())
        if args.principal_action == "create":
            certificate = args.certificate.read_text() if args.certificate else None
            principal, secret = directory.create(args.name, args.role, args.account, certificate)
            authority = directory.authority or f"https://127.0.0.1:{DEFAULT_PORT + 1}"
            emit(args, credentials(directory, principal, secret, authority))
        elif args.principal_action == "list":
            emit(args, [principal.public() for principal in directory.principals()], COLUMNS)
        else:
            emit(args, directory.delete(args.client_id).public())
    except (DirectoryError, OutputError) as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"batchyard: {args.data_dir}: {exc}", file=sys.stderr)
        return 2
    return 0
