"""Who a run runs as: its `userIdentity`, when the agent runs as root (README, "Task users").

Azure runs a task as an auto-user, or as one of the pool's named `userAccounts`. Here, on an agent
running as root:

- a non-admin auto-user of pool scope is `_azbatch`, one uid per pool for all such runs on its nodes;
- a non-admin auto-user of task scope is `_azbatch-<hash>`, a uid of the task's own (its retries keep it);
- a named account runs with the uid/gid of its `linuxUserConfiguration`, or a uid of the pool's own;
- admin elevation (of an auto-user or a named account) runs as the agent's own user, root, as admin
  node users do (accounts.py): batchyard sets up no sudo, so root is what "full administrator
  permissions" can mean.

The uids come from the node users' range and allocator (accounts.py), so the two never share one;
they are hashed from the pool's id, so one pool's nodes on a host agree and other pools' differ.
Like node users they have no /etc/passwd entry (nothing outside the node root changes and nothing
stays behind when the node goes); programs find their user through nss_wrapper.

An agent that is not root runs every run as its own user, as before; the environment still names
the identity the run asked for.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchyard.agent import safe_files
from batchyard.agent.accounts import TASKS_GID, OsAccount, UidAllocator, isolating, lookup_env

POOL_USER = "_azbatch"  # what Azure calls the pool's non-admin auto-user on Linux (AZ_BATCH_TASK_USER)
TASK_UMASK = 0o022  # files a task makes are readable where its directory lets others in (shared/)
WORKING_DIR = "wd"  # a task directory's working directory
PRIVATE_DIR = 0o700  # a task's directory: its user's only
OPEN_DIR = 0o755  # start and job preparation task directories: their files are for the node's other tasks


class UnknownUser(Exception):
    """The run names a user account the pool does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.failure = {
            "category": "usererror",
            "code": "UserNotFound",
            "message": f"The user account {name} named by the task's user identity does not exist on the pool.",
        }


@dataclass(frozen=True)
class TaskUser:
    name: str  # AZ_BATCH_TASK_USER
    identity: str  # AZ_BATCH_TASK_USER_IDENTITY: PoolNonAdmin, PoolAdmin, TaskNonAdmin, TaskAdmin, or the account
    account: OsAccount  # uid None: the agent's own user


class TaskUsers:
    """The OS accounts of one node's runs; the pool's named accounts come with the service's welcome."""

    def __init__(self, root: Path, uids: UidAllocator) -> None:
        self.root = root
        self.uids = uids
        self.pool_id = ""  # from the welcome: the pool's users have the same uids on all its nodes
        self.pool_accounts: dict[str, dict[str, Any]] = {}
        self._homes: set[Path] = set()
        self._lookups: dict[tuple[str, int, int, Path], dict[str, str]] = {}  # written once, not per run
        self._pool_users: dict[bool, TaskUser] = {}  # the pool-scope auto-users (most runs'), by admin

    def welcome(self, pool_id: str, entries: list[dict[str, Any]]) -> None:
        self.pool_id = pool_id
        self.pool_accounts = {str(entry["name"]): entry for entry in entries}
        self._pool_users.clear()  # their uids depend on the pool

    def user_for(self, identity: dict[str, Any] | None, task_dir: Path) -> TaskUser:
        """The user of a run in `task_dir` with this identity (the wire form of run_builder.user_of)."""
        identity = identity or {}
        if "name" in identity:
            return self._named(str(identity["name"]))
        admin = bool(identity.get("admin"))
        task_scope = identity.get("scope") == "task"
        if not task_scope and (known := self._pool_users.get(admin)) is not None:
            return known
        label = ("Task" if task_scope else "Pool") + ("Admin" if admin else "NonAdmin")
        if task_scope:
            digest = hashlib.sha256(str(task_dir.relative_to(self.root)).encode()).hexdigest()[:10]
            name, key, home = f"{POOL_USER}-{digest}", f"task-user:{digest}", task_dir / "wd"
        else:
            name, key, home = POOL_USER, "task-user:pool", self.root / "users" / POOL_USER
        if admin or not isolating():
            user = TaskUser(name, label, OsAccount(uid=None, home=home, lookup_env={}))
        else:
            uid = self.uids.uid(key, within=f"pool:{self.pool_id}")
            user = TaskUser(name, label, self._account(name, uid, uid, home, make_home=not task_scope))
        if not task_scope:
            self._pool_users[admin] = user
        return user

    def _named(self, name: str) -> TaskUser:
        entry = self.pool_accounts.get(name)
        if entry is None:
            raise UnknownUser(name)
        home = self.root / "users" / name
        if entry.get("admin") or not isolating():
            return TaskUser(name, name, OsAccount(uid=None, home=home, lookup_env={}))
        uid = entry.get("uid")
        uid = int(uid) if uid is not None else self.uids.uid(f"task-user:named:{name}", within=f"pool:{self.pool_id}")
        gid = int(entry["gid"]) if entry.get("gid") is not None else uid
        account = self._account(name, uid, gid, home, make_home=True)
        if entry.get("sshKey"):
            _install_ssh_key(home, str(entry["sshKey"]), uid, gid)
        return TaskUser(name, name, account)

    def _account(self, name: str, uid: int, gid: int, home: Path, make_home: bool) -> OsAccount:
        if make_home and home not in self._homes:
            _make_private_dir(home.parent, 0o755, None, None)
            _make_private_dir(home, PRIVATE_DIR, uid, gid)
            self._homes.add(home)
        key = (name, uid, gid, home)
        if key not in self._lookups:
            self._lookups[key] = lookup_env(self.root / "users" / ".nss", name, uid, gid, home)
        # TASKS_GID: what task users may share, such as shared/, and node users (SSH) may not write.
        return OsAccount(uid, home, self._lookups[key], gid=gid, umask=TASK_UMASK, groups=(TASKS_GID,))


