"""The failover lease and fencing epoch on a real PostgreSQL (the tests' cluster): one holder of the lease at a
time, released with its session; a store that claimed an older epoch cannot write once a newer one is claimed,
and a claim waits for the older holder's open transaction to commit."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from batchyard.service.persistence.postgres import PostgresStore
from batchyard.service.persistence.postgres.lease import Fenced, Lease
from tests.conftest import postgres_cluster


def test_one_instance_holds_the_lease_until_its_session_ends() -> None:
    url = postgres_cluster().new_database("lease")
    first, second = Lease(url), Lease(url)
    try:
        assert first.try_acquire()
        assert not second.try_acquire() and second.reachable
        assert first.still_held()
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()


def test_a_fenced_store_cannot_write_and_its_transaction_is_rolled_back() -> None:
    url = postgres_cluster().new_database("fenced")
    former = PostgresStore(url, claim_epoch=True)
    newer: PostgresStore | None = None
    try:
        with former.transaction():
            former.set_meta("written-by", "former")
        newer = PostgresStore(url, claim_epoch=True)
        assert newer.epoch == (former.epoch or 0) + 1
        with pytest.raises(Fenced), former.transaction():
            former.set_meta("written-by", "former, fenced")
        assert former.fenced
        assert newer.get_meta("written-by") == "former"  # the refused transaction left nothing
        with pytest.raises(Fenced), former.transaction():  # and every later one is refused at once
            pass
        with newer.transaction():
            newer.set_meta("written-by", "newer")
        assert newer.get_meta("written-by") == "newer" and not newer.fenced
    finally:
        former.close()
        if newer is not None:
            newer.close()


def test_a_claim_waits_for_the_former_holders_open_transaction() -> None:
    """What the former holder commits before the claim is in what the new holder loads; nothing after."""
    url = postgres_cluster().new_database("claim")
    former = PostgresStore(url, claim_epoch=True)
    claimed: list[PostgresStore] = []
    try:
        with former.transaction():
            former.set_meta("last", "before the claim")
            claimer = threading.Thread(target=lambda: claimed.append(PostgresStore(url, claim_epoch=True)))
            claimer.start()
            time.sleep(0.5)
            assert not claimed, "the claim waited for the open transaction"
        claimer.join(10)
        assert claimed and claimed[0].get_meta("last") == "before the claim"
        with pytest.raises(Fenced), former.transaction():
            former.set_meta("last", "after the claim")
        assert claimed[0].get_meta("last") == "before the claim"
    finally:
        former.close()
        for store in claimed:
            store.close()


def test_a_claim_ends_a_former_holder_that_keeps_its_transaction_open() -> None:
    """A paused or cut-off former holder in the middle of a transaction: the claim does not wait for ever."""
    url = postgres_cluster().new_database("stuck")
    former = PostgresStore(url, claim_epoch=True)
    newer: PostgresStore | None = None
    try:
        with pytest.raises(psycopg.OperationalError), former.transaction():
            former.set_meta("last", "never committed")
            began = time.monotonic()
            newer = PostgresStore(url, claim_epoch=True)  # (the former "paused" in its transaction meanwhile)
            assert 1.5 < time.monotonic() - began < 10
        assert newer.get_meta("last") is None
        with pytest.raises(Fenced), former.transaction():  # connected again, and refused
            former.set_meta("last", "after the claim")
        assert newer.get_meta("last") is None
    finally:
        former.close()
        if newer is not None:
            newer.close()
