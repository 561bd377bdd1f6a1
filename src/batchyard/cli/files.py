"""`batchyard task file ...` and `batchyard node file ...`: az batch's file commands
(list, show the properties, download, delete) for a task's directory or a node's."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batchyard.cli.client import call, list_all, open_request
from batchyard.cli.commands import Command, Done, add_list_options, list_query, seg
from batchyard.cli.output import Column

Base = Callable[[argparse.Namespace], str]  # the files URL of a task or a node
Arguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], Any]

COLUMNS = (
    Column("Name", "name"),
    Column("Directory", "isDirectory"),
    Column("Size", "properties.contentLength"),
    Column("Modified", "properties.lastModified"),
)


def _task_base(args: argparse.Namespace) -> str:
    return f"/jobs/{seg(args.job_id)}/tasks/{seg(args.task_id)}/files"


def _node_base(args: argparse.Namespace) -> str:
    return f"/pools/{seg(args.pool_id)}/nodes/{seg(args.node_id)}/files"


def _task_ids(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job-id", required=True, help="the job's id")
    parser.add_argument("--task-id", required=True, help="the task's id")


def _node_ids(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool-id", required=True, help="the pool's id")
    parser.add_argument("--node-id", required=True, help="the node's id")


def _file_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file-path", required=True, help="the file's path (e.g. stdout.txt)")


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recursive", action="store_true", help="the files of subdirectories too")
    add_list_options(parser)


def _list(base: Base) -> Run:
    def run(args: argparse.Namespace) -> list[dict[str, Any]]:
        recursive = {"recursive": "true"} if args.recursive else {}
        return list(list_all(args, base(args), {**list_query(args), **recursive}))

    return run


def _show(base: Base) -> Run:
    def run(args: argparse.Namespace) -> dict[str, Any]:
        with open_request(args, "HEAD", f"{base(args)}/{quote(args.file_path)}") as response:
            headers = response.headers
        return {
            "name": args.file_path,
            "isDirectory": headers.get("ocp-batch-file-isdirectory", "false").lower() == "true",
            "url": headers.get("ocp-batch-file-url"),
            "properties": {
                "contentLength": int(headers.get("content-length") or 0),
                "contentType": headers.get("content-type"),
                "creationTime": headers.get("ocp-creation-time"),
                "lastModified": headers.get("last-modified"),
            },
        }

    return run


def _download_arguments(ids: Arguments) -> Arguments:
    def arguments(parser: argparse.ArgumentParser) -> None:
        ids(parser)
        _file_path(parser)
        parser.add_argument(
            "--destination", type=Path, required=True, help="where to write the file ('-' for standard output)"
        )

    return arguments


def _download(base: Base) -> Run:
    def run(args: argparse.Namespace) -> Done | None:
        with open_request(args, "GET", f"{base(args)}/{quote(args.file_path)}", timeout=None) as response:
            if str(args.destination) == "-":
                shutil.copyfileobj(response, sys.stdout.buffer)
                sys.stdout.flush()
                return None
            with args.destination.open("wb") as target:
                shutil.copyfileobj(response, target)
        return Done(f"Downloaded {args.file_path} to {args.destination}")

    return run


def _delete_arguments(ids: Arguments) -> Arguments:
    def arguments(parser: argparse.ArgumentParser) -> None:
        ids(parser)
        _file_path(parser)
        parser.add_argument("--recursive", action="store_true", help="a directory and everything in it")

    return arguments


def _delete(base: Base) -> Run:
    def run(args: argparse.Namespace) -> Done:
        path = f"{base(args)}/{quote(args.file_path)}"
        call(args, "DELETE", path, query={"recursive": "true"} if args.recursive else None)
        return Done(f"Deleted {args.file_path}")

    return run


def _with(ids: Arguments, more: Arguments) -> Arguments:
    def arguments(parser: argparse.ArgumentParser) -> None:
        ids(parser)
        more(parser)

    return arguments


def _commands(owner: str, ids: Arguments, base: Base) -> tuple[Command, ...]:
    return (
        Command(
            (owner, "file", "list"),
            f"the files of a {owner}",
            _list(base),
            _with(ids, _list_arguments),
            COLUMNS,
            "table",
        ),
        Command((owner, "file", "show"), "a file's properties", _show(base), _with(ids, _file_path), COLUMNS),
        Command((owner, "file", "download"), "download a file", _download(base), _download_arguments(ids)),
        Command((owner, "file", "delete"), "delete a file", _delete(base), _delete_arguments(ids)),
    )


COMMANDS = (*_commands("task", _task_ids, _task_base), *_commands("node", _node_ids, _node_base))
