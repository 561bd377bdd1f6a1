"""Finding and ending the processes a task left running (Linux /proc).

Every task command runs in a session of its own (runner.py), so what it starts in the background
(`cmd &`, `nohup cmd &`) stays in that session. A process that calls setsid leaves it; it is still
found as a descendant of a found process, or by the task directory in its environment
(AZ_BATCH_TASK_DIR, which children inherit). Signals go through pidfds (Linux 5.3+), so a pid that
was reused between finding and signalling is never hit.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["end", "find", "kill_and_wait", "kill_now", "node_processes"]

# Every run of a node has this in its environment (execution.NodeContext.node_env), and so do the
# processes it starts unless they clear their environment.
NODE_ROOT_VARIABLE = "AZ_BATCH_NODE_ROOT_DIR"


@dataclass(frozen=True, slots=True)
class _Proc:
    pid: int
    ppid: int
    pgrp: int
    session: int


def _snapshot() -> list[_Proc]:
    procs: list[_Proc] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
        fields = data[data.rfind(b")") + 2 :].split()
        procs.append(_Proc(int(entry.name), int(fields[1]), int(fields[2]), int(fields[3])))
    return procs


def _has_env(pid: int, entry: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return entry in f.read().split(b"\0")
    except OSError:  # another user's process, or gone
        return False


def find(sessions: set[int], env_entry: bytes | None = None) -> set[int]:
    """Processes in these sessions (or process groups), or with `env_entry` in their environment,
    and all their descendants; never this process."""
    procs = _snapshot()
    found = {p.pid for p in procs if p.session in sessions or p.pgrp in sessions}
    if env_entry is not None:
        found |= {p.pid for p in procs if p.pid not in found and _has_env(p.pid, env_entry)}
    children: dict[int, list[int]] = defaultdict(list)
    for proc in procs:
        children[proc.ppid].append(proc.pid)
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    found.discard(os.getpid())
    return found


def node_processes(root: str) -> set[int]:
    """Every process of a node's runs (the node root in its environment), with all its descendants."""
    return find(set(), f"{NODE_ROOT_VARIABLE}={root}".encode())


async def kill_and_wait(pids: Iterable[int], timeout: float) -> None:
    """SIGKILL now, and wait (at most `timeout` seconds) until they are gone.

    No process may see one of its children die and go on (a shell whose `sleep` was killed first runs
    its next command): whole process groups are killed at once, and the rest parents first.
    """
    wanted = set(pids)
    snapshot = _snapshot()
    procs = [proc for proc in snapshot if proc.pid in wanted]
    members: dict[int, set[int]] = defaultdict(set)
    for proc in snapshot:
        members[proc.pgrp].add(proc.pid)
    for group in {proc.pgrp for proc in procs if proc.pid in wanted}:
        if members[group] <= wanted:  # never a group with a process that is not ours to end
            try:
                os.killpg(group, signal.SIGKILL)
            except OSError:
                pass
    handles = _handles(_parents_first(wanted, procs))
    try:
        _send(handles, signal.SIGKILL)
        await _exited(handles, timeout)
    finally:
        _close(handles)


def _parents_first(pids: set[int], procs: list[_Proc]) -> list[int]:
    """`pids` ordered so that a process comes before its descendants."""
    parent = {proc.pid: proc.ppid for proc in procs}

    def depth(pid: int) -> int:
        steps = 0
        while pid in parent and parent[pid] in pids and steps < len(pids):
            pid = parent[pid]
            steps += 1
        return steps

    return sorted(pids, key=depth)


def _handles(pids: Iterable[int]) -> list[tuple[int, int | None]]:
    """(pid, pidfd) of each process still there; no pidfd where the kernel has none (plain kill then)."""
    handles: list[tuple[int, int | None]] = []
    for pid in pids:
        try:
            handles.append((pid, os.pidfd_open(pid)))
        except ProcessLookupError:
            continue
        except OSError:
            handles.append((pid, None))
    return handles


def _send(handles: list[tuple[int, int | None]], sig: signal.Signals) -> None:
    for pid, fd in handles:
        try:
            if fd is None:
                os.kill(pid, sig)
            else:
                signal.pidfd_send_signal(fd, sig)
        except OSError:
            pass  # exited, or not ours to signal


def _close(handles: list[tuple[int, int | None]]) -> None:
    for _, fd in handles:
        if fd is not None:
            os.close(fd)


def kill_now(pids: Iterable[int]) -> None:
    handles = _handles(pids)
    _send(handles, signal.SIGKILL)
    _close(handles)


async def end(pids: Iterable[int], grace: float) -> None:
    """SIGTERM now, SIGKILL to whatever is still there after `grace` seconds."""
    handles = _handles(pids)
    try:
        _send(handles, signal.SIGTERM)
        await _exited(handles, grace)
        _send(handles, signal.SIGKILL)
    finally:
        _close(handles)


async def _exited(handles: list[tuple[int, int | None]], timeout: float) -> None:
    """Wait until every process has exited (its pidfd becomes readable), or the timeout."""
    if not handles:
        return
    if any(fd is None for _, fd in handles):
        await asyncio.sleep(timeout)  # no way to watch those: give them the whole grace
        return
    loop = asyncio.get_running_loop()
    fds = [fd for _, fd in handles if fd is not None]
    waiters: list[asyncio.Future[None]] = []
    for fd in fds:
        waiter: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _resolve, waiter)
        waiters.append(waiter)
    try:
        await asyncio.wait(waiters, timeout=timeout)
    finally:
        for fd in fds:
            loop.remove_reader(fd)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
