"""The diagnostic log outbox (SQLite) and its shipper, against a real Azurite: a crash at any point of a
shipment (simulated by stopping where kill -9 could) neither loses a record nor writes one twice."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from azure.storage.blob import BlobBlock

from batchyard.service.diagnostics.recorder import Wakeup
from batchyard.service.diagnostics.records import AccountResource
from batchyard.service.diagnostics.shipper import (
    KEEP,
    SHIPPED_META_KEY,
    BlobAppender,
    LogShipper,
    block_id,
    container_for,
    writer_id,
)
from batchyard.service.persistence.schema import VERSION_KEY
from batchyard.service.persistence.sqlite import SqliteStore
from batchyard.service.storage.linked import LinkedStorage
from tests.api.storage_support import shared_azurite

TEN = datetime(2026, 3, 5, 10, 59, 58, tzinfo=UTC)
ELEVEN = datetime(2026, 3, 5, 11, 0, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def storage() -> LinkedStorage:
    return shared_azurite()


@pytest.fixture
def resource() -> AccountResource:
    return AccountResource("acct", str(uuid.uuid4()), f"rg-{uuid.uuid4().hex[:8]}")


def add(store: SqliteStore, resource: AccountResource, names: list[str], when: datetime = TEN) -> None:
    with store.transaction():
        store.add_outbox_records(resource.record("PoolCreateEvent", {"id": name}, when) for name in names)


def blob_lines(storage: LinkedStorage, resource: AccountResource, when: datetime = TEN) -> list[str]:
    blob = container_for(storage.connection_string).get_blob_client(resource.blob_name(when))
    return [orjson.loads(line)["properties"]["id"] for line in blob.download_blob().readall().splitlines()]


def test_outbox_numbers_ascend_and_are_never_reused(tmp_path: Path, resource: AccountResource) -> None:
    store = SqliteStore(tmp_path / "db")
    add(store, resource, ["a", "b", "c"])
    assert [seq for seq, _ in store.outbox_records(0, 10)] == [1, 2, 3]
    with store.transaction():
        store.delete_outbox_records(3)
    add(store, resource, ["d"])
    assert [seq for seq, _ in store.outbox_records(0, 10)] == [4]
    try:
        with store.transaction():
            store.add_outbox_records([b"{}"])
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    assert [seq for seq, _ in store.outbox_records(0, 10)] == [4]  # a record commits with its change only
    store.close()


def test_an_older_database_gets_the_outbox(tmp_path: Path, resource: AccountResource) -> None:
    path = tmp_path / "old.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:  # as a version 1 database was (persistence/schema.py, migration 2)
        db.execute("DROP TABLE outbox")
        db.execute("UPDATE meta SET v = '1' WHERE k = ?", (VERSION_KEY,))
    store = SqliteStore(path)
    add(store, resource, ["a"])
    assert len(store.outbox_records(0, 10)) == 1
    store.close()


def test_a_crash_between_the_blob_commit_and_the_stores_note_ships_nothing_twice(
    tmp_path: Path, storage: LinkedStorage, resource: AccountResource
) -> None:
    store = SqliteStore(tmp_path / "db")
    appender = BlobAppender(container_for(storage.connection_string), resource, writer_id(store))
    add(store, resource, ["a", "b", "c"])
    appender.append(store.outbox_records(0, 10))  # shipped; then killed before the store noted it
    assert store.get_meta(SHIPPED_META_KEY) is None
    add(store, resource, ["d"])
    shipper = LogShipper(store, appender, Wakeup())
    assert asyncio.run(shipper.ship_once())
    assert blob_lines(storage, resource) == ["a", "b", "c", "d"]
    assert store.get_meta(SHIPPED_META_KEY) == "4"
    assert not asyncio.run(shipper.ship_once())  # nothing new
    assert blob_lines(storage, resource) == ["a", "b", "c", "d"]
    store.close()


def test_a_crash_between_staging_and_committing_a_block_ships_it_once(
    tmp_path: Path, storage: LinkedStorage, resource: AccountResource
) -> None:
    store = SqliteStore(tmp_path / "db")
    appender = BlobAppender(container_for(storage.connection_string), resource, writer_id(store))
    add(store, resource, ["a"])
    asyncio.run(LogShipper(store, appender, Wakeup()).ship_once())
    add(store, resource, ["b", "c"])
    rows = store.outbox_records(1, 10)
    blob = container_for(storage.connection_string).get_blob_client(resource.blob_name(TEN))
    block = block_id(writer_id(store), rows[0][0], rows[-1][0])
    blob.stage_block(block, b"".join(record + b"\n" for _, record in rows))  # then killed
    assert blob_lines(storage, resource) == ["a"]  # a staged block is not in the blob
    asyncio.run(LogShipper(store, appender, Wakeup()).ship_once())
    assert blob_lines(storage, resource) == ["a", "b", "c"]
    store.close()


def test_records_go_to_the_blob_of_their_hour_and_shipped_ones_are_trimmed(
    tmp_path: Path, storage: LinkedStorage, resource: AccountResource
) -> None:
    store = SqliteStore(tmp_path / "db")
    add(store, resource, ["ten"], TEN)
    add(store, resource, ["eleven"], ELEVEN)
    shipper = LogShipper(
        store, BlobAppender(container_for(storage.connection_string), resource, writer_id(store)), Wakeup()
    )
    assert asyncio.run(shipper.ship_once())
    assert blob_lines(storage, resource, TEN) == ["ten"]
    assert blob_lines(storage, resource, ELEVEN) == ["eleven"]
    assert resource.blob_name(ELEVEN).endswith("/y=2026/m=03/d=05/h=11/m=00/PT1H.json")
    with store.transaction():
        store.add_outbox_records([b"{}"] * KEEP)  # stream-only records (no storage account): trimmed alone
    stream_only = LogShipper(store, None, Wakeup())
    while asyncio.run(stream_only.ship_once()):
        pass
    last = KEEP + 2
    assert store.get_meta(SHIPPED_META_KEY) == str(last)
    assert [seq for seq, _ in store.outbox_records(0, 1)] == [last - KEEP + 1]  # the newest KEEP stay
    store.close()


def test_a_deleted_container_is_made_again_and_nothing_waiting_is_lost(
    tmp_path: Path, storage: LinkedStorage, resource: AccountResource
) -> None:
    store = SqliteStore(tmp_path / "db")
    # A container of its own: the shared Azurite's log container stays for the other tests.
    container = storage.client().get_container_client(f"logs-{uuid.uuid4().hex[:8]}")
    shipper = LogShipper(store, BlobAppender(container, resource, writer_id(store)), Wakeup())
    add(store, resource, ["a"])
    assert asyncio.run(shipper.ship_once())
    container.delete_container()
    add(store, resource, ["b"])
    while not asyncio.run(shipper.ship_once()):  # fails while Azurite still removes the container
        assert shipper.failures < 5
    lines = container.get_blob_client(resource.blob_name(TEN)).download_blob().readall().splitlines()
    assert [orjson.loads(line)["properties"]["id"] for line in lines] == ["b"]
    container.delete_container()
    store.close()


def test_two_services_of_one_account_name_write_one_blob_without_skipping_each_others_records(
    tmp_path: Path, storage: LinkedStorage, resource: AccountResource
) -> None:
    """Their outbox numbers overlap: each skips only what it wrote itself."""
    first, second = SqliteStore(tmp_path / "first"), SqliteStore(tmp_path / "second")
    assert writer_id(first) != writer_id(second) and writer_id(first) == writer_id(first)
    add(first, resource, ["first-1", "first-2", "first-3"])
    add(second, resource, ["second-1"])
    container = container_for(storage.connection_string)
    for store in (first, second):
        assert asyncio.run(LogShipper(store, BlobAppender(container, resource, writer_id(store)), Wakeup()).ship_once())
    add(second, resource, ["second-2"])
    asyncio.run(LogShipper(second, BlobAppender(container, resource, writer_id(second)), Wakeup()).ship_once())
    assert blob_lines(storage, resource) == ["first-1", "first-2", "first-3", "second-1", "second-2"]
    first.close()
    second.close()


def test_an_hour_an_earlier_release_began_goes_on_in_its_block_form(
    tmp_path: Path, storage: LinkedStorage, resource: AccountResource
) -> None:
    """Block ids without a writer id (an earlier release's) count as this service's, and the blob's ids keep
    one length."""
    store = SqliteStore(tmp_path / "db")
    add(store, resource, ["old-1", "old-2", "new-3"])
    rows = store.outbox_records(0, 10)
    blob = container_for(storage.connection_string).get_blob_client(resource.blob_name(TEN))
    legacy = f"{1:016d}-{2:016d}"
    blob.stage_block(legacy, b"".join(record + b"\n" for _, record in rows[:2]))
    blob.commit_block_list([BlobBlock(block_id=legacy)])
    assert asyncio.run(LogShipper(store, BlobAppender(container_for(storage.connection_string), resource,
                                                      writer_id(store)), Wakeup()).ship_once())  # fmt: skip
    assert blob_lines(storage, resource) == ["old-1", "old-2", "new-3"]
    assert [len(block.id) for block in blob.get_block_list("committed")[0]] == [len(legacy)] * 2
    store.close()
