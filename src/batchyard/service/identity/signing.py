"""The key that signs access tokens (RS256), kept in `DATA_DIR/identity/signing-key.pem`, and its JWKS.

Its `kid` is the key's RFC 7638 thumbprint, so the same key always has the same id and a new key (a lost
file) a new one: tokens signed before a key change name a kid the JWKS no longer has.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from batchyard.service.private_files import write_private

KEY_FILE = "signing-key.pem"


class SigningKey:
    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.private_key = key
        self.public_key = key.public_key()
        numbers = self.public_key.public_numbers()
        self._n = _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
        self._e = _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"))
        # RFC 7638: the SHA-256 of the required members in lexicographic order, no white space
        canonical = json.dumps({"e": self._e, "kty": "RSA", "n": self._n}, separators=(",", ":"), sort_keys=True)
        self.kid = _b64url(hashlib.sha256(canonical.encode()).digest())

    @classmethod
    def load_or_create(cls, directory: Path) -> SigningKey:
        path = directory / KEY_FILE
        if path.exists():
            # the service's own key, written by it (0600): the RSA consistency checks (~80 ms a start) add nothing
            key = serialization.load_pem_private_key(
                path.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True
            )
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{path} is not an RSA private key")
            return cls(key)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private(path, pem)
        return cls(key)

    def jwk(self, issuer: str) -> dict[str, Any]:
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": self._n,
            "e": self._e,
            "issuer": issuer,
        }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
