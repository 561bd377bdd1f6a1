"""The tenant and its service principals, kept in `DATA_DIR/identity/` (tenant.json, principals.json).

A principal is an application identity: a client id, an object id (what tokens name as `oid`), a display
name, a client secret (only its salted scrypt hash is kept) and one role assignment: a role (`contributor`:
everything; `reader`: gets and lists) on one Batch account, by name.

The service and `batchyard principals` (which may run beside it) share the files: every change is a
read-modify-write under an exclusive lock and replaces the file whole, and readers pick up a changed file
by its stat, so a principal made or deleted while the service runs counts at once.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization

from batchyard.service.identity.certificates import load_certificate, thumbprint
from batchyard.service.private_files import write_private

IDENTITY_DIR = "identity"
ROLES = ("contributor", "reader")
MAX_NAME = 120
# scrypt's cost for a secret: ~30 ms. Secrets are 240 random bits, so this only slows down a stolen file's
# use a little; it is the usual at-rest protection, not what keeps a secret from being guessed.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def new_secret() -> str:
    """A client secret (40 URL-safe characters, 240 random bits) that does not start with "-": command lines
    (`az login -p SECRET`, curl) would take one that does for an option."""
    while (secret := secrets.token_urlsafe(30)).startswith("-"):
        pass
    return secret


class DirectoryError(ValueError):
    """A request the directory cannot do: a bad role or name (`field` says which), an unknown principal."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Principal:
    client_id: str
    object_id: str
    name: str
    role: str
    account: str
    secret_hash: str
    created: str
    certificate: str | None = None  # PEM: the client may authenticate with an assertion signed by its key

    def public(self) -> dict[str, str]:
        """What the admin API and the CLI show of it (never the secret's hash)."""
        shown = {
            "clientId": self.client_id,
            "objectId": self.object_id,
            "name": self.name,
            "role": self.role,
            "account": self.account,
            "created": self.created,
        }
        if self.certificate is not None:
            shown["certificateThumbprint"] = thumbprint(load_certificate(self.certificate))
        return shown


class Directory:
    """One tenant's principals on disk (module doc)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / IDENTITY_DIR
        self._tenant_file = self.path / "tenant.json"
        self._principals_file = self.path / "principals.json"
        self._cache: tuple[tuple[int, int, int], dict[str, Principal]] | None = None
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        with self._locked():
            if not self._tenant_file.exists():
                self._write_tenant({"tenantId": str(uuid.uuid4())})
        self.tenant_id = str(self._read_tenant()["tenantId"])

    # --- the tenant ---------------------------------------------------------------------------------------

    @property
    def authority(self) -> str | None:
        """The HTTPS URL the service last announced as the authority (for `batchyard principals` to print)."""
        value = self._read_tenant().get("authority")
        return str(value) if value else None

    def set_authority(self, url: str) -> None:
        with self._locked():
            tenant = self._read_tenant()
            if tenant.get("authority") != url:
                self._write_tenant({**tenant, "authority": url})

    # --- principals -----------------------------------------------------------------------------------------

    def create(self, name: str, role: str, account: str, certificate: str | None = None) -> tuple[Principal, str]:
        """A new principal and its client secret (shown once: only its hash is kept); with a PEM `certificate`,
        it may also authenticate with client assertions signed by the certificate's key."""
        if certificate is not None:
            try:
                certificate = load_certificate(certificate).public_bytes(serialization.Encoding.PEM).decode()
            except ValueError as exc:
                raise DirectoryError("certificate", str(exc)) from None
        if role not in ROLES:
            raise DirectoryError("role", f"role must be one of {', '.join(ROLES)}, not '{role}'")
        for what, value in (("name", name), ("account", account)):
            if not value or len(value) > MAX_NAME or not value.isprintable():
                raise DirectoryError(what, f"the {what} must be 1 to {MAX_NAME} printable characters")
        secret = new_secret()
        principal = Principal(
            client_id=str(uuid.uuid4()),
            object_id=str(uuid.uuid4()),
            name=name,
            role=role,
            account=account,
            secret_hash=_hash_secret(secret),
            created=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            certificate=certificate,
        )
        with self._locked():
            principals = self._load()
            self._save([*principals.values(), principal])
        return principal, secret

    def delete(self, client_id: str) -> Principal:
        with self._locked():
            principals = self._load()
            gone = principals.pop(client_id.lower(), None)
            if gone is None:
                raise DirectoryError("clientId", f"no principal has the client id '{client_id}'")
            self._save(list(principals.values()))
        return gone

    def principals(self) -> list[Principal]:
        return list(self._load().values())

    def by_client_id(self, client_id: str) -> Principal | None:
        return self._load().get(client_id.lower())

    def by_object_id(self, object_id: str) -> Principal | None:
        return next((p for p in self._load().values() if p.object_id == object_id), None)

    @staticmethod
    def secret_matches(principal: Principal, secret: str) -> bool:
        return _check_secret(principal.secret_hash, secret)

    # --- files ------------------------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        descriptor = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing lets the lock go

    def _read_tenant(self) -> dict[str, Any]:
        data = orjson.loads(self._tenant_file.read_bytes())
        if not isinstance(data, dict) or not isinstance(data.get("tenantId"), str):
            raise DirectoryError("tenantId", f"{self._tenant_file} does not name a tenant")
        return data

    def _write_tenant(self, tenant: dict[str, Any]) -> None:
        write_private(self._tenant_file, orjson.dumps(tenant, option=orjson.OPT_INDENT_2))

    def _load(self) -> dict[str, Principal]:
        """The principals by (lower-case) client id, read again only when the file changed."""
        try:
            stat = self._principals_file.stat()
        except FileNotFoundError:
            return {}
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._cache is None or self._cache[0] != signature:
            records = orjson.loads(self._principals_file.read_bytes())
            principals = {record["client_id"]: Principal(**record) for record in records}
            self._cache = (signature, principals)
        return dict(self._cache[1])

    def _save(self, principals: list[Principal]) -> None:
        write_private(self._principals_file, orjson.dumps([asdict(p) for p in principals], option=orjson.OPT_INDENT_2))


def _hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def _check_secret(stored: str, secret: str) -> bool:
    scheme, _, rest = stored.partition("$")
    salt, _, digest = rest.partition("$")
    if scheme != "scrypt" or not salt or not digest:
        return False
    actual = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    return hmac.compare_digest(actual, base64.b64decode(digest))
