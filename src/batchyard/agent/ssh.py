"""The node's SSH server (asyncssh): remote login for the node's users only, on a loopback port.

- Users come from the service (`users` messages): name, admin flag, time to live, a scrypt password
  hash and/or an OpenSSH public key. Nothing about them is written to disk.
- A user logs in with the password or the key until the expiry; a deleted or expired user is
  refused, and a deleted user's open connections are closed.
- Sessions run `/bin/bash` (the command, or an interactive shell without a terminal) in the node
  root with the node's AZ_BATCH_* environment.
- Started on the first request for it (remote login settings or users), so idle nodes pay nothing:
  asyncssh (and the cryptography it loads, a third of an idle agent's memory) is imported then, and its
  server and session classes are in ssh_sessions.py. The host key is made at start and kept in memory: it
  changes when the agent restarts.

- SFTP is Debian's sftp-server (openssh-sftp-server), started in the node root.

Isolation (see accounts.py): on an agent running as root, a non-admin user's sessions and SFTP run
as a uid of the user's own; other sessions run as the agent's user.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchyard.agent.accounts import NodeAccounts, OsAccount

if TYPE_CHECKING:
    import asyncssh

log = logging.getLogger("batchyard.agent.ssh")


@dataclass
class NodeUser:
    name: str
    admin: bool
    deadline: float  # time.monotonic() after which the account has expired
    salt: bytes | None
    digest: bytes | None
    key: asyncssh.SSHKey | None

    @property
    def valid(self) -> bool:
        return time.monotonic() < self.deadline

    def password_ok(self, password: str) -> bool:
        if self.salt is None or self.digest is None:
            return False
        attempt = hashlib.scrypt(password.encode(), salt=self.salt, n=2**14, r=8, p=1, dklen=32)
        return hmac.compare_digest(attempt, self.digest)


def _user(entry: dict[str, Any], now: float) -> NodeUser:
    key = None
    if entry.get("key"):
        import asyncssh  # the first user with a key (module doc)

        try:
            key = asyncssh.import_public_key(str(entry["key"]).strip())
        except (asyncssh.KeyImportError, ValueError):
            log.warning("user %s has an unreadable public key", entry.get("name"))
    pw = entry.get("pw") or {}
    return NodeUser(
        name=str(entry["name"]),
        admin=bool(entry.get("admin")),
        deadline=now + float(entry.get("ttl") or 0),
        salt=bytes.fromhex(pw["salt"]) if pw else None,
        digest=bytes.fromhex(pw["hash"]) if pw else None,
        key=key,
    )


class NodeSshServer:
    def __init__(
        self, root: Path, accounts: NodeAccounts, environment: Callable[[], dict[str, str]], host: str = "127.0.0.1"
    ) -> None:
        self.root = root
        self.accounts = accounts
        self.environment = environment
        self.host = host
        self.port = 0
        self.users: dict[str, NodeUser] = {}
        self._server: asyncssh.SSHAcceptor | None = None
        self._starting: asyncio.Lock = asyncio.Lock()
        self._connections: dict[str, set[asyncssh.SSHServerConnection]] = defaultdict(set)

    def set_users(self, entries: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        fresh = {str(entry["name"]): _user(entry, now) for entry in entries}
        for name in set(self.users) - set(fresh):
            for conn in self._connections.pop(name, set()):
                conn.close()  # a deleted user's sessions end with the account
        self.users = fresh

    def user(self, name: str) -> NodeUser | None:
        user = self.users.get(name)
        return user if user is not None and user.valid else None

    async def ensure_started(self) -> int:
        async with self._starting:
            if self._server is None:
                import asyncssh  # the first request for the server (module doc)

                from batchyard.agent.ssh_sessions import SessionServer

                host_key = asyncssh.generate_private_key("ssh-ed25519")
                self._server = await asyncssh.create_server(
                    lambda: SessionServer(self),
                    self.host,
                    0,
                    server_host_keys=[host_key],
                    encoding=None,
                    keepalive_interval=30,
                )
                self.port = int(self._server.sockets[0].getsockname()[1])
                log.info("SSH server listening on %s:%d", self.host, self.port)
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def registered(self, name: str, conn: asyncssh.SSHServerConnection) -> None:
        self._connections[name].add(conn)

    def forget(self, name: str, conn: asyncssh.SSHServerConnection) -> None:
        self._connections.get(name, set()).discard(conn)

    # --- sessions -------------------------------------------------------------------------------

    def _session_env(self, username: str, account: OsAccount) -> dict[str, str]:
        env = self.environment()
        env.update({"HOME": str(account.home), "USER": username, "LOGNAME": username, "SHELL": "/bin/bash"})
        env.update(account.lookup_env)
        return env

    def session(self, username: str) -> asyncssh.SSHServerSession[bytes] | bool:
        """A new session channel of a logged-in user: a shell, a command or SFTP, as its OS account."""
        user = self.users.get(username)
        if user is None:  # deleted since the login
            return False
        try:
            account = self.accounts.account(username, user.admin)
        except OSError as exc:  # asyncssh would drop the connection without a word
            log.warning("no session for %s: its account could not be prepared: %s", username, exc)
            return False
        from batchyard.agent.ssh_sessions import ChildSession  # loaded with the server

        return ChildSession(self.root, self._session_env(username, account), account)
