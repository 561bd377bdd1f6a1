"""A principal's certificate: read from PEM, and named by its thumbprint as Azure shows it."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa


def load_certificate(pem: str) -> x509.Certificate:
    """The certificate of a PEM text (its first one), if its key can sign assertions (RSA); ValueError if not."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ValueError("the certificate is not a PEM X.509 certificate") from None
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise ValueError("the certificate's key is not an RSA key (assertions are RS256 or PS256)")
    return certificate


def thumbprint(certificate: x509.Certificate) -> str:
    """The SHA-1 thumbprint in hex, as Azure shows a credential's certificate."""
    return certificate.fingerprint(hashes.SHA1()).hex().upper()  # an identifier, as Azure shows it
