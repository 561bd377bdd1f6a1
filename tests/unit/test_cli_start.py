"""The `batchyard` command starts without the service's heavy dependencies: every command pays for what
the module that parses its options imports (the Azure storage SDK and cryptography take about 0.2 s)."""

from __future__ import annotations

from tests.unit.module_probe import loaded_after

HEAVY = ("azure.storage.blob", "cryptography", "batchyard.service.tls", "batchyard.service.storage.linked")


def test_the_command_line_parser_loads_no_heavy_module() -> None:
    assert loaded_after("from batchyard.cli.main import build_parser\nbuild_parser()", HEAVY) == []
