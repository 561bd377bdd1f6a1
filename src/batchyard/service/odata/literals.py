"""Value rules shared by the parser and both compilers: DateTime literals and case folding."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta, timezone

# Values compare case-insensitively (Batch docs: "property values are case insensitive"). Only ASCII
# letters are folded because that is all SQLite's built-in lower() folds, and the SQL and Python
# evaluations must agree; Batch ids, states and enum values are ASCII anyway.
_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(text: str) -> str:
    return text.translate(_FOLD)


# W3C-DTF (a profile of ISO 8601). A date alone means midnight; a time without a zone is taken as UTC,
# which is what the service stores everything in. Fractions beyond microseconds are truncated, as the
# service's own timestamps keep six digits.
_W3C = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
    r"(?:[Tt](?P<h>[0-9]{2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]+))?)?"
    r"(?P<tz>[Zz]|[+-][0-9]{2}:[0-9]{2})?)?"
)
# RFC 1123 as HTTP writes it: "Sun, 08 May 2011 08:49:37 GMT"; the weekday must match the date.
_RFC1123 = re.compile(
    r"(?P<wd>Mon|Tue|Wed|Thu|Fri|Sat|Sun), (?P<d>[0-9]{1,2}) (?P<mon>[A-Z][a-z]{2}) (?P<y>[0-9]{4}) "
    r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2}) GMT"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def parse_datetime(text: str) -> datetime:
    """An aware UTC datetime (microsecond precision) from W3C-DTF or RFC 1123 text; ValueError if neither."""
    try:
        return _parse(text)
    except OverflowError:
        raise ValueError("out of range") from None


def _parse(text: str) -> datetime:
    if m := _W3C.fullmatch(text):
        fraction = (m["f"] or "")[:6].ljust(6, "0")
        dt = datetime(
            int(m["y"]), int(m["mo"]), int(m["d"]),
            int(m["h"] or 0), int(m["mi"] or 0), int(m["s"] or 0), int(fraction),
            tzinfo=_zone(m["tz"]),
        )  # fmt: skip
        return dt.astimezone(UTC)
    if m := _RFC1123.fullmatch(text):
        if m["mon"] not in _MONTHS:
            raise ValueError(f"unknown month {m['mon']!r}")
        dt = datetime(
            int(m["y"]), _MONTHS.index(m["mon"]) + 1, int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]), tzinfo=UTC
        )
        if _WEEKDAYS[dt.weekday()] != m["wd"]:
            raise ValueError("the day of the week does not match the date")
        return dt
    raise ValueError("not a W3C-DTF or RFC 1123 date/time")


def _zone(tz: str | None) -> timezone:
    if tz is None or tz in ("Z", "z"):
        return UTC
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError("bad time zone offset")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if tz[0] == "-" else offset)


def canonical(dt: datetime) -> str:
    """The exact form the store writes ('%Y-%m-%dT%H:%M:%S.%fZ', UTC), so stored strings compare in time order.

    Formatted by hand because strftime does not zero-pad years below 1000 on every platform.
    """
    u = dt.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"
