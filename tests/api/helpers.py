"""Builders for SDK request models that many tests use."""

from __future__ import annotations

from typing import Any

from azure.batch import models as m


def vm_config() -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(
            publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
        ),
        node_agent_sku_id="batch.node.ubuntu 22.04",
    )


def create_pool(client: Any, pool_id: str, nodes: int = 1, slots: int = 1, **kwargs: Any) -> None:
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=vm_config(),
            target_dedicated_nodes=nodes,
            task_slots_per_node=slots,
            **kwargs,
        )
    )


def create_job(client: Any, job_id: str, pool_id: str, **kwargs: Any) -> None:
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), **kwargs))


def idle_nodes(client: Any, pool_id: str, count: int) -> list[Any] | None:
    nodes = list(client.list_nodes(pool_id))
    ready = [node for node in nodes if node.state == "idle"]
    return ready if len(ready) >= count else None


def completed(client: Any, job_id: str, task_id: str) -> Any:
    task = client.get_task(job_id, task_id)
    return task if task.state == "completed" else None


# --- appended: raw signed HTTP, pool lifetimes, small waiters ------------------------------------------

API_VERSION = "2025-06-01.21.0"


def signed_request(
    base_url: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    content: bytes | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    key: str | None = None,
    account: str | None = None,
    api_version: str | None = API_VERSION,
    sign: bool = True,
    ca: Any = None,
) -> Any:
    """One Shared Key request as the SDK would sign it (httpx), for what the SDK cannot send.

    `body` is sent as JSON; `content` as raw bytes. `api_version=None` leaves the parameter out. `ca`: the
    CA certificate file an HTTPS `base_url` is verified with.
    """
    import httpx
    import orjson

    from batchyard.service.auth import format_ocp_date, sign_request
    from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

    query = dict(params or {})
    if api_version is not None:
        query["api-version"] = api_version
    url = httpx.URL(base_url + path, params=query)
    if body is not None:
        content = orjson.dumps(body)
    sent: dict[str, str] = {"ocp-date": format_ocp_date()}
    if content is not None:
        sent["content-type"] = "application/json; odata=minimalmetadata"
        sent["content-length"] = str(len(content))
    sent.update(headers or {})
    if sign and "authorization" not in {name.lower() for name in sent}:
        sent["Authorization"] = sign_request(
            account or DEV_ACCOUNT_NAME, key or DEV_ACCOUNT_KEY, method, str(url), sent
        )
    if ca is not None:
        import ssl

        verify = ssl.create_default_context(cafile=str(ca))
        return httpx.request(method, url, content=content, headers=sent, verify=verify, timeout=30)
    global _http
    if _http is None:
        _http = httpx.Client(timeout=30)
    return _http.request(method, url, content=content, headers=sent)


_http: Any = None


def pool_body(pool_id: str, **extra: Any) -> dict[str, Any]:
    """A minimal POST /pools body in wire form."""
    body: dict[str, Any] = {
        "id": pool_id,
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": {
            "imageReference": {
                "publisher": "canonical",
                "offer": "0001-com-ubuntu-server-jammy",
                "sku": "22_04-lts",
                "version": "latest",
            },
            "nodeAgentSKUId": "batch.node.ubuntu 22.04",
        },
    }
    if "targetDedicated" not in extra:
        body["targetDedicatedNodes"] = 0
    body.update(extra)
    return body


def delete_pool_quietly(client: Any, pool_id: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        client.begin_delete_pool(pool_id, polling_interval=0.2)  # not waited for: nodes leave in the background
    except ResourceNotFoundError:
        pass


class temp_pool:  # noqa: N801 - used like a function: `with temp_pool(client, id, nodes=2):`
    """Create a pool on entry and delete it on exit (nodes are real processes)."""

    def __init__(self, client: Any, pool_id: str, nodes: int = 1, slots: int = 1, **kwargs: Any) -> None:
        self.client, self.pool_id = client, pool_id
        self.args = (nodes, slots, kwargs)

    def __enter__(self) -> str:
        nodes, slots, kwargs = self.args
        create_pool(self.client, self.pool_id, nodes=nodes, slots=slots, **kwargs)
        return self.pool_id

    def __exit__(self, *exc: object) -> None:
        delete_pool_quietly(self.client, self.pool_id)


def run_task(client: Any, job_id: str, task_id: str, command_line: str, timeout: float = 30, **kwargs: Any) -> Any:
    """Add a task and wait for it to complete; returns the completed task."""
    from tests.conftest import wait_for

    client.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line=command_line, **kwargs))
    return wait_for(lambda: completed(client, job_id, task_id), timeout=timeout, what=f"task {task_id} completion")


