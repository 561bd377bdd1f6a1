"""Account certificates: add (pfx or cer), get, list, delete (deleting -> gone or deletefailed), cancel.

The service keeps the certificate and, for a pfx, its private key as PEM (never the pfx password),
and sends them to a node's agent at every boot of a node whose pool references them. A pool may
only reference certificates that exist and are not being deleted.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12

from batchyard.service import errors
from batchyard.service.clock import iso
from batchyard.service.documents import dump_private, load_private
from batchyard.service.engine import states
from batchyard.service.engine.account_keys import account_of, scoped_key
from batchyard.service.engine.core import Concern, EngineCore
from batchyard.service.engine.events import Tick, reacts_to
from batchyard.service.engine.records import NodeRecord, PoolRecord

MAX_DATA = 10 * 1024  # the contract: "The maximum size is 10KB"


def cert_key(account: str | None, algorithm: str, thumbprint: str) -> str:
    return scoped_key(account, f"{algorithm}-{thumbprint.replace(' ', '')}")


@dataclass(slots=True)
class CertificatePrivate:
    pem: str = ""  # the certificate, for the agents that install it
    key: str | None = None  # its private key (PEM), when the certificate came with one


class CertificateOps(Concern):
    def __init__(self, core: EngineCore) -> None:
        super().__init__(core)
        self.certificates: dict[str, dict[str, Any]] = {}  # key -> wire document
        self.key_material: dict[str, CertificatePrivate] = {}
        for key, doc, private in self.store.load_certificates():
            self.certificates[key] = doc
            self.key_material[key] = load_private(CertificatePrivate, private)

    # --- operations -----------------------------------------------------------------------------

    def add_certificate(self, spec: dict[str, Any], account: str | None) -> dict[str, Any]:
        algorithm = spec["thumbprintAlgorithm"]
        if algorithm.lower() != "sha1":
            raise errors.invalid_property("thumbprintAlgorithm", algorithm, "The algorithm must be sha1.")
        thumbprint = spec["thumbprint"].replace(" ", "")
        if not thumbprint or len(thumbprint) > 40 or any(c not in "0123456789abcdefABCDEF" for c in thumbprint):
            raise errors.invalid_property("thumbprint", spec["thumbprint"], "Up to 40 hexadecimal digits.")
        fmt = (spec.get("certificateFormat") or "pfx").lower()
        cert, private_key = _parse(spec, fmt)
        actual = cert.fingerprint(hashes.SHA1()).hex()  # noqa: S324 - the contract's thumbprint algorithm
        if actual.lower() != thumbprint.lower():
            raise errors.invalid_property(
                "thumbprint", spec["thumbprint"], "The thumbprint does not match the certificate's SHA-1 thumbprint."
            )
        key = cert_key(account, algorithm, thumbprint)
        existing = self.certificates.get(key)
        if existing is not None:
            if existing["state"] == "deleting":
                raise errors.conflict(
                    "CertificateBeingDeleted", "The specified certificate has been marked for deletion."
                )
            raise errors.conflict("CertificateExists", "The specified certificate already exists.")
        now = self.core.now()
        doc: dict[str, Any] = {
            "thumbprint": thumbprint,
            "thumbprintAlgorithm": "sha1",
            "state": "active",
            "stateTransitionTime": iso(now),
            "publicData": base64.b64encode(cert.public_bytes(Encoding.DER)).decode(),
            "certificateFormat": fmt,
        }
        self.certificates[key] = doc
        self.key_material[key] = CertificatePrivate(cert.public_bytes(Encoding.PEM).decode(), private_key)
        self._save_certificate(key, doc)
        return doc

    def get_certificate(self, account: str | None, algorithm: str, thumbprint: str) -> dict[str, Any]:
        doc = self.certificates.get(cert_key(account, algorithm, thumbprint))
        if doc is None:
            raise errors.not_found("CertificateNotFound", "The specified certificate does not exist.")
        return doc

    def delete_certificate(self, doc: dict[str, Any]) -> None:
        """To `deleting`; housekeeping then removes it, or fails it while pools or nodes still use it."""
        if doc["state"] == "deleting":
            return
        self._move_certificate(doc, "deleting")
        doc.pop("deleteCertificateError", None)
        self._save_certificate(self._key_of(doc), doc)

    def cancel_certificate_deletion(self, doc: dict[str, Any]) -> None:
        if doc["state"] == "active":
            raise errors.conflict("CertificateStateActive", "The specified certificate is already active.")
        if doc["state"] == "deleting":
            raise errors.conflict("CertificateBeingDeleted", "The specified certificate is being deleted.")
        self._move_certificate(doc, "active")
        doc.pop("deleteCertificateError", None)
        self._save_certificate(self._key_of(doc), doc)

    def _move_certificate(self, doc: dict[str, Any], state: str) -> None:
        states.move(doc, states.CERTIFICATE, state, self.core.now(), previous=True)

    def _key_of(self, doc: dict[str, Any]) -> str:
        return next(key for key, known in self.certificates.items() if known is doc)

    def _save_certificate(self, key: str, doc: dict[str, Any]) -> None:
        self.store.put_certificate(key, doc, dump_private(self.key_material[key]))

    @reacts_to(Tick)
    def _finish_certificate_deletions(self, event: Tick) -> None:
        for key, doc in list(self.certificates.items()):
            if doc["state"] != "deleting":
                continue
            pools = [pool.doc["id"] for pool in self.pools.values() if key in dict(_references(pool))]
            nodes = [node.id for node in self.nodes.values() if key in (node.private.certificates)]
            if pools or nodes:
                self._move_certificate(doc, "deletefailed")
                doc["deleteCertificateError"] = {
                    "code": "CertificateInUse",
                    "message": "The certificate is referenced by pools or still installed on compute nodes.",
                    "values": [{"name": "PoolId", "value": pool_id} for pool_id in pools]
                    + [{"name": "NodeId", "value": node_id} for node_id in nodes[:10]],
                }
                self._save_certificate(key, doc)
            else:
                del self.certificates[key]
                del self.key_material[key]
                self.store.delete_certificate(key)

    def forget_certificate(self, key: str) -> None:
        """Remove a certificate whatever uses it (its account is deleted, with its pools)."""
        self.certificates.pop(key, None)
        self.key_material.pop(key, None)
        self.store.delete_certificate(key)

    # --- pools and nodes ------------------------------------------------------------------------

    def check_certificate_references(self, refs: list[dict[str, Any]] | None, account: str | None) -> None:
        for ref in refs or []:
            doc = self.certificates.get(cert_key(account, ref["thumbprintAlgorithm"], ref["thumbprint"]))
            if doc is None or doc["state"] != "active":
                raise errors.invalid_property(
                    "certificateReferences",
                    ref["thumbprint"],
                    "The certificate does not exist." if doc is None else "The certificate is being deleted.",
                )

    def send_certificates(self, node: NodeRecord, pool: PoolRecord | None) -> list[str]:
        """Send the pool's certificates to a booting node's agent; the keys of what it installs."""
        refs = {key: ref for key, ref in _references(pool) if key in self.certificates} if pool else {}
        keys = list(refs)
        if node.session is not None:
            certs = [
                {
                    "thumbprint": self.certificates[key]["thumbprint"].lower(),
                    "algorithm": "sha1",
                    "cert": self.key_material[key].pem,
                    "key": self.key_material[key].key,
                    # Who may read it: starttask, task, remoteuser; none listed means all of them.
                    "visibility": [str(v).lower() for v in ref.get("visibility") or []],
                }
                for key, ref in refs.items()
            ]
            node.session.send({"t": "certs", "certs": certs})
        return keys


def _references(pool: PoolRecord) -> list[tuple[str, dict[str, Any]]]:
    """The keys of the certificates a pool references (its account's), with the references."""
    account = account_of(pool.key)
    return [
        (cert_key(account, ref.get("thumbprintAlgorithm", "sha1"), ref["thumbprint"]), ref)
        for ref in pool.doc.get("certificateReferences") or []
    ]


def _parse(spec: dict[str, Any], fmt: str) -> tuple[x509.Certificate, str | None]:
    """The certificate and its private key (PEM) from the base64 data; Batch errors for bad input."""
    try:
        data = base64.b64decode(spec["data"], validate=True)
    except (binascii.Error, ValueError):
        raise errors.invalid_property("data", "(not shown)", "The data is not valid base64.") from None
    if len(data) > MAX_DATA:
        raise errors.invalid_property("data", "(not shown)", "The certificate data is larger than 10KB.")
    password = spec.get("password")
    if fmt == "cer":
        if password:
            raise errors.invalid_property("password", "(not shown)", "A cer certificate takes no password.")
        try:
            return x509.load_der_x509_certificate(data), None
        except ValueError:
            try:
                return x509.load_pem_x509_certificate(data), None
            except ValueError:
                raise errors.invalid_property("data", "(not shown)", "The data is not a certificate.") from None
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except (ValueError, TypeError):
        raise errors.invalid_property(
            "data", "(not shown)", "The data is not a PKCS #12 file, or the password is wrong."
        ) from None
    if cert is None:
        raise errors.invalid_property("data", "(not shown)", "The PKCS #12 file holds no certificate.")
    pem_key = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode() if key is not None else None
    return cert, pem_key
