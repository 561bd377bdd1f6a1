"""OData $filter for Batch lists: the documented examples, each operator, case rules, DateTime forms, errors."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchyard.service.documents import TaskDocument
from batchyard.service.errors import BatchError
from batchyard.service.models import schema
from batchyard.service.odata import LISTS, parse_filter, to_predicate
from batchyard.service.odata.literals import canonical, parse_datetime
from batchyard.service.odata.nodes import And, Condition, Or
from batchyard.service.odata.parser import MAX_CONDITIONS, MAX_DEPTH
from batchyard.service.persistence.sqlite import SqliteStore
from batchyard.service.persistence.sqlite.filters import to_index_hint, to_sql


def stamp(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> str:
    return canonical(datetime(year, month, day, hour, minute, second, tzinfo=UTC))


TASKS: list[dict[str, Any]] = [
    {
        "id": "renderTask-1",
        "state": "running",
        "creationTime": stamp(2024, 1, 1, 10),
        "stateTransitionTime": stamp(2024, 1, 1, 10, 5),
        "lastModified": stamp(2024, 1, 1, 10, 5),
        "executionInfo": {"startTime": stamp(2024, 1, 1, 10, 5), "retryCount": 0, "requeueCount": 0},
    },
    {
        "id": "RenderTask-2",
        "state": "completed",
        "creationTime": stamp(2024, 1, 1, 11),
        "stateTransitionTime": stamp(2024, 1, 1, 11, 30),
        "lastModified": stamp(2024, 1, 1, 11, 30),
        "executionInfo": {
            "startTime": stamp(2024, 1, 1, 11, 1),
            "endTime": stamp(2024, 1, 1, 11, 30),
            "exitCode": 0,
            "result": "success",
            "retryCount": 0,
            "requeueCount": 0,
        },
    },
    {
        "id": "merge",
        "state": "completed",
        "creationTime": stamp(2024, 1, 2),
        "stateTransitionTime": stamp(2024, 1, 2, 0, 0, 3),
        "lastModified": stamp(2024, 1, 2, 0, 0, 3),
        "executionInfo": {
            "startTime": stamp(2024, 1, 2, 0, 0, 1),
            "endTime": stamp(2024, 1, 2, 0, 0, 3),
            "exitCode": -3,
            "result": "failure",
            "retryCount": 0,
            "requeueCount": 0,
        },
    },
    {
        "id": "render_task-9",
        "state": "active",
        "creationTime": stamp(2024, 1, 3),
        "stateTransitionTime": stamp(2024, 1, 3),
        "lastModified": stamp(2024, 1, 3),
        "executionInfo": {"retryCount": 0, "requeueCount": 0},
    },
    {
        "id": "big-exit",
        "state": "completed",
        "creationTime": stamp(2024, 1, 4),
        "stateTransitionTime": stamp(2024, 1, 4, 1),
        "lastModified": stamp(2024, 1, 4, 1),
        "executionInfo": {"exitCode": 137, "result": "failure", "endTime": stamp(2024, 1, 4, 1)},
    },
]


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    # Through the real store, so the columns and indexes are the service's own.
    store = SqliteStore(Path(":memory:"))
    with store.transaction():
        store.insert_tasks("j", [(t["id"].lower(), i, t["state"], TaskDocument(t)) for i, t in enumerate(TASKS)])
    return store._db


def matching(text: str, db: sqlite3.Connection, kind: str = "tasks") -> list[str]:
    """Ids the filter selects, checked to be the same through the predicate and through SQL."""
    parsed = parse_filter(text, kind)
    by_predicate = [t["id"] for t in TASKS if to_predicate(parsed, kind)(t)]
    where, params = to_sql(parsed, kind)
    sql = "SELECT doc FROM tasks WHERE job_key = 'j'" + (f" AND ({where})" if where else "") + " ORDER BY seq"
    by_sql = [orjson.loads(row[0])["id"] for row in db.execute(sql, params)]
    assert by_sql == by_predicate, (text, where, params)
    return by_predicate


def reason_of(text: str, kind: str = "tasks") -> str:
    with pytest.raises(BatchError) as info:
        parse_filter(text, kind)
    err = info.value
    assert (err.status, err.code) == (400, "InvalidQueryParameterValue")
    assert err.values["QueryParameterName"] == "$filter"
    assert err.values["QueryParameterValue"] == text
    return err.values["Reason"]


# --- the documented examples ------------------------------------------------------------------------------


def test_seed_examples(db: sqlite3.Connection) -> None:
    assert matching("state eq 'completed'", db) == ["RenderTask-2", "merge", "big-exit"]
    assert matching("(state eq 'running') and startswith(id, 'renderTask')", db) == ["renderTask-1"]
    assert matching("(executionInfo/exitCode lt 0) or (executionInfo/exitCode gt 0)", db) == ["merge", "big-exit"]
    assert matching("creationTime gt DateTime'2024-01-01T10:30:00Z'", db) == [
        "RenderTask-2",
        "merge",
        "render_task-9",
        "big-exit",
    ]
    assert matching("creationTime gt DateTime'Mon, 01 Jan 2024 10:30:00 GMT'", db) == matching(
        "creationTime gt DateTime'2024-01-01T10:30:00Z'", db
    )
    pools = [{"id": "test-1", "state": "active"}, {"id": "prod-1", "state": "active"}, {"id": "Test2", "state": "x"}]
    test_pools = to_predicate(parse_filter("startswith(id, 'test')", "pools"), "pools")
    assert [p["id"] for p in pools if test_pools(p)] == ["test-1", "Test2"]
    active = to_predicate(parse_filter("state eq 'active'", "pools"), "pools")
    assert [p["id"] for p in pools if active(p)] == ["test-1", "prod-1"]


def test_syntax_tree_shape() -> None:
    parsed = parse_filter("state eq 'active' or id eq 'a' and id ne 'b' or (id eq 'c' or id eq 'd')", "tasks")
    assert isinstance(parsed.expr, Or)
    first, second, third, fourth = parsed.expr.terms  # or-chains and nested ors are flattened
    assert isinstance(first, Condition) and (first.prop.name, first.op, first.value) == ("state", "eq", "active")
    assert isinstance(second, And) and len(second.terms) == 2  # and binds tighter than or
    assert isinstance(third, Condition) and isinstance(fourth, Condition)


# --- operators ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("id eq 'merge'", ["merge"]),
        ("id ne 'merge'", ["renderTask-1", "RenderTask-2", "render_task-9", "big-exit"]),
        ("id gt 'render'", ["renderTask-1", "RenderTask-2", "render_task-9"]),
        ("id ge 'merge'", ["renderTask-1", "RenderTask-2", "merge", "render_task-9"]),
        ("id lt 'merge'", ["big-exit"]),
        ("id le 'MERGE'", ["merge", "big-exit"]),
        ("startswith(id, 'render_')", ["render_task-9"]),  # _ is literal, not a LIKE wildcard
        ("startswith(id, 'render%')", []),
        ("startswith(id, '')", ["renderTask-1", "RenderTask-2", "merge", "render_task-9", "big-exit"]),
        ("state ne 'completed'", ["renderTask-1", "render_task-9"]),
        ("executionInfo/exitCode eq 0", ["RenderTask-2"]),
        ("executionInfo/exitCode ge 0", ["RenderTask-2", "big-exit"]),
        ("executionInfo/exitCode le -3", ["merge"]),
        ("executionInfo/exitCode gt 136", ["big-exit"]),
        ("executionInfo/exitCode lt 137", ["RenderTask-2", "merge"]),
        # OData null semantics: a task without an exit code is "ne 0" but neither "eq", "lt" nor "gt".
        ("executionInfo/exitCode ne 0", ["renderTask-1", "merge", "render_task-9", "big-exit"]),
        ("executionInfo/result eq 'failure'", ["merge", "big-exit"]),
        ("executionInfo/result ne 'failure'", ["renderTask-1", "RenderTask-2", "render_task-9"]),
        ("executionInfo/startTime ge DateTime'2024-01-01T11:01:00Z'", ["RenderTask-2", "merge"]),
        ("executionInfo/endTime le DateTime'2024-01-02'", ["RenderTask-2"]),
        (
            "executionInfo/endTime ne DateTime'2024-01-01T11:30:00Z'",
            ["renderTask-1", "merge", "render_task-9", "big-exit"],
        ),
        ("stateTransitionTime eq DateTime'2024-01-02T00:00:03Z'", ["merge"]),
        ("stateTransitionTime lt DateTime'2024-01-01T10:05:00.000001Z'", ["renderTask-1"]),
        ("lastModified gt DateTime'2024-01-03T00:00:00Z'", ["big-exit"]),
        ("lastModifiedTime gt DateTime'2024-01-03T00:00:00Z'", ["big-exit"]),  # the docs' spelling
        (
            "state eq 'completed' and executionInfo/exitCode ne 0 or id eq 'render_task-9'",
            ["merge", "render_task-9", "big-exit"],
        ),
        ("state eq 'completed' and (executionInfo/exitCode ne 0 or id eq 'render_task-9')", ["merge", "big-exit"]),
    ],
)
def test_operators(db: sqlite3.Connection, text: str, ids: list[str]) -> None:
    assert matching(text, db) == ids


def test_booleans_and_other_lists() -> None:
    pools: list[dict[str, Any]] = [
        {"id": "a", "enableAutoScale": True, "vmSize": "standard_d2s_v3", "allocationState": "steady"},
        {"id": "b", "enableAutoScale": False, "vmSize": "standard_a1", "allocationState": "resizing"},
        {"id": "c", "vmSize": "standard_a1"},
    ]

    def ids(text: str, kind: str = "pools", items: list[dict[str, Any]] = pools) -> list[str]:
        pred = to_predicate(parse_filter(text, kind), kind)
        return [item.get("id") or item.get("name") or item["poolId"] for item in items if pred(item)]

    assert ids("enableAutoScale eq true") == ["a"]
    assert ids("enableAutoScale ne true") == ["b", "c"]
    assert ids("enableAutoScale eq false") == ["b"]
    assert ids("vmSize eq 'Standard_A1'") == ["b", "c"]
    assert ids("allocationState eq 'Steady'") == ["a"]
    nodes: list[dict[str, Any]] = [
        {"id": "n1", "startTaskInfo": {"state": "completed", "exitCode": 1}},
        {"id": "n2", "state": "idle"},
    ]
    assert ids("startTaskInfo/exitCode ge 1 or state eq 'idle'", "nodes", nodes) == ["n1", "n2"]
    files = [{"name": "wd/out.txt"}, {"name": "stdout.txt"}, {"name": "Stderr.txt"}]
    assert ids("startswith(name, 'st')", "taskFiles", files) == ["stdout.txt", "Stderr.txt"]
    counts = [{"poolId": "p1"}, {"poolId": "P2"}]
    assert ids("poolId eq 'p2'", "poolNodeCounts", counts) == ["P2"]


def test_boolean_sql() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE pools (doc BLOB)")
    docs: list[dict[str, Any]] = [
        {"id": "a", "enableAutoScale": True},
        {"id": "b", "enableAutoScale": False},
        {"id": "c"},
    ]
    conn.executemany("INSERT INTO pools VALUES (?)", [(orjson.dumps(d),) for d in docs])
    for text in ("enableAutoScale eq true", "enableAutoScale ne true", "enableAutoScale eq false"):
        parsed = parse_filter(text, "pools")
        where, params = to_sql(parsed, "pools")
        got = [orjson.loads(r[0])["id"] for r in conn.execute(f"SELECT doc FROM pools WHERE {where}", params)]
        assert got == [d["id"] for d in docs if to_predicate(parsed, "pools")(d)], text


# --- case rules ---------------------------------------------------------------------------------------------


def test_values_are_case_insensitive(db: sqlite3.Connection) -> None:
    assert matching("state eq 'COMPLETED'", db) == matching("state eq 'completed'", db)
    assert matching("startswith(id, 'RENDERtask')", db) == ["renderTask-1", "RenderTask-2"]
    assert matching("id eq 'BIG-EXIT'", db) == ["big-exit"]
    assert matching("executionInfo/result eq 'Success'", db) == ["RenderTask-2"]


def test_names_and_keywords_are_case_sensitive() -> None:
    assert "did you mean 'state'" in reason_of("State eq 'active'")
    assert "did you mean 'executionInfo/exitCode'" in reason_of("executioninfo/exitcode eq 1")
    assert "operators are lower-case" in reason_of("state EQ 'active'")
    assert "'AND'" in reason_of("state eq 'active' AND id eq 'x'")
    assert "Unsupported function 'StartsWith'" in reason_of("StartsWith(id, 'x')")
    assert "strings are quoted" in reason_of("enableAutoScale eq True", "pools")


def test_datetime_prefix_is_case_insensitive() -> None:
    a = parse_filter("creationTime gt DateTime'2024-01-01T00:00:00Z'", "tasks")
    b = parse_filter("creationTime gt datetime'2024-01-01T00:00:00Z'", "tasks")
    assert a.expr == b.expr


# --- DateTime literals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2011-05-08T08:49:37Z", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),
        ("Sun, 08 May 2011 08:49:37 GMT", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),
        ("2011-05-08T10:49:37+02:00", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),
        ("2011-05-08T08:49:37.1234567Z", datetime(2011, 5, 8, 8, 49, 37, 123456, tzinfo=UTC)),
        ("2011-05-08T08:49:37.5Z", datetime(2011, 5, 8, 8, 49, 37, 500000, tzinfo=UTC)),
        ("2011-05-08T08:49Z", datetime(2011, 5, 8, 8, 49, tzinfo=UTC)),
        ("2011-05-08T08:49:37", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),  # no zone: UTC
        ("2011-05-08", datetime(2011, 5, 8, tzinfo=UTC)),
        ("2011-05-07T23:00:00-09:49", datetime(2011, 5, 8, 8, 49, tzinfo=UTC)),
        ("Sat, 1 Jan 2000 00:00:00 GMT", datetime(2000, 1, 1, tzinfo=UTC)),
    ],
)
def test_datetime_forms(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected
    parsed = parse_filter(f"creationTime eq DateTime'{text}'", "tasks")
    assert isinstance(parsed.expr, Condition) and parsed.expr.value == expected


@pytest.mark.parametrize(
    "text",
    [
        "Mon, 08 May 2011 08:49:37 GMT",  # 8 May 2011 was a Sunday
        "Sun, 08 Mai 2011 08:49:37 GMT",
        "Sun, 08 May 2011 08:49:37 UTC",
        "2011-02-30T00:00:00Z",
        "2011-05-08T24:00:00Z",
        "2011-05-08T08:49:60Z",
        "2011-05-08 08:49:37Z",
        "2011-05-08T08:49:37+25:00",
        "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
        "9999-12-31T23:59:59-01:00",
        "٢٠١١-05-08",  # non-ASCII digits
        "yesterday",
        "",
    ],
)
def test_bad_datetimes(text: str) -> None:
    literal = "DateTime'" + text.replace("'", "''") + "'"
    reason = reason_of(f"creationTime gt {literal}")
    assert "Invalid DateTime literal" in reason and "(at character 17)" in reason


def test_canonical_form_matches_the_store() -> None:
    when = datetime(2024, 3, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert canonical(when) == when.strftime("%Y-%m-%dT%H:%M:%S.%fZ") == "2024-03-05T06:07:08.000009Z"
    assert canonical(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00.000000Z"


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "parts"),
    [
        # unknown property for that list
        ("nodeInfo/poolId eq 'p'", "tasks", ["'nodeInfo/poolId'", "List tasks", "filterable properties: id, state"]),
        ("id eq 'j'", "jobScheduleJobs", ["'id'", "List jobs in a job schedule"]),
        ("displayName eq 'x'", "pools", ["'displayName'", "List pools"]),
        # operator not allowed for that property
        ("state gt 'active'", "tasks", ["'gt'", "'state'", "allowed: eq, ne"]),
        ("startswith(state, 'a')", "tasks", ["'startswith'", "'state'"]),
        ("startTaskInfo/state ne 'running'", "nodes", ["'ne'", "'startTaskInfo/state'", "allowed: eq"]),
        ("poolId ne 'p'", "poolUsageMetrics", ["'ne'", "'poolId'"]),
        ("name eq 'stdout.txt'", "taskFiles", ["'eq'", "'name'", "allowed: startswith"]),
        ("enableAutoScale gt false", "pools", ["'gt'", "'enableAutoScale'"]),
        # type mismatches
        ("executionInfo/exitCode eq 'abc'", "tasks", ["'executionInfo/exitCode'", "Int", "'abc' is a string"]),
        ("id eq 5", "tasks", ["'id'", "String", "5 is an integer"]),
        ("creationTime gt '2024-01-01'", "tasks", ["'creationTime'", "DateTime"]),
        ("state eq DateTime'2024-01-01'", "tasks", ["'state'", "String"]),
        ("enableAutoScale eq 'true'", "pools", ["'enableAutoScale'", "Boolean"]),
        ("executionInfo/exitCode eq 2147483648", "tasks", ["outside the Int32 range"]),
        ("executionInfo/exitCode gt 1.5", "tasks", ["whole numbers"]),
        ("executionInfo/exitCode gt 123456789012345678901234", "tasks", ["too large"]),
        # enum values from the contract
        ("state eq 'bogus'", "tasks", ["'bogus'", "'state'", "active, preparing, running, completed"]),
        ("state eq 'idle'", "tasks", ["'idle'"]),
        ("state ne 'bogus'", "nodes", ["'bogus'", "idle"]),
        ("osType eq 'macos'", "supportedImages", ["linux, windows"]),
        ("executionInfo/result eq 'failed'", "tasks", ["success, failure"]),
        # syntax, with positions
        ("state eq 'active", "tasks", ["Unterminated string literal", "(at character 10)"]),
        ("state eq 'active' and", "tasks", ["ends where a condition was expected", "(at character 22)"]),
        ("(state eq 'active'", "tasks", ["Expected ')'", "(at character 19)"]),
        ("state eq 'active')", "tasks", ["Unbalanced ')'", "(at character 18)"]),
        ("state 'active'", "tasks", ["Expected an operator", "(at character 7)"]),
        ("state eq", "tasks", ["Expected a literal value", "(at character 9)"]),
        ("state eq active", "tasks", ["strings are quoted"]),
        ("state eq 'a' state eq 'b'", "tasks", ["Expected 'and', 'or'", "(at character 14)"]),
        ("'active' eq state", "tasks", ["Expected a condition", "(at character 1)"]),
        ("state eq id", "tasks", ["Expected a literal value"]),
        ("id eq 'a' && id eq 'b'", "tasks", ["Unexpected character '&'", "(at character 11)"]),
        ("executionInfo/ eq 1", "tasks", ["after '/'"]),
        ("startswith(id 'x')", "tasks", ["Expected ','"]),
        ("startswith(id, 5)", "tasks", ["second argument"]),
        ("startswith(id, 'a') eq true", "tasks", ["condition by itself"]),
        ("endswith(id, 'x')", "tasks", ["Unsupported function 'endswith'"]),
        ("substringof('x', id)", "tasks", ["Unsupported function 'substringof'"]),
        ("id eq guid'x'", "tasks", ["Unsupported literal prefix 'guid'"]),
        ("not (state eq 'active')", "tasks", ["'not' operator is not supported", "(at character 1)"]),
        ("state eq 'active' and not id eq 'x'", "tasks", ["'not' operator is not supported", "(at character 23)"]),
        ("executionInfo/exitCode eq null", "tasks", ["null literals are not supported"]),
        ("and id eq 'x'", "tasks", ["'and' must come between two conditions"]),
        ("()", "tasks", ["Expected a condition"]),
        ("startswith(id, 'a\x00b')", "tasks", ["NUL character", "(at character 18)"]),
        ("id eq 'a\udcff'", "tasks", ["not valid Unicode", "(at character 9)"]),
        ("(" * (MAX_DEPTH + 1) + "id eq 'a'" + ")" * (MAX_DEPTH + 1), "tasks", ["nested more than"]),
        (" or ".join(["id eq 'a'"] * (MAX_CONDITIONS + 1)), "tasks", [f"at most {MAX_CONDITIONS} conditions"]),
        ("id eq '" + "x" * 5000 + "'", "tasks", ["limited to 4096 characters"]),
    ],
)
def test_errors_name_the_problem(text: str, kind: str, parts: list[str]) -> None:
    reason = reason_of(text, kind)
    for part in parts:
        assert part in reason, (part, reason)


def test_empty_filter_matches_everything(db: sqlite3.Connection) -> None:
    for text in ("", "   "):
        parsed = parse_filter(text, "tasks")
        assert parsed.expr is None
        assert to_sql(parsed, "tasks") == ("", ())
        assert matching(text, db) == [t["id"] for t in TASKS]


def test_compilers_refuse_other_kinds_and_unvalidated_trees() -> None:
    parsed = parse_filter("state eq 'active'", "tasks")
    with pytest.raises(ValueError):
        to_sql(parsed, "pools")
    with pytest.raises(ValueError):
        parse_filter("state eq 'active'", "nope")


# --- limits -------------------------------------------------------------------------------------------------


def test_long_chains_stay_within_sqlite_limits(db: sqlite3.Connection) -> None:
    ids = [f"t{i}" for i in range(MAX_CONDITIONS - 1)] + ["merge"]
    text = " or ".join(f"id eq '{i}'" for i in ids)
    assert matching(text, db) == ["merge"]
    nested = "(" * MAX_DEPTH + "id eq 'merge' and state eq 'completed'" + ")" * MAX_DEPTH
    assert matching(nested, db) == ["merge"]


# --- the property table --------------------------------------------------------------------------------------

# The $filter-taking operations of the contract and the list kind each one uses.
OPERATIONS = {
    "Certificates_ListCertificates": "certificates",
    "Jobs_ListJobs": "jobs",
    "Jobs_ListJobPreparationAndReleaseTaskStatus": "jobPrepReleaseStatus",
    "Tasks_ListTasks": "tasks",
    "Tasks_ListTaskFiles": "taskFiles",
    "JobSchedules_ListJobSchedules": "jobSchedules",
    "Jobs_ListJobsFromSchedule": "jobScheduleJobs",
    "Pools_ListPoolNodeCounts": "poolNodeCounts",
    "Pools_ListPools": "pools",
    "Nodes_ListNodes": "nodes",
    "Nodes_ListNodeFiles": "nodeFiles",
    "Pools_ListPoolUsageMetrics": "poolUsageMetrics",
    "Pools_ListSupportedImages": "supportedImages",
}


def test_every_filterable_operation_has_a_table() -> None:
    contract = schema.contract()
    found = set()
    for ops in contract["paths"].values():
        for op in ops.values():
            names = []
            for param in op.get("parameters", []):
                if "$ref" in param:
                    param = contract["parameters"][param["$ref"].rsplit("/", 1)[1]]
                names.append(param["name"])
            if "$filter" in names:
                found.add(op["operationId"])
    assert found == set(OPERATIONS)
    assert set(OPERATIONS.values()) == set(LISTS)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema.definitions()[node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize("kind", sorted(LISTS))
def test_table_matches_the_contract(kind: str) -> None:
    spec = LISTS[kind]
    for prop in spec.properties.values():
        node: dict[str, Any] = schema.definitions()[spec.model]
        for key in prop.path:
            raw = _resolve(node)["properties"][key]
            node = raw
        resolved = _resolve(node)
        if prop.type == "enum":
            assert node["$ref"].endswith("/" + str(prop.enum)) and "enum" in resolved, prop.name
        elif prop.type == "datetime":
            assert (resolved["type"], resolved.get("format")) == ("string", "date-time"), prop.name
        elif prop.type == "int":
            assert resolved["type"] == "integer", prop.name
        elif prop.type == "bool":
            assert resolved["type"] == "boolean", prop.name
        else:
            assert resolved["type"] == "string" and "enum" not in resolved and "format" not in resolved, prop.name


def test_tasks_table_as_documented() -> None:
    ops = {name: sorted(p.ops) for name, p in LISTS["tasks"].properties.items()}
    assert ops["id"] == ["eq", "ge", "gt", "le", "lt", "ne", "startswith"]
    assert ops["state"] == ["eq", "ne"]
    assert ops["executionInfo/exitCode"] == ["eq", "ge", "gt", "le", "lt", "ne"]
    assert ops["executionInfo/result"] == ["eq", "ne"]
    assert LISTS["tasks"].properties["lastModifiedTime"].path == ("lastModified",)


# --- the store ----------------------------------------------------------------------------------------------


def test_store_list_tasks_takes_the_sql(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    try:
        with store.transaction():
            store.insert_tasks(
                "j", [(t["id"].lower(), i + 1, t["state"], TaskDocument(t)) for i, t in enumerate(TASKS)]
            )
        where = parse_filter("state eq 'completed' and executionInfo/exitCode ne 0", "tasks")
        page = store.list_tasks("j", 0, 1, where)
        assert [orjson.loads(doc)["id"] for _, doc in page] == ["merge"]
        rest = store.list_tasks("j", page[-1][0], 10, where)
        assert [orjson.loads(doc)["id"] for _, doc in rest] == ["big-exit"]
        # state reads the indexed column with a plain `=`, so SQLite can use tasks_by_state.
        assert to_sql(parse_filter("state eq 'Active'", "tasks"), "tasks") == ("state = ?", ("active",))
    finally:
        store.close()


# --- indexes: filtered pages cost what they return ---------------------------------------------------------


def _big_store(tmp_path: Path, count: int = 6000) -> SqliteStore:
    store = SqliteStore(tmp_path / "big.sqlite")
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
        store.insert_tasks("j", rows)
    return store


def test_selective_filters_are_answered_from_their_index(tmp_path: Path) -> None:
    store = _big_store(tmp_path)
    try:
        for text, index, count in (
            ("executionInfo/exitCode gt 0", "tasks_by_exit_code", 6),
            ("stateTransitionTime gt DateTime'2024-05-01T00:00:00Z'", "tasks_by_transition", 6),
            ("startswith(id, 't0100')", "sqlite_autoindex_tasks_1", 10),
            ("state eq 'completed' and executionInfo/exitCode eq 3", "tasks_by_exit_code", 6),
        ):
            parsed = parse_filter(text, "tasks")
            assert to_index_hint(parsed, "tasks") is not None, text
            plan = " ".join(store.explain_task_list("j", parsed))
            assert index in plan, (text, plan)
            assert len(store.list_tasks("j", 0, 1000, parsed)) == count
        # Many matches: walk the job in seq order instead (no sort of everything that matches, per page).
        parsed = parse_filter("stateTransitionTime lt DateTime'2024-05-01T00:00:00Z'", "tasks")
        assert to_index_hint(parsed, "tasks") is not None
        plan = " ".join(store.explain_task_list("j", parsed))
        assert "tasks_by_seq" in plan and "TEMP B-TREE" not in plan
        # `ne` keeps null rows, which the partial exit code index leaves out: no hint.
        assert to_index_hint(parse_filter("executionInfo/exitCode ne 0", "tasks"), "tasks") is None
    finally:
        store.close()


def test_old_databases_get_the_task_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE tasks (job_key TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL,"
        " node_id TEXT, doc BLOB NOT NULL, PRIMARY KEY (job_key, key));"
    )
    doc = {
        "id": "Old",
        "state": "completed",
        "stateTransitionTime": "2024-01-01T00:00:00.000000Z",
        "executionInfo": {"exitCode": 2},
    }
    conn.execute("INSERT INTO tasks VALUES ('j', 'old', 1, 'completed', NULL, ?)", (orjson.dumps(doc),))
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    try:
        fields = ("id", "stateTransitionTime")
        assert store.list_task_fields("j", 0, 10, fields) == [
            (1, {"id": "Old", "stateTransitionTime": "2024-01-01T00:00:00.000000Z"})
        ]
        # The exit code column is filled too: a filter on it reads the column, not the document.
        exit_2, exit_3 = (parse_filter(f"executionInfo/exitCode eq {code}", "tasks") for code in (2, 3))
        assert to_sql(exit_2, "tasks") == ("exit_code = ?", (2,))
        assert [seq for seq, _ in store.list_tasks("j", 0, 10, exit_2)] == [1]
        assert store.list_tasks("j", 0, 10, exit_3) == []
    finally:
        store.close()
