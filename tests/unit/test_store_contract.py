"""What the engine relies on from a store, checked on both (SQLite in a file, PostgreSQL in a fresh
database of the tests' cluster): transactions, creation order over a reopen, replacing writes, task pages
with `$filter`, and the small tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from batchyard.service.documents import TaskDocument, TaskPrivate
from batchyard.service.odata import parse_filter
from batchyard.service.persistence.postgres import PostgresStore
from batchyard.service.persistence.sqlite import SqliteStore
from batchyard.service.ports import Store
from tests.conftest import postgres_cluster

Opener = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the same store again on every call (as a restarted service does); all are closed at the end."""
    opened: list[Store] = []
    where = tmp_path / "batchyard.db" if request.param == "sqlite" else postgres_cluster().new_database("contract")

    def open_() -> Store:
        opened.append(SqliteStore(where) if isinstance(where, Path) else PostgresStore(where))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


def _task(i: int, state: str = "active", **more: object) -> tuple[str, int, str, TaskDocument]:
    return f"t{i}", i, state, TaskDocument({"id": f"T{i}", "state": state, **more})


def test_a_transaction_commits_together_and_a_failed_one_leaves_nothing(open_store: Opener) -> None:
    store = open_store()
    with store.transaction():
        seq = store.next_seq()
        store.put_job("j", seq, {"id": "j"}, {"schedule": None})
        with store.transaction():  # nested: joins the outer one
            store.insert_tasks("j", [_task(1)])
    with pytest.raises(RuntimeError), store.transaction():
        store.put_job("k", store.next_seq(), {"id": "k"}, {})
        store.insert_tasks("j", [_task(2)])
        raise RuntimeError("the request failed")
    again = open_store()
    assert [doc["id"] for _, _, doc, _ in again.load_all("jobs")] == ["j"]
    assert again.existing_task_keys("j", ["t1", "t2"]) == {"t1"}
    assert again.next_seq() == seq + 1  # the failed transaction's number is not kept


def test_creation_numbers_go_on_after_a_reopen(open_store: Opener) -> None:
    store = open_store()
    with store.transaction():
        assert list(store.next_seqs(3)) == [1, 2, 3]
    assert open_store().next_seq() == 4


def test_writes_replace_the_row_with_the_same_key(open_store: Opener) -> None:
    store = open_store()
    store.put_pool("p", 1, {"id": "p", "v": 1}, {"keep_alive": 1})
    store.put_pool("p", 1, {"id": "p", "v": 2}, {})
    store.put_node("n", "p", 2, {"id": "n"}, {"boot": "b"})
    store.put_certificate("c", {"thumbprint": "c"}, {"pem": "PEM"})
    store.put_certificate("c", {"thumbprint": "c", "state": "deleting"}, {"pem": "PEM"})
    store.put_application("a", {"id": "a"})
    store.set_meta("x", "1")
    store.set_meta("x", "2")
    store.put_subtask("j", "t", 1, {"id": 1})
    store.put_subtask("j", "t", 1, {"id": 1, "state": "completed"})
    store.put_prep_status("j", "n", {"state": "running"})
    store.put_prep_status("j", "n", {"state": "succeeded"})
    store.put_usage("job", "j", {"wallClock": 1})
    again = open_store()
    assert again.load_all("pools") == [("p", 1, {"id": "p", "v": 2}, {})]
    assert again.load_nodes() == [("p", 2, {"id": "n"}, {"boot": "b"})]
    assert again.load_certificates() == [("c", {"thumbprint": "c", "state": "deleting"}, {"pem": "PEM"})]
    assert again.load_applications() == [("a", {"id": "a"})]
    assert again.get_meta("x") == "2" and again.get_meta("absent") is None
    assert again.list_subtasks("j", "t") == [{"id": 1, "state": "completed"}]
    assert again.load_prep_statuses() == [("j", "n", {"state": "succeeded"})]
    assert again.load_usage() == [("job", "j", {"wallClock": 1})]
    again.delete_pool("p")
    again.delete_certificate("c")
    again.delete_application("a")
    again.delete_prep_status("j", "n")
    again.delete_subtasks("j")
    assert (again.load_all("pools"), again.load_certificates(), again.load_applications()) == ([], [], [])
    assert (again.load_prep_statuses(), again.list_subtasks("j", "t")) == ([], [])


