"""The service's Batch accounts: its own (named on the command line) and those made through the management plane.

Each account has its keys, allowedAuthenticationModes and tags (management/account_state.py); its pools,
jobs and the rest live in the one engine under keys that name it (engine/account_keys.py). All of it is in
the store, so an instance that takes over on PostgreSQL (service/failover.py) serves the same accounts: the
accounts made here are listed in the meta value INDEX_KEY (with the keys they were made with), each with its
current state in `STATE_KEY_PREFIX + name`; the service's own account's state is OWN_STATE_KEY.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from batchyard.service.management.account_state import LEGACY_STATE_FILE, AccountState, StoredState, new_key
from batchyard.service.ports import Store

log = logging.getLogger("batchyard.management")

OWN_STATE_KEY = "management.account"
INDEX_KEY = "management.accounts"
STATE_KEY_PREFIX = "management.account."


@dataclass(frozen=True)
class MadeAccount:
    """What an account made through the management plane was made with."""

    keys: tuple[str, ...]
    modes: tuple[str, ...]
    created: str


class AccountDirectory:
    """Every account of the service by name (case-insensitive); safe to use from any thread."""

    def __init__(self, store: Store, own: AccountState) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.own = own
        self._made: dict[str, MadeAccount] = {}
        self._states: dict[str, AccountState] = {}
        self._load()

    @classmethod
    def open(
        cls, store: Store, data_dir: Path, name: str, keys: tuple[str, ...], modes: tuple[str, ...]
    ) -> AccountDirectory:
        """The accounts kept in `store`, the service's own being `name` with the command line's keys and modes
        (its state read from the data directory's file when an earlier release kept it there)."""
        own = StoredState(store, OWN_STATE_KEY, legacy=data_dir / LEGACY_STATE_FILE)
        return cls(store, AccountState(own, name, keys, modes))

    def _load(self) -> None:
        raw = self._store.get_meta(INDEX_KEY)
        if not raw:
            return
        try:
            saved: dict[str, Any] = orjson.loads(raw)
            made = {
                str(name): MadeAccount(tuple(entry["keys"]), tuple(entry["modes"]), str(entry["created"]))
                for name, entry in saved.items()
            }
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.error("the stored accounts are unreadable (%s): only the service's own account is served", exc)
            return
        for name, account in made.items():
            self._made[name] = account
            self._states[name] = self._state(name, account)

    def _state(self, name: str, account: MadeAccount) -> AccountState:
        return AccountState(StoredState(self._store, STATE_KEY_PREFIX + name), name, account.keys, account.modes)

    def _save_index(self) -> None:
        index = {
            name: {"keys": made.keys, "modes": made.modes, "created": made.created}
            for name, made in sorted(self._made.items())
        }
        with self._store.transaction():
            self._store.set_meta(INDEX_KEY, orjson.dumps(index).decode())

    # --- lookups --------------------------------------------------------------------------------

    def get(self, name: str | None) -> AccountState | None:
        """The account of that name (None, or the own account's name: the service's own); None if unknown."""
        if name is None or name.casefold() == self.own.name.casefold():
            return self.own
        return self._states.get(name.lower())

    def is_own(self, state: AccountState) -> bool:
        return state is self.own

    def engine_account(self, state: AccountState) -> str | None:
        """The account's name as the engine keys it (engine/account_keys.py): None for the service's own."""
        return None if state is self.own else state.name

    def all(self) -> list[AccountState]:
        with self._lock:
            return [self.own, *(self._states[name] for name in sorted(self._states))]

    # --- changes --------------------------------------------------------------------------------

    def create(self, name: str, modes: tuple[str, ...]) -> AccountState:
        """A new account with two new keys (`name`: lower case); ValueError if the name is taken."""
        with self._lock:
            if name in self._made:
                raise ValueError(f"an account named {name} exists")
            made = MadeAccount((new_key(), new_key()), modes, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            self._made[name] = made
            self._save_index()
            state = self._state(name, made)
            state.save()
            self._states[name] = state
            return state

    def remove(self, state: AccountState) -> None:
        """Forget an account made here: its keys stop working at once."""
        with self._lock:
            self._states.pop(state.name, None)
            self._made.pop(state.name, None)
            self._save_index()
            state.stored.remove()
