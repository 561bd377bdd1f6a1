"""The agent's file requests (agent/files.py): every request is answered, paths stay in their scope."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from batchyard.agent.files import NodeFiles


@pytest.fixture
def node(tmp_path: Path) -> NodeFiles:
    root = tmp_path / "node"
    task = root / "workitems" / "j1" / "job-1" / "t1"
    (task / "wd").mkdir(parents=True)
    (task / "stdout.txt").write_text("out")
    other = root / "workitems" / "j2" / "job-1" / "t2" / "wd"
    other.mkdir(parents=True)
    (other / "secret.txt").write_text("private")
    (root / "agent.log").write_text("log")
    (task / "wd" / "other").symlink_to(other / "secret.txt")
    (task / "wd" / "node").symlink_to(root)
    return NodeFiles(root.resolve())


TASK = "workitems/j1/job-1/t1"


@pytest.mark.parametrize("name", ["a\x00b", "x" * 5000, "wd/" + "y" * 300])
@pytest.mark.parametrize("op", ["stat", "read", "open", "delete", "list"])
def test_impossible_names_get_an_answer(node: NodeFiles, op: str, name: str) -> None:
    for base in (TASK, ""):
        reply = node.handle({"op": op, "base": base, "path": f"{TASK}/{name}"})
        assert reply["ok"] is False
        assert reply["code"] in ("FileNotFound", "InvalidFilePath")


def test_links_out_of_the_scope_are_not_followed(node: NodeFiles) -> None:
    for path in ("wd/other", "wd/node/agent.log"):
        for op in ("stat", "read", "open"):
            assert node.handle({"op": op, "base": TASK, "path": f"{TASK}/{path}"})["code"] == "FileNotFound"
    reply = node.handle({"op": "read", "base": "", "path": f"{TASK}/wd/other"})  # the node scope: fine
    assert reply["ok"] and base64.b64decode(reply["data"]) == b"private"
    # ... but not into the agent's own entries of the node root, whatever the way there
    assert node.handle({"op": "read", "base": "", "path": f"{TASK}/wd/node/agent.log"})["code"] == "FileNotFound"
    # A scope that is itself a link is refused.
    (node.root / "workitems" / "j3").symlink_to(node.root / "workitems" / "j2")
    reply = node.handle({"op": "stat", "base": "workitems/j3/job-1/t2", "path": "workitems/j3/job-1/t2/wd/secret.txt"})
    assert reply["code"] == "FileNotFound"


def test_the_agents_own_entries_of_the_node_root_are_absent(node: NodeFiles) -> None:
    for name in (".batchyard/blobcache", "users/_azbatch", "home/alice"):
        (node.root / name).mkdir(parents=True)
        (node.root / name / "f.txt").write_text("internal")
    top = {entry["name"] for entry in node.handle({"op": "list", "base": "", "path": ""})["files"]}
    assert top == {"workitems"}
    everything = node.handle({"op": "list", "base": "", "path": "", "recursive": True})["files"]
    assert everything and all(entry["name"].startswith("workitems") for entry in everything)
    for path in ("agent.log", ".batchyard", ".batchyard/blobcache/f.txt", "users/_azbatch/f.txt", "home/alice"):
        for op in ("stat", "read", "open", "list"):
            assert node.handle({"op": op, "base": "", "path": path})["code"] == "FileNotFound", (op, path)
        assert node.handle({"op": "delete", "base": "", "path": path, "recursive": True})["code"] == "FileNotFound"
    assert (node.root / "agent.log").read_text() == "log"
    assert (node.root / ".batchyard/blobcache/f.txt").read_text() == "internal"


def test_delete_removes_links_not_their_targets(node: NodeFiles) -> None:
    assert node.handle({"op": "delete", "base": TASK, "path": f"{TASK}/wd/other"}) == {"ok": True}
    assert node.handle({"op": "delete", "base": TASK, "path": f"{TASK}/wd/node", "recursive": True}) == {"ok": True}
    assert (node.root / "workitems/j2/job-1/t2/wd/secret.txt").read_text() == "private"
    assert (node.root / "agent.log").exists()
    assert not (node.root / TASK / "wd" / "other").is_symlink()
    assert node.handle({"op": "delete", "base": TASK, "path": TASK, "recursive": True})["ok"] is False
    assert (node.root / TASK / "stdout.txt").exists()


def test_listing_pages(node: NodeFiles) -> None:
    for index in range(25):
        (node.root / TASK / "wd" / f"f{index:02d}").write_text("x")
    seen: list[str] = []
    after = None
    while True:
        reply = node.handle({"op": "list", "base": TASK, "path": TASK, "recursive": True, "after": after, "max": 10})
        assert len(reply["files"]) <= 10
        seen += [entry["name"] for entry in reply["files"]]
        after = reply["next"]
        if after is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 25 + 4


def test_an_open_download_reads_the_file_it_opened(node: NodeFiles) -> None:
    path = node.root / TASK / "stdout.txt"
    opened = node.handle({"op": "open", "base": TASK, "path": f"{TASK}/stdout.txt"})
    assert opened["ok"] and opened["size"] == 3
    path.unlink()
    path.write_text("replaced")
    reply = node.handle({"op": "read", "handle": opened["handle"], "offset": 0, "length": 100})
    assert base64.b64decode(reply["data"]) == b"out"
    assert node.handle({"op": "close", "handle": opened["handle"]}) == {"ok": True}
    assert node.handle({"op": "read", "handle": opened["handle"], "offset": 0})["code"] == "FileHandleExpired"


def test_certificates_are_not_installed_through_a_link(tmp_path: Path) -> None:
    from batchyard.agent.certificates import write_into

    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    task = tmp_path / "task"
    task.mkdir()
    (task / "certs").symlink_to(outside)
    with pytest.raises(OSError):
        write_into(task / "certs", [{"thumbprint": "ab", "cert": "PEM", "key": "KEY"}])
    assert list(outside.iterdir()) == [] and outside.stat().st_mode & 0o777 == 0o755
