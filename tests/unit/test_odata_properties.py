"""Property tests for $filter: any input fails only with BatchError, and SQL selects what the predicate accepts."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from batchyard.service.documents import TaskDocument
from batchyard.service.errors import BatchError
from batchyard.service.odata import LISTS, parse_filter, to_predicate
from batchyard.service.odata.literals import canonical, fold
from batchyard.service.odata.validate import enum_values
from batchyard.service.persistence.sqlite import SqliteStore
from batchyard.service.persistence.sqlite.filters import to_index_hint, to_sql

KINDS = sorted(LISTS)
TASK_PROPS = LISTS["tasks"].properties
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies -------------------------------------------------------------------------------------------

# Letters in both cases, LIKE metacharacters, the escape character, a quote and non-ASCII letters (which
# are not folded) make string comparisons and startswith interesting. No NUL: see persistence/sqlite/filters.py.
ALPHABET = "aAbBzZ_%\\'-éÉ0"
short_text = st.text(ALPHABET, max_size=4)

BASE = datetime(2024, 1, 1, tzinfo=UTC)
INSTANTS = [BASE + timedelta(seconds=s) for s in (0, 1, 3600, 86400)] + [BASE + timedelta(microseconds=1)]
instants = st.one_of(
    st.sampled_from(INSTANTS),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
)


@st.composite
def task_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": draw(short_text), "state": draw(st.sampled_from(enum_values(TASK_PROPS["state"])))}
    for name in ("creationTime", "stateTransitionTime", "lastModified"):
        if draw(st.booleans()):
            doc[name] = canonical(draw(instants))
    if draw(st.booleans()):
        info: dict[str, Any] = {}
        for name in ("startTime", "endTime"):
            if draw(st.booleans()):
                info[name] = canonical(draw(instants))
        if draw(st.booleans()):
            info["exitCode"] = draw(st.integers(-3, 3) | st.integers(-(2**31), 2**31 - 1))
        if draw(st.booleans()):
            info["result"] = draw(st.sampled_from(["success", "failure"]))
        doc["executionInfo"] = info
    return doc


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(ch.upper() if flip else ch for ch, flip in zip(text, flips, strict=True))


@st.composite
def datetime_literal(draw: st.DrawFn) -> str:
    when = draw(instants)
    form = draw(st.sampled_from(["z", "offset", "rfc", "date"]))
    if form == "rfc":
        text = when.replace(microsecond=0).strftime("%a, %d %b %Y %H:%M:%S GMT")
    elif form == "date":
        text = when.strftime("%Y-%m-%d")
    elif form == "offset":
        zone = timezone(timedelta(minutes=draw(st.integers(-600, 600))))
        text = when.astimezone(zone).isoformat()
    else:
        text = canonical(when)
    return f"{draw(st.sampled_from(['DateTime', 'datetime']))}'{text}'"


@st.composite
def task_condition(draw: st.DrawFn) -> str:
    prop = draw(st.sampled_from(list(TASK_PROPS.values())))
    op = draw(st.sampled_from(sorted(prop.ops)))
    if prop.type == "enum":
        value = quoted(random_case(draw, draw(st.sampled_from(enum_values(prop)))))
    elif prop.type == "string":
        value = quoted(random_case(draw, draw(short_text)))
    elif prop.type == "int":
        value = str(draw(st.integers(-3, 3)))
    else:
        value = draw(datetime_literal())
    return f"startswith({prop.name}, {value})" if op == "startswith" else f"{prop.name} {op} {value}"


task_filters = st.recursive(
    task_condition(),
    lambda inner: st.tuples(inner, st.sampled_from([" and ", " or "]), inner).map(
        lambda t: f"({t[0]}){t[1]}({t[2]})" if len(t[0]) % 2 else f"{t[0]}{t[1]}{t[2]}"
    ),
    max_leaves=6,
)


def task_db(docs: list[dict[str, Any]]) -> sqlite3.Connection:
    """The docs in the real store (its columns and indexes); the key is the folded id, as the service makes it."""
    store = SqliteStore(Path(":memory:"))
    with store.transaction():
        store.insert_tasks("j", [(fold(doc["id"]), i, doc["state"], TaskDocument(doc)) for i, doc in enumerate(docs)])
    return store._db


def unique_ids(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Task ids are unique within a job, case-insensitively."""
    by_key: dict[str, dict[str, Any]] = {}
    for doc in docs:
        by_key.setdefault(fold(doc["id"]), doc)
    return list(by_key.values())


