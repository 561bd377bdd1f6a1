"""Whom runs run as: the wire form of userIdentity, the agent's mapping of it, and how a process starts as
its account."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from batchyard.agent import accounts, task_users
from batchyard.agent.accounts import SETPRIV, Launch, OsAccount, UidAllocator, unreachable_parent
from batchyard.agent.task_users import TaskUsers, UnknownUser
from batchyard.service.config import SettingsError, read_key_file
from batchyard.service.engine.run_builder import pool_accounts, user_of


def test_user_identity_on_the_wire() -> None:
    assert user_of(None) == {"scope": "pool", "admin": False}
    assert user_of({"autoUser": {"scope": "task", "elevationLevel": "admin"}}) == {"scope": "task", "admin": True}
    assert user_of({"username": "alice"}) == {"name": "alice"}


def test_pool_accounts_travel_without_passwords() -> None:
    pool = {
        "userAccounts": [
            {
                "name": "alice",
                "password": "secret",
                "elevationLevel": "admin",
                "linuxUserConfiguration": {"uid": 5, "gid": 6, "sshPrivateKey": "KEY"},
            },
            {"name": "bob", "password": "secret"},
        ]
    }
    assert pool_accounts(pool) == [
        {"name": "alice", "admin": True, "uid": 5, "gid": 6, "sshKey": "KEY"},
        {"name": "bob", "admin": False, "uid": None, "gid": None, "sshKey": None},
    ]
    assert "secret" not in repr(pool_accounts(pool))


@pytest.fixture
def users(tmp_path: Path) -> TaskUsers:
    users = TaskUsers(tmp_path, UidAllocator("node-1"))
    users.welcome("pool-1", [{"name": "alice", "admin": False, "uid": 4321, "gid": 4322}])
    return users


def test_an_agent_that_is_not_root_runs_everything_as_itself(users: TaskUsers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(task_users, "isolating", lambda: False)
    task_dir = users.root / "workitems" / "j" / "job-1" / "t"
    pool = users.user_for({"scope": "pool", "admin": False}, task_dir)
    scoped = users.user_for({"scope": "task", "admin": True}, task_dir)
    named = users.user_for({"name": "alice"}, task_dir)
    assert (pool.name, pool.identity, pool.account.uid) == ("_azbatch", "PoolNonAdmin", None)
    assert scoped.identity == "TaskAdmin" and scoped.name.startswith("_azbatch-") and scoped.account.uid is None
    assert (named.name, named.identity, named.account.uid) == ("alice", "alice", None)
    with pytest.raises(UnknownUser):
        users.user_for({"name": "nobody"}, task_dir)


def test_uids_differ_by_node_and_by_user_and_stay_in_the_range() -> None:
    first, second = UidAllocator("node-1"), UidAllocator("node-2")
    uids = {first.uid("task-user:pool"), first.uid("alice"), second.uid("task-user:pool")}
    assert len(uids) == 3
    # A pool's users have one uid on all its nodes; another pool's differ.
    assert first.uid("task-user:pool", within="pool:a") == second.uid("task-user:pool", within="pool:a")
    assert first.uid("task-user:pool", within="pool:a") != first.uid("task-user:pool", within="pool:b")
    assert all(accounts.UID_BASE <= uid < accounts.UID_BASE + accounts.UID_SPAN for uid in uids)
    assert first.uid("alice") == first.uid("alice")


def test_a_directory_others_cannot_pass_is_named() -> None:
    top = Path(tempfile.mkdtemp())  # in the system's temporary directory, which everyone passes
    try:
        closed = top / "closed"
        (closed / "data").mkdir(parents=True)
        top.chmod(0o711)
        closed.chmod(0o700)
        assert unreachable_parent(closed / "data") == closed
        closed.chmod(0o711)
        assert unreachable_parent(closed / "data") is None
        assert unreachable_parent(closed / "not-yet" / "made") is None
    finally:
        shutil.rmtree(top)


def test_the_key_file_gives_its_first_line(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("  c2VjcmV0  \nignored\n")
    assert read_key_file(key_file) == "c2VjcmV0"
    with pytest.raises(SettingsError):
        read_key_file(tmp_path / "missing")


# --- starting processes as an account without forking the agent ---------------------------------------------


def test_a_task_users_start_goes_through_setpriv_and_keeps_its_argv(tmp_path: Path) -> None:
    account = OsAccount(uid=0x40001234, home=tmp_path, lookup_env={}, gid=0x40001235, groups=(0x50000000,))
    launch = account.launch(["true", "a b"], "/usr/bin:/bin", str(tmp_path))
    if SETPRIV is None:
        assert (launch.argv, launch.user, launch.group) == (["true", "a b"], 0x40001234, 0x40001235)
        return
    assert launch.argv == [
        SETPRIV,
        f"--reuid={0x40001234}",
        f"--regid={0x40001235}",
        f"--groups={0x50000000}",
        "--",
        "true",
        "a b",
    ]
    assert (launch.user, launch.group, launch.extra_groups, launch.umask) == (None, None, None, account.umask)
    assert OsAccount(uid=None, home=tmp_path, lookup_env={}).launch(["true"], "/bin", "/") == Launch(["true"])


def test_a_program_that_is_missing_or_not_executable_fails_the_start_as_exec_would(tmp_path: Path) -> None:
    account = OsAccount(uid=0x40001234, home=tmp_path, lookup_env={})
    if SETPRIV is None:
        pytest.skip("without setpriv the start is subprocess's own (user=), which reports these itself")
    with pytest.raises(FileNotFoundError):
        account.launch(["no-such-program"], f"{tmp_path}:/usr/bin", str(tmp_path))
    with pytest.raises(FileNotFoundError):
        account.launch(["./missing"], "/usr/bin", str(tmp_path))
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    with pytest.raises(PermissionError):
        account.launch(["./plain"], "/usr/bin", str(tmp_path))
    assert account.launch(["sh", "-c", "true"], "/usr/bin:/bin", str(tmp_path)).argv[-3:] == ["sh", "-c", "true"]


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_through_setpriv_the_process_runs_with_the_accounts_ids(tmp_path: Path) -> None:
    account = OsAccount(uid=0x40001234, home=tmp_path, lookup_env={}, gid=0x40001235, groups=(0x50000000,))
    launch = account.launch(["id"], "/usr/bin:/bin", "/")
    out = subprocess.run(
        launch.argv,
        env={"PATH": "/usr/bin:/bin"},
        user=launch.user,
        group=launch.group,
        extra_groups=launch.extra_groups,
        umask=launch.umask,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"uid={0x40001234}" in out and f"gid={0x40001235}" in out and str(0x50000000) in out


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_handing_over_gives_everything_inside_and_nothing_a_link_points_at(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "inner").mkdir(parents=True)
    (outside / "victim.txt").write_text("root's\n")
    task_dir = tmp_path / "task"
    (task_dir / "wd" / "deep").mkdir(parents=True)
    (task_dir / "wd" / "deep" / "file.txt").write_text("x")
    (task_dir / "certs.txt").write_text("y")
    (task_dir / "wd" / "link.txt").symlink_to(outside / "victim.txt")
    (task_dir / "wd" / "linked-dir").symlink_to(outside)
    account = OsAccount(uid=4321, home=tmp_path, lookup_env={}, gid=4322)
    task_users.hand_over(task_dir, account, task_users.PRIVATE_DIR)
    inside = [task_dir, *task_dir.rglob("*")]
    assert len(inside) == 7
    assert {(path.lstat().st_uid, path.lstat().st_gid) for path in inside} == {(4321, 4322)}
    assert task_dir.stat().st_mode & 0o777 == task_users.PRIVATE_DIR
    assert {path.lstat().st_uid for path in [outside, *outside.rglob("*")]} == {0}


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_a_task_directory_just_made_is_handed_over_without_a_walk(tmp_path: Path) -> None:
    task_dir = tmp_path / "task"
    (task_dir / task_users.WORKING_DIR).mkdir(parents=True)
    account = OsAccount(uid=4321, home=tmp_path, lookup_env={}, gid=4322)
    task_users.hand_over(task_dir, account, task_users.OPEN_DIR, walk=False)
    for path in (task_dir, task_dir / task_users.WORKING_DIR):
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322)
    assert task_dir.stat().st_mode & 0o777 == task_users.OPEN_DIR
