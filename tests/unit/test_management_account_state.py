"""The account's management state on disk (service/management/account_state.py)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_SECONDARY_KEY
from batchyard.service.management.account_state import STATE_FILE, AccountState

KEYS = (DEV_ACCOUNT_KEY, DEV_ACCOUNT_SECONDARY_KEY)
MODES = ("SharedKey", "AAD")


def test_changes_outlive_a_restart_with_the_same_command_line(tmp_path: Path) -> None:
    state = AccountState(tmp_path, "acct", KEYS, MODES)
    state.regenerate("Secondary")
    state.update(("AAD",), {"team": "hpc"})
    again = AccountState(tmp_path, "acct", KEYS, MODES)
    assert again.key("Primary") == DEV_ACCOUNT_KEY
    assert again.key("Secondary") == state.key("Secondary") != DEV_ACCOUNT_SECONDARY_KEY
    assert (again.modes, again.tags) == (("AAD",), {"team": "hpc"})
    assert again.shared_key.keys == (DEV_ACCOUNT_KEY, state.key("Secondary"))


def test_a_missing_secondary_is_made_by_regenerating_it(tmp_path: Path) -> None:
    state = AccountState(tmp_path, "acct", (DEV_ACCOUNT_KEY,), MODES)
    assert state.key("Secondary") is None
    state.regenerate("Secondary")
    assert state.key("Secondary") is not None and len(state.shared_key.keys) == 2


# FP stands for the fingerprint of the command line: only a file made from it is read at all
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
def test_an_unreadable_file_leaves_the_command_line_values(tmp_path: Path, content: bytes) -> None:
    AccountState(tmp_path, "acct", KEYS, MODES).regenerate("Primary")
    path = tmp_path / STATE_FILE
    fingerprint = orjson.loads(path.read_bytes())["fingerprint"].encode()
    path.write_bytes(content.replace(b"FP", fingerprint))
    state = AccountState(tmp_path, "acct", KEYS, MODES)
    assert (state.shared_key.keys, state.modes) == (KEYS, MODES)
