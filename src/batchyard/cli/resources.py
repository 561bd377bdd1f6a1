"""Every az-style resource command, in the order `batchyard --help` lists their groups."""

from __future__ import annotations

from batchyard.cli import accounts, certificates, events, files, heatmap, jobs, node_commands, pools, tail, tasks, wait
from batchyard.cli.commands import Command

RESOURCE_COMMANDS: tuple[Command, ...] = (
    *pools.COMMANDS,
    *heatmap.COMMANDS,
    *jobs.COMMANDS,
    *tasks.COMMANDS,
    *wait.COMMANDS,
    *tail.COMMANDS,
    *node_commands.COMMANDS,
    *files.COMMANDS,
    *certificates.COMMANDS,
    *events.COMMANDS,
    *accounts.COMMANDS,
)