def read_task_file(client: Any, job_id: str, task_id: str, path: str, **kwargs: Any) -> str:
    return b"".join(client.download_task_file(job_id, task_id, path, **kwargs)).decode()


def error_code(exc: Any) -> str | None:
    """The Batch error code of an azure-core HttpResponseError."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if code:
        return str(code)
    try:
        exc.response.read()  # streamed downloads leave the error body unread
        return str(exc.response.json()["code"])
    except Exception:
        return None


def error_values(exc: Any) -> dict[str, str]:
    try:
        return {item["key"]: item["value"] for item in exc.response.json().get("values", [])}
    except Exception:
        return {}


def pool_exists(client: Any, pool_id: str) -> bool:
    """`client.pool_exists`, but False for a missing pool.

    azure-batch 15.1.0's BatchExceptionPolicy turns every non-2xx answer into an exception before
    `pool_exists` can map the HEAD's 404 to False, so the SDK call raises ResourceNotFoundError instead.
    """
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return bool(client.pool_exists(pool_id))
    except ResourceNotFoundError:
        return False


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose command line contains `marker` (to see that a task's process really ended)."""
    import os

    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat", "rb") as f:
                zombie = f.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
        except OSError:
            continue
        if marker in cmdline and not zombie:
            pids.append(int(entry))
    return pids


def unique_sleep(seconds: int) -> str:
    """A `sleep` command line whose argument is unique enough to find its process with `processes_with`."""
    import random

    return f"/bin/sleep {seconds}.{random.randrange(10**8, 10**9)}"


class serve_directory:  # noqa: N801 - used like a function: `with serve_directory(path) as base_url:`
    """A local HTTP server (a thread) serving `root`, for httpUrl resource files."""

    def __init__(self, root: Any) -> None:
        import functools
        import http.server

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))

    def __enter__(self) -> str:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed_pfx(password: str) -> tuple[str, bytes, Any]:
    """(SHA-1 thumbprint, pfx bytes protected by `password`, RSA private key) of a fresh certificate."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "batchyard test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    data = pkcs12.serialize_key_and_certificates(b"test", key, cert, None, BestAvailableEncryption(password.encode()))
    return cert.fingerprint(hashes.SHA1()).hex(), data, key  # noqa: S303 - Batch thumbprints are SHA-1


def certificate_path(thumbprint: str) -> str:
    return f"/certificates(thumbprintAlgorithm=sha1,thumbprint={thumbprint})"


def add_certificate(url: str, thumbprint: str, data: bytes, password: str | None, **extra: Any) -> Any:
    """POST /certificates (azure-batch 15.x has no certificate operations): pfx with a password, else cer."""
    import base64

    body = {"thumbprint": thumbprint, "thumbprintAlgorithm": "sha1", "data": base64.b64encode(data).decode()}
    body |= {"certificateFormat": "pfx", "password": password} if password is not None else {}
    return signed_request(url, "POST", "/certificates", body=body | extra)


def own_python_identity() -> m.UserIdentity | None:
    """The identity for a task that runs this test's Python (or a program of its venv): admin when
    tasks run as users of their own (a service running as root) and the interpreter is out of their
    reach (a Python under /root, mode 0700); otherwise the default auto-user."""
    import os
    import sys
    from pathlib import Path

    from batchyard.agent.accounts import unreachable_parent

    interpreter = Path(os.path.realpath(sys.executable))
    if os.geteuid() != 0 or (unreachable_parent(interpreter) is None and interpreter.stat().st_mode & 0o001):
        return None
    return m.UserIdentity(auto_user=m.AutoUserSpecification(elevation_level="admin"))


README_ENDPOINT = "http://127.0.0.1:8650"  # what the README's examples talk to (scripts/serve.sh)


def readme_code_block(heading: str, language: str) -> str:
    """The first ```language block under the README's `### heading` (tests run the README's examples)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split(f"\n### {heading}\n", 1)[1]
    return section.split(f"\n```{language}\n", 1)[1].split("\n```\n", 1)[0] + "\n"
