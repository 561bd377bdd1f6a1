"""The SQLite store implements the `Store` port exactly: every method, with the same parameters."""

from __future__ import annotations

import inspect

from batchyard.service.persistence.sqlite import SqliteStore
from batchyard.service.ports import Store


def _port_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(Store).items()
        if callable(member) and not name.startswith("_")
    }


def test_every_method_of_the_port_is_implemented_with_its_parameters() -> None:
    methods = _port_methods()
    assert "transaction" in methods and "list_tasks" in methods
    for name, wanted in methods.items():
        implemented = getattr(SqliteStore, name, None)
        assert callable(implemented), name
        have = inspect.signature(implemented)
        assert list(have.parameters) == list(wanted.parameters), name
        defaults = {p.name: p.default for p in have.parameters.values()}
        assert defaults == {p.name: p.default for p in wanted.parameters.values()}, name


def test_the_task_fields_are_top_level_properties() -> None:
    assert SqliteStore.task_fields == {"id", "state", "stateTransitionTime"}
    assert all("/" not in name for name in SqliteStore.task_fields)
