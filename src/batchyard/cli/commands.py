"""The az-style resource commands (`batchyard pool list`, `batchyard node user create` ...): each
resource module declares its commands as `Command`s; this module builds their parsers, runs them
and maps failures to the documented exit codes (README, CLI reference):

    0  done                          3  the service could not be reached
    1  the service refused (a Batch error: its code and message are printed)
    2  bad usage: an option, a --json-file, a --query       4  `wait`: a task failed
    5  `wait`: --timeout passed      130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batchyard.cli.client import CommandError, UsageError, add_connection_options, list_all
from batchyard.cli.output import Column, OutputError, add_output_options, emit

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_TASK_FAILED, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130


class WaitFailed(Exception):
    """A `wait` saw what it waited for end badly (its exit status is `status`)."""

    def __init__(self, message: str, status: int, answer: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.answer = answer  # printed as a success's would be


@dataclass(frozen=True)
class Done:
    """What an action did, said in one line (actions have no answer to print)."""

    message: str


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]  # ("node", "user", "create")
    help: str
    run: Callable[[argparse.Namespace], Any]  # the answer to print, a Done, or None
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    columns: Sequence[Column] = ()
    default_output: str = "json"
    aliases: tuple[str, ...] = field(default=())
    # how it reaches the service: the data plane's options by default (`account` commands: the management plane's)
    connection: Callable[[argparse.ArgumentParser], None] = add_connection_options


GROUP_HELP = {
    "pool": "pools: create, list, resize, autoscale, heat map",
    "job": "jobs: create, list, disable/enable/stop, wait for their tasks",
    "job-schedule": "job schedules",
    "task": "tasks: create (one, or many from --json-file), list, wait, tail their output",
    "node": "compute nodes: list, reboot, reimage, scheduling, users, files",
    "certificate": "certificates",
    "application": "applications the pools can reference (packages: `batchyard applications`)",
    "autoscale": "scale a pool by a formula",
    "node-counts": "node counts by state",
    "user": "the accounts of users who log in to a node",
    "file": "files: list, show, download, delete",
    "account": "the Batch account through the management plane (bearer token of a principal): keys, modes, quotas",
    "keys": "the account's Shared Keys",
}


def register(subcommands: Any, commands: Iterable[Command]) -> None:
    """Add every command's parser under its words (groups are made on the way)."""
    groups: dict[tuple[str, ...], Any] = {(): subcommands}
    for command in commands:
        for depth in range(1, len(command.words)):
            prefix = command.words[:depth]
            if prefix not in groups:
                name = prefix[-1]
                parser = groups[prefix[:-1]].add_parser(name, help=GROUP_HELP.get(name, f"{name} commands"))
                groups[prefix] = parser.add_subparsers(dest="_".join(prefix) + "_command", required=True)
        leaf = groups[command.words[:-1]].add_parser(command.words[-1], help=command.help, description=command.help)
        command.arguments(leaf)
        command.connection(leaf)
        add_output_options(leaf, command.default_output)
        leaf.set_defaults(resource_command=command)


def run(args: argparse.Namespace) -> int:
    command: Command = args.resource_command
    return finish(args, lambda: command.run(args), command.columns)


def finish(args: argparse.Namespace, act: Callable[[], Any], columns: Sequence[Column] = ()) -> int:
    """Run a command, print its answer (or what it did) and return its exit status."""
    try:
        result = act()
        if isinstance(result, Done):
            if getattr(args, "output", None) != "none":
                print(result.message)
        else:
            emit(args, result, columns)
    except CommandError as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        for detail in (exc.body or {}).get("values", []) if isinstance(exc.body, dict) else []:
            print(f"  {detail.get('key')}: {detail.get('value')}", file=sys.stderr)
        return EXIT_REFUSED if exc.status is not None else EXIT_UNREACHABLE
    except (UsageError, OutputError) as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WaitFailed as exc:
        if exc.answer is not None:
            emit(args, exc.answer, columns)
        print(f"batchyard: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


# Helpers the resource modules share.


def seg(value: str) -> str:
    """One path segment, escaped."""
    return quote(value, safe="")


def add_list_options(parser: argparse.ArgumentParser, expand: bool = False) -> None:
    parser.add_argument("--filter", help="an OData $filter, e.g. \"state eq 'active'\"")
    parser.add_argument("--select", help="an OData $select: the comma-separated properties to return")
    if expand:
        parser.add_argument("--expand", help="an OData $expand, e.g. stats")
    parser.add_argument("--max-results", type=int, help="at most this many items per page the service sends")


def list_query(args: argparse.Namespace) -> dict[str, str]:
    query = {"$filter": args.filter, "$select": args.select, "$expand": getattr(args, "expand", None)}
    if args.max_results is not None:
        query["maxresults"] = str(args.max_results)
    return {k: v for k, v in query.items() if v}


def listing(args: argparse.Namespace, path: str) -> list[dict[str, Any]]:
    return list(list_all(args, path, list_query(args)))


def add_show_options(parser: argparse.ArgumentParser, expand: bool = False) -> None:
    parser.add_argument("--select", help="an OData $select: the comma-separated properties to return")
    if expand:
        parser.add_argument("--expand", help="an OData $expand, e.g. stats")


def show_query(args: argparse.Namespace) -> dict[str, str]:
    query = {"$select": args.select, "$expand": getattr(args, "expand", None)}
    return {k: v for k, v in query.items() if v}


def add_json_file(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--json-file",
        type=Path,
        help=f"a file with the {what} as the REST API takes it ('-' for standard input); other options are ignored",
    )


def load_json(path: Path) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
        return json.loads(text)
    except OSError as exc:
        raise UsageError(f"--json-file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"--json-file {path}: not JSON: {exc}") from None


def require(args: argparse.Namespace, *names: str) -> None:
    """Options required when there is no --json-file."""
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is None]
    if missing:
        raise UsageError(f"{', '.join(missing)} required (or --json-file)")


def compact(body: dict[str, Any]) -> dict[str, Any]:
    """A request body without the options left unset."""
    return {k: v for k, v in body.items() if v is not None}
