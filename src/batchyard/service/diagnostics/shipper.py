"""Ships the outbox's records, in order and exactly once, to the hourly blobs of the log storage account.

Each hour's `PT1H.json` is a block blob that grows by one block per shipment; a block's id names the
service that wrote it (its store's writer id: services of one account name may share a storage account)
and the first and last outbox numbers it holds. A shipment reads the blob's committed block list first and
sends only the records after the highest number this service already committed, then commits the longer
list, on the condition that nobody committed in between (else it reads again). The store then notes what
was shipped. A crash anywhere in between (kill -9 included) makes the next shipment resend at most records
the block list already shows, which it skips: no record is lost or written twice.

Shipped records stay in the outbox a while (`KEEP`) for the live stream's late followers, then go.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, ContainerClient, ContentSettings

from batchyard.service.clock import parse_iso
from batchyard.service.diagnostics.recorder import Wakeup
from batchyard.service.diagnostics.records import CONTAINER, AccountResource
from batchyard.service.ports import Store

log = logging.getLogger(__name__)

SHIPPED_META_KEY = "diagnostic_logs_shipped"  # the highest outbox number in the storage account
WRITER_META_KEY = "diagnostic_logs_writer"  # this store's writer id in block ids (16 hexadecimal digits)
_LEGACY_BLOCK_ID_LENGTH = 33  # "first-last" without a writer id, as services before writer ids named blocks
_COMMIT_ATTEMPTS = 5  # commits that found the blob changed by another writer before this one gives up
KEEP = 10_000  # shipped records kept for the live stream
BATCH = 2_000  # records per shipment at most
# Shipments are at least this far apart: a blob holds at most 50,000 blocks (one per shipment), so an hour's
# blob takes 7,200 at most, and a busy service ships many records per request, not one.
SHIP_INTERVAL = 0.5
_IDLE_WAIT = 5.0  # seconds between looks at an outbox nothing wakes
_RETRY_WAIT = (1.0, 2.0, 5.0, 10.0, 30.0)  # after failed shipments: the storage account may be away

Rows = list[tuple[int, bytes]]


def block_id(writer: str, first: int, last: int) -> str:
    """Fixed width: every block id of a blob has the same length."""
    return f"{writer}-{first:016d}-{last:016d}"


def last_number(writer: str, block: str) -> int:
    """The last outbox number of a block this writer wrote (a block without a writer id too: an earlier
    release's); 0 for anyone else's."""
    if not block.startswith(f"{writer}-") and len(block) != _LEGACY_BLOCK_ID_LENGTH:
        return 0
    try:
        return int(block.rpartition("-")[2])
    except ValueError:
        return 0  # a block batchyard did not write


def writer_id(store: Store) -> str:
    """This store's writer id, made on first use (a service and its failover instances share it)."""
    writer = store.get_meta(WRITER_META_KEY)
    if writer is None:
        writer = secrets.token_hex(8)
        with store.transaction():
            store.set_meta(WRITER_META_KEY, writer)
    return writer


@dataclass
class BlobAppender:
    """Appends records to their hour's blob (blocking calls of the storage SDK: run in a thread)."""

    container: ContainerClient
    resource: AccountResource
    writer: str  # writer_id(store)
    container_made: bool = False

    def append(self, rows: Rows) -> None:
        if not self.container_made:
            try:
                self.container.create_container()
            except ResourceExistsError:
                pass
            self.container_made = True
        by_blob: dict[str, Rows] = {}
        for seq, record in rows:
            when = parse_iso(orjson.loads(record)["time"])
            by_blob.setdefault(self.resource.blob_name(when), []).append((seq, record))
        try:
            for name, records in by_blob.items():
                self._append_to(name, records)
        except ResourceNotFoundError:
            self.container_made = False  # someone deleted the container: the next shipment makes it again
            raise

    def _append_to(self, name: str, records: Rows) -> None:
        blob = self.container.get_blob_client(name)
        for _ in range(_COMMIT_ATTEMPTS):
            try:  # the ETag first: a commit between the two reads makes this one's conditional commit fail
                etag: str | None = blob.get_blob_properties().etag
                committed, _ = blob.get_block_list("committed")
            except ResourceNotFoundError:
                etag, committed = None, []
            done = max((last_number(self.writer, block.id) for block in committed), default=0)
            new = [(seq, record) for seq, record in records if seq > done]
            if not new:
                return  # shipped before a crash kept the store from noting it
            legacy = any(len(existing.id) == _LEGACY_BLOCK_ID_LENGTH for existing in committed)
            # the ids of one blob have one length: an hour an earlier release began keeps its form
            block = f"{new[0][0]:016d}-{new[-1][0]:016d}" if legacy else block_id(self.writer, new[0][0], new[-1][0])
            blob.stage_block(block, b"".join(record + b"\n" for _, record in new))
            unchanged: dict[str, Any] = (
                {"etag": etag, "match_condition": MatchConditions.IfNotModified}
                if etag
                else {"match_condition": MatchConditions.IfMissing}
            )
            try:
                blob.commit_block_list(
                    [BlobBlock(block_id=existing.id) for existing in committed] + [BlobBlock(block_id=block)],
                    content_settings=ContentSettings(content_type="application/json"),
                    **unchanged,
                )
                return
            except (ResourceModifiedError, ResourceExistsError):
                continue  # another writer committed meanwhile: read its list again
        raise ResourceModifiedError(f"{name} kept changing under other writers' commits")


class LogShipper:
    """The service's background task that empties the outbox into the storage account (or, with none,
    only trims it: records kept for the live stream alone)."""

    def __init__(self, store: Store, appender: BlobAppender | None, wakeup: Wakeup) -> None:
        self.store = store
        self.appender = appender
        self.wakeup = wakeup
        self.failures = 0

    async def run(self) -> None:
        while True:
            if await self.ship_once():
                await asyncio.sleep(SHIP_INTERVAL)
            else:
                await self.wakeup.wait(_IDLE_WAIT)

    async def ship_once(self) -> bool:
        """Ship the next batch; False when there was nothing to ship or shipping failed (waits then)."""
        shipped = int(self.store.get_meta(SHIPPED_META_KEY) or 0)
        rows = self.store.outbox_records(shipped, BATCH)
        if not rows:
            return False
        if self.appender is not None:
            try:
                await asyncio.to_thread(self.appender.append, rows)
            except Exception as exc:  # the account is away or refuses: the records wait in the outbox
                wait = _RETRY_WAIT[min(self.failures, len(_RETRY_WAIT) - 1)]
                self.failures += 1
                log.warning("diagnostic logs: shipping failed (%s); trying again in %g s", exc, wait)
                await asyncio.sleep(wait)
                return False
        self.failures = 0
        last = rows[-1][0]
        with self.store.transaction():
            self.store.set_meta(SHIPPED_META_KEY, str(last))
            self.store.delete_outbox_records(last - KEEP)
        return True


def container_for(connection_string: str) -> ContainerClient:
    from batchyard.service.storage.linked import LinkedStorage

    storage = LinkedStorage.from_connection_string(connection_string)
    return storage.client().get_container_client(CONTAINER)
