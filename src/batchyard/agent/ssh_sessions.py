"""The node's SSH server's asyncssh classes: a connection's authentication and its sessions (shell, command,
SFTP), as the node's users (ssh.py starts the server and holds the users; this module is imported with
the server, so an idle node never loads asyncssh)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from batchyard.agent.accounts import OsAccount, sftp_server

if TYPE_CHECKING:
    from batchyard.agent.ssh import NodeSshServer

log = logging.getLogger("batchyard.agent.ssh")


class SessionServer(asyncssh.SSHServer):
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


class ChildSession(asyncssh.SSHServerSession[bytes]):
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
