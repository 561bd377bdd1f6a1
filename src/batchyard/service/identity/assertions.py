"""Client assertions: how a principal with a certificate proves itself (azure-identity's CertificateCredential).

The client signs a short JWT with the certificate's private key (RS256 with the SHA-1 thumbprint as
`x5t`, or PS256 with the SHA-256 one as `x5t#S256`, as MSAL does), for the token endpoint (`aud`), issued
by and about itself (`iss` = `sub` = its client id). It is checked against the certificate registered
for the principal, never against one the assertion carries (`x5c` is ignored).
"""

from __future__ import annotations

import base64

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from batchyard.service.identity.certificates import load_certificate
from batchyard.service.identity.directory import Principal

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW = 300


class AssertionRejected(ValueError):
    """Why an assertion does not authenticate the principal."""


def check_assertion(principal: Principal, assertion: str, token_endpoint: str) -> None:
    if principal.certificate is None:
        raise AssertionRejected(f"No certificate is registered for the app '{principal.client_id}'.")
    certificate = load_certificate(principal.certificate)
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):  # load_certificate took RSA keys only
        raise AssertionRejected("The app's certificate has no RSA key.")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.DecodeError:
        raise AssertionRejected("The client assertion is not a JSON Web Token.") from None
    named = {
        "x5t": _b64url(certificate.fingerprint(hashes.SHA1())),
        "x5t#S256": _b64url(certificate.fingerprint(hashes.SHA256())),
    }
    # MSAL writes the thumbprint with base64 padding, RFC 7515 without: either counts
    given = {name: str(header[name]).rstrip("=") for name in named if name in header}
    if not given or any(named[name] != value for name, value in given.items()):
        raise AssertionRejected("The client assertion names a certificate that is not registered for the app.")
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=["RS256", "PS256"],
            audience=token_endpoint,
            issuer=principal.client_id,
            leeway=CLOCK_SKEW,
            options={"require": ["exp", "aud", "iss", "sub"]},
        )
    except jwt.InvalidTokenError as exc:
        raise AssertionRejected(f"The client assertion is not valid: {exc}.") from None
    if claims["sub"] != principal.client_id:
        raise AssertionRejected("The client assertion's subject is not the app.")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
