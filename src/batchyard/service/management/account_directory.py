"""The service's Batch accounts: its own (named on the command line) and those made through the management plane.

Each account has its keys, allowedAuthenticationModes and tags (management/account_state.py); its pools,
jobs and the rest live in the one engine under keys that name it (engine/account_keys.py). The accounts
made here are listed in `DATA_DIR/management/accounts.json` (owner-only: it holds the keys they were made
with), each with its current state in `DATA_DIR/management/accounts/{name}.json`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from batchyard.service.management.account_state import AccountState, new_key
from batchyard.service.private_files import write_private

log = logging.getLogger("batchyard.management")

INDEX_FILE = Path("management") / "accounts.json"
STATES_DIR = Path("management") / "accounts"


@dataclass(frozen=True)
class MadeAccount:
    """What an account made through the management plane was made with."""

    keys: tuple[str, ...]
    modes: tuple[str, ...]
    created: str


class AccountDirectory:
    """Every account of the service by name (case-insensitive); safe to use from any thread."""

    def __init__(self, data_dir: Path, own: AccountState) -> None:
        self._data_dir = data_dir
        self._lock = threading.Lock()
        self.own = own
        self._made: dict[str, MadeAccount] = {}
        self._states: dict[str, AccountState] = {}
        self._load()

    def _load(self) -> None:
        path = self._data_dir / INDEX_FILE
        if not path.exists():
            return
        try:
            saved: dict[str, Any] = orjson.loads(path.read_bytes())
            made = {
                str(name): MadeAccount(tuple(entry["keys"]), tuple(entry["modes"]), str(entry["created"]))
                for name, entry in saved.items()
            }
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.error("%s is unreadable (%s): only the service's own account is served", path, exc)
            return
        for name, account in made.items():
            self._made[name] = account
            self._states[name] = self._state(name, account)

    def _state(self, name: str, account: MadeAccount) -> AccountState:
        return AccountState(self._data_dir, name, account.keys, account.modes, STATES_DIR / f"{name}.json")

    def _save_index(self) -> None:
        index = {
            name: {"keys": made.keys, "modes": made.modes, "created": made.created}
            for name, made in sorted(self._made.items())
        }
        path = self._data_dir / INDEX_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, orjson.dumps(index))

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

    def created(self, state: AccountState) -> str | None:
        made = self._made.get(state.name)
        return made.created if made is not None else None

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
            state.path.unlink(missing_ok=True)
