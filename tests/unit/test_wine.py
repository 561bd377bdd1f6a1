"""Windows command lines and environments for Wine (agent/wine.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchyard.agent import wine
from batchyard.agent.accounts import OsAccount


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ('cmd /c "echo hello world"', ["cmd", "/c", "echo hello world"]),
        ("cmd /c echo %AZ_BATCH_TASK_ID%", ["cmd", "/c", "echo", "%AZ_BATCH_TASK_ID%"]),
        ('"C:\\Program Files\\app.exe" -x', ["C:\\Program Files\\app.exe", "-x"]),
        ("C:\\dir\\app.exe a\\b", ["C:\\dir\\app.exe", "a\\b"]),  # backslashes before no quote are literal
        ('app "a\\"b"', ["app", 'a"b']),  # 2n+1 backslashes: a literal quote
        ('app "a\\\\" b', ["app", "a\\", "b"]),  # 2n backslashes: n, and the quote ends the group
        ('app "say ""hi"""', ["app", 'say "hi"']),  # "" inside quotes is a quote
        ("  app\t a  b ", ["app", "a", "b"]),
        ('app ""', ["app", ""]),
        ("", []),
    ],
)
def test_split_command_line_follows_the_windows_rules(line: str, args: list[str]) -> None:
    assert wine.split_command_line(line) == args


def test_batch_directories_are_windows_paths_on_drive_z() -> None:
    env = {
        "AZ_BATCH_NODE_SHARED_DIR": "/srv/node/shared",
        "AZ_BATCH_TASK_ID": "t1",
        "AZ_BATCH_ACCOUNT_URL": "https://account",
        "PATH": "/usr/bin",
    }
    account = OsAccount(uid=None, home=Path("/srv/node/users/_azbatch"), lookup_env={})
    out = wine.windows_environment(env, account)
    assert out["AZ_BATCH_NODE_SHARED_DIR"] == "Z:\\srv\\node\\shared"
    assert out["AZ_BATCH_TASK_ID"] == "t1" and out["AZ_BATCH_ACCOUNT_URL"] == "https://account"
    assert out["PATH"] == "/usr/bin"  # Wine makes the Windows PATH of its own
    assert out["WINEPREFIX"] == "/srv/node/users/_azbatch/.wine" and out["WINEDEBUG"] == "-all"
    assert out["TMPDIR"] == "/srv/node/users/_azbatch"  # wineserver's directory: not left in the host's /tmp
    assert wine.windows_environment(env | {"TMPDIR": "/scratch"}, account)["TMPDIR"] == "/scratch"


def test_wines_own_not_found_exits_are_told_from_the_programs_failures(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.txt"
    stderr.write_text(
        "Application could not be started, or no application associated with the specified file.\n"
        "ShellExecuteEx failed: File not found.\n"
    )
    assert (
        wine.program_not_found(1, stderr) == "The program was not found (Wine: ShellExecuteEx failed: File not found.)"
    )
    stderr.write_text('wine: failed to open "C:\\\\nothere\\\\prog.exe": c0000135\n')
    assert "failed to open" in (wine.program_not_found(53, stderr) or "")
    assert wine.program_not_found(2, stderr) is None  # another exit: the program ran
    stderr.write_text("the program's own complaint\n")
    assert wine.program_not_found(1, stderr) is None
    assert wine.program_not_found(1, tmp_path / "missing.txt") is None
