"""OS identities for a node's users: what running the agent as root adds.

An agent running as root gives each non-admin node user a uid of its own (from a range no Debian
account uses) and a home `home/<name>` (mode 0700) under the node root. Their SSH sessions and SFTP
run as that uid with umask 077, so they cannot read files of the agent, of the service or of other
users that are not world-readable. Admin users, and every user of an agent that is not root, run as
the agent's own user.

The uid has no /etc/passwd entry, so nothing outside the node root changes and nothing is left
behind when a node goes. Programs that look their user up (sftp-server, whoami) find it through
nss_wrapper (Debian's libnss-wrapper), preloaded with a passwd line kept in `home/.nss/`.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchyard.agent import safe_files
from batchyard.agent.certificates import visible_to
from batchyard.agent.certificates import write_into as write_certificates

UID_BASE = 0x4000_0000  # far above Debian's dynamic ranges (and systemd's container ranges)
UID_SPAN = 0x1000_0000
TASKS_GID = UID_BASE + UID_SPAN  # the group of every task user (never a user's own: outside the span)
SESSION_UMASK = 0o077

# Debian's openssh-sftp-server: SFTP that runs as the session's uid, so the kernel checks access.
SFTP_SERVER_PATHS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/lib/sftp-server")


NSS_WRAPPER_GLOB = "/usr/lib/*/libnss_wrapper.so"
# util-linux's setpriv: switches ids and execs. Python's subprocess cannot vfork when it switches users
# itself, and forking the whole agent costs about 4 ms per task; through setpriv a start stays a vfork.
SETPRIV = shutil.which("setpriv", path="/usr/bin:/bin")


@dataclass(frozen=True)
class Launch:
    """How to start a program as an account: subprocess.Popen's argv and its user-switching arguments."""

    argv: list[str]
    user: int | None = None
    group: int | None = None
    extra_groups: list[int] | None = None
    umask: int = -1  # -1: the agent's


@dataclass(frozen=True)
class OsAccount:
    uid: int | None  # None: the agent's own user
    home: Path
    lookup_env: dict[str, str]  # what lets the process find its user by uid (empty without nss_wrapper)
    gid: int | None = None  # None: a group of the uid's number
    umask: int = SESSION_UMASK
    groups: tuple[int, ...] = ()  # supplementary groups

    def spawn_options(self) -> dict[str, Any]:
        """Keyword arguments for subprocess/asyncio process creation that run as this account."""
        if self.uid is None:
            return {}
        group = self.uid if self.gid is None else self.gid
        return {"user": self.uid, "group": group, "extra_groups": list(self.groups), "umask": self.umask}

    def launch(self, argv: list[str], search_path: str, cwd: str) -> Launch:
        """The argv and subprocess options that start `argv` as this account, cheaply: through `setpriv`
        when there is one (the agent is not forked). Its program is looked up first, as exec would, so
        a program that is missing or not executable fails the start as it does without setpriv."""
        if self.uid is None:
            return Launch(argv)
        group = self.uid if self.gid is None else self.gid
        if SETPRIV is None:
            return Launch(argv, self.uid, group, list(self.groups), self.umask)
        _find_program(argv[0], search_path, cwd)
        groups = f"--groups={','.join(map(str, self.groups))}" if self.groups else "--clear-groups"
        return Launch([SETPRIV, f"--reuid={self.uid}", f"--regid={group}", groups, "--", *argv], umask=self.umask)


def _find_program(program: str, search_path: str, cwd: str) -> None:
    """Raise what exec would for a program that is not there or cannot run (FileNotFoundError,
    PermissionError), judged by the agent: a program its user may not execute still fails, in setpriv."""
    if "/" in program:
        candidates = [os.path.join(cwd, program)]
    else:
        candidates = [os.path.join(directory or ".", program) for directory in search_path.split(os.pathsep)]
    found = [path for path in candidates if os.path.isfile(path)]
    if not found:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    if not any(os.access(path, os.X_OK) for path in found):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)


def isolating() -> bool:
    return os.geteuid() == 0


def sftp_server() -> str | None:
    return next((path for path in SFTP_SERVER_PATHS if os.access(path, os.X_OK)), None)


