"""How integer, boolean and date-time properties are read: as Azure Batch's .NET deserializer reads them.

Clients send scalars in more than one JSON form, and Azure accepts them: azure-cli sends every number it
takes from a flag as a JSON string (`"targetDedicatedNodes": "2"`). The .NET reader converts a string to an
integer with `int.Parse(s, NumberStyles.Integer, InvariantCulture)` (ASCII digits, an optional sign,
surrounding whitespace) and to a boolean with `bool.Parse` ("true"/"false" in any case, surrounding
whitespace); date-times are ISO 8601 strings. What it refuses is refused here too: "2.5", "1e3", "0x10",
"abc", "" and out-of-range integers, numbers for booleans, booleans for integers, ISO week dates and the
basic (separator-less) form for date-times.

One rule for every property: the schema validator (`schema.py`) calls these for each integer, boolean and
date-time property of the contract, wherever it is nested, and normalizes the value to its JSON type.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from batchyard.service.clock import parse_iso
from batchyard.service.errors import BatchError, invalid_property

from .contract_rules.checks import show

# .NET's NumberStyles.Integer: leading/trailing white (U+0009-U+000D, U+0020), a leading sign, ASCII digits.
_INTEGER = re.compile(r"[\t\n\v\f\r ]*[+-]?[0-9]+[\t\n\v\f\r ]*")
# bool.Parse trims white space and NUL characters from both ends.
_BOOLEAN_TRIM = " \t\n\v\f\r\x85\xa0\0"
_BOOLEANS = {"true": True, "false": False}
# ISO 8601 extended form: a calendar date, optionally a time (seconds and fraction optional) and an offset.
_DATE_TIME = re.compile(
    r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?\s*"
)


def _type_error(path: str, value: Any, expected: str) -> BatchError:
    return invalid_property(path or "body", show(value), f"The value must be {expected}.")


def integer(value: Any, path: str, low: int, high: int, what: str) -> int:
    """A JSON integer, an integral number (3.0) or a string of an integer, within [low, high]."""
    kind = type(value)
    if kind is int:
        number = value
    elif kind is float and value.is_integer():
        number = int(value)
    elif kind is str and _INTEGER.fullmatch(value):
        number = int(value)
    else:
        raise _type_error(path, value, f"a {what} integer")
    if not low <= number <= high:
        raise invalid_property(path, show(value), f"The value must be a {what} integer.")
    return number


def boolean(value: Any, path: str) -> bool:
    """A JSON boolean or the string "true"/"false" (any case)."""
    if type(value) is bool:
        return value
    if type(value) is str:
        hit = _BOOLEANS.get(value.strip(_BOOLEAN_TRIM).lower())
        if hit is not None:
            return hit
    raise _type_error(path, value, "a boolean (true or false)")


def date_time(value: str, path: str) -> str:
    """An ISO 8601 date-time string (years 1 to 9999 in UTC); returned without surrounding white space."""
    reason = "The value must be an ISO 8601 date-time (years 1 to 9999 in UTC)."
    if _DATE_TIME.fullmatch(value) is None:
        raise invalid_property(path, value, reason)
    try:
        # The service works in UTC: 0001-01-01T00:00:00+01:00 is before year 1 there.
        parse_iso(value).astimezone(UTC)
    except (ValueError, OverflowError):
        raise invalid_property(path, value, reason) from None
    return value.strip()
