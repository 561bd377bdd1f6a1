"""The accounts' management state in the store (service/management/account_state.py, account_directory.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_SECONDARY_KEY
from batchyard.service.management.account_directory import OWN_STATE_KEY, AccountDirectory
from batchyard.service.management.account_state import LEGACY_STATE_FILE, AccountState, StoredState
from batchyard.service.persistence.sqlite import SqliteStore

KEYS = (DEV_ACCOUNT_KEY, DEV_ACCOUNT_SECONDARY_KEY)
MODES = ("SharedKey", "AAD")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "batchyard.db"


def own_state(store: SqliteStore, data_dir: Path, keys: tuple[str, ...] = KEYS) -> AccountState:
    return AccountState(StoredState(store, OWN_STATE_KEY, legacy=data_dir / LEGACY_STATE_FILE), "acct", keys, MODES)


def test_changes_outlive_a_restart_with_the_same_command_line(tmp_path: Path, database: Path) -> None:
    store = SqliteStore(database)
    state = own_state(store, tmp_path)
    state.regenerate("Secondary")
    state.update(("AAD",), {"team": "hpc"})
    store.close()
    again = own_state(SqliteStore(database), tmp_path)
    assert again.key("Primary") == DEV_ACCOUNT_KEY
    assert again.key("Secondary") == state.key("Secondary") != DEV_ACCOUNT_SECONDARY_KEY
    assert (again.modes, again.tags) == (("AAD",), {"team": "hpc"})
    assert again.shared_key.keys == (DEV_ACCOUNT_KEY, state.key("Secondary"))
    assert not (tmp_path / LEGACY_STATE_FILE).exists()  # in the store, not in the data directory


def test_a_missing_secondary_is_made_by_regenerating_it(tmp_path: Path, database: Path) -> None:
    state = own_state(SqliteStore(database), tmp_path, (DEV_ACCOUNT_KEY,))
    assert state.key("Secondary") is None
    state.regenerate("Secondary")
    assert state.key("Secondary") is not None and len(state.shared_key.keys) == 2


def test_the_file_of_an_earlier_release_is_read_until_the_store_has_the_state(tmp_path: Path, database: Path) -> None:
    fingerprinted = SqliteStore(tmp_path / "other.db")
    own_state(fingerprinted, tmp_path).save()
    fingerprint = orjson.loads(fingerprinted.get_meta(OWN_STATE_KEY) or "{}")["fingerprint"]
    store = SqliteStore(database)
    legacy = tmp_path / LEGACY_STATE_FILE
    legacy.parent.mkdir()
    kept = {"fingerprint": fingerprint, "keys": [DEV_ACCOUNT_SECONDARY_KEY], "modes": ["AAD"], "tags": {"a": "b"}}
    legacy.write_bytes(orjson.dumps(kept))
    state = own_state(store, tmp_path)
    assert (state.shared_key.keys, state.modes, state.tags) == ((DEV_ACCOUNT_SECONDARY_KEY,), ("AAD",), {"a": "b"})
    state.update(("SharedKey",), None)  # now in the store, which wins over the file from then on
    assert own_state(store, tmp_path).modes == ("SharedKey",)


# FP stands for the fingerprint of the command line: only a state made from it is read at all
@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"fingerprint": "FP"}',
        b'{"fingerprint": "FP", "keys": ["%%%"], "modes": ["AAD"]}',
        b'{"fingerprint": "FP", "keys": [], "modes": ["AAD"]}',
        b'{"fingerprint": "FP", "keys": "abc", "modes": 3}',
    ],
)
def test_an_unreadable_state_leaves_the_command_line_values(tmp_path: Path, database: Path, content: bytes) -> None:
    store = SqliteStore(database)
    own_state(store, tmp_path).regenerate("Primary")
    fingerprint = orjson.loads(store.get_meta(OWN_STATE_KEY) or "{}")["fingerprint"]
    with store.transaction():
        store.set_meta(OWN_STATE_KEY, content.decode().replace("FP", fingerprint))
    state = own_state(store, tmp_path)
    assert (state.shared_key.keys, state.modes) == (KEYS, MODES)


def test_made_accounts_are_kept_in_the_store_and_forgotten_when_removed(tmp_path: Path, database: Path) -> None:
    store = SqliteStore(database)
    accounts = AccountDirectory.open(store, tmp_path, "acct", KEYS, MODES)
    made = accounts.create("teamb", ("SharedKey",))
    made.regenerate("Primary")
    other = accounts.create("teamc", MODES)
    with pytest.raises(ValueError):
        accounts.create("teamb", MODES)
    store.close()

    store = SqliteStore(database)  # another instance of the service, on the same store
    again = AccountDirectory.open(store, tmp_path, "acct", KEYS, MODES)
    assert [state.name for state in again.all()] == ["acct", "teamb", "teamc"]
    teamb = again.get("TeamB")
    assert teamb is not None and teamb.shared_key.keys == made.shared_key.keys and teamb.modes == ("SharedKey",)
    again.remove(teamb)
    assert again.get("teamb") is None
    third = AccountDirectory.open(store, tmp_path, "acct", KEYS, MODES)
    assert [state.name for state in third.all()] == ["acct", "teamc"]
    teamc = third.get("teamc")
    assert teamc is not None and teamc.shared_key == other.shared_key