def hand_over(task_dir: Path, account: OsAccount, mode: int, walk: bool = True) -> None:
    """Give the task's directory, and what the agent put in it, to the run's user, with `mode`.

    Walked through directory descriptors without following links, so a link a task left in there
    (or a directory swapped for one meanwhile) never makes the agent chown something elsewhere.
    `walk=False`: the caller knows the directory holds only its empty `wd` (made by the agent just now).
    """
    if account.uid is None:
        os.chmod(task_dir, mode)
        return
    uid, gid = account.uid, account.uid if account.gid is None else account.gid
    top = safe_files.open_dir(task_dir)
    try:
        os.fchown(top, uid, gid)
        os.fchmod(top, mode)
        if walk:
            _chown_entries(top, uid, gid)
        else:
            os.chown(WORKING_DIR, uid, gid, dir_fd=top, follow_symlinks=False)
    finally:
        os.close(top)


def _chown_entries(folder: int, uid: int, gid: int) -> None:
    """Everything below the directory open as `folder` (links themselves, never what they point at) to
    uid:gid. Subdirectories are opened by name under `folder` with O_NOFOLLOW: one swapped for a link
    meanwhile fails to open (ELOOP/ENOTDIR) and is not entered."""
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    os.chown(entry.name, uid, gid, dir_fd=folder, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
            try:
                below = os.open(entry.name, safe_files.DIRECTORY, dir_fd=folder)
            except OSError:  # gone, or swapped for a link (ELOOP/ENOTDIR): nothing of ours below it
                continue
            try:
                _chown_entries(below, uid, gid)
            finally:
                os.close(below)


def open_parents(root: Path, task_dir: Path) -> None:
    """The agent's directories between the node root and a task's (workitems/<job>/job-1) let every
    task user pass and list, whatever the agent's umask made them."""
    path, below = str(root).rstrip("/"), str(task_dir)
    if not below.startswith(f"{path}/"):  # compared as strings: Path.relative_to costs more than the stats
        raise ValueError(f"{task_dir} is not below {root}")
    for part in below[len(path) + 1 :].split("/")[:-1]:
        path = f"{path}/{part}"
        if os.stat(path).st_mode & 0o777 != OPEN_DIR:
            os.chmod(path, OPEN_DIR)


def _make_private_dir(path: Path, mode: int, uid: int | None, gid: int | None) -> None:
    path.mkdir(mode=mode, exist_ok=True)
    info = path.lstat()
    if uid is not None and gid is not None and (info.st_uid, info.st_gid) != (uid, gid):
        os.chown(path, uid, gid, follow_symlinks=False)
    if info.st_mode & 0o777 != mode:
        os.chmod(path, mode, follow_symlinks=False)


def _install_ssh_key(home: Path, private_key: str, uid: int, gid: int) -> None:
    """The account's key pair in its `.ssh`, and the public key authorized (LinuxUserConfiguration)."""
    import asyncssh  # the agent has it for its SSH server; imported only for accounts with a key

    try:
        public = asyncssh.import_private_key(private_key).export_public_key().decode()
    except (asyncssh.KeyImportError, ValueError):
        return  # the service accepted it; a key ssh cannot read configures nothing
    ssh_dir = home / ".ssh"
    _make_private_dir(ssh_dir, PRIVATE_DIR, uid, gid)
    folder = safe_files.open_dir(ssh_dir)
    try:
        for name, text, mode in (
            ("id_rsa", private_key.strip() + "\n", 0o600),
            ("id_rsa.pub", public, 0o644),
            ("authorized_keys", public, 0o600),
        ):
            with os.fdopen(safe_files.create_at(folder, name, mode), "w") as out:
                out.write(text)
                os.fchown(out.fileno(), uid, gid)
    finally:
        os.close(folder)
