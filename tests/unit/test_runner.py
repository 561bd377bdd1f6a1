"""Unit tests of the agent's process runner (real processes, Linux only)."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from batchyard.agent import runner
from batchyard.agent.runner import ProcessResult, ProcessSpec, RunningProcess, start_process

T = TypeVar("T")

PATH_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}

# Kill tests: orphaned grandchildren are reaped by PID 1, which can be slow in containers (~2 s here), and a
# process group stays visible to kill(2) while it has zombies. So "nothing alive" is checked strictly via
# /proc right away, and "group gone" (os.killpg(pgid, 0) -> ProcessLookupError) with a generous deadline.
GROUP_GONE_DEADLINE = 10.0


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def make_spec(tmp_path: Path, command_line: str, env: dict[str, str] | None = None, **kw: Any) -> ProcessSpec:
    return ProcessSpec(
        command_line=command_line,
        cwd=tmp_path,
        env=PATH_ENV if env is None else env,
        stdout_path=tmp_path / "stdout.txt",
        stderr_path=tmp_path / "stderr.txt",
        **kw,
    )


async def run_spec(spec: ProcessSpec, **kw: Any) -> ProcessResult:
    proc = await start_process(spec, **kw)
    return await proc.wait()


def live_group_members(pgid: int) -> list[int]:
    """Pids of non-zombie processes whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry))
    return members


def assert_group_dead(pgid: int) -> None:
    # Signals are delivered asynchronously (a SIGKILLed process dies when next scheduled): allow a moment.
    deadline = time.monotonic() + 2.0
    while live_group_members(pgid):
        assert time.monotonic() < deadline, f"live processes left in group {pgid}: {live_group_members(pgid)}"
        time.sleep(0.01)
    deadline = time.monotonic() + GROUP_GONE_DEADLINE
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"process group {pgid} still exists"
        time.sleep(0.05)


