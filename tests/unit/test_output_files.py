"""Output file patterns (agent/output_files.py) and the agent's transfers against a fake blob server:
container listings whose names try to escape, the per-node blob cache, and upload conditions."""

from __future__ import annotations

import asyncio
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchyard.agent.output_files import blob_name, expand, match, should_upload, upload_outputs
from batchyard.agent.resource_files import DownloadError, download_resource_files
from batchyard.agent.transfer import BlobCache


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    wd = tmp_path / "task" / "wd"
    (wd / "a" / "b").mkdir(parents=True)
    (wd / ".hidden").mkdir()
    for name in ("x.txt", "y.txt", "a/z.txt", "a/b/deep.txt", ".hidden/h.txt", ".dot.txt", "img1.png", "imgA.png"):
        (wd / name).write_text(name)
    (tmp_path / "task" / "stdout.txt").write_text("out")
    (tmp_path / "task" / "stderr.txt").write_text("err")
    (tmp_path / "secret.txt").write_text("secret")
    (wd / "link.txt").symlink_to(tmp_path / "secret.txt")
    return tmp_path / "task"


def names(pattern: str, task_dir: Path) -> list[str]:
    found, _ = match(pattern, task_dir / "wd", task_dir)
    return sorted(relative for _, relative in found)


def test_patterns(task_dir: Path) -> None:
    assert names("*.txt", task_dir) == ["x.txt", "y.txt"]  # no dot files, no links out
    assert names("**/*.txt", task_dir) == ["a/b/deep.txt", "a/z.txt", "x.txt", "y.txt"]
    assert names("a/**/*.txt", task_dir) == ["b/deep.txt", "z.txt"]
    assert names(".*.txt", task_dir) == [".dot.txt"]
    assert names("?.txt", task_dir) == ["x.txt", "y.txt"]
    assert names("img[0-9].png", task_dir) == ["img1.png"]
    assert names("img[!0-9].png", task_dir) == ["imgA.png"]
    assert names("../std*.txt", task_dir) == ["stderr.txt", "stdout.txt"]
    assert names(str(task_dir / "wd" / "a" / "*.txt"), task_dir) == ["z.txt"]  # absolute, inside the task dir
    assert names("x.txt", task_dir) == ["x.txt"] and names("missing.txt", task_dir) == []
    assert names("link.txt", task_dir) == []


def test_patterns_outside_the_task_directory_are_refused(task_dir: Path) -> None:
    from batchyard.agent.output_files import UploadError

    for pattern in ("../../secret.txt", "/etc/*", "../../*"):
        with pytest.raises(UploadError):
            match(pattern, task_dir / "wd", task_dir)


def test_blob_names_expansion_and_conditions() -> None:
    assert blob_name(None, "x.txt", False) == "x.txt"
    assert blob_name("out/result.txt", "x.txt", False) == "out/result.txt"
    assert blob_name("logs/", "a/b.txt", True) == "logs/a/b.txt"
    assert expand("$AZ_BATCH_TASK_DIR/${NAME}.txt", {"AZ_BATCH_TASK_DIR": "/t", "NAME": "n"}) == "/t/n.txt"
    conditions = ("tasksuccess", "taskfailure", "taskcompletion", None)
    decisions = [should_upload(condition, ok) for condition in conditions for ok in (True, False)]
    assert decisions == [True, False, False, True, True, True, True, True]


