"""Windows command lines on a Linux node, through Wine (README, "Windows pools").

The nodes of a Windows pool (the welcome's osType "windows") run their command lines the Windows way: a
line is split by the Windows rules (CommandLineToArgvW's) and started as `wine <program> <arguments>`. Wine
joins the arguments back into the same Windows command line, so `cmd /c "echo %AZ_BATCH_TASK_ID%"` is run by
Wine's own cmd.exe, which expands the variables. The AZ_BATCH_* directories are given as Wine sees them:
its drive Z: is the host's root, so /srv/node/shared is Z:\\srv\\node\\shared.

Each task user has a Wine prefix (its C: drive and registry) of its own, in its home: Wine refuses a prefix
another user owns. Wine takes many seconds to make one, so the prefix of the pool's default task user is
made as soon as the node is welcomed, and its runs wait for it; other users' prefixes are made by their
first run. On a host without Wine (`wine`, else `wine64`, on the agent's PATH) every run fails with
CommandProgramNotFound, saying so; so does a run whose program Wine cannot find (Wine's exit and message in
stderr.txt tell it apart from the program's own failure), as a Windows node says of a program that is not there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from batchyard.agent.accounts import OsAccount

log = logging.getLogger("batchyard.agent.wine")

WINE_PROGRAMS = ("wine", "wine64")  # Debian's `wine` package has /usr/bin/wine; `wine64` alone has no command
PREFIX_NAME = ".wine"  # in the task user's home, where Wine itself would put it
PREFIX_TIMEOUT = 300.0  # seconds Wine may take to make a prefix (it is slow on a busy host)
# Wine's own diagnostics (fixme:, err:) would otherwise fill the task's stderr.txt.
WINE_SETTINGS = {"WINEDEBUG": "-all"}

NOT_INSTALLED = {
    "category": "usererror",
    "code": "CommandProgramNotFound",
    "message": "The program specified in the task's command line was not found",
    "details": [
        {
            "name": "Message",
            "value": "Windows command lines run through Wine, and this node's host has no Wine "
            "(neither wine nor wine64 is on the agent's PATH): install Debian's wine package.",
        }
    ],
}


# Wine's exits when the program itself cannot be started (ShellExecuteEx's "File not found": 1, said on
# stdout; a path that does not exist, "failed to open": 53, on stderr), with the message it writes before any
# of the program's own output could be there.
NOT_FOUND_EXITS = frozenset({1, 53})
_NOT_FOUND_MESSAGES = ("ShellExecuteEx failed: File not found", "wine: failed to open", "wine: cannot find")
_OUTPUT_HEAD = 4096  # bytes of stdout.txt and stderr.txt read: Wine's message comes first


def program_not_found(exit_code: int | None, *outputs: Path) -> str | None:
    """Wine's message when it could not find the run's program (the run's exit and its stdout.txt or
    stderr.txt say so); None when the program ran (whatever its exit)."""
    if exit_code not in NOT_FOUND_EXITS:
        return None
    lines: list[str] = []
    for path in outputs:
        try:
            with open(path, "rb") as output:
                head = output.read(_OUTPUT_HEAD).decode(errors="replace")
        except OSError:
            continue
        lines += [line.strip() for line in head.splitlines() if line.strip()]
    found = next((line for line in lines if any(line.startswith(m) for m in _NOT_FOUND_MESSAGES)), None)
    if found is None:
        return None
    return f"The program was not found (Wine: {found})"


def find_wine() -> str | None:
    """The Wine program on the agent's PATH, or None."""
    for name in WINE_PROGRAMS:
        if found := shutil.which(name):
            return found
    return None


