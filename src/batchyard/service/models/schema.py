"""A request-body validator compiled from the REST contract's definitions.

`validate("BatchTaskCreateOptions", body)` checks JSON types, formats, enums and required properties and
returns a new normalized dict:

* unknown and readOnly properties are dropped silently (old SDKs send older fields; GET-then-PUT clients
  send read-only ones back), as is any property whose value is JSON null (.NET reads it as "not given");
* property names are matched case-insensitively like the .NET service does (so an old `userName` lands
  on the contract's `username`);
* enum values are matched case-insensitively and rewritten in the contract's casing (or Azure's, where
  the two differ: `_WIRE_SPELLINGS`);
* durations are rewritten in the service's canonical form ("PT900S" -> "PT15M");
* integers, booleans and date-times are read as Azure's .NET deserializer reads them (`scalars.py`):
  `"2"` is the integer 2 and `"true"` the boolean true, as azure-cli sends them;
* a nested `XUpdate` object of a PATCH body is checked as `X` (it replaces the stored object whole);
* per-definition contract rules (`contract_rules/`) rename aliases from older API versions
  (`targetDedicated`, `maxTasksPerNode`, `runElevated`, ...) before, and apply semantic rules after, the
  schema checks of that object, wherever it is nested.

Errors name the offending property by dotted path (`startTask.commandLine`, `resourceFiles[2].httpUrl`).
Each definition is compiled once into a closure and cached, since this runs on every task of every
add-collection request.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from batchyard.service.errors import BatchError, invalid_body, invalid_property, missing_property

from . import contract_rules, durations, scalars
from .contract_rules import show

Validator = Callable[[Any, str], Any]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Enum values the azure-batch 15.1.0 SDK sends that this contract version does not list.
_EXTRA_ENUM_VALUES: dict[str, tuple[str, ...]] = {"HostEndpointSettingsModeTypes": ("Audit", "Enforce")}
# Enum values the real service writes in another casing than the contract's, and the SDKs' enums with it
# (azure-batch's `BatchJobDefaultOrder.CREATION_TIME` is "creationtime"): answered as Azure answers them, so
# a client's `is`/`==` comparison with its own enum holds.
_WIRE_SPELLINGS: dict[str, dict[str, str]] = {
    "BatchJobDefaultOrder": {"creationTime": "creationtime"},
    "SecurityTypes": {"confidentialVM": "confidentialvm"},
}

# Contract slips: the auto-pool specs type resourceTags as a string where every other pool type (and
# the service) has a string map.
_TAGS = {"type": "object", "additionalProperties": {"type": "string"}}
_PROPERTY_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("BatchPoolSpecification", "resourceTags"): _TAGS,
    ("BatchPoolSpecificationUpdate", "resourceTags"): _TAGS,
}


@cache
def contract() -> dict[str, Any]:
    """The REST contract (OpenAPI 2.0), loaded once from package data."""
    text = resources.files(__package__).joinpath("contract.json").read_bytes()
    return json.loads(text)


def definitions() -> dict[str, Any]:
    return contract()["definitions"]


def validate(definition: str, body: Any, path: str = "") -> dict[str, Any]:
    """Validate `body` against a contract definition; returns the normalized dict or raises BatchError."""
    if not isinstance(body, dict):
        if path:
            raise invalid_property(path, show(body), "The value must be a JSON object.")
        raise invalid_body("The request body must be a JSON object.")
    return compiled(definition)(body, path)


def compiled(definition: str) -> Validator:
    """The cached validator closure of a definition (compiled on first use)."""
    fn = _compiled.get(definition)
    if fn is None:
        if definition not in definitions():
            raise KeyError(f"unknown contract definition {definition!r}")
        fn = _compile_definition(definition)
    return fn


# --- helpers -------------------------------------------------------------------------------------------


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _type_error(path: str, value: Any, expected: str) -> BatchError:
    return invalid_property(path or "body", show(value), f"The value must be {expected}.")


# --- compilation ---------------------------------------------------------------------------------------

_compiled: dict[str, Validator] = {}


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _compile_definition(name: str) -> Validator:
    schema = definitions()[name]
    base = _update_twin_of(name)
    if base is not None:
        fn = compiled(base)
        _compiled[name] = fn
        return fn
    if "enum" in schema:
        spelled = _WIRE_SPELLINGS.get(name, {})
        fn = _enum(name, [spelled.get(v, v) for v in schema["enum"]] + list(_EXTRA_ENUM_VALUES.get(name, ())))
    elif "properties" in schema:
        return _object(name, schema)  # registers itself first, so recursive refs resolve
    else:
        fn = _schema(schema, name)
    _compiled[name] = fn
    return fn


def _update_twin_of(name: str) -> str | None:
    """The definition a nested `XUpdate` is checked as: `X`.

    The contract's PATCH bodies (`...UpdateOptions`) reach their nested objects through `XUpdate` twins: the
    same properties as `X`, none of them required. But a nested object present in a PATCH replaces the stored
    one whole (a pool's `virtualMachineConfiguration`, a schedule's `jobSpecification`, ...), so it needs what
    `X` needs (its required properties, rules and aliases), or the resource is left without them.
    """
    if not name.endswith("Update"):
        return None
    base = name.removesuffix("Update")
    return base if "properties" in definitions().get(base, {}) else None


def _schema(schema: dict[str, Any], prop: str = "") -> Validator:
    """Compile an inline schema (a property, an array's items, ...)."""
    if "$ref" in schema:
        target = _ref_name(schema["$ref"])
        # Eager is recursion-safe: an object validator registers itself before compiling its children.
        return compiled(target)
    kind = schema.get("type")
    if kind == "array":
        return _array(_schema(schema.get("items", {})))
    if kind == "object" or "additionalProperties" in schema:
        if "additionalProperties" in schema:
            return _map(_schema(schema["additionalProperties"]))
        return _any_object
    if kind == "string":
        if "enum" in schema:
            return _enum(prop, schema["enum"])
        return _string(schema.get("format"), contract_rules.STRING_LIMITS.get(prop))
    if kind == "integer":
        return _int64 if schema.get("format") == "int64" else _int32
    if kind == "number":
        return _number
    if kind == "boolean":
        return scalars.boolean
    return _anything


def _object(name: str, schema: dict[str, Any]) -> Validator:
    fields: dict[str, tuple[str, Validator]] = {}
    by_lower: dict[str, tuple[str, Validator]] = {}
    relaxed = contract_rules.NOT_REQUIRED.get(name, frozenset())
    required = tuple(p for p in schema.get("required", ()) if p not in relaxed)
    alias = contract_rules.ALIASES.get(name)
    rule = contract_rules.RULES.get(name)

    def check(value: Any, path: str) -> dict[str, Any]:
        if type(value) is not dict:
            raise _type_error(path, value, "a JSON object")
        if alias is not None:
            value = alias(value, path)
        out: dict[str, Any] = {}
        for key, item in value.items():
            field = fields.get(key)
            if field is None:
                field = by_lower.get(key.lower())
                if field is None:
                    continue  # unknown or read-only: dropped
            if item is None:
                continue
            prop, fn = field
            out[prop] = fn(item, f"{path}.{prop}" if path else prop)
        for prop in required:
            if prop not in out:
                raise missing_property(join(path, prop))
        if rule is not None:
            rule(out, path)
        return out

    _compiled[name] = check
    for prop, sub in schema["properties"].items():
        if sub.get("readOnly"):
            continue
        sub = _PROPERTY_OVERRIDES.get((name, prop), sub)
        field = (prop, _schema(sub, prop))
        fields[prop] = field
        by_lower[prop.lower()] = field
    return check


def _array(item: Validator) -> Validator:
    def check(value: Any, path: str) -> list[Any]:
        if type(value) is not list:
            raise _type_error(path, value, "a JSON array")
        return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]

    return check


