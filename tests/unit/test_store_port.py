"""Both stores implement the `Store` port exactly: every method, with the same parameters."""

from __future__ import annotations

import inspect

import pytest

from batchyard.service.persistence.postgres import PostgresStore
from batchyard.service.persistence.sqlite import SqliteStore
from batchyard.service.ports import Store

STORES = [SqliteStore, PostgresStore]


def _port_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(Store).items()
        if callable(member) and not name.startswith("_")
    }


@pytest.mark.parametrize("store_class", STORES, ids=lambda cls: cls.__name__)
def test_every_method_of_the_port_is_implemented_with_its_parameters(store_class: type) -> None:
    methods = _port_methods()
    assert "transaction" in methods and "list_tasks" in methods
    for name, wanted in methods.items():
        implemented = getattr(store_class, name, None)
        assert callable(implemented), name
        have = inspect.signature(implemented)
        assert list(have.parameters) == list(wanted.parameters), name
        defaults = {p.name: p.default for p in have.parameters.values()}
        assert defaults == {p.name: p.default for p in wanted.parameters.values()}, name


@pytest.mark.parametrize("store_class", STORES, ids=lambda cls: cls.__name__)
def test_the_task_fields_are_top_level_properties(store_class: type) -> None:
    assert store_class.task_fields == {"id", "state", "stateTransitionTime"}
    assert all("/" not in name for name in store_class.task_fields)
