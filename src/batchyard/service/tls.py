"""HTTPS certificates: a local certificate authority and the server certificate it signs, kept in `DATA_DIR/tls/`.

On first start the service makes a CA (`ca.pem`, which clients trust: `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`) and
a server certificate for 127.0.0.1, ::1, localhost and the names asked for. Both persist: a restart serves the
same certificate, and a certificate that no longer covers the names asked for (or is about to expire) is
replaced by a new one from the same CA, so clients keep trusting it. A user may bring a certificate and key of
their own instead (`--tls-cert/--tls-key`): then no CA is made.

The certificates follow what OpenSSL's strict verification (`VERIFY_X509_STRICT`, on in Python 3.13's and
urllib3's default contexts) asks: a critical basicConstraints and keyUsage on the CA, key identifiers on both.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from batchyard.service.private_files import write_private, write_public

TLS_DIR = "tls"
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
CA_LIFETIME = datetime.timedelta(days=3650)
SERVER_LIFETIME = datetime.timedelta(days=825)
RENEW_BEFORE = datetime.timedelta(days=30)  # a server certificate this close to its end is replaced at start


class TlsError(Exception):
    """The certificate or key given cannot be served (unreadable, not matching, not PEM)."""


@dataclass(frozen=True)
class TlsFiles:
    """What the HTTPS listener serves; `ca` is the local CA clients trust (None for a user's own certificate)."""

    cert: Path
    key: Path
    ca: Path | None


def server_names(host: str, extra: Iterable[str]) -> list[str]:
    """The names the server certificate covers: loopback, the listening address when it is one, and `extra`."""
    names = [*LOOPBACK_NAMES]
    if host not in ("0.0.0.0", "::", ""):
        names.append(host.strip("[]"))
    names.extend(name.strip() for name in extra if name.strip())
    return list(dict.fromkeys(names))


def local_certificates(data_dir: Path, names: list[str]) -> TlsFiles:
    """The local CA and a server certificate for `names` in `DATA_DIR/tls/`, made or renewed as needed."""
    directory = data_dir / TLS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)  # ca.pem is for every client to read; the keys are 0600 of their own
    ca_cert, ca_key = _certificate_authority(directory)
    cert_path, key_path = directory / SERVER_FILE, directory / SERVER_KEY_FILE
    if not _still_good(cert_path, key_path, ca_cert, names):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue_server_certificate(key, ca_cert, ca_key, names)
        write_private(key_path, _private_pem(key))
        write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert=cert_path, key=key_path, ca=directory / CA_FILE)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A TLS 1.2+ server context for the certificate; TlsError when it cannot be loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(files.cert), str(files.key))
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot serve the certificate {files.cert} with the key {files.key}: {exc}") from exc
    return context


def _certificate_authority(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_path, key_path = directory / CA_FILE, directory / CA_KEY_FILE
    if ca_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TlsError(f"{key_path} is not the local CA's key")
        return x509.load_pem_x509_certificate(ca_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    # A name of its own (random serial in it) so that CAs of two data directories are never confused.
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "batchyard"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"batchyard local CA {x509.random_serial_number() % 10**8}"),
        ]
    )
    now = _now()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, _private_pem(key))
    write_public(ca_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _issue_server_certificate(
    key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: list[str]
) -> x509.Certificate:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + SERVER_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _still_good(cert_path: Path, key_path: Path, ca_cert: x509.Certificate, names: list[str]) -> bool:
    """Whether the kept server certificate is this CA's, covers `names` and is not about to expire."""
    if not cert_path.exists() or not key_path.exists():
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        covered = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    wanted = {_general_name(name) for name in names}
    return (
        cert.issuer == ca_cert.subject and wanted <= set(covered) and cert.not_valid_after_utc - RENEW_BEFORE > _now()
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