def split_command_line(command_line: str) -> list[str]:
    """The arguments of a Windows command line, by the rules of CommandLineToArgvW.

    The program name ends at the first blank outside double quotes (quotes only group, backslashes are
    literal). In the arguments: 2n backslashes before a quote are n backslashes and the quote groups;
    2n+1 are n backslashes and a literal quote; other backslashes are literal; "" inside quotes is a quote.
    """
    args: list[str] = []
    text = command_line.lstrip(" \t")
    position, length = 0, len(text)
    # The program name.
    name: list[str] = []
    quoted = False
    while position < length and (quoted or text[position] not in " \t"):
        if text[position] == '"':
            quoted = not quoted
        else:
            name.append(text[position])
        position += 1
    if not text:
        return args
    args.append("".join(name))
    # The arguments.
    while True:
        while position < length and text[position] in " \t":
            position += 1
        if position >= length:
            return args
        current: list[str] = []
        quoted = False
        while position < length and (quoted or text[position] not in " \t"):
            char = text[position]
            if char == "\\":
                run = position
                while run < length and text[run] == "\\":
                    run += 1
                count = run - position
                if run < length and text[run] == '"':
                    current.append("\\" * (count // 2))
                    if count % 2:
                        current.append('"')
                        run += 1
                else:
                    current.append("\\" * count)
                position = run
            elif char == '"':
                if quoted and position + 1 < length and text[position + 1] == '"':
                    current.append('"')
                    position += 2
                else:
                    quoted = not quoted
                    position += 1
            else:
                current.append(char)
                position += 1
        args.append("".join(current))


def windows_path(path: str) -> str:
    """A host path as Wine's programs see it: drive Z: is the host's root."""
    return "Z:" + path.replace("/", "\\")


def windows_environment(env: dict[str, str], account: OsAccount) -> dict[str, str]:
    """The run's environment for Wine: AZ_BATCH_* directories as Windows paths, the user's prefix."""
    out = {
        name: windows_path(value) if name.startswith("AZ_BATCH_") and value.startswith("/") else value
        for name, value in env.items()
    }
    return out | WINE_SETTINGS | wine_places(account, out)


def wine_places(account: OsAccount, env: dict[str, str]) -> dict[str, str]:
    """Where Wine keeps the account's prefix, and its wineserver's socket directory (in TMPDIR): in the
    account's home, which the node's root holds, rather than a directory per user left in the host's /tmp."""
    return {"WINEPREFIX": str(prefix_of(account)), "TMPDIR": env.get("TMPDIR") or str(account.home)}


def prefix_of(account: OsAccount) -> Path:
    return account.home / PREFIX_NAME


def make_home(account: OsAccount) -> None:
    """The home of an account run as the agent's own user, which the node may not have made (the homes of
    other users are made with them, agent/task_users.py)."""
    if account.uid is None:
        account.home.mkdir(parents=True, exist_ok=True)


class WinePrefixes:
    """The node's Wine prefixes: each made once, by one `wineboot --init` that its runs wait for."""

    def __init__(self, wine: str | None) -> None:
        self.wine = wine
        self._making: dict[Path, asyncio.Task[None]] = {}

    def prepare(self, account: OsAccount, env: dict[str, str]) -> None:
        """Start making the account's prefix, unless it is made or being made."""
        prefix = prefix_of(account)
        if self.wine is None or prefix in self._making:
            return
        make_home(account)
        self._making[prefix] = asyncio.get_running_loop().create_task(self._make(account, prefix, env))

    async def ready(self, account: OsAccount) -> None:
        """Wait for the account's prefix, if it is being made (a run without one makes its own)."""
        making = self._making.get(prefix_of(account))
        if making is not None:
            await asyncio.shield(making)

    async def _make(self, account: OsAccount, prefix: Path, env: dict[str, str]) -> None:
        assert self.wine is not None
        if (prefix / "system.reg").is_file():
            return  # made by an earlier agent of this node
        launch = account.launch([self.wine, "wineboot", "--init"], env.get("PATH", os.defpath), str(account.home))
        settings = env | account.lookup_env | WINE_SETTINGS | {"HOME": str(account.home)}
        settings |= wine_places(account, settings)
        options: dict[str, Any] = {}
        if launch.user is not None:
            options = {"user": launch.user, "group": launch.group, "extra_groups": launch.extra_groups}
        process = None
        try:
            process = await asyncio.create_subprocess_exec(
                *launch.argv,
                cwd=account.home,
                env=settings,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                umask=launch.umask,
                **options,
            )
            await asyncio.wait_for(process.wait(), PREFIX_TIMEOUT)
        except (OSError, TimeoutError) as error:  # the runs make the prefix themselves, if they can
            log.warning("the Wine prefix %s could not be made: %r", prefix, error)
            if process is not None and process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