def nss_wrapper() -> str | None:
    return next(iter(sorted(glob.glob(NSS_WRAPPER_GLOB))), None)


class NodeAccounts:
    """The uids and homes of one node's users; a user keeps its uid for the agent's life.

    Every home gets the pool's certificates that are visible to remote users, in `certs`.
    """

    def __init__(
        self,
        node_id: str,
        root: Path,
        certificates: Callable[[], list[dict[str, Any]]],
        uids: UidAllocator | None = None,
    ) -> None:
        self.node_id = node_id
        self.root = root
        self.certificates = certificates
        self.uids = uids or UidAllocator(node_id)

    def account(self, name: str, admin: bool) -> OsAccount:
        """The account a session of this user runs as, with its home ready."""
        home = self.root / "home" / name
        uid = None if admin or not isolating() else self._uid(name)
        _make_home(home, uid)
        account = OsAccount(uid=uid, home=home, lookup_env={} if uid is None else self._lookup_env(name, uid, home))
        if certs := visible_to(self.certificates(), "remoteuser"):
            write_certificates(home / "certs", certs, owner=account.uid)
        return account

    def _lookup_env(self, name: str, uid: int, home: Path) -> dict[str, str]:
        return lookup_env(self.root / "home" / ".nss", name, uid, uid, home)

    def _uid(self, name: str) -> int:
        return self.uids.uid(name)


class UidAllocator:
    """Uids for one node's accounts: derived from a hash of where they belong and a key, distinct
    within the node (node users and task users share one allocator, so they never share a uid).

    By default they belong to the node (its id is in the hash, so other nodes on the host get other
    uids); `within` names a wider home, such as a pool whose nodes all give its auto-user one uid.
    """

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._uids: dict[str, int] = {}

    def uid(self, key: str, within: str | None = None) -> int:
        home = within or self.node_id
        if f"{home}/{key}" not in self._uids:
            taken = set(self._uids.values())
            attempt = 0
            while True:
                digest = hashlib.sha256(f"{home}/{key}/{attempt}".encode()).digest()
                uid = UID_BASE + int.from_bytes(digest[:4], "big") % UID_SPAN
                if uid not in taken:
                    break
                attempt += 1
            self._uids[f"{home}/{key}"] = uid
        return self._uids[f"{home}/{key}"]


def lookup_env(directory: Path, name: str, uid: int, gid: int, home: Path) -> dict[str, str]:
    """What lets a process find its user by uid without an /etc/passwd entry (nss_wrapper's files
    in `directory`); empty when libnss-wrapper is not installed."""
    library = nss_wrapper()
    if library is None:
        return {}
    directory.mkdir(mode=0o755, exist_ok=True)
    passwd, group = directory / f"{name}.passwd", directory / f"{name}.group"
    for path, text in (
        (passwd, f"{name}:x:{uid}:{gid}:batchyard node user:{home}:/bin/bash\n"),
        (group, f"{name}:x:{gid}:\n"),
    ):
        with os.fdopen(safe_files.create(path), "w") as out:  # never through a link left there
            out.write(text)
    return {"LD_PRELOAD": library, "NSS_WRAPPER_PASSWD": str(passwd), "NSS_WRAPPER_GROUP": str(group)}


def unreachable_parent(path: Path) -> Path | None:
    """The first directory on the way to `path` that other users may not pass (no o+x), if any:
    users of their own cannot reach a node root below it."""
    for directory in [*reversed(path.parents), path]:
        try:
            if not directory.stat().st_mode & 0o001:
                return directory
        except FileNotFoundError:
            return None  # made later, by us
    return None


def _make_home(home: Path, uid: int | None) -> None:
    owner = os.geteuid() if uid is None else uid
    home.parent.mkdir(mode=0o755, exist_ok=True)
    try:
        home.mkdir(mode=0o700)
    except FileExistsError:
        if home.lstat().st_uid == owner:
            return
        shutil.rmtree(home)  # left by an earlier user of that name with another uid: not theirs
        home.mkdir(mode=0o700)
    if uid is not None:
        os.chown(home, uid, uid)
