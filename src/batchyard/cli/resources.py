"""Every az-style resource command, in the order `batchyard --help` lists their groups."""

from __future__ import annotations

from batchyard.cli import certificates, files, jobs, node_commands, pools, tasks
from batchyard.cli.commands import Command

RESOURCE_COMMANDS: tuple[Command, ...] = (
    *pools.COMMANDS,
    *jobs.COMMANDS,
    *tasks.COMMANDS,
    *node_commands.COMMANDS,
    *files.COMMANDS,
    *certificates.COMMANDS,
)
