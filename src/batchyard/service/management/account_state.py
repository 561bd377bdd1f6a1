"""An account's keys, allowedAuthenticationModes and tags as the management plane changes them, kept in the store.

The command line gives the service's own account its name, keys and modes; `regenerateKeys` and `PATCH`
change them while the service runs, and the data plane checks every request against what is current here,
so a regenerated key stops working at once. The changes are kept in the store (a meta value, so that an
instance taking over on PostgreSQL reads them: service/failover.py) with a fingerprint of the values they
were made from: a restart with the same command line keeps them, a restart with other keys or modes starts
over from the command line (its values win). An account made through the management plane starts from the
keys it was made with (management/account_directory.py).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from batchyard.service.auth import SharedKeyAccount
from batchyard.service.ports import Store

log = logging.getLogger("batchyard.management")

LEGACY_STATE_FILE = Path("management") / "account.json"  # where releases before the store kept it
KEY_NAMES = ("Primary", "Secondary")
KEY_BYTES = 64  # an Azure Batch account key is 64 random bytes, base64


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fingerprint(name: str, keys: tuple[str, ...], modes: tuple[str, ...]) -> str:
    text = "\n".join([name, *keys, "", *modes])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class StoredState:
    """Where an account's state is kept: a meta value of the store (written in a transaction of its own);
    `legacy`, a file an earlier release kept it in, is read while the store has none."""

    def __init__(self, store: Store, meta_key: str, legacy: Path | None = None) -> None:
        self.store = store
        self.meta_key = meta_key
        self.legacy = legacy

    def read(self) -> bytes | None:
        value = self.store.get_meta(self.meta_key)
        if value:
            return value.encode()
        if value is None and self.legacy is not None and self.legacy.exists():
            return self.legacy.read_bytes()
        return None

    def write(self, document: bytes) -> None:
        with self.store.transaction():
            self.store.set_meta(self.meta_key, document.decode())

    def remove(self) -> None:
        """Forget it (an empty value: the store keeps no other way to delete a meta value)."""
        with self.store.transaction():
            self.store.set_meta(self.meta_key, "")


class AccountState:
    """An account's current credentials and settings (module doc), kept in `stored`."""

    def __init__(self, stored: StoredState, name: str, keys: tuple[str, ...], modes: tuple[str, ...]) -> None:
        self.stored = stored
        self._fingerprint = _fingerprint(name, keys, modes)
        self._lock = threading.Lock()
        self.name = name
        self._keys: tuple[str, ...] = keys
        self._modes: tuple[str, ...] = modes
        self._tags: dict[str, str] = {}
        self.last_key_sync = _now()  # of the linked storage account's keys: the command line's, at start
        self._load()
        self.shared_key = SharedKeyAccount(name, self._keys)
        self.deleting = False  # being deleted (management/accounts.py): its data plane refuses every request

    def _load(self) -> None:
        try:
            raw = self.stored.read()
            if raw is None:
                return
            saved: dict[str, Any] = orjson.loads(raw)
            if saved.get("fingerprint") != self._fingerprint:
                return  # made from another command line: that one's values win
            keys = tuple(str(key) for key in saved["keys"] if key)
            SharedKeyAccount(self.name, keys)  # valid base64, at least one
            modes = tuple(str(mode) for mode in saved["modes"])
            tags = {str(k): str(v) for k, v in saved.get("tags", {}).items()}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            where = self.stored.meta_key
            log.warning("the stored %s is unreadable (%s): the account's keys and modes are as made", where, exc)
            return
        self._keys, self._modes, self._tags = keys, modes, tags

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        document = {"fingerprint": self._fingerprint, "keys": self._keys, "modes": self._modes, "tags": self._tags}
        self.stored.write(orjson.dumps(document))

    @property
    def modes(self) -> tuple[str, ...]:
        return self._modes

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._tags)

    def key(self, which: str) -> str | None:
        """The `Primary` or `Secondary` key; None for a secondary the command line did not give."""
        index = KEY_NAMES.index(which)
        return self._keys[index] if index < len(self._keys) else None

    def regenerate(self, which: str) -> None:
        """Replace the `Primary` or `Secondary` key by a new random one; the old one is refused from now on."""
        with self._lock:
            keys = list(self._keys)
            index = KEY_NAMES.index(which)
            if index < len(keys):
                keys[index] = new_key()
            else:
                keys.append(new_key())
            self._keys = tuple(keys)
            self._save()
            self.shared_key = SharedKeyAccount(self.name, self._keys)

    def keys_synced(self) -> None:
        self.last_key_sync = _now()

    def update(self, modes: tuple[str, ...] | None, tags: dict[str, str] | None) -> None:
        with self._lock:
            if modes is not None:
                self._modes = modes
            if tags is not None:
                self._tags = dict(tags)
            self._save()
