"""Process runner of the agent: launch one task command line and watch it (asyncio, Linux only).

Design notes (why it looks like this):

* The command line is split with :func:`shlex.split` and executed WITHOUT a shell, as Azure Batch does on
  Linux (users write ``/bin/bash -c "..."`` when they want one); environment variables are not expanded.
* The child gets exactly ``spec.env`` (nothing inherited), stdin from /dev/null and its stdout/stderr
  attached directly to the files (file descriptors, no Python pipes).
* The child runs in its own session, hence its own process group whose id is its pid; terminate and the
  wall-clock limit signal the whole group (SIGTERM, SIGKILL after a grace period).
* What a command leaves running when it exits is left alone by default. ``session="end"`` kills it at the
  exit (a multi-instance application). ``session="linger"`` keeps it running (a multi-instance coordination
  command starts background services) and leaves the leader unreaped, a zombie, so its pid (the session's
  id) cannot be reused until the owner has ended the session and calls :meth:`RunningProcess.release`.
* We reap the child ourselves with :func:`os.wait4` to get its rusage (which covers the child plus every
  descendant that was waited for). ``subprocess.Popen`` is used only to spawn (it uses vfork on Linux and
  reports exec errors); neither it nor asyncio's child watcher ever waits for the pid. Exit is detected
  through a pidfd registered with the event loop (no thread, no polling); a thread blocked in
  :func:`os.waitid` is the fallback when pidfds are unavailable (kernel < 5.3).
* Exit codes follow what Azure Batch reports for Linux tasks: a normal exit gives the process' exit status,
  a death by signal N gives ``-N`` (e.g. ``-9`` for SIGKILL, see github.com/Azure/Batch/issues/101 where an
  Ubuntu node reported ``-9`` for a SIGKILLed task process). This is also Python's ``returncode``
  convention. Batch's docs only say the code comes from "the process itself or the operating system"
  and that a terminated task "may see an operating system-defined exit code"; mapping a wall-clock expiry
  to another value (Windows nodes show 0xC000013A) is left to the caller, which sees ``timed_out``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from batchyard.agent import proctree, safe_files
from batchyard.agent.accounts import OsAccount

__all__ = ["DEFAULT_KILL_GRACE", "ProcessResult", "ProcessSpec", "RunningProcess", "start_process"]

DEFAULT_KILL_GRACE = 3.0
"""Seconds between SIGTERM and SIGKILL when a process tree is killed."""


@dataclass
class ProcessSpec:
    command_line: str  # split with shlex (POSIX rules), run without a shell, no variable expansion
    cwd: Path  # the task working directory (must exist)
    env: dict[str, str]  # the complete environment of the child; os.environ is not inherited
    stdout_path: Path  # created anew (a link or hard link left at the name is replaced, never written through)
    stderr_path: Path  # created anew
    max_wall_clock: float | None = None  # seconds from start; None = unlimited
    session: Literal["default", "end", "linger"] = "default"  # what becomes of processes it leaves running
    account: OsAccount | None = None  # whom it runs as; None: the agent's own user
    # Called once when the tree is being killed (terminate or wall clock): what the process started outside
    # its process group, such as a container, is stopped by the caller.
    on_kill: Callable[[], None] | None = None


@dataclass
class ProcessResult:
    exit_code: int | None  # None when the process could not start; -N when killed by signal N
    start_time: datetime  # aware UTC
    end_time: datetime  # aware UTC
    timed_out: bool = False  # the tree was killed because of max_wall_clock
    terminated: bool = False  # the tree was killed by RunningProcess.terminate()
    start_error: str | None = None  # why the process could not start, e.g. "No such file or directory: 'x'"
    # Resource usage from wait4(): the child plus all of its descendants that were waited for
    # (orphaned grandchildren are not counted, they are reparented away from the child).
    user_cpu: float = 0.0  # seconds
    kernel_cpu: float = 0.0  # seconds
    max_rss_bytes: int = 0  # largest RSS of the child or any waited-for descendant
    # I/O from /proc/<pid>/io read while the child is a zombie (so it includes waited-for descendants too):
    # rchar/wchar/syscr/syscw, i.e. bytes and calls of read-like/write-like syscalls (files, pipes, sockets,
    # page-cache hits included), like the Windows IO counters Batch reports. 0 if unavailable.
    read_bytes: int = 0
    write_bytes: int = 0
    read_ops: int = 0
    write_ops: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{reason}: {exc.filename!r}" if exc.filename is not None else reason


def _read_proc_io(pid: int) -> dict[str, int]:
    try:
        fd = os.open(f"/proc/{pid}/io", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        data = os.read(fd, 4096)  # seven short lines
    except OSError:
        return {}
    finally:
        os.close(fd)
    counters: dict[str, int] = {}
    for line in data.splitlines():
        name, _, value = line.partition(b":")
        try:
            counters[name.decode()] = int(value)
        except ValueError:
            continue
    return counters


class RunningProcess:
    """A started (or failed-to-start) task process. Reaped automatically even if nobody awaits wait()."""

    pid: int  # also the process group id; 0 when the process could not be started

    def __init__(self, pid: int, start_time: datetime, kill_grace: float, session: str = "default") -> None:
        self.pid = pid
        self.session = session
        self.lingering = False  # exited, its result given, but still a zombie holding its session's id
        self._loop = asyncio.get_running_loop()
        self._start_time = start_time
        self._kill_grace = kill_grace
        self._done: asyncio.Future[ProcessResult] = self._loop.create_future()
        self._popen: subprocess.Popen[bytes] | None = None
        self._pidfd: int | None = None
        self._wall_timer: asyncio.TimerHandle | None = None
        self._kill_timer: asyncio.TimerHandle | None = None
        self._killing = False
        self._on_kill: Callable[[], None] | None = None
        self._timed_out = False
        self._terminated = False

    # -- public API -------------------------------------------------------------------------------

    async def wait(self) -> ProcessResult:
        """Wait for the process to end; never raises for process failures. Safe to call several times."""
        # shield: cancelling a waiter must not cancel the shared result
        return await asyncio.shield(self._done)

    def terminate(self) -> None:
        """Kill the whole process group: SIGTERM now, SIGKILL after the grace period. No-op once ended."""
        if self._done.done() or self._killing:
            return
        self._terminated = True
        self._kill_tree()

    # -- internals ----------------------------------------------------------------------------------

    def _fail(self, error: str) -> None:
        self._done.set_result(
            ProcessResult(exit_code=None, start_time=self._start_time, end_time=_now(), start_error=error)
        )

    def release(self) -> None:
        """Reap a lingering leader once its session has been ended; its pid may be reused from then on."""
        if self.lingering:
            self.lingering = False
            try:
                os.wait4(self.pid, 0)
            except ChildProcessError:
                pass

    def _watch(self, popen: subprocess.Popen[bytes], max_wall_clock: float | None) -> None:
        self._popen = popen
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            # No pidfd (old kernel/Python): one thread per process blocked in waitid, which does not reap.
            threading.Thread(target=self._wait_in_thread, name=f"reap-{self.pid}", daemon=True).start()
        else:
            self._loop.add_reader(self._pidfd, self._on_pidfd_readable)
        if max_wall_clock is not None:
            self._wall_timer = self._loop.call_later(max_wall_clock, self._on_wall_clock)

    def _on_pidfd_readable(self) -> None:
        # The pidfd becomes readable once the process has exited; check without reaping (WNOWAIT) so that
        # /proc/<pid>/io is still readable and the pgid cannot be recycled before stragglers are killed.
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
            if info is None:
                return
        except ChildProcessError:
            info = None  # reaped behind our back (a waitpid(-1) child watcher?): _reap reports it
        assert self._pidfd is not None
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        self._reap(info)

    def _wait_in_thread(self) -> None:
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
            self._loop.call_soon_threadsafe(self._reap, info)
        except (OSError, RuntimeError):  # loop already closed: nobody is interested any more
            pass

    def _reap(self, info: os.waitid_result | None) -> None:
        io = _read_proc_io(self.pid)
        if self._killing:
            # The leader (the task) is gone during a kill: hard-kill leftovers of the group now rather than
            # after the grace period, so nothing outlives the result (nor the loop, which may close next).
            self._signal_group(signal.SIGKILL)
        elif self.session == "end":
            proctree.kill_now(proctree.find({self.pid}))  # the zombie leader keeps the session id ours
        for timer in (self._wall_timer, self._kill_timer):
            if timer is not None:
                timer.cancel()
        if self._popen is not None:
            self._popen.returncode = 0  # Popen must never try to wait for this (soon recyclable) pid
        if self.session == "linger" and not self._killing and info is not None:
            self._linger(info, io)
            return
        try:
            _, status, usage = os.wait4(self.pid, 0)
        except ChildProcessError:
            self._fail("the process was reaped by someone else; exit code unknown")
            return
        exit_code = os.waitstatus_to_exitcode(status)
        self._done.set_result(
            ProcessResult(
                exit_code=exit_code,
                start_time=self._start_time,
                end_time=_now(),
                timed_out=self._timed_out,
                terminated=self._terminated,
                user_cpu=usage.ru_utime,
                kernel_cpu=usage.ru_stime,
                max_rss_bytes=usage.ru_maxrss * 1024,  # KiB on Linux
                read_bytes=io.get("rchar", 0),
                write_bytes=io.get("wchar", 0),
                read_ops=io.get("syscr", 0),
                write_ops=io.get("syscw", 0),
            )
        )

    def _linger(self, info: os.waitid_result, io: dict[str, int]) -> None:
        """Give the result but keep the zombie (no wait4, hence no rusage: the CPU figures stay 0)."""
        self.lingering = True
        status = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
        self._done.set_result(
            ProcessResult(
                exit_code=status,
                start_time=self._start_time,
                end_time=_now(),
                read_bytes=io.get("rchar", 0),
                write_bytes=io.get("wchar", 0),
                read_ops=io.get("syscr", 0),
                write_ops=io.get("syscw", 0),
            )
        )

    def _on_wall_clock(self) -> None:
        if self._done.done() or self._killing:
            return
        self._timed_out = True
        self._kill_tree()

    def _kill_tree(self) -> None:
        self._killing = True
        if self._on_kill is not None:
            self._on_kill()
        self._signal_group(signal.SIGTERM)
        self._kill_timer = self._loop.call_later(self._kill_grace, self._signal_group, signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        # Only called while the leader is unreaped, so the pgid (= its pid) is still ours.
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


# Characters that mean nothing to shlex (POSIX mode, whitespace-split, no comments): a command line made
# of these and its four whitespace characters splits as str.split() splits it.
_PLAIN_COMMAND_LINE = re.compile(r"[A-Za-z0-9_@%+=:,./#\-~ \t\r\n]*")


def split_command_line(command_line: str) -> list[str]:
    """shlex.split(command_line), without shlex's character-by-character loop for the plain case."""
    if _PLAIN_COMMAND_LINE.fullmatch(command_line):
        return command_line.split()
    return shlex.split(command_line)


