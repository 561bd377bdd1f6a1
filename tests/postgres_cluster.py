"""A real PostgreSQL cluster for the tests: Debian's server binaries (scripts/test.sh installs the package),
a cluster made by initdb in a temporary directory, listening on a free loopback port, stopped at the end.

As root the server runs as the `postgres` user (it refuses to run as root).

The tests' choice of store (`--store`) and their one shared cluster live here, not in conftest.py: pytest
loads tests/conftest.py as `conftest` while test modules import it as `tests.conftest`, two modules with
globals of their own; this module is imported once, under one name, by both.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from itertools import count
from pathlib import Path

_SUPERUSER = "batchyard"


class _Shared:
    store = "sqlite"  # what the services the tests start keep their state in: "sqlite" or "postgresql"
    cluster: PostgresCluster | None = None


def choose_store(store: str) -> None:
    _Shared.store = store


def chosen_store() -> str:
    return _Shared.store


def shared_cluster() -> PostgresCluster:
    """The tests' PostgreSQL cluster, started on first use (stop_shared_cluster ends it)."""
    if _Shared.cluster is None:
        bindir = server_binaries()
        if bindir is None:
            import pytest

            pytest.fail("PostgreSQL is not installed: scripts/test.sh installs Debian's postgresql package")
        _Shared.cluster = PostgresCluster(bindir)
    return _Shared.cluster


def stop_shared_cluster() -> None:
    if _Shared.cluster is not None:
        _Shared.cluster.stop()
        _Shared.cluster = None


def server_binaries() -> Path | None:
    """The newest installed server's bin directory (/usr/lib/postgresql/N/bin), if any."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="batchyard-pg-"))
        self.port = _free_port()
        self._names = count(1)
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", _SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C")
        self._options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=200"
        self._pg_ctl("start")

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "db") -> str:
        """A fresh, empty database's URL."""
        import psycopg  # here: the legacy SDK's environment (tests/legacy) has no PostgreSQL driver

        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def restart(self) -> None:
        """Stop the server (its clients' connections end) and start it again on the same port."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        try:
            self._pg_ctl("stop", "-m", "fast")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, action: str, *args: str) -> None:
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", self._options, "-w", action, *args)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n{self.log()}")
