"""`batchyard nodes ...`: the older short forms of the node commands (`batchyard node ...` has them all),
with positional pool and node ids; the same output style and messages."""

from __future__ import annotations

import argparse
from typing import Any

from batchyard.cli.client import add_connection_options, call
from batchyard.cli.commands import Done, finish, seg
from batchyard.cli.node_commands import ACTIONS, COLUMNS, node_action
from batchyard.cli.output import add_output_options

_ALL = ("requeue", "terminate", "taskcompletion", "retaineddata")
# the short form -> the action's name in node_commands.ACTIONS
_SHORT = {
    "reboot": "reboot",
    "reimage": "reimage",
    "disable-scheduling": "scheduling disable",
    "enable-scheduling": "scheduling enable",
    "deallocate": "deallocate",
    "start": "start",
}


def add_node_commands(commands: Any) -> None:
    nodes = commands.add_parser("nodes", help="list compute nodes and act on them (short forms of `node`)")
    add_connection_options(nodes)
    actions = nodes.add_subparsers(dest="node_action", required=True)
    listing = actions.add_parser("list", help="a pool's nodes with their state")
    listing.add_argument("pool", help="the pool's id")
    add_output_options(listing, "table")
    for name, action in _SHORT.items():
        _, option, choices, verb = ACTIONS[action]
        parser = actions.add_parser(name, help=f"{verb.lower()} a node")
        parser.add_argument("pool", help="the pool's id")
        parser.add_argument("node", help="the node's id")
        add_output_options(parser)
        if option:
            parser.add_argument("--option", choices=choices, default="requeue", help="what happens to running tasks")
    preempt = actions.add_parser(
        "preempt", help="preempt a Spot/low-priority node now, as its cloud would (its running tasks requeue)"
    )
    preempt.add_argument("pool", help="the pool's id")
    preempt.add_argument("node", help="the node's id")
    add_output_options(preempt)
    remove = actions.add_parser("remove", help="remove nodes from their pool")
    remove.add_argument("pool", help="the pool's id")
    remove.add_argument("nodes", nargs="+", help="the nodes' ids")
    add_output_options(remove)
    remove.add_argument("--option", choices=_ALL, default="requeue", help="what happens to running tasks")


def run_node_command(args: argparse.Namespace) -> int:
    return finish(args, lambda: _run(args), COLUMNS)


def _run(args: argparse.Namespace) -> Any:
    pool = seg(args.pool)
    if args.node_action == "list":
        return call(args, "GET", f"/pools/{pool}/nodes")["value"]
    if args.node_action == "preempt":
        call(args, "POST", f"/_batchyard/pools/{pool}/nodes/{seg(args.node)}/preempt")
        return Done(f"Preempted node {args.node} of pool {args.pool}")
    if args.node_action == "remove":
        removal = {"nodeList": args.nodes, "nodeDeallocationOption": args.option}
        call(args, "POST", f"/pools/{pool}/removenodes", removal)
        return Done(f"Removing {len(args.nodes)} node(s) from pool {args.pool}: {', '.join(args.nodes)}")
    return node_action(args, _SHORT[args.node_action], args.pool, args.node, getattr(args, "option", None))
