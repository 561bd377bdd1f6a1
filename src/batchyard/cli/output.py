"""The one output style of the `batchyard` commands, as az's: `-o table|json|jsonc|tsv|none`, `--query`.

`--query` (JMESPath) applies first, to the JSON answer; then the format. A table shows a command's
own columns (or, after a --query, the scalar fields of what it selected) and shrinks its widest
columns until it fits the terminal (80 columns when not a terminal). tsv is az's: one line per item,
its scalar values tab-separated, no header.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

FORMATS = ("table", "json", "jsonc", "tsv", "none")


@dataclass(frozen=True)
class Column:
    """A table column: its header and the JMESPath expression of its value in one item."""

    header: str
    path: str


class OutputError(Exception):
    """A bad --query: printed as `batchyard: ...`, exit status 2."""


def add_output_options(parser: argparse.ArgumentParser, default: str = "json") -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default=os.environ.get("BATCHYARD_OUTPUT") or default,
        help=f"output format (or BATCHYARD_OUTPUT; default here: {default})",
    )
    parser.add_argument("--query", help="a JMESPath query applied to the JSON answer before it is printed")


@dataclass(frozen=True)
class Answer:
    """An answer with table columns of its own (other than its command's)."""

    value: Any
    columns: Sequence[Column]


def emit(args: argparse.Namespace, result: Any, columns: Sequence[Column] = (), out: TextIO | None = None) -> None:
    """Print a command's answer in the chosen format; nothing for None."""
    out = out or sys.stdout
    if isinstance(result, Answer):
        result, columns = result.value, result.columns
    query = getattr(args, "query", None)
    if query:
        result = apply_query(query, result)
        columns = ()  # the columns are those of what the query selected
    fmt = getattr(args, "output", "json")
    if result is None or fmt == "none":
        return
    if fmt == "json":
        print(json.dumps(result, indent=2), file=out)
    elif fmt == "jsonc":
        _print_colored_json(result, out)
    elif fmt == "tsv":
        for row in _items(result):
            print("\t".join(_cell(v) for v in _scalars(row).values()), file=out)
    else:
        print(render_table(_items(result), columns), file=out)


def apply_query(query: str, result: Any) -> Any:
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.search(query, result)
    except JMESPathError as exc:
        raise OutputError(f"--query {query!r}: {exc}") from None


def render_table(items: list[Any], columns: Sequence[Column] = (), width: int | None = None) -> str:
    """Items as a table with a header and a rule, fitted to `width` columns of text."""
    import jmespath

    if columns:
        headers = [c.header for c in columns]
        rows = [[_cell(jmespath.search(c.path, item)) for c in columns] for item in items]
    else:
        headers = []
        for item in items:
            headers += [k for k in _scalars(item) if k not in headers]
        rows = [[_cell(_scalars(item).get(h)) for h in headers] for item in items]
        headers = [_title(h) for h in headers]
    if not headers:
        return ""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    _fit(widths, [len(h) for h in headers], width or shutil.get_terminal_size((80, 24)).columns)
    lines = [_line(headers, widths), _line(["-" * w for w in widths], widths)]
    lines += [_line(row, widths) for row in rows]
    return "\n".join(lines)


def _fit(widths: list[int], minimums: list[int], total: int) -> None:
    """Narrow the widest columns (never below their header, nor 6) until the row fits `total`; the
    first column (the id, what a reader copies into the next command) only when nothing else can."""
    floors = [max(6, min(m, 12)) for m in minimums]
    while sum(widths) + 2 * (len(widths) - 1) > total:
        others = [i for i in range(1, len(widths)) if widths[i] > floors[i]]
        candidates = others or [i for i in range(len(widths)) if widths[i] > floors[i]]
        if not candidates:
            return  # nothing left to narrow: the terminal wraps
        widths[max(candidates, key=lambda i: widths[i])] -= 1


def _line(cells: list[str], widths: list[int]) -> str:
    shown = [c if len(c) <= w else c[: w - 1] + "…" for c, w in zip(cells, widths, strict=True)]
    return "  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip()


def _items(result: Any) -> list[Any]:
    if isinstance(result, dict) and isinstance(result.get("value"), list) and len(result) <= 2:
        return list(result["value"])  # a raw REST list page
    return list(result) if isinstance(result, list) else [result]


def _scalars(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return {k: v for k, v in item.items() if not isinstance(v, dict | list) and not k.startswith("odata.")}
    return {"Result": item}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _title(key: str) -> str:
    """camelCase -> Camel Case, as az's table headers."""
    words, word = [], ""
    for char in key:
        if char.isupper() and word and not word[-1].isupper():
            words.append(word)
            word = char
        else:
            word += char
    words.append(word)
    return " ".join(w[:1].upper() + w[1:] for w in words if w)


def _print_colored_json(result: Any, out: TextIO) -> None:
    from rich.console import Console

    Console(file=out, force_terminal=True, color_system="standard", soft_wrap=True).print_json(
        json.dumps(result), indent=2
    )
