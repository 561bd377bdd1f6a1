"""Every list × every documented filter property × each of its operators, driven by odata/properties.py.

Each list is read whole once; then every allowed (property, operator) must answer 200 with exactly the
items the filter's own definition (`to_predicate`) selects from that whole list — for tasks that is the
SQL path checked against the Python one on real documents. Every operator a property does not allow,
unknown properties and wrongly typed values must be 400 InvalidQueryParameterValue naming them.
Paging under concurrent inserts and `$select` shapes as the SDK reads them are at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from azure.batch import models as m

from batchyard.service.odata import LISTS, PropertySpec, parse_filter, to_predicate
from batchyard.service.odata.properties import ALL_OPS
from batchyard.service.odata.validate import enum_values
from tests.api.helpers import create_job, create_pool, idle_nodes, signed_request
from tests.conftest import Service, wait_for

CASES = [
    (kind, name, op)
    for kind, spec in LISTS.items()
    for name, prop in spec.properties.items()
    for op in sorted(prop.ops)
]
BAD_OPS = [
    (kind, name, op)
    for kind, spec in LISTS.items()
    for name, prop in spec.properties.items()
    for op in sorted(ALL_OPS - prop.ops)
]


@pytest.fixture(scope="module")
def world(client: Any, service: Service) -> Iterator[dict[str, str]]:
    """One of everything a list needs: a pool with a node, a job with prep/release and run tasks, a schedule."""
    pool_id, job_id, schedule_id = "lists-pool", "lists-job", "lists-sched"
    create_pool(client, pool_id, nodes=1, slots=2)
    create_job(client, job_id, pool_id, job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/true"))
    client.create_task_collection(
        job_id,
        m.BatchTaskGroup(
            task_values=[
                m.BatchTaskCreateOptions(id=f"t{i}", command_line=f"/bin/sh -c 'echo {i}; exit {i % 3}'")
                for i in range(6)
            ]
        ),
    )
    wait_for(lambda: client.get_job_task_counts(job_id).task_counts.completed == 6, what="the tasks")
    client.create_job_schedule(
        m.BatchJobScheduleCreateOptions(
            id=schedule_id,
            schedule=m.BatchJobScheduleConfiguration(),
            job_specification=m.BatchJobSpecification(pool_info=m.BatchPoolInfo(pool_id=pool_id)),
        )
    )
    wait_for(lambda: list(client.list_jobs_from_schedule(schedule_id)), what="the schedule's job")
    node_id = wait_for(lambda: idle_nodes(client, pool_id, 1), what="an idle node")[0].id
    yield {
        "pools": "/pools",
        "nodes": f"/pools/{pool_id}/nodes",
        "poolNodeCounts": "/nodecounts",
        "supportedImages": "/supportedimages",
        "jobs": "/jobs",
        "jobScheduleJobs": f"/jobschedules/{schedule_id}/jobs",
        "jobSchedules": "/jobschedules",
        "tasks": f"/jobs/{job_id}/tasks",
        "jobPrepReleaseStatus": f"/jobs/{job_id}/jobpreparationandreleasetaskstatus",
        "taskFiles": f"/jobs/{job_id}/tasks/t1/files",
        "nodeFiles": f"/pools/{pool_id}/nodes/{node_id}/files",
        "certificates": "/certificates",
        "poolUsageMetrics": "/poolusagemetrics",
    }
    client.begin_delete_job_schedule(schedule_id)
    client.begin_delete_job(job_id)
    client.begin_delete_pool(pool_id)


def test_every_list_kind_has_an_endpoint(world: dict[str, str]) -> None:
    assert set(world) == set(LISTS)


def _get_all(service: Service, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every item of a list, following odata.nextLink."""
    items: list[dict[str, Any]] = []
    query = dict(params or {})
    if path.endswith("/files"):
        query["recursive"] = "true"
    while True:
        answer = signed_request(service.url, "GET", path, params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items.extend(body["value"])
        if "odata.nextLink" not in body:
            return items
        query = {k: v for k, v in parse_qsl(urlsplit(body["odata.nextLink"]).query) if k != "api-version"}


def _read(item: dict[str, Any], prop: PropertySpec) -> Any:
    value: Any = item
    for key in prop.path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _literal(prop: PropertySpec, items: list[dict[str, Any]]) -> str:
    """A literal of the property's type, taken from the data when it has one (so filters split the list)."""
    present = [v for item in items if (v := _read(item, prop)) is not None]
    sample = present[len(present) // 2] if present else None
    if prop.type == "datetime":
        return f"DateTime'{sample or '2024-01-01T00:00:00Z'}'"
    if prop.type == "int":
        return str(sample if isinstance(sample, int) else 0)
    if prop.type == "bool":
        return "true" if sample is not False else "false"
    if prop.type == "enum":
        value = sample if isinstance(sample, str) else enum_values(prop)[0]
        return "'" + value.upper() + "'"  # values are case-insensitive
    text = str(sample) if sample is not None else "x"
    return "'" + text.upper().replace("'", "''") + "'"


def _filter(prop: PropertySpec, op: str, literal: str) -> str:
    return f"startswith({prop.name}, {literal})" if op == "startswith" else f"{prop.name} {op} {literal}"


@pytest.mark.parametrize(("kind", "name", "op"), CASES, ids=[f"{k}-{n}-{o}" for k, n, o in CASES])
def test_documented_filter(service: Service, world: dict[str, str], kind: str, name: str, op: str) -> None:
    prop = LISTS[kind].properties[name]
    everything = _get_all(service, world[kind])
    text = _filter(prop, op, _literal(prop, everything))
    expected = [item for item in everything if to_predicate(parse_filter(text, kind), kind)(item)]
    got = _get_all(service, world[kind], {"$filter": text, "maxresults": "3"})
    assert got == expected, text


def test_filters_select_something_and_not_everything(service: Service, world: dict[str, str]) -> None:
    """The data is varied enough that the table-driven filters are not trivially true or false."""
    tasks = _get_all(service, world["tasks"])
    for text, count in (("executionInfo/exitCode gt 0", 4), ("state eq 'completed'", 6), ("id ge 't3'", 3)):
        assert len(_get_all(service, world["tasks"], {"$filter": text})) == count, text
    assert len(tasks) == 6


def _error(service: Service, path: str, text: str) -> tuple[int, str, str]:
    answer = signed_request(service.url, "GET", path, params={"$filter": text})
    body = answer.json()
    return answer.status_code, body["code"], str(body)


@pytest.mark.parametrize(("kind", "name", "op"), BAD_OPS, ids=[f"{k}-{n}-{o}" for k, n, o in BAD_OPS])
def test_undocumented_operator_is_refused(
    service: Service, world: dict[str, str], kind: str, name: str, op: str
) -> None:
    prop = LISTS[kind].properties[name]
    literal = "'x'" if op == "startswith" else _literal(prop, [])  # the operator, not the value, is wrong
    status, code, body = _error(service, world[kind], _filter(prop, op, literal))
    assert (status, code) == (400, "InvalidQueryParameterValue")
    assert f"'{op}'" in body and name in body


@pytest.mark.parametrize("kind", sorted(LISTS))
def test_invalid_properties_and_values_are_refused(service: Service, world: dict[str, str], kind: str) -> None:
    spec = LISTS[kind]
    first = next(iter(spec.properties.values()))
    wrong_type = "true" if first.type != "bool" else "'x'"
    op = "eq" if "eq" in first.ops else sorted(first.ops)[0]
    for text, named in (
        ("bogusProperty eq 'x'", "bogusProperty"),
        (f"{first.name.upper()} eq 'x'", first.name.upper()),  # property names are case-sensitive
        (_filter(first, op, wrong_type), first.name),
        (f"{first.name} eq", first.name),
        (f"({_filter(first, op, _literal(first, []))}", ")"),
        (f"not {_filter(first, op, _literal(first, []))}", "not"),
    ):
        status, code, body = _error(service, world[kind], text)
        assert (status, code) == (400, "InvalidQueryParameterValue"), text
        assert named in body, (text, body)
    enums = [p for p in spec.properties.values() if p.type == "enum"]
    if enums:
        status, code, body = _error(service, world[kind], f"{enums[0].name} eq 'nonsense'")
        assert (status, code) == (400, "InvalidQueryParameterValue") and "nonsense" in body


# --- paging --------------------------------------------------------------------------------------------------


def test_paging_survives_concurrent_inserts_and_deletes(client: Any, unique: Any) -> None:
    pool_id, job_id = unique("pg-pool"), unique("pg-job")
    create_pool(client, pool_id, nodes=0)
    create_job(client, job_id, pool_id)
    ids = [f"a{i:04d}" for i in range(250)]
    for start in range(0, len(ids), 100):
        chunk = [m.BatchTaskCreateOptions(id=i, command_line="/bin/true") for i in ids[start : start + 100]]
        client.create_task_collection(job_id, m.BatchTaskGroup(task_values=chunk))
    seen: list[str] = []
    added: list[str] = []
    deleted = "a0240"
    for number, page in enumerate(client.list_tasks(job_id, max_results=60, select=["id"]).by_page()):
        seen.extend(task.id for task in page)
        # Between pages: new tasks (some with ids that sort before what was listed), and one deletion ahead.
        new = [f"{c}{number}" for c in ("0early", "zlate")]
        client.create_task_collection(
            job_id,
            m.BatchTaskGroup(task_values=[m.BatchTaskCreateOptions(id=i, command_line="/bin/true") for i in new]),
        )
        added.extend(new)
        if number == 1:
            client.delete_task(job_id, deleted)
    original = [i for i in ids if i != deleted]
    assert [i for i in seen if i in set(ids)] == original  # none skipped, none repeated, in insertion order
    assert len(seen) == len(set(seen))
    assert set(seen) - set(ids) <= set(added)  # inserts during the listing come after, once at most
    client.begin_delete_pool(pool_id)


def test_page_token_and_maxresults_limits(service: Service, world: dict[str, str]) -> None:
    path = world["tasks"]
    for bad in ("0", "1001", "x"):
        answer = signed_request(service.url, "GET", path, params={"maxresults": bad})
        assert (answer.status_code, answer.json()["code"]) == (400, "InvalidQueryParameterValue")
    answer = signed_request(service.url, "GET", path, params={"$skiptoken": "nope"})
    assert (answer.status_code, answer.json()["code"]) == (400, "InvalidQueryParameterValue")
    first = signed_request(service.url, "GET", path, params={"maxresults": "2"}).json()
    assert len(first["value"]) == 2 and "odata.nextLink" in first


# --- $select ---------------------------------------------------------------------------------------------------


def test_select_shapes_as_the_sdk_reads_them(client: Any, service: Service, world: dict[str, str]) -> None:
    job_id = "lists-job"
    full = {t.id: t for t in client.list_tasks(job_id)}
    # Column-built pages (id, state, stateTransitionTime, url) and document-built ones agree.
    for select in (["id", "state"], ["id", "url", "stateTransitionTime"], ["id", "executionInfo", "state"]):
        for task in client.list_tasks(job_id, select=select):
            whole = full[task.id]
            for name, attr in (
                ("id", "id"),
                ("state", "state"),
                ("url", "url"),
                ("stateTransitionTime", "state_transition_time"),
                ("executionInfo", "execution_info"),
            ):
                if name in select:
                    assert getattr(task, attr) == getattr(whole, attr), (select, name)
                else:
                    assert getattr(task, attr) is None, (select, name)
            assert task.command_line is None and task.etag is None
    # Spaces after commas, and a filter answered from columns.
    body = signed_request(
        service.url, "GET", world["tasks"], params={"$select": "id, state", "$filter": "executionInfo/exitCode eq 1"}
    ).json()
    assert body["value"] == [{"id": "t1", "state": "completed"}, {"id": "t4", "state": "completed"}]
    # The whole document: spliced bytes, with the url, no private fields.
    raw = signed_request(service.url, "GET", world["tasks"], params={"$filter": "id eq 't1'"}).json()["value"][0]
    assert raw["url"].endswith("/jobs/lists-job/tasks/t1") and not any(k.startswith("_") for k in raw)
    # stats only when expanded, and then only if selected.
    stats = next(iter(client.list_tasks(job_id, select=["id", "stats"], expand=["stats"], filter="id eq 't1'")))
    assert stats.task_statistics is not None and stats.state is None
    plain = next(iter(client.list_tasks(job_id, select=["id"], expand=["stats"], filter="id eq 't1'")))
    assert plain.task_statistics is None
    answer = signed_request(service.url, "GET", world["tasks"], params={"$expand": "everything"})
    assert (answer.status_code, answer.json()["code"]) == (400, "InvalidQueryParameterValue")
