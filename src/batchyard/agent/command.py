"""The agent's command line, shared by `batchyard agent` and `python -m batchyard.agent`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

AGENT_HELP = "run a compute node agent"


def add_agent_arguments(agent: argparse.ArgumentParser) -> None:
    agent.add_argument(
        "--service-url",
        action="append",
        required=True,
        help="the service's URL; repeated for several instances on one database (failover): tried in turn",
    )
    agent.add_argument("--root", type=Path, required=True, help="the node's root directory")
    agent.add_argument("--node-id", help="(local provider) the node this agent serves")
    agent.add_argument("--pool", help="(another host) join this pool, with --join-token or BATCHYARD_JOIN_TOKEN")
    agent.add_argument("--join-token", help="the pool's join token (see `batchyard join-token`)")
    agent.add_argument(
        "--orphan-timeout", type=float, default=600.0, help="seconds without the service before the agent stops"
    )
    agent.add_argument("--token-stdin", action="store_true", help="read the node token from standard input")
    agent.add_argument(
        "--remote-login-address",
        default="127.0.0.1",
        help="where the node's SSH server listens, as remote login settings report it (another host: its address)",
    )


def run_agent_command(args: argparse.Namespace) -> int:
    from batchyard.agent.main import run_agent

    token = sys.stdin.readline().strip() if args.token_stdin else None
    return run_agent(
        args.service_url,
        args.root,
        args.orphan_timeout,
        args.node_id,
        args.pool,
        args.join_token,
        token,
        login_address=args.remote_login_address,
    )
