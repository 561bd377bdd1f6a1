"""The node's SSH server (asyncssh): remote login for the node's users only, on a loopback port.

- Users come from the service (`users` messages): name, admin flag, time to live, a scrypt password
  hash and/or an OpenSSH public key. Nothing about them is written to disk.
- A user logs in with the password or the key until the expiry; a deleted or expired user is
  refused, and a deleted user's open connections are closed.
- Sessions run `/bin/bash` (the command, or an interactive shell without a terminal) in the node
  root with the node's AZ_BATCH_* environment; SFTP is confined to the node root.
- Started on the first request for it (remote login settings or users), so idle nodes pay nothing.
  The host key is made at start and kept in memory: it changes when the agent restarts.

Isolation: sessions run as the agent's OS user (see README, "Node operations").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

log = logging.getLogger("batchyard.agent.ssh")

# Names under the node root that only admin users may open over SFTP (the agent's own files).
PRIVATE_PREFIXES = (".agent", "agent.log")


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
    def __init__(self, root: Path, environment: Callable[[], dict[str, str]], host: str = "127.0.0.1") -> None:
        self.root = root
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
                host_key = asyncssh.generate_private_key("ssh-ed25519")
                self._server = await asyncssh.create_server(
                    lambda: _Server(self),
                    self.host,
                    0,
                    server_host_keys=[host_key],
                    process_factory=self._session,
                    sftp_factory=self._sftp,
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

    def _session_env(self, username: str) -> dict[str, str]:
        env = self.environment()
        env.update({"HOME": str(self.root), "USER": username, "LOGNAME": username, "SHELL": "/bin/bash"})
        return env

    async def _session(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        username = str(process.get_extra_info("username"))
        argv = ["/bin/bash", "-c", process.command] if process.command else ["/bin/bash", "-i"]
        try:
            child = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.root,
                env=self._session_env(username),
                start_new_session=True,
            )
        except OSError as exc:
            process.stderr.write(f"cannot start a shell: {exc}\n".encode())
            process.exit(127)
            return
        assert child.stdin and child.stdout and child.stderr
        feeding = asyncio.create_task(_feed(process.stdin, child.stdin))
        try:
            await asyncio.gather(_copy(child.stdout, process.stdout), _copy(child.stderr, process.stderr))
            status = await child.wait()
        finally:
            feeding.cancel()
            if child.returncode is None:
                child.kill()
        process.exit(status if status >= 0 else 128 - status)

    def _sftp(self, chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
        username = str(chan.get_extra_info("username"))
        user = self.users.get(username)
        return _NodeSFTP(chan, self.root, admin=bool(user and user.admin))


class _Server(asyncssh.SSHServer):
    def __init__(self, owner: NodeSshServer) -> None:
        self.owner = owner
        self.conn: asyncssh.SSHServerConnection | None = None
        self.username: str | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None and self.username is not None:
            self.owner.forget(self.username, self.conn)

    def begin_auth(self, username: str) -> bool:
        return True  # every login authenticates

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        user = self.owner.user(username)
        if user is None:
            return False
        return await asyncio.to_thread(user.password_ok, password)

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        user = self.owner.user(username)
        return user is not None and user.key is not None and user.key.public_data == key.public_data

    def auth_completed(self) -> None:
        if self.conn is not None:
            self.username = str(self.conn.get_extra_info("username"))
            self.owner.registered(self.username, self.conn)


class _NodeSFTP(asyncssh.SFTPServer):
    """SFTP inside the node root; the agent's own files are for admin users only."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], root: Path, admin: bool) -> None:
        super().__init__(chan, chroot=str(root).encode())
        self._root = str(root).encode()
        self._admin = admin

    def map_path(self, path: bytes) -> bytes:
        mapped = super().map_path(path)  # normalized: ".." cannot climb out, nor around this check
        if not self._admin:
            first = os.path.relpath(mapped, self._root).split(b"/")[0]
            if first.decode(errors="replace").startswith(PRIVATE_PREFIXES):
                raise asyncssh.SFTPPermissionDenied("Permission denied")
        return mapped


async def _copy(source: asyncio.StreamReader, target: Any) -> None:
    while chunk := await source.read(65536):
        target.write(chunk)
        await target.drain()


async def _feed(source: Any, target: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            target.write(chunk)
            await target.drain()
    except (asyncssh.Error, BrokenPipeError, ConnectionResetError):
        pass
    finally:
        target.close()
