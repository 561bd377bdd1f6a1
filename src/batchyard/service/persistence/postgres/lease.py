"""Which of several service instances on one PostgreSQL database is the active one.

The lease is a session-level advisory lock held on a connection of its own: PostgreSQL releases it when that
session ends (the process died, its host was cut off and TCP keepalives gave up). Whoever takes the lock then
claims a new fencing epoch (new_epoch, through PostgresStore(claim_epoch=True)), and every write transaction
checks it, so an instance that lost the lock without noticing (cut off, paused) cannot write once another has
taken over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

log = logging.getLogger(__name__)

# The advisory lock's key: "batchyar" read as a signed 64-bit integer (one lock per database).
LEASE_KEY = int.from_bytes(b"batchyar", "big", signed=True)

# A silent cut (no FIN, no RST) ends the lease's session on the server after about idle + interval * count
# seconds, and the holder's client notices after as long or sooner: takeover within seconds, not the
# kernel's default two hours.
_LEASE_CONNECTION: dict[str, str | int] = {
    "application_name": "batchyard-lease",
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 2,
    "keepalives_interval": 1,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,  # milliseconds unacknowledged data may wait
    "options": "-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3",  # the server's
}


class Lease:
    """The advisory lock on a dedicated connection. Blocking calls: run them off the event loop."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[TupleRow] | None = None
        self.held = False
        self.reachable = True  # whether the last attempt reached the database

    def try_acquire(self) -> bool:
        """Take the lock if no live session holds it; False when another does or the database is unreachable."""
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(make_conninfo(self._url, **_LEASE_CONNECTION), autocommit=True)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_KEY,)).fetchone()
        except psycopg.Error as exc:
            log.debug("the lease's database is unreachable: %s", exc)
            self._drop()
            self.reachable = False
            return False
        self.reachable = True
        self.held = bool(row and row[0])
        return self.held

    def still_held(self) -> bool:
        """Whether the lock's session is still alive (a round trip on its connection)."""
        if not self.held or self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error as exc:
            log.warning("the lease's connection was lost: %s", exc)
            self._drop()
        return self.held

    def release(self) -> None:
        """End the lease's session: the lock is free for another instance at once."""
        self._drop()

    def _drop(self) -> None:
        self.held = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# How long a claim waits for a former holder's open transaction before ending that holder's sessions: a live
# instance's transactions take milliseconds; one open longer is a paused or cut-off instance's.
CLAIM_WAIT = "2s"
_CLAIM = (
    "INSERT INTO meta (k, v) VALUES ('epoch', '1')"
    " ON CONFLICT (k) DO UPDATE SET v = (meta.v::bigint + 1)::text RETURNING v"
)
_END_FORMER_HOLDERS = (
    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'relation' AND granted"
    " AND relation = 'meta'::regclass AND pid <> pg_backend_pid()"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def new_epoch(conn: psycopg.Connection[TupleRow]) -> int:
    """A new fencing epoch, one more than the last (the caller holds the lease). It waits for a former
    holder's open transaction to commit (what it acknowledged is then in what the caller loads), and ends
    the sessions of one that keeps it open past CLAIM_WAIT."""
    while True:
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{CLAIM_WAIT}'")
                row = conn.execute(_CLAIM).fetchone()
        except psycopg.errors.LockNotAvailable:
            ended = conn.execute(_END_FORMER_HOLDERS).fetchall()
            log.warning("ended %d sessions of a former active instance that kept a transaction open", len(ended))
            continue
        assert row is not None
        log.info("fencing epoch %s claimed", row[0])
        return int(row[0])


# The check of every write transaction, sent with its BEGIN in one round trip (a query of several statements
# without parameters): it costs the transaction no wait of its own. The row stays locked FOR SHARE to the
# commit, so a claim (an UPDATE of it) waits for the transactions under the former epoch to end.
_BEGIN_CHECKED = "BEGIN; SELECT v FROM meta WHERE k = 'epoch' FOR SHARE"


@contextmanager
def epoch_transaction(conn: psycopg.Connection[TupleRow], epoch: int) -> Iterator[None]:
    """A transaction on an autocommit connection that commits only under `epoch`: Fenced (rolled back) when
    another instance has claimed a newer one."""
    cursor = conn.execute(_BEGIN_CHECKED)
    try:
        cursor.nextset()
        row = cursor.fetchone()
        if row is None or int(row[0]) != epoch:
            found = row[0] if row else None
            raise Fenced(f"another instance took charge of the database (epoch {found}, this one's {epoch})")
        yield
        if conn.info.transaction_status == TransactionStatus.INERROR:  # a COMMIT would only roll it back
            raise psycopg.errors.InFailedSqlTransaction("a statement of the transaction failed")
    except BaseException:
        if not conn.broken:
            with suppress(psycopg.Error):
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Fenced(Exception):
    """A write of an instance whose fencing epoch is no longer the database's: another took charge."""
