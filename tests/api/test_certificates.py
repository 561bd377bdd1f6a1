"""Certificates: a real pfx made here with `cryptography`, through the REST contract (signed requests:
azure-batch 15.x has no certificate operations) and then used by tasks on a pool that references it.

The seed's scenario: a secret encrypted with the certificate's public key is passed to a task on its
command line, and the task decrypts it with the private key the service installed on the node.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import models as m
from azure.batch.models._models import BatchNodeReimageOptions  # not exported by azure-batch 15.1.0
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.api.helpers import (
    add_certificate,
    certificate_path,
    completed,
    create_job,
    pool_body,
    read_task_file,
    self_signed_pfx,
    signed_request,
)
from tests.conftest import Service, wait_for

PASSWORD = "pfx-password"


@pytest.fixture(scope="module")
def pfx() -> tuple[str, bytes, rsa.RSAPrivateKey]:
    """(thumbprint, pfx bytes, private key) of a fresh self-signed certificate."""
    return self_signed_pfx(PASSWORD)


def _add(service: Service, thumbprint: str, data: bytes, password: str | None = PASSWORD, **extra: Any) -> Any:
    return add_certificate(service.url, thumbprint, data, password, **extra)


@pytest.fixture(scope="module")
def added(service: Service, pfx: tuple[str, bytes, rsa.RSAPrivateKey]) -> Iterator[str]:
    thumbprint, data, _ = pfx
    answer = _add(service, thumbprint, data)
    assert answer.status_code == 201, answer.text
    yield thumbprint
    signed_request(service.url, "DELETE", certificate_path(thumbprint))


def test_add_get_list_and_what_is_never_returned(service: Service, added: str) -> None:
    got = signed_request(service.url, "GET", certificate_path(added))
    assert got.status_code == 200
    body = got.json()
    assert body["thumbprint"] == added and body["state"] == "active" and body["thumbprintAlgorithm"] == "sha1"
    assert x509.load_der_x509_certificate(base64.b64decode(body["publicData"])).fingerprint(hashes.SHA1()).hex() == (
        added
    )
    assert "data" not in body and "password" not in body and PASSWORD not in got.text and "PRIVATE" not in got.text
    listed = signed_request(service.url, "GET", "/certificates", params={"$filter": "state eq 'active'"}).json()
    assert added in [item["thumbprint"] for item in listed["value"]]


def test_certificate_mistakes(service: Service, added: str, pfx: tuple[str, bytes, rsa.RSAPrivateKey]) -> None:
    thumbprint, data, _ = pfx
    cases = [
        (_add(service, thumbprint, data), 409, "CertificateExists"),
        (_add(service, "ab" * 20, data), 400, "InvalidPropertyValue"),  # thumbprint of another certificate
        (_add(service, thumbprint, data, password="wrong"), 400, "InvalidPropertyValue"),
        (_add(service, thumbprint, b"not a pfx"), 400, "InvalidPropertyValue"),
        (_add(service, thumbprint, data, thumbprintAlgorithm="md5"), 400, "InvalidPropertyValue"),
        (signed_request(service.url, "POST", "/certificates", body={"thumbprint": "ab"}), 400, None),
        (signed_request(service.url, "GET", certificate_path("00" * 20)), 404, "CertificateNotFound"),
        (signed_request(service.url, "POST", certificate_path(added) + "/canceldelete"), 409, "CertificateStateActive"),
        (
            signed_request(
                service.url,
                "POST",
                "/pools",
                body=pool_body(
                    "cert-missing", certificateReferences=[{"thumbprint": "00" * 20, "thumbprintAlgorithm": "sha1"}]
                ),
            ),
            400,
            "InvalidPropertyValue",
        ),
    ]
    for answer, status, code in cases:
        assert answer.status_code == status, answer.text
        if code:
            assert answer.json()["code"] == code


def test_tasks_decrypt_a_secret_with_the_installed_key_again_after_reimage_and_deletion_rules(
    service: Service, client: Any, added: str, pfx: tuple[str, bytes, rsa.RSAPrivateKey]
) -> None:
    _, _, key = pfx
    secret = b"storage-account-key-1234"
    sealed = base64.b64encode(key.public_key().encrypt(secret, padding.PKCS1v15())).decode()
    cert_at = certificate_path(added)
    ref = {"thumbprint": added, "thumbprintAlgorithm": "sha1", "visibility": ["starttask", "task"]}
    start = "/bin/bash -c 'ls -l $AZ_BATCH_CERTIFICATES_DIR > $AZ_BATCH_NODE_SHARED_DIR/start-certs.txt'"
    body = pool_body(
        "cert-pool",
        targetDedicatedNodes=1,
        certificateReferences=[ref],
        startTask={"commandLine": start, "waitForSuccess": True},
    )
    assert signed_request(service.url, "POST", "/pools", body=body).status_code == 201
    try:
        create_job(client, "cert-job", "cert-pool")
        decrypt = (
            f"/bin/bash -c 'echo {sealed} | base64 -d | openssl pkeyutl -decrypt "
            f"-inkey $AZ_BATCH_CERTIFICATES_DIR/sha1-{added}.key; "
            f"stat -c %a $AZ_BATCH_CERTIFICATES_DIR $AZ_BATCH_CERTIFICATES_DIR/sha1-{added}.key "
            f"$AZ_BATCH_CERTIFICATES_DIR/sha1-{added}.pem'"
        )
        client.create_task("cert-job", m.BatchTaskCreateOptions(id="decrypt", command_line=decrypt))
        task = wait_for(lambda: completed(client, "cert-job", "decrypt"), timeout=60, what="the decrypting task")
        assert task.execution_info.exit_code == 0, read_task_file(client, "cert-job", "decrypt", "stderr.txt")
        out = read_task_file(client, "cert-job", "decrypt", "stdout.txt")
        assert out == secret.decode() + "700\n600\n600\n"
        node_id = task.node_info.node_id
        listing = b"".join(client.download_node_file("cert-pool", node_id, "shared/start-certs.txt")).decode()
        assert f"sha1-{added}.key" in listing  # installed before the start task ran

        # Deleting a certificate a pool references fails (deletefailed) and can be cancelled.
        assert signed_request(service.url, "DELETE", cert_at).status_code == 202
        assert signed_request(service.url, "GET", cert_at).json()["state"] in ("deleting", "deletefailed")
        failed = wait_for(
            lambda: (c := signed_request(service.url, "GET", cert_at).json())["state"] == "deletefailed" and c,
            timeout=10,
            what="deletefailed",
        )
        assert failed["deleteCertificateError"]["code"] == "CertificateInUse"
        assert failed["previousState"] == "deleting"
        assert signed_request(service.url, "POST", cert_at + "/canceldelete").status_code == 204
        assert signed_request(service.url, "GET", cert_at).json()["state"] == "active"

        # A reimage wipes the node: the start task finds the certificates installed again.
        before = client.get_node("cert-pool", node_id).last_boot_time
        client.begin_reimage_node("cert-pool", node_id, BatchNodeReimageOptions(node_reimage_option="requeue"))
        wait_for(
            lambda: (n := client.get_node("cert-pool", node_id)).state == "idle" and n.last_boot_time > before,
            timeout=60,
            what="the reimaged node",
        )
        listing = b"".join(client.download_node_file("cert-pool", node_id, "shared/start-certs.txt")).decode()
        assert f"sha1-{added}.pem" in listing
    finally:
        client.begin_delete_job("cert-job", polling_interval=0.2)
        signed_request(service.url, "DELETE", "/pools/cert-pool")
    # Once no pool and no node has it, a deletion goes through.
    wait_for(
        lambda: signed_request(service.url, "GET", "/pools/cert-pool").status_code == 404, timeout=30, what="pool gone"
    )
    assert signed_request(service.url, "DELETE", cert_at).status_code == 202
    wait_for(lambda: signed_request(service.url, "GET", cert_at).status_code == 404, timeout=10, what="deleted")
