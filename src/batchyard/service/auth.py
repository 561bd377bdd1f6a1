"""Shared Key authentication, verified exactly as the official Python SDKs sign requests.

Signers read (all produce the same canonical string for the same request):

* azure-batch 15.x (15.0.0b1 .. 15.1.0): `azure.batch._patch.BatchSharedKeyAuthPolicy`, a SansIO policy that
  signs the azure-core `HttpRequest` *before* the transport sends it.
* azure-batch 12.0.0 .. 14.2.0: `azure.batch.batch_auth.SharedKeyAuth` (via `SharedKeyCredentials`), a
  `requests` auth hook that signs the `PreparedRequest` (the file is byte-identical across 12.0.0 .. 14.2.0).

The string to sign is::

    METHOD\\n
    content-encoding\\n content-language\\n content-length\\n content-md5\\n content-type\\n date\\n
    if-modified-since\\n if-match\\n if-none-match\\n if-unmodified-since\\n range\\n
    name:value\\n        for every header whose name contains "ocp-", lower-cased, sorted by (name, value)
    /ACCOUNT/PATH           the URL path as sent (percent-encoded)
    \\nname:value            per query parameter, names and values percent-decoded (parse_qs: "+" is a space),
                            sorted by name, blank values left out; a repeated name has all its values,
                            sorted and comma-joined, as Azure canonicalises them (the service refuses
                            repeated names before this, see `http.refuse_repeated_names`)

where a header with an empty value counts as absent. The SDK versions differ only in content-length:
15.x puts "0" for a non-GET/HEAD request without a Content-Length header, while 12.x-14.x sign what `requests`
prepared ("0" for a bodiless POST, nothing for an empty string body, nothing for GET/HEAD). So the verifier
tries both "" and "0" when the received content-length is absent or "0".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import parse_qs, urlparse

from batchyard.service.errors import auth_failed

HEADERS_TO_SIGN: tuple[str, ...] = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class SharedKeyAccount:
    """A Batch account that accepts Shared Key requests signed with any of `keys` (base64, primary first)."""

    name: str
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a SharedKeyAccount needs at least one key")
        for key in self.keys:
            _decode_key(key)


def _decode_key(key: str) -> bytes:
    try:
        return base64.b64decode(key.encode("utf-8"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("account key is not valid base64") from exc


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _canonical(
    method: str,
    account_name: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    content_length: str,
) -> str:
    """The string to sign; `headers` are (name, value) pairs as held by the signer, content-length apart."""
    items = [(name, value) for name, value in headers if value]
    lowered = {name.lower(): value for name, value in items}
    lowered["content-length"] = content_length
    parts = [method, *(str(lowered.get(name, "")) for name in HEADERS_TO_SIGN)]
    text = "\n".join(parts) + "\n"
    # Both signers test `"ocp-" in name` on the name as the client spelled it; a server sees lower-case names.
    for name, value in sorted((name.lower(), value) for name, value in items if "ocp-" in name):
        text += f"{name}:{value}\n"
    text += f"/{account_name}{path}"
    params = parse_qs(query)
    for name in sorted(params):
        value = ",".join(sorted(params[name]))
        if value:
            text += f"\n{name}:{value}"
    return text


def string_to_sign(method: str, account_name: str, url: str, headers: Mapping[str, str]) -> str:
    """The string azure-batch 15.x signs for this request; `headers` keep their client-side names."""
    # urlparse (not urlsplit) like the SDKs: ";params" of the last path segment are not signed.
    parts = urlparse(url)
    lowered = {name.lower(): value for name, value in headers.items() if value}
    content_length = lowered.get("content-length", "")
    if not content_length and method not in ("GET", "HEAD"):
        content_length = "0"
    return _canonical(method, account_name, parts.path, parts.query, headers.items(), content_length)


def sign_request(account_name: str, key: str, method: str, url: str, headers: Mapping[str, str]) -> str:
    """The Authorization header value (`SharedKey account:signature`) that azure-batch 15.x would send.

    Unlike the SDK this does not add an `ocp-date` header: put one in `headers` (see `format_ocp_date`) and
    send it, or the service rejects the request.
    """
    digest = _hmac(_decode_key(key), string_to_sign(method, account_name, url, headers))
    return f"SharedKey {account_name}:{base64.b64encode(digest).decode('ascii')}"


def format_ocp_date(when: datetime | None = None) -> str:
    """An RFC 1123 date for `ocp-date` as the SDKs write it (`Tue, 01 Jul 2025 10:00:00 GMT`); naive = UTC."""
    when = when or datetime.now(UTC)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return format_datetime(when, usegmt=True)


def _as_text(raw: str) -> str:
    """Undo a latin-1 decoding of UTF-8 bytes (ASGI raw_path / query_string); identity for ASCII."""
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def _normalize_path(path: str) -> str:
    """RFC 3986 equivalent form: unreserved characters decoded, other escapes in upper-case hex."""

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT.sub(fix, path)


def _request_date(headers: Mapping[str, str]) -> tuple[datetime, str] | None:
    for name in ("ocp-date", "date"):
        value = headers.get(name)
        if not value:
            continue
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when, value
    return None


def _parse_authorization(value: str) -> tuple[str, bytes]:
    scheme, _, credentials = value.strip().partition(" ")
    if scheme != "SharedKey":
        raise auth_failed(f"The authentication scheme '{scheme}' is not supported; use SharedKey.")
    name, sep, signature = credentials.strip().partition(":")
    try:
        mac = base64.b64decode(signature, validate=True) if sep and name else b""
    except (binascii.Error, ValueError):
        mac = b""
    if not mac:
        raise auth_failed("The Authorization header is not of the form 'SharedKey <account>:<signature>'.")
    return name, mac


def verify_request(
    account: SharedKeyAccount,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=15),
) -> None:
    """Check a Shared Key request; raise `BatchError` 403 AuthenticationFailed if it is not authentic.

    `raw_path` is the percent-encoded path as received (ASGI `raw_path` decoded as latin-1), `query_string`
    the raw query string (without "?"), and `headers` maps *lower-case* header names to values (one value
    per name). Error details never contain the expected signature or the string to sign.
    """
    authorization = headers.get("authorization")
    if not authorization:
        raise auth_failed("The request has no Authorization header.")
    name, mac = _parse_authorization(authorization)
    if name.casefold() != account.name.casefold():
        raise auth_failed(f"The account name '{name}' in the Authorization header is not this account.")

    dated = _request_date(headers)
    if dated is None:
        raise auth_failed("The request has no valid 'ocp-date' or 'Date' header (RFC 1123 format expected).")
    when, shown = dated
    skew = (now or datetime.now(UTC)) - when
    if skew > max_skew:
        raise auth_failed(f"Request date header too old: '{shown}'.")
    if -skew > max_skew:
        raise auth_failed(f"Request date header is in the future: '{shown}'.")

    path = _as_text(raw_path) or "/"
    # As received and in its RFC 3986 normal form. (A literal ";params" on the last segment, which the SDKs'
    # urlparse() leaves out of what they sign, is not forgiven: the SDKs always send ";" as %3B.)
    paths = dict.fromkeys((path, _normalize_path(path)))
    received_length = headers.get("content-length", "").strip()
    lengths = ("", "0") if received_length in ("", "0") else (received_length,)
    query = _as_text(query_string)
    items = [(key.lower(), value) for key, value in headers.items()]
    keys = [_decode_key(key) for key in account.keys]
    matched = False
    for candidate_path in paths:
        for length in lengths:
            text = _canonical(method.upper(), name, candidate_path, query, items, length)
            for key in keys:
                # Evaluate every candidate so the time taken does not tell which part matched.
                matched |= hmac.compare_digest(_hmac(key, text), mac)
    if not matched:
        raise auth_failed(
            f"The MAC signature found in the HTTP request '{base64.b64encode(mac).decode('ascii')}' "
            "is not the same as any computed signature."
        )


__all__ = [
    "HEADERS_TO_SIGN",
    "SharedKeyAccount",
    "format_ocp_date",
    "sign_request",
    "string_to_sign",
    "verify_request",
]
