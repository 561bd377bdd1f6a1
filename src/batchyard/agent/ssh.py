"""The node's SSH server (asyncssh): remote login for the node's users only, on a loopback port.

- Users come from the service (`users` messages): name, admin flag, time to live, a scrypt password
  hash and/or an OpenSSH public key. Nothing about them is written to disk.
- A user logs in with the password or the key until the expiry; a deleted or expired user is
  refused, and a deleted user's open connections are closed.
- Sessions run `/bin/bash` (the command, or an interactive shell without a terminal) in the node
  root with the node's AZ_BATCH_* environment.
- Started on the first request for it (remote login settings or users), so idle nodes pay nothing.
  The host key is made at start and kept in memory: it changes when the agent restarts.

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
from typing import Any

import asyncssh

from batchyard.agent.accounts import NodeAccounts, OsAccount, sftp_server

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
                host_key = asyncssh.generate_private_key("ssh-ed25519")
                self._server = await asyncssh.create_server(
                    lambda: _Server(self),
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
        return _ChildSession(self.root, self._session_env(username, account), account)


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

    def session_requested(self) -> asyncssh.SSHServerSession[bytes] | bool:
        return self.owner.session(self.username) if self.username is not None else False

    def auth_completed(self) -> None:
        if self.conn is not None:
            self.username = str(self.conn.get_extra_info("username"))
            self.owner.registered(self.username, self.conn)


class _ChildSession(asyncssh.SSHServerSession[bytes]):
    """One session channel served by a child process (bash, or sftp-server) run as the account.

    SFTP is Debian's sftp-server rather than asyncssh's own: run as the user's uid, the kernel
    decides what it may read and write.
    """

    def __init__(self, root: Path, env: dict[str, str], account: OsAccount) -> None:
        self.root = root
        self.env = env
        self.account = account
        self.argv: list[str] = []
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.child: asyncio.subprocess.Process | None = None
        self.stdin: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.writable = asyncio.Event()
        self.writable.set()
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan

    def shell_requested(self) -> bool:
        self.argv = ["/bin/bash", "-i"]  # no terminal: an interactive shell reading stdin
        return True

    def exec_requested(self, command: str) -> bool:
        self.argv = ["/bin/bash", "-c", command]
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        program = sftp_server()
        if subsystem != "sftp" or program is None:
            return False
        if self.account.uid is not None and not self.account.lookup_env:
            return False  # sftp-server looks its user up: it needs nss_wrapper for our uids
        # -d: start in the node root; -u: what this user makes is theirs alone.
        self.argv = [program, "-d", str(self.root), "-u", "077"]
        return True

    def session_started(self) -> None:
        self.task = asyncio.create_task(self._serve())

    def data_received(self, data: bytes, datatype: int | None) -> None:
        self.stdin.put_nowait(data)
        if self.stdin.qsize() > 16 and self.chan is not None:
            self.chan.pause_reading()  # the child is slower than the client: stop reading the socket

    def eof_received(self) -> bool:
        self.stdin.put_nowait(None)
        return False

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.child is not None and self.child.returncode is None:
            self.child.kill()
        if self.task is not None:
            self.task.cancel()

    async def _serve(self) -> None:
        assert self.chan is not None
        chan = self.chan
        cwd = self.root if self.argv[0] == "/bin/bash" else self.account.home
        try:
            self.child = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=cwd,
                env=self.env,
                start_new_session=True,
                **self.account.spawn_options(),
            )
        except OSError as exc:
            chan.write_stderr(f"cannot start {self.argv[0]}: {exc}\n".encode())
            chan.exit(127)
            return
        child = self.child
        assert child.stdin and child.stdout and child.stderr
        feeding = asyncio.create_task(self._feed(child.stdin))
        try:
            await asyncio.gather(self._pump(child.stdout, chan.write), self._pump(child.stderr, chan.write_stderr))
            status = await child.wait()
        finally:
            feeding.cancel()
        chan.exit(status if status >= 0 else 128 - status)

    async def _pump(self, source: asyncio.StreamReader, write: Callable[[bytes], None]) -> None:
        while chunk := await source.read(65536):
            await self.writable.wait()
            write(chunk)

    async def _feed(self, target: asyncio.StreamWriter) -> None:
        try:
            while (chunk := await self.stdin.get()) is not None:
                target.write(chunk)
                await target.drain()
                if self.stdin.qsize() < 4 and self.chan is not None:
                    self.chan.resume_reading()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            target.close()