def _map(item: Validator) -> Validator:
    def check(value: Any, path: str) -> dict[str, Any]:
        if type(value) is not dict:
            raise _type_error(path, value, "a JSON object")
        return {k: item(v, join(path, k)) for k, v in value.items()}

    return check


def _any_object(value: Any, path: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise _type_error(path, value, "a JSON object")
    return value


def _anything(value: Any, path: str) -> Any:
    return value


def _enum(name: str, values: list[str]) -> Validator:
    canonical = {v.lower(): v for v in values}
    listed = ", ".join(values)

    def check(value: Any, path: str) -> str:
        if type(value) is str:
            hit = canonical.get(value.lower())
            if hit is not None:
                return hit
        raise invalid_property(path, show(value), f"The value must be one of: {listed}.")

    return check


# No string the service keeps may hold U+0000: no command line, argument, environment value or file name
# on a node can carry it, so it is refused in every string property, not only where it would break later.
NUL_REASON = "The value must not contain the NUL character (U+0000)."


def _string(fmt: str | None, max_length: int | None) -> Validator:
    convert = _FORMATS.get(fmt or "")

    def check(value: Any, path: str) -> str:
        if type(value) is not str:
            raise _type_error(path, value, "a string")
        if "\x00" in value:
            raise invalid_property(path, show(value.replace("\x00", "\\u0000")), NUL_REASON)
        if max_length is not None and len(value) > max_length:
            raise invalid_property(path, show(value), f"The value must be at most {max_length} characters long.")
        if convert is not None:
            return convert(value, path)
        return value

    return check


def _duration(value: str, path: str) -> str:
    try:
        ticks = durations.parse_ticks(value)
    except ValueError:
        raise invalid_property(
            path, value, "The value must be an ISO 8601 duration, for example PT15M or P1DT2H."
        ) from None
    if ticks < 0:
        raise invalid_property(path, value, "The duration must not be negative.")
    return durations.format_ticks(ticks)


def _int64_string(value: str, path: str) -> str:
    """A string of format int64 (the contract's way to carry 64-bit integers): the same rule as an integer."""
    scalars.integer(value, path, INT64_MIN, INT64_MAX, "64-bit")
    return value


def _base64(value: str, path: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_property(path, show(value), "The value must be base64 encoded.") from None
    return value


_FORMATS: dict[str, Callable[[str, str], str]] = {
    "duration": _duration,
    "date-time": scalars.date_time,
    "int64": _int64_string,
    "byte": _base64,
}


def _int32(value: Any, path: str) -> int:
    if type(value) is int and INT32_MIN <= value <= INT32_MAX:
        return value  # fast path
    return scalars.integer(value, path, INT32_MIN, INT32_MAX, "32-bit")


def _int64(value: Any, path: str) -> int:
    return scalars.integer(value, path, INT64_MIN, INT64_MAX, "64-bit")


def _number(value: Any, path: str) -> float | int:
    if type(value) not in (int, float):
        raise _type_error(path, value, "a number")
    return value
