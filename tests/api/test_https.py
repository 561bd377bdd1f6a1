"""HTTPS beside HTTP: the local CA and server certificate in DATA_DIR/tls, kept across restarts; a user's own
certificate; Shared Key clients (azure-batch 15.x) over HTTPS, trusting the CA."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from cryptography import x509

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from batchyard.service.tls import local_certificates, server_names
from tests.api.helpers import create_job, create_pool, delete_pool_quietly, idle_nodes
from tests.conftest import Service, free_port, start_service, wait_for


def https_client(service: Service, **kwargs: Any) -> Any:
    return BatchClient(
        service.https_url,
        AzureNamedKeyCredential(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY),
        connection_verify=str(service.ca),
        **kwargs,
    )


def served_certificate(url: str, ca: Path) -> x509.Certificate:
    """The certificate the server presents, after a handshake that verifies it against `ca` and the host name."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_https_is_announced_and_verified_against_the_local_ca(service: Service) -> None:
    assert f"HTTPS on {service.https_url} (clients trust the CA {service.ca})" in service.log()
    answer = httpx.get(service.https_url + "/", verify=ssl.create_default_context(cafile=service.ca))
    assert answer.json()["httpsUrl"] == service.https_url
    names = served_certificate(service.https_url, service.ca).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert "localhost" in names.value.get_values_for_type(x509.DNSName)
    # not trusted without the CA: the certificate is the service's own
    with pytest.raises(httpx.ConnectError):
        httpx.get(service.https_url + "/")
    assert oct(service.ca.stat().st_mode & 0o777) == "0o644"
    assert oct((service.data_dir / "tls" / "ca-key.pem").stat().st_mode & 0o777) == "0o600"


def test_shared_key_client_works_over_https(service: Service, unique: Any) -> None:
    client = https_client(service)
    pool_id, job_id = unique("https-pool"), unique("https-job")
    create_pool(client, pool_id)
    try:
        create_job(client, job_id, pool_id)
        assert client.get_job(job_id).pool_info.pool_id == pool_id
        assert wait_for(lambda: idle_nodes(client, pool_id, 1), what="an idle node over HTTPS")
        # a link the service gives over HTTPS stays on HTTPS (a bearer client may not follow one to HTTP)
        assert client.get_pool(pool_id).url == f"{service.https_url}/pools/{pool_id}"
    finally:
        delete_pool_quietly(client, pool_id)


def test_a_list_continued_over_https_stays_on_https(service: Service, unique: Any) -> None:
    client = https_client(service)
    prefix = unique("https-page")
    for index in range(3):
        create_job(client, f"{prefix}-{index}", "no-such-pool")
    ids = [job.id for job in client.list_jobs(max_results=1, filter=f"startswith(id, '{prefix}')")]
    assert ids == [f"{prefix}-{index}" for index in range(3)]


def test_certificate_and_ca_persist_across_restart(tmp_path: Path) -> None:
    svc = start_service(tmp_path / "svc")
    try:
        before = served_certificate(svc.https_url, svc.ca)
        ca_before = svc.ca.read_bytes()
        svc.stop()
        svc.restart()
        assert svc.ca.read_bytes() == ca_before
        assert served_certificate(svc.https_url, svc.ca) == before
    finally:
        svc.stop()


def test_a_new_name_gets_a_new_certificate_from_the_same_ca(tmp_path: Path) -> None:
    names = server_names("127.0.0.1", [])
    first = local_certificates(tmp_path, names)
    ca = first.ca.read_bytes() if first.ca else b""
    cert = first.cert.read_bytes()
    assert local_certificates(tmp_path, names).cert.read_bytes() == cert  # kept
    again = local_certificates(tmp_path, server_names("127.0.0.1", ["batch.example.test"]))
    assert again.ca is not None and again.ca.read_bytes() == ca
    covered = x509.load_pem_x509_certificate(again.cert.read_bytes()).extensions
    dns = covered.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "batch.example.test" in dns


def test_a_certificate_of_ones_own(tmp_path: Path) -> None:
    own = local_certificates(tmp_path / "elsewhere", server_names("127.0.0.1", ["own.example.test"]))
    svc = start_service(tmp_path / "svc", "--tls-cert", str(own.cert), "--tls-key", str(own.key))
    try:
        assert own.ca is not None
        assert served_certificate(svc.https_url, own.ca).extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.DNSName) == ["localhost", "own.example.test"]
        assert not (svc.data_dir / "tls").exists()
        assert f"HTTPS on {svc.https_url} (certificate {own.cert})" in svc.log()
    finally:
        svc.stop()


def test_https_options_refused_with_a_reason(tmp_path: Path) -> None:
    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "batchyard.cli.main", "serve", "--port", str(free_port()), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=30)

    result = serve("--data-dir", str(tmp_path / "a"), "--tls-cert", str(tmp_path / "cert.pem"))
    assert result.returncode == 2 and "--tls-cert and --tls-key go together" in result.stderr
    missing = serve("--data-dir", str(tmp_path / "b"), "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent")
    assert missing.returncode == 2 and "cannot serve the certificate /nonexistent.pem" in missing.stderr
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        busy = serve("--data-dir", str(tmp_path / "c"), "--https-port", str(port))
    assert busy.returncode == 2 and f"HTTPS on port {port}" in busy.stderr


def test_no_https(tmp_path: Path) -> None:
    svc = start_service(tmp_path / "svc", "--no-https")
    try:
        assert httpx.get(svc.url + "/").json()["httpsUrl"] is None
        assert "HTTPS on" not in svc.log()
    finally:
        svc.stop()


def test_the_batchyard_commands_reach_the_service_over_https(service: Service) -> None:
    def nodes_list(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "batchyard.cli.main", "nodes", "--endpoint", service.https_url]
        return subprocess.run([*command, "list", "no-such-pool"], capture_output=True, text=True, env=env, timeout=60)

    clean = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    trusted = nodes_list(clean | {"SSL_CERT_FILE": str(service.ca)})
    assert "HTTP 404: PoolNotFound" in trusted.stderr  # signed, answered: the request went through
    untrusted = nodes_list(clean | {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"})
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