_dev_null_fd: int | None = None


def _dev_null() -> int:
    """/dev/null, opened once for every child's stdin (Popen's DEVNULL opens and closes it per process)."""
    global _dev_null_fd
    if _dev_null_fd is None:
        _dev_null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _dev_null_fd


async def start_process(spec: ProcessSpec, *, kill_grace: float = DEFAULT_KILL_GRACE) -> RunningProcess:
    """Start ``spec`` and return at once. Start failures (bad syntax, missing or non-executable program,
    missing cwd, unwritable output files) do not raise: the returned process' wait() reports them."""
    start_time = _now()
    fds: list[int] = []
    try:
        # An earlier attempt may have left links at these names: never truncate or write through them.
        fds = safe_files.create_all((spec.stdout_path, spec.stderr_path))
        argv = split_command_line(spec.command_line)
        if not argv:
            raise ValueError("empty command line")
        launch = spec.account.launch(argv, spec.env.get("PATH", os.defpath), str(spec.cwd)) if spec.account else None
        popen = subprocess.Popen(
            launch.argv if launch else argv,
            cwd=spec.cwd,
            env=spec.env,
            stdin=_dev_null(),
            stdout=fds[0],
            stderr=fds[1],
            close_fds=True,
            start_new_session=True,  # own session and process group, so the whole tree can be killed
            user=launch.user if launch else None,
            group=launch.group if launch else None,
            extra_groups=launch.extra_groups if launch else None,
            umask=launch.umask if launch else -1,
        )
    except OSError as exc:
        proc = RunningProcess(0, start_time, kill_grace)
        proc._fail(_describe_os_error(exc))
        return proc
    except (ValueError, subprocess.SubprocessError) as exc:  # e.g. "No closing quotation", NUL in env
        proc = RunningProcess(0, start_time, kill_grace)
        proc._fail(str(exc) or type(exc).__name__)
        return proc
    finally:
        for fd in fds:
            os.close(fd)  # the child has its own copies
    proc = RunningProcess(popen.pid, start_time, kill_grace, spec.session)
    proc._on_kill = spec.on_kill
    proc._watch(popen, spec.max_wall_clock)
    return proc