async def wait_for_file_text(path: Path, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        await asyncio.sleep(0.02)


# -- exit codes and output ---------------------------------------------------------------------------


def test_exit_code_zero(tmp_path: Path) -> None:
    result = run(run_spec(make_spec(tmp_path, "/bin/true")))
    assert result.exit_code == 0
    assert result.start_error is None
    assert not result.timed_out and not result.terminated
    assert result.start_time.tzinfo is not None and result.end_time.tzinfo is not None
    assert result.start_time <= result.end_time


def test_exit_code_nonzero(tmp_path: Path) -> None:
    result = run(run_spec(make_spec(tmp_path, "/bin/sh -c 'exit 3'")))
    assert result.exit_code == 3
    assert result.start_error is None


def test_killed_by_signal_reports_negative_signal_number(tmp_path: Path) -> None:
    result = run(run_spec(make_spec(tmp_path, "/bin/sh -c 'kill -9 $$'")))
    assert result.exit_code == -signal.SIGKILL


def test_stdout_and_stderr_go_to_files(tmp_path: Path) -> None:
    (tmp_path / "stdout.txt").write_text("old content that must be truncated\n")
    result = run(run_spec(make_spec(tmp_path, "/bin/sh -c 'echo out; echo err >&2'")))
    assert result.exit_code == 0
    assert (tmp_path / "stdout.txt").read_text() == "out\n"
    assert (tmp_path / "stderr.txt").read_text() == "err\n"


def test_output_files_left_as_links_are_replaced_not_written_through(tmp_path: Path) -> None:
    # An earlier attempt left stdout.txt as a symbolic link and stderr.txt as a hard link to outside files.
    outside = tmp_path / "outside"
    outside.mkdir()
    task = tmp_path / "task"
    task.mkdir()
    (outside / "victim.txt").write_text("keep me\n")
    (outside / "victim2.txt").write_text("keep me too\n")
    (task / "stdout.txt").symlink_to(outside / "victim.txt")
    os.link(outside / "victim2.txt", task / "stderr.txt")
    result = run(run_spec(make_spec(task, "/bin/sh -c 'echo out; echo err >&2'")))
    assert result.exit_code == 0, result.start_error
    assert (outside / "victim.txt").read_text() == "keep me\n"
    assert (outside / "victim2.txt").read_text() == "keep me too\n"
    assert not (task / "stdout.txt").is_symlink()
    assert (task / "stdout.txt").read_text() == "out\n"
    assert (task / "stderr.txt").read_text() == "err\n"


def test_stdout_and_stderr_may_be_in_different_directories(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    spec = make_spec(tmp_path, "/bin/sh -c 'echo out; echo err >&2'")
    spec.stdout_path = tmp_path / "out" / "stdout.txt"
    result = run(run_spec(spec))
    assert result.exit_code == 0, result.start_error
    assert (tmp_path / "out" / "stdout.txt").read_text() == "out\n"
    assert (tmp_path / "stderr.txt").read_text() == "err\n"


def test_an_output_file_that_cannot_be_made_fails_the_start_and_leaves_no_descriptor_open(tmp_path: Path) -> None:
    (tmp_path / "stderr.txt").mkdir()  # a directory where stderr.txt goes: it cannot be replaced
    before = set(os.listdir("/proc/self/fd"))
    result = run(run_spec(make_spec(tmp_path, "/bin/true")))
    assert result.exit_code is None and result.start_error is not None
    assert set(os.listdir("/proc/self/fd")) <= before


@pytest.mark.parametrize(
    "command_line",
    [
        "/bin/true",
        "  /bin/echo  a\tb\r\nc  ",
        "",
        "python3 -c 'print(1)'",
        'sh -c "echo $HOME"',
        "echo a\\ b",
        "echo #not-a-comment ~/x a=b,c:d@e%f+g",
        "echo a\x0bb",  # a vertical tab: whitespace to str.split(), not to shlex
        "echo caf\u00e9\u00a0x",  # a no-break space: the same
    ],
)
def test_command_lines_split_as_shlex_splits_them(command_line: str) -> None:
    assert runner.split_command_line(command_line) == shlex.split(command_line)


def test_environment_is_exactly_the_given_one(tmp_path: Path) -> None:
    env = {"FOO": "bar baz", "AZ_BATCH_TASK_ID": "t1"}
    result = run(run_spec(make_spec(tmp_path, "/usr/bin/env", env=env)))
    assert result.exit_code == 0
    lines = (tmp_path / "stdout.txt").read_text().splitlines()
    assert sorted(lines) == ["AZ_BATCH_TASK_ID=t1", "FOO=bar baz"]


def test_runs_in_cwd_and_resolves_program_with_given_path(tmp_path: Path) -> None:
    result = run(run_spec(make_spec(tmp_path, "pwd")))
    assert result.exit_code == 0
    assert (tmp_path / "stdout.txt").read_text() == f"{tmp_path}\n"


def test_no_shell_and_no_variable_expansion(tmp_path: Path) -> None:
    env = {**PATH_ENV, "HOME": "/should/not/appear"}
    result = run(run_spec(make_spec(tmp_path, "echo $HOME; ls *", env=env)))
    assert result.exit_code == 0
    assert (tmp_path / "stdout.txt").read_text() == "$HOME; ls *\n"


def test_quoted_arguments(tmp_path: Path) -> None:
    result = run(run_spec(make_spec(tmp_path, """/usr/bin/printf '%s|' "a b" 'c"d' e\\ f '' "x'y" """)))
    assert result.exit_code == 0
    assert (tmp_path / "stdout.txt").read_text() == "a b|c\"d|e f||x'y|"


# -- start failures ------------------------------------------------------------------------------------


def test_missing_executable(tmp_path: Path) -> None:
    async def scenario() -> tuple[RunningProcess, ProcessResult]:
        proc = await start_process(make_spec(tmp_path, "no-such-program-xyz --flag"))
        proc.terminate()  # must be a harmless no-op
        return proc, await proc.wait()

    proc, result = run(scenario())
    assert proc.pid == 0
    assert result.exit_code is None
    assert result.start_error == "No such file or directory: 'no-such-program-xyz'"
    assert (tmp_path / "stdout.txt").exists() and (tmp_path / "stderr.txt").exists()


def test_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = run(run_spec(make_spec(tmp_path, "./script.sh")))
    assert result.exit_code is None
    assert result.start_error is not None and "Permission denied" in result.start_error


def test_unbalanced_quotes(tmp_path: Path) -> None:
    result = run(run_spec(make_spec(tmp_path, '/bin/echo "abc')))
    assert result.exit_code is None
    assert result.start_error == "No closing quotation"


def test_empty_command_line(tmp_path: Path) -> None:
    result = run(run_spec(make_spec(tmp_path, "   ")))
    assert result.exit_code is None
    assert result.start_error == "empty command line"


def test_missing_working_directory(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "/bin/true")
    spec.cwd = tmp_path / "missing"
    result = run(run_spec(spec))
    assert result.exit_code is None
    assert result.start_error is not None and "No such file or directory" in result.start_error


# -- killing ---------------------------------------------------------------------------------------------


def test_wall_clock_timeout_kills_the_tree(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "/bin/bash -c 'sleep 100 & sleep 100'", max_wall_clock=0.3)

    async def scenario() -> tuple[int, ProcessResult, float]:
        t0 = time.monotonic()
        proc = await start_process(spec, kill_grace=5.0)
        result = await proc.wait()
        return proc.pid, result, time.monotonic() - t0

    pgid, result, elapsed = run(scenario())
    assert result.timed_out and not result.terminated
    assert result.exit_code == -signal.SIGTERM
    assert 0.3 <= elapsed < 5.0  # SIGTERM was enough: no wait for the grace period
    assert_group_dead(pgid)


def test_terminate_kills_grandchildren_that_ignore_sigterm(tmp_path: Path) -> None:
    # The subshell's sleep inherits the ignored SIGTERM; the leader bash dies of SIGTERM.
    spec = make_spec(tmp_path, """/bin/bash -c "(trap '' TERM; echo ready; sleep 100) & sleep 100" """)

    async def scenario() -> tuple[int, ProcessResult]:
        proc = await start_process(spec, kill_grace=5.0)
        await wait_for_file_text(tmp_path / "stdout.txt", "ready")
        proc.terminate()
        return proc.pid, await asyncio.wait_for(proc.wait(), 4.0)  # leftovers killed without the grace

    pgid, result = run(scenario())
    assert result.terminated and not result.timed_out
    assert result.exit_code == -signal.SIGTERM
    assert_group_dead(pgid)


def test_leader_trapping_sigterm_gets_sigkilled(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, """/bin/bash -c "trap '' TERM; echo ready; sleep 100; :" """)

    async def scenario() -> tuple[int, ProcessResult, float]:
        proc = await start_process(spec, kill_grace=0.5)
        await wait_for_file_text(tmp_path / "stdout.txt", "ready")
        t0 = time.monotonic()
        proc.terminate()
        proc.terminate()  # idempotent
        result = await proc.wait()
        return proc.pid, result, time.monotonic() - t0

    pgid, result, elapsed = run(scenario())
    assert result.terminated
    assert result.exit_code == -signal.SIGKILL
    assert elapsed >= 0.45
    assert_group_dead(pgid)


# -- accounting and lifecycle -------------------------------------------------------------------------------


def test_rusage_of_busy_loop(tmp_path: Path) -> None:
    code = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2:\n    pass\n"
    result = run(run_spec(make_spec(tmp_path, shlex.join([sys.executable, "-c", code]))))
    assert result.exit_code == 0
    assert result.user_cpu + result.kernel_cpu >= 0.15
    assert result.user_cpu > 0
    assert result.max_rss_bytes > 1024 * 1024
    assert result.read_bytes > 0 and result.read_ops > 0  # the interpreter read its modules


def test_io_counters_include_waited_for_children(tmp_path: Path) -> None:
    cmd = "/bin/sh -c 'head -c 300000 /dev/zero > /dev/null'"
    result = run(run_spec(make_spec(tmp_path, cmd)))
    assert result.exit_code == 0
    assert result.write_bytes >= 300000 and result.write_ops > 0


def test_reaped_without_wait_and_wait_is_repeatable(tmp_path: Path) -> None:
    async def scenario() -> None:
        proc = await start_process(make_spec(tmp_path, "/bin/true"))
        waiter = asyncio.ensure_future(proc.wait())
        await asyncio.sleep(0)
        waiter.cancel()  # cancelling one waiter must not cancel the result
        deadline = time.monotonic() + 5
        while True:  # reaped by the runner itself: no zombie left (WNOWAIT: look, do not reap)
            try:
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        first = await proc.wait()
        assert first.exit_code == 0
        assert await proc.wait() is first

    run(scenario())


def test_throughput_many_short_tasks(tmp_path: Path) -> None:
    count, parallel = 200, 8
    sem = asyncio.Semaphore(parallel)

    async def one(i: int) -> int | None:
        task_dir = tmp_path / f"t{i}"
        task_dir.mkdir()
        async with sem:
            return (await run_spec(make_spec(task_dir, "/bin/true"))).exit_code

    async def scenario() -> list[int | None]:
        return await asyncio.gather(*(one(i) for i in range(count)))

    threads_before, fds_before = threading.active_count(), len(os.listdir("/proc/self/fd"))
    t0 = time.monotonic()
    codes = run(scenario())
    elapsed = time.monotonic() - t0
    assert codes == [0] * count
    assert threading.active_count() == threads_before  # pidfd path: no per-task threads
    assert len(os.listdir("/proc/self/fd")) == fds_before  # pidfds and output files closed
    print(f"\n{count} x /bin/true, {parallel} at a time: {elapsed:.2f} s, {count / elapsed:.0f} tasks/s")


def test_terminate_after_exit_is_noop(tmp_path: Path) -> None:
    async def scenario() -> ProcessResult:
        proc = await start_process(make_spec(tmp_path, "/bin/true"), kill_grace=0.2)
        result = await proc.wait()
        proc.terminate()
        return result

    result = run(scenario())
    assert result.exit_code == 0 and not result.terminated


def test_thread_fallback_without_pidfd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(runner.os, "pidfd_open", no_pidfd)

    async def scenario() -> tuple[ProcessResult, ProcessResult]:
        exited = await run_spec(make_spec(tmp_path, "/bin/sh -c 'exit 3'"))
        proc = await start_process(make_spec(tmp_path, "/bin/sleep 100"), kill_grace=1.0)
        await asyncio.sleep(0.05)
        proc.terminate()
        return exited, await proc.wait()

    exited, killed = run(scenario())
    assert exited.exit_code == 3 and exited.user_cpu + exited.kernel_cpu >= 0
    assert killed.terminated and killed.exit_code == -signal.SIGTERM


# -- what a command leaves running (multi-instance tasks) -----------------------------------------------


def process_state(pid: int) -> str | None:
    """The /proc state letter of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def wait_gone_or_zombie(pid: int) -> None:
    deadline = time.monotonic() + 2.0
    while process_state(pid) not in (None, "Z", "X"):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.01)


BACKGROUND = "/bin/sh -c 'sleep 100 & echo $! > bg.pid; exit 3'"


def test_default_session_leaves_background_processes_alone(tmp_path: Path) -> None:
    result = run(run_spec(make_spec(tmp_path, BACKGROUND)))
    pid = int((tmp_path / "bg.pid").read_text())
    try:
        assert result.exit_code == 3 and process_state(pid) not in (None, "Z", "X")
    finally:
        os.kill(pid, signal.SIGKILL)


def test_session_end_kills_what_the_command_left_running(tmp_path: Path) -> None:
    result = run(run_spec(make_spec(tmp_path, BACKGROUND, session="end")))
    assert result.exit_code == 3
    wait_gone_or_zombie(int((tmp_path / "bg.pid").read_text()))


def test_session_linger_keeps_the_session_until_it_is_ended(tmp_path: Path) -> None:
    from batchyard.agent import proctree

    async def scenario() -> tuple[RunningProcess, ProcessResult]:
        proc = await start_process(make_spec(tmp_path, BACKGROUND, session="linger"))
        return proc, await proc.wait()

    proc, result = run(scenario())
    background = int((tmp_path / "bg.pid").read_text())
    assert result.exit_code == 3 and proc.lingering
    assert process_state(proc.pid) == "Z"  # unreaped: its pid, the session id, cannot be reused
    assert process_state(background) not in (None, "Z", "X")
    assert background in proctree.find({proc.pid})
    proctree.kill_now(proctree.find({proc.pid}))
    proc.release()
    assert process_state(proc.pid) is None and not proc.lingering
    wait_gone_or_zombie(background)
