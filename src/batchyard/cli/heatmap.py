"""`batchyard pool heatmap`: a pool's nodes as coloured squares, one per node, by state (Batch Explorer's
heat map), with a legend counting each state. Plain text (the legend) when not a terminal."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from batchyard.cli.client import list_all
from batchyard.cli.commands import Command, seg

# state -> colour, in the legend's order (Batch Explorer's palette, near enough in 16 colours)
COLOURS = {
    "idle": "green",
    "running": "blue",
    "starting": "yellow",
    "waitingforstarttask": "yellow",
    "rebooting": "bright_yellow",
    "reimaging": "bright_yellow",
    "leavingpool": "magenta",
    "offline": "bright_black",
    "preempted": "bright_black",
    "deallocating": "bright_black",
    "deallocated": "bright_black",
    "starttaskfailed": "red",
    "unusable": "red",
    "unknown": "red",
}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool-id", required=True, help="the pool's id")
    parser.add_argument("--width", type=int, default=20, help="squares per row (default: 20)")


def heatmap(args: argparse.Namespace) -> dict[str, Any] | None:
    from rich.console import Console
    from rich.text import Text

    nodes = list(list_all(args, f"/pools/{seg(args.pool_id)}/nodes", {"$select": "id,state"}))
    counts = Counter(node.get("state", "unknown") for node in nodes)
    if args.output != "table" or args.query:
        return {"poolId": args.pool_id, "nodes": len(nodes), "states": dict(counts)}
    console = Console(file=sys.stdout, highlight=False)
    console.print(Text(f"pool {args.pool_id}: {len(nodes)} node(s)", style="bold"))
    row = Text()
    for index, node in enumerate(nodes, start=1):
        row.append("■ ", style=COLOURS.get(node.get("state", ""), "red"))
        if index % max(1, args.width) == 0:
            console.print(row)
            row = Text()
    if row:
        console.print(row)
    legend = Text()
    for state in sorted(counts, key=lambda s: list(COLOURS).index(s) if s in COLOURS else len(COLOURS)):
        legend.append("■ ", style=COLOURS.get(state, "red"))
        legend.append(f"{state} {counts[state]}   ")
    console.print(legend)
    return None


COMMANDS = (
    Command(
        ("pool", "heatmap"),
        "a pool's nodes as squares coloured by state, with a count of each",
        heatmap,
        _arguments,
        default_output="table",
    ),
)