def test_tasks_list_in_creation_order_by_page_and_filter_and_keep_their_private_fields(open_store: Opener) -> None:
    store = open_store()
    with store.transaction():
        store.insert_tasks("j", [_task(i) for i in range(1, 8)])
        store.insert_tasks("other", [_task(1)])
    done = TaskDocument.with_private(
        {"id": "T3", "state": "completed", "executionInfo": {"exitCode": 2, "result": "failure"}},
        TaskPrivate(run_id="r", run_stats={"cpu": 1}),
    )
    store.update_task("j", "t3", "completed", "n1", done)
    ok = TaskDocument({"id": "T5", "state": "completed", "executionInfo": {"exitCode": 0, "result": "success"}})
    store.update_task("j", "t5", "completed", None, ok)

    first = store.list_tasks("j", 0, 3)
    assert [seq for seq, _ in first] == [1, 2, 3]
    assert orjson.loads(first[2][1]) == dict(done)  # exactly the wire document, no private fields
    assert [seq for seq, _ in store.list_tasks("j", 3, 3)] == [4, 5, 6]
    failed = parse_filter("executionInfo/exitCode gt 0 and state eq 'completed'", "tasks")
    assert [seq for seq, _ in store.list_tasks("j", 0, 10, failed)] == [3]
    by_id = parse_filter("startswith(id, 't') and id le 'T2'", "tasks")
    assert [seq for seq, _ in store.list_tasks("j", 0, 10, by_id)] == [1, 2]
    assert store.list_task_fields("j", 4, 1, ["state", "id"]) == [(5, {"state": "completed", "id": "T5"})]
    [(seq, document)] = store.list_task_documents("j", 2, 1)
    assert seq == 3 and document.private == done.private
    assert store.get_task("j", "t3") == dict(done) and store.get_task("j", "nope") is None
    assert set(store.get_tasks("j", ["t1", "t3", "nope"])) == {"t1", "t3"}
    assert [key for key, _ in store.task_keys_in_state("j", ("completed",))] == ["t3", "t5"]
    assert store.task_results("j") == (1, 1)
    assert sorted(store.count_task_states()) == [("j", "active", 5), ("j", "completed", 2), ("other", "active", 1)]

    store.delete_task("j", "t1")
    store.delete_job("other")
    assert store.existing_task_keys("j", ["t1", "t2"]) == {"t2"} and store.list_tasks("other", 0, 10) == []


def test_multi_instance_sizes_count_unfinished_multi_instance_tasks(open_store: Opener) -> None:
    store = open_store()
    store.insert_tasks(
        "j",
        [
            _task(1, multiInstanceSettings={"numberOfInstances": 3}),
            _task(2, "completed", multiInstanceSettings={"numberOfInstances": 2}),
            _task(3),
            _task(4, multiInstanceSettings={"coordinationCommandLine": "x"}),
        ],
    )
    assert store.multi_instance_sizes("j") == {"t1": 3, "t4": 1}


def test_retained_directories_are_taken_once_when_their_time_is_over(open_store: Opener) -> None:
    store = open_store()
    store.retain(10.0, "n1", "/a")
    store.retain(20.0, "n1", "/b")
    store.retain(5.0, "n2", "/c")
    assert store.retained_until("n1") == 20.0 and store.retained_until("n3") == 0.0
    assert sorted(store.take_expired(12.0)) == [("n1", "/a"), ("n2", "/c")]
    assert store.take_expired(12.0) == []
    store.forget_retained("n1")
    assert store.retained_until("n1") == 0.0


def test_pool_usage_adds_up_per_interval(open_store: Opener) -> None:
    store = open_store()
    store.add_pool_usage(0.0, "p", "standard_d2", 10.0)
    store.add_pool_usage(0.0, "p", "standard_d4", 5.0)
    store.add_pool_usage(60.0, "p", "standard_d4", 1.0)
    store.add_pool_usage(120.0, "q", "standard_d4", 1.0)
    assert store.pool_usage(0.0, 60.0) == [(0.0, "p", "standard_d4", 15.0), (60.0, "p", "standard_d4", 1.0)]


def test_deleting_a_node_forgets_what_was_retained_on_it(open_store: Opener) -> None:
    store = open_store()
    store.put_node("n", "p", 1, {"id": "n"}, {})
    store.retain(10.0, "n", "/a")
    store.delete_node("n")
    assert store.load_nodes() == [] and store.retained_until("n") == 0.0


def test_a_nul_in_a_document_is_kept_and_breaks_no_query_on_its_job(open_store: Opener) -> None:
    store = open_store()
    odd = {"id": "T1", "state": "completed", "commandLine": "echo a\x00b", "executionInfo": {"result": "success"}}
    store.insert_tasks("j", [_task(0), ("t1", 1, "completed", TaskDocument(odd))])
    store.insert_tasks("j", [_task(2, multiInstanceSettings={"numberOfInstances": 2})])
    assert store.get_task("j", "t1") == odd
    assert orjson.loads(store.list_tasks("j", -1, 10)[1][1]) == odd  # listed exactly as stored
    succeeded = parse_filter("executionInfo/result eq 'success'", "tasks")
    assert [seq for seq, _ in store.list_tasks("j", -1, 10, succeeded)] == [1]
    assert store.task_results("j") == (1, 0)
    assert store.multi_instance_sizes("j") == {"t2": 2}


def test_each_outermost_transaction_is_reported_once(open_store: Opener) -> None:
    store = open_store()
    seen: list[float] = []
    store.transaction_observer = seen.append
    with store.transaction(), store.transaction():
        store.put_job("j", store.next_seq(), {"id": "j"}, {})
    with pytest.raises(RuntimeError), store.transaction():
        raise RuntimeError("rolled back: not a commit")
    assert len(seen) == 1 and seen[0] >= 0
