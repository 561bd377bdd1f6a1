"""The `batchyard` parser: every option of every command says what it is for, and tables fit 80 columns."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from batchyard.cli.main import build_parser
from batchyard.cli.output import Column, render_table


def _options(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            yield path, action


def test_every_option_has_help_text() -> None:
    options = list(_options(build_parser(), "batchyard"))
    assert len(options) > 300  # every command was walked
    silent = [f"{path} {action.option_strings or action.dest}" for path, action in options if action.help is None]
    assert silent == []


def test_a_wide_table_shrinks_its_other_columns_before_the_id() -> None:
    node = "tvmps_" + "a" * 32 + "_d"
    item = {"id": node, "state": "waitingforstarttask", "ip": "127.100.200.250", "note": "x" * 40}
    columns = [Column("Id", "id"), Column("State", "state"), Column("IP", "ip"), Column("Note", "note")]
    table = render_table([item], columns, width=80)
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[2].startswith(node + "  ")  # the id stays whole
    assert "…" in lines[2]  # the note was cut
