"""`batchyard certificate ...` and `batchyard application ...`: az batch's certificate commands, and
the data-plane application list/show (packages are managed by `batchyard applications`)."""

from __future__ import annotations

import argparse
import base64
from typing import Any

from batchyard.cli.client import call
from batchyard.cli.commands import (
    Command,
    Done,
    UsageError,
    add_json_file,
    add_list_options,
    add_show_options,
    listing,
    load_json,
    require,
    seg,
    show_query,
)
from batchyard.cli.output import Column

COLUMNS = (
    Column("Thumbprint", "thumbprint"),
    Column("Algorithm", "thumbprintAlgorithm"),
    Column("State", "state"),
    Column("Changed", "stateTransitionTime"),
)
APPLICATION_COLUMNS = (Column("Id", "id"), Column("Name", "displayName"), Column("Versions", "join(', ', versions)"))


def _thumbprint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--thumbprint", required=True, help="the certificate's SHA-1 thumbprint (hex)")


def _path(args: argparse.Namespace) -> str:
    return f"/certificates(thumbprintAlgorithm=sha1,thumbprint={seg(args.thumbprint)})"


def _create_arguments(parser: argparse.ArgumentParser) -> None:
    add_json_file(parser, "certificate (a CertificateAddParameter)")
    parser.add_argument("--certificate-file", type=argparse.FileType("rb"), help="a .pfx or .cer file")
    parser.add_argument("--thumbprint", help="its SHA-1 thumbprint (hex)")
    parser.add_argument("--password", help="the .pfx file's password")


def _create(args: argparse.Namespace) -> Any:
    if args.json_file:
        body = load_json(args.json_file)
    else:
        require(args, "certificate_file", "thumbprint")
        name = args.certificate_file.name.lower()
        if not name.endswith((".pfx", ".cer")):
            raise UsageError("--certificate-file: a .pfx or .cer file")
        body = {
            "thumbprint": args.thumbprint,
            "thumbprintAlgorithm": "sha1",
            "data": base64.b64encode(args.certificate_file.read()).decode(),
            "certificateFormat": "pfx" if name.endswith(".pfx") else "cer",
        }
        if args.password:
            body["password"] = args.password
    call(args, "POST", "/certificates", body)
    args.thumbprint = body.get("thumbprint")
    return call(args, "GET", _path(args))


def _delete(args: argparse.Namespace) -> Done:
    call(args, "DELETE", _path(args))
    return Done(f"Deleting certificate {args.thumbprint}")


def _cancel(args: argparse.Namespace) -> Done:
    call(args, "POST", f"{_path(args)}/canceldelete")
    return Done(f"Cancelled the deletion of certificate {args.thumbprint}")


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    _thumbprint(parser)
    add_show_options(parser)


def _application_show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--application-id", required=True, help="the application's id")


COMMANDS = (
    Command(
        ("certificate", "create"), "add a certificate from a file or --json-file", _create, _create_arguments, COLUMNS
    ),
    Command(
        ("certificate", "list"),
        "the account's certificates",
        lambda a: listing(a, "/certificates"),
        add_list_options,
        COLUMNS,
        "table",
    ),
    Command(
        ("certificate", "show"),
        "one certificate",
        lambda a: call(a, "GET", _path(a), query=show_query(a)),
        _show_arguments,
        COLUMNS,
    ),
    Command(("certificate", "delete"), "delete a certificate", _delete, _thumbprint),
    Command(("certificate", "cancel-delete"), "stop a failed deletion", _cancel, _thumbprint),
    Command(
        ("application", "list"),
        "the applications pools and tasks can reference",
        lambda a: listing(a, "/applications"),
        add_list_options,
        APPLICATION_COLUMNS,
        "table",
    ),
    Command(
        ("application", "show"),
        "one application",
        lambda a: call(a, "GET", f"/applications/{seg(a.application_id)}"),
        _application_show_arguments,
        APPLICATION_COLUMNS,
    ),
)
