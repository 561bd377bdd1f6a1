"""Every az-style resource command, in the order `batchyard --help` lists their groups."""

from __future__ import annotations

from batchyard.cli import pools
from batchyard.cli.commands import Command

RESOURCE_COMMANDS: tuple[Command, ...] = (*pools.COMMANDS,)