class FakeStorage(http.server.ThreadingHTTPServer):
    """A container that lists what `listing` says, serves `blobs` with ETags and records uploads."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.listing: list[str] = []
        self.blobs: dict[str, bytes] = {}
        self.full_gets = 0
        self.uploads: dict[str, bytes] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/c?sig=secret"


class Handler(http.server.BaseHTTPRequestHandler):
    server: FakeStorage

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        path, _, query = self.path.partition("?")
        if "comp=list" in query:
            body = "".join(f"<Blob><Name>{n}</Name></Blob>" for n in self.server.listing)
            self._reply(200, f"<EnumerationResults><Blobs>{body}</Blobs><NextMarker/></EnumerationResults>".encode())
            return
        name = path.removeprefix("/c/")
        if name not in self.server.blobs:
            self._reply(404, b"")
            return
        if self.headers.get("If-None-Match") == '"v1"':
            self._reply(304, b"")
            return
        self.server.full_gets += 1
        self._reply(200, self.server.blobs[name], {"ETag": '"v1"'})

    def do_PUT(self) -> None:  # noqa: N802
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.uploads[self.path.partition("?")[0]] = data
        self._reply(201, b"")

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def fake() -> Iterator[FakeStorage]:
    server = FakeStorage()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_listed_names_that_escape_fail_before_anything_is_written(fake: FakeStorage, tmp_path: Path) -> None:
    fake.listing = ["ok.txt", "../../escaped.txt"]
    fake.blobs = {"ok.txt": b"ok", "../../escaped.txt": b"bad"}
    wd = tmp_path / "wd"
    wd.mkdir()
    with pytest.raises(DownloadError) as raised:
        asyncio.run(download_resource_files([{"storageContainerUrl": fake.url}], wd))
    assert raised.value.failure["code"] == "ResourceFileCreateFailed"
    assert "escaped.txt" in raised.value.failure["message"]
    assert not (tmp_path / "escaped.txt").exists() and not (wd / "ok.txt").exists()
    assert "secret" not in str(raised.value.failure)  # no SAS in failure details


def test_the_blob_cache_fetches_a_shared_blob_once(fake: FakeStorage, tmp_path: Path) -> None:
    fake.blobs = {"big.bin": b"x" * 100_000}
    cache = BlobCache(tmp_path / "cache")
    for index in range(3):
        wd = tmp_path / f"wd{index}"
        wd.mkdir()
        url = fake.url.replace("/c?", "/c/big.bin?")
        asyncio.run(download_resource_files([{"httpUrl": url, "filePath": "in/big.bin"}], wd, cache))
        assert (wd / "in" / "big.bin").read_bytes() == b"x" * 100_000
    assert fake.full_gets == 1


def test_uploads_and_logs(fake: FakeStorage, task_dir: Path) -> None:
    outputs = [
        {"filePattern": "**/*.txt", "destination": {"container": {"containerUrl": fake.url, "path": "run1"}}},
        {
            "filePattern": "../stdout.txt",
            "destination": {"container": {"containerUrl": fake.url}},
            "uploadOptions": {"uploadCondition": "taskfailure"},
        },
    ]
    assert upload_outputs(outputs, task_dir / "wd", task_dir, {}, succeeded=True) is None
    assert sorted(fake.uploads) == ["/c/run1/a/b/deep.txt", "/c/run1/a/z.txt", "/c/run1/x.txt", "/c/run1/y.txt"]
    assert fake.uploads["/c/run1/a/z.txt"] == b"a/z.txt"
    assert "uploading" in (task_dir / "fileuploadout.txt").read_text()
    assert "sig=secret" not in (task_dir / "fileuploadout.txt").read_text()


@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_downloads_replace_links_an_earlier_attempt_left(
    fake: FakeStorage, tmp_path: Path, cached: bool, link: str
) -> None:
    # A first attempt planted a link at the download's temporary name; a retry must replace it, not write
    # the blob (or set the file mode) through it.
    fake.blobs = {"y": b"blob"}
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    victim.chmod(0o644)
    wd = tmp_path / "wd"
    wd.mkdir()
    if link == "symbolic":
        (wd / "y.partial").symlink_to(victim)
    else:
        os.link(victim, wd / "y.partial")
    cache = BlobCache(tmp_path / "cache") if cached else None
    url = fake.url.replace("/c?", "/c/y?")
    asyncio.run(download_resource_files([{"httpUrl": url, "filePath": "y", "fileMode": "0600"}], wd, cache))
    assert victim.read_text() == "keep me" and victim.stat().st_mode & 0o777 == 0o644
    assert not (wd / "y").is_symlink() and (wd / "y").read_bytes() == b"blob"
    assert (wd / "y").stat().st_mode & 0o777 == 0o600
    assert not os.path.lexists(wd / "y.partial")


def test_upload_logs_are_not_appended_through_links(fake: FakeStorage, task_dir: Path, tmp_path: Path) -> None:
    victims = [tmp_path / "victim.txt", tmp_path / "victim2.txt"]
    for victim in victims:
        victim.write_text("keep me")
    (task_dir / "fileuploadout.txt").symlink_to(victims[0])
    os.link(victims[1], task_dir / "fileuploaderr.txt")
    outputs = [{"filePattern": "x.txt", "destination": {"container": {"containerUrl": fake.url}}}]
    assert upload_outputs(outputs, task_dir / "wd", task_dir, {}, succeeded=True) is None
    assert [victim.read_text() for victim in victims] == ["keep me", "keep me"]
    assert "uploading" in (task_dir / "fileuploadout.txt").read_text()
    assert not (task_dir / "fileuploadout.txt").is_symlink()