# --- SQL and predicate agree ------------------------------------------------------------------------------


@settings(FAST, max_examples=200)
@given(st.lists(task_docs(), max_size=12), task_filters)
@example([{"id": "ab", "state": "active"}, {"id": "a\\", "state": "active"}], "startswith(id, '%')")
@example([{"id": "ab", "state": "active"}, {"id": "a_", "state": "active"}], "startswith(id, 'A_') or id eq 'A\\'")
@example([{"id": "É", "state": "active"}, {"id": "é", "state": "running"}], "id eq 'é' or state eq 'RUNNING'")
def test_sql_selects_exactly_what_the_predicate_accepts(docs: list[dict[str, Any]], text: str) -> None:
    docs = unique_ids(docs)
    parsed = parse_filter(text, "tasks")
    pred = to_predicate(parsed, "tasks")
    where, params = to_sql(parsed, "tasks")
    conn = task_db(docs)
    by_sql = {int(r[0]) for r in conn.execute(f"SELECT seq FROM tasks WHERE job_key = 'j' AND ({where})", params)}
    assert by_sql == {i for i, doc in enumerate(docs) if pred(doc)}, (text, where, params)
    # The index hint's condition holds for every match, so answering from that index loses nothing.
    hint = to_index_hint(parsed, "tasks")
    if hint is not None:
        sql = f"SELECT seq FROM tasks INDEXED BY {hint.index} WHERE job_key = 'j' AND {hint.condition}"
        assert by_sql <= {int(r[0]) for r in conn.execute(sql, hint.params)}, (text, hint)


# --- nothing but BatchError -------------------------------------------------------------------------------

_ALL_NAMES = sorted({name for spec in LISTS.values() for name in spec.properties})
TOKENS = [
    *_ALL_NAMES,
    *("eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "startswith", "endswith", "true", "false", "null"),
    *("(", ")", ",", "'", "''", "'x'", "'Active'", "'completed'", "'a''b'", "'%_\\'", "-", "/"),
    *("0", "-1", "2147483647", "2147483648", "1.5", "99999999999999999999999", "DateTime'", "DateTime''"),
    *("DateTime'2024-01-01T00:00:00Z'", "DateTime'Mon, 01 Jan 2024 00:00:00 GMT'", "DateTime'bad'", "guid'x'"),
    *("0001-01-01", "DateTime'0001-01-01T00:00:00+14:00'", "EQ", "AND", "\x00", "\udcff", "é", "\t"),
]
token_soup = st.lists(st.sampled_from(TOKENS), max_size=14).flatmap(
    lambda parts: st.sampled_from(["", " "]).map(lambda sep: sep.join(parts) if sep else " ".join(parts))
)
loose_docs = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_ALL_NAMES + ["x"]), inner, max_size=4),
    max_leaves=8,
)


def _exercise(text: str, kind: str, doc: Any) -> None:
    """parse_filter raises only BatchError; whatever it accepts compiles, evaluates and runs in SQLite."""
    try:
        parsed = parse_filter(text, kind)
    except BatchError as err:
        assert err.status == 400 and err.code == "InvalidQueryParameterValue"
        return
    item = doc if isinstance(doc, dict) else {"value": doc}
    to_predicate(parsed, kind)(item)
    where, params = to_sql(parsed, kind, columns={})
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE items (doc BLOB)")
    conn.execute("INSERT INTO items VALUES (?)", (orjson.dumps(item),))
    conn.execute(f"SELECT doc FROM items WHERE {where or '1'}", params).fetchall()


@FAST
@given(st.text(max_size=40), st.sampled_from(KINDS), loose_docs)
def test_random_text_fails_only_with_batch_error(text: str, kind: str, doc: Any) -> None:
    _exercise(text, kind, doc)


@FAST
@given(token_soup, st.sampled_from(KINDS), loose_docs)
def test_token_soup_fails_only_with_batch_error(text: str, kind: str, doc: Any) -> None:
    _exercise(text, kind, doc)
