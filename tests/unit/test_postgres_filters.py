"""`$filter` on PostgreSQL: the SQL selects exactly what the predicate accepts (as for SQLite in
test_odata_properties.py), and every filterable property of every list compiles to SQL the server runs,
whatever JSON type a document holds there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from batchyard.service.documents import TaskDocument
from batchyard.service.odata import LISTS, parse_filter, to_predicate
from batchyard.service.odata.literals import fold
from batchyard.service.odata.validate import enum_values
from batchyard.service.persistence.postgres import PostgresStore
from batchyard.service.persistence.postgres.filters import to_sql
from tests.conftest import postgres_cluster, wait_for
from tests.unit.test_odata_properties import FAST, task_docs, task_filters, unique_ids


@pytest.fixture(scope="module")
def store() -> Iterator[PostgresStore]:
    opened = PostgresStore(postgres_cluster().new_database("filters"))
    yield opened
    opened.close()


@settings(FAST, max_examples=150)
@given(st.lists(task_docs(), max_size=12), task_filters)
@example([{"id": "ab", "state": "active"}, {"id": "a\\", "state": "active"}], "startswith(id, '%')")
@example([{"id": "ab", "state": "active"}, {"id": "a_", "state": "active"}], "startswith(id, 'A_') or id eq 'A\\'")
@example([{"id": "É", "state": "active"}, {"id": "é", "state": "running"}], "id eq 'é' or state eq 'RUNNING'")
@example([{"id": "a", "state": "active", "executionInfo": {"result": "Success"}}], "executionInfo/result eq 'success'")
def test_sql_selects_exactly_what_the_predicate_accepts(
    store: PostgresStore, docs: list[dict[str, Any]], text: str
) -> None:
    docs = unique_ids(docs)
    parsed = parse_filter(text, "tasks")
    pred = to_predicate(parsed, "tasks")
    store.delete_job("j")
    store.insert_tasks("j", [(fold(doc["id"]), i, doc["state"], TaskDocument(doc)) for i, doc in enumerate(docs)])
    by_sql = {seq for seq, _ in store.list_tasks("j", -1, 1000, parsed)}
    assert by_sql == {i for i, doc in enumerate(docs) if pred(doc)}, (text, to_sql(parsed, "tasks"))


# Values of every JSON type at each property's place: the SQL must run over documents of the wrong type too.
ODD_VALUES: list[Any] = [None, True, 7, -2.5, "text", "2024-01-01T00:00:00.000000Z", [1], {"a": 1}]


def _literal(prop: Any) -> str:
    if prop.type == "enum":
        return f"'{enum_values(prop)[0]}'"
    return {"string": "'ab'", "int": "3", "bool": "true", "datetime": "DateTime'2024-01-01T00:00:00Z'"}[prop.type]


def _at(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {path[-1]: value}
    for name in reversed(path[:-1]):
        doc = {name: doc}
    return doc


def test_every_filterable_property_compiles_to_sql_the_server_runs(store: PostgresStore) -> None:
    db = store._db
    db.execute("CREATE TEMPORARY TABLE items (doc JSON NOT NULL)")
    checked = 0
    for kind, spec in LISTS.items():
        for prop in spec.properties.values():
            db.execute("DELETE FROM items")
            with db.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO items VALUES (%s)", [(orjson.dumps(_at(prop.path, v)).decode(),) for v in ODD_VALUES]
                )
            for op in sorted(prop.ops):
                literal = _literal(prop)
                text = f"startswith({prop.name}, {literal})" if op == "startswith" else f"{prop.name} {op} {literal}"
                parsed = parse_filter(text, kind)
                where, params = to_sql(parsed, kind, columns={})
                rows = db.execute(f"SELECT doc FROM items WHERE {where}", params).fetchall()
                pred = to_predicate(parsed, kind)
                # Whatever the predicate accepts (a value of the wrong type counts as null), SQL selects.
                typed = {orjson.dumps(_at(prop.path, v)) for v in ODD_VALUES if pred(_at(prop.path, v))}
                assert typed <= {bytes(row[0]) for row in rows}, text
                checked += 1
    assert checked > 100


# --- indexes: filtered pages cost what they return -----------------------------------------------------------


def test_selective_filters_are_answered_from_their_index(store: PostgresStore) -> None:
    count = 20000
    rows = []
    for i in range(count):
        doc: dict[str, Any] = {
            "id": f"T{i:05d}",
            "state": "active",
            "stateTransitionTime": f"2024-01-01T00:00:{i % 60:02d}.000000Z",
        }
        if i % 1000 == 7:
            doc |= {
                "state": "completed",
                "executionInfo": {"exitCode": 3},
                "stateTransitionTime": "2024-06-01T00:00:00.000000Z",
            }
        rows.append((doc["id"].lower(), i + 1, doc["state"], TaskDocument(doc)))
    with store.transaction():
        store.insert_tasks("big", rows)
    store._db.execute("ANALYZE tasks")  # as autovacuum does after a large insert
    for text, index, matches in (
        ("executionInfo/exitCode gt 0", "tasks_by_exit_code", 20),
        ("stateTransitionTime gt DateTime'2024-05-01T00:00:00Z'", "tasks_by_transition", 20),
        ("startswith(id, 't0100')", "tasks_pkey", 10),
        ("state eq 'completed' and executionInfo/exitCode eq 3", "tasks_by", 20),
    ):
        parsed = parse_filter(text, "tasks")
        plan = " ".join(store.explain_task_list("big", parsed))
        assert index in plan and "Seq Scan" not in plan, (text, plan)
        assert len(store.list_tasks("big", 0, 1000, parsed)) == matches
    # Many matches: walk the job in seq order, stopping at the page's end.
    parsed = parse_filter("stateTransitionTime lt DateTime'2024-05-01T00:00:00Z'", "tasks")
    plan = " ".join(store.explain_task_list("big", parsed))
    assert "tasks_by_seq" in plan and "Sort" not in plan, plan


def test_a_large_add_gets_statistics_so_pages_walk_the_index() -> None:
    store = PostgresStore(postgres_cluster().new_database("analyze"))
    try:
        for start in range(0, 6000, 100):  # as task collections come in: 100 a transaction
            with store.transaction():
                store.insert_tasks(
                    "j", [(f"t{i}", i + 1, "active", TaskDocument({"id": f"t{i}"})) for i in range(start, start + 100)]
                )

        def analyzed() -> bool:
            row = store._db.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'tasks'").fetchone()
            return row is not None and row[0] is not None

        wait_for(analyzed, timeout=30, what="ANALYZE of the tasks table")
        plan = " ".join(store.explain_task_list("j"))
        assert "tasks_by_seq" in plan and "Sort" not in plan, plan
    finally:
        store.close()
