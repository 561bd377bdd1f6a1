"""`batchyard events`: the service's Service Log records (GET /_batchyard/events, server-sent events),
one line each (`-o json`: the records as JSON lines). Without -f it prints the records kept (or those
after --from) and stops once the stream has been quiet for a second; with -f it follows the stream."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

from batchyard.cli.client import open_request
from batchyard.cli.commands import Command
from batchyard.cli.output import apply_query

_QUIET = 1.0  # seconds of silence that end a listing without -f


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--follow", action="store_true", help="keep following the stream (Ctrl-C stops)")
    parser.add_argument(
        "--from",
        dest="start",
        type=int,
        help="the records after this number (default: every record kept; with -f, only new ones)",
    )


def read_events(lines: Iterator[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(id, record) for each server-sent event; comments and keep-alives are skipped."""
    event_id, data = 0, b""
    for raw in lines:
        line = raw.rstrip(b"\r\n")
        if line.startswith(b"id:"):
            event_id = int(line[3:].strip())
        elif line.startswith(b"data:"):
            data += line[5:].strip()
        elif not line and data:
            yield event_id, json.loads(data)
            data = b""


def _summary(event_id: int, record: dict[str, Any]) -> str:
    props = record.get("properties") or {}
    about = " ".join(f"{k}={props[k]}" for k in ("poolId", "jobId", "id") if props.get(k) is not None)
    return f"{event_id:>6}  {record.get('time', '')}  {record.get('operationName', '')}  {about}".rstrip()


def events(args: argparse.Namespace) -> None:
    start = args.start if args.start is not None else (None if args.follow else 0)
    query = {"from": str(start)} if start is not None else None
    timeout = None if args.follow else _QUIET
    try:
        with open_request(args, "GET", "/_batchyard/events", query=query, timeout=timeout) as response:
            for event_id, record in read_events(iter(response.readline, b"")):
                shown = apply_query(args.query, record) if args.query else record
                if args.output in ("json", "jsonc") or args.query:
                    print(json.dumps(shown), flush=True)
                elif args.output == "tsv":
                    print(f"{event_id}\t{record.get('time')}\t{record.get('operationName')}", flush=True)
                elif args.output != "none":
                    print(_summary(event_id, record), flush=True)
    except TimeoutError:
        return None  # quiet for a second: every record there was is shown
    return None


def _run(args: argparse.Namespace) -> None:
    try:
        events(args)
    except KeyboardInterrupt:
        sys.stdout.flush()
    return None


COMMANDS = (
    Command(
        ("events",),
        "the service's Service Log events (with --diagnostic-logs or a diagnostic setting on); -f follows them live",
        _run,
        _arguments,
        default_output="table",
    ),
)
