"""The account's keys, allowedAuthenticationModes and tags as the management plane changes them, kept on disk.

The command line gives the account its name, keys and modes; `regenerateKeys` and `PATCH` change them while
the service runs, and the data plane checks every request against what is current here, so a regenerated key
stops working at once. The changes are kept in `DATA_DIR/management/account.json` (owner-only: it holds the
keys) with a fingerprint of the command-line values they were made from: a restart with the same command
line keeps them, a restart with other keys or modes starts over from the command line (its values win).
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
from batchyard.service.private_files import write_private

log = logging.getLogger("batchyard.management")

STATE_FILE = Path("management") / "account.json"
KEY_NAMES = ("Primary", "Secondary")
KEY_BYTES = 64  # an Azure Batch account key is 64 random bytes, base64


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fingerprint(name: str, keys: tuple[str, ...], modes: tuple[str, ...]) -> str:
    text = "\n".join([name, *keys, "", *modes])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AccountState:
    """An account's current credentials and settings (module doc); safe to use from any thread.

    The service's own account starts from the command line (`state_file` STATE_FILE); an account made through
    the management plane (management/account_directory.py) starts from the keys it was made with, kept in a
    file of its own."""

    def __init__(
        self,
        data_dir: Path,
        name: str,
        keys: tuple[str, ...],
        modes: tuple[str, ...],
        state_file: Path = STATE_FILE,
    ) -> None:
        self._path = data_dir / state_file
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
        if not self._path.exists():
            return
        try:
            saved: dict[str, Any] = orjson.loads(self._path.read_bytes())
            if saved.get("fingerprint") != self._fingerprint:
                return  # made from another command line: that one's values win
            keys = tuple(str(key) for key in saved["keys"] if key)
            SharedKeyAccount(self.name, keys)  # valid base64, at least one
            modes = tuple(str(mode) for mode in saved["modes"])
            tags = {str(k): str(v) for k, v in saved.get("tags", {}).items()}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("%s is unreadable (%s): the account's keys and modes are the command line's", self._path, exc)
            return
        self._keys, self._modes, self._tags = keys, modes, tags

    @property
    def path(self) -> Path:
        return self._path

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        document = {"fingerprint": self._fingerprint, "keys": self._keys, "modes": self._modes, "tags": self._tags}
        write_private(self._path, orjson.dumps(document))

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
