"""Tokens of a formula, each with its line and column (1-based) for error messages."""

from __future__ import annotations

from dataclasses import dataclass

from batchyard.service.autoscale.errors import FormulaSyntaxError

MAX_CHARACTERS = 8192  # "The formula string cannot exceed 8 KB"

# Longest first, so `<=` is not read as `<` `=`.
_OPERATORS = (
    "&&",
    "||",
    "==",
    "!=",
    "<=",
    ">=",
    "<",
    ">",
    "=",
    "!",
    "+",
    "-",
    "*",
    "/",
    "?",
    ":",
    "(",
    ")",
    ",",
    ";",
    ".",
)


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "str", "name", "op", "end"
    text: str
    line: int
    col: int
    number: float = 0.0

    @property
    def pos(self) -> tuple[int, int]:
        return (self.line, self.col)


def tokenize(source: str) -> list[Token]:
    if len(source) > MAX_CHARACTERS:
        raise FormulaSyntaxError(
            f"The formula has {len(source)} characters; at most {MAX_CHARACTERS} are allowed.",
            code="AutoScaleFormulaTooLong",
        )
    tokens: list[Token] = []
    i, line, line_start = 0, 1, 0
    n = len(source)
    while i < n:
        ch = source[i]
        col = i - line_start + 1
        if ch == "\n":
            i += 1
            line, line_start = line + 1, i
            continue
        if ch in " \t\r\f\v":
            i += 1
            continue
        if source.startswith("//", i):  # comment to the end of the line
            end = source.find("\n", i)
            i = n if end < 0 else end
            continue
        if _digit(ch) or (ch == "." and i + 1 < n and _digit(source[i + 1]) and not _follows_value(tokens)):
            i = _number(source, i, line, col, tokens)
            continue
        if ch.isalpha() or ch in "_$":
            start = i
            i += 1
            while i < n and (source[i].isalnum() or source[i] == "_") and source[i].isascii():
                i += 1
            text = source[start:i]
            if text == "$":
                raise FormulaSyntaxError("A variable name must follow '$'.", line, col)
            if not text.isascii():
                raise FormulaSyntaxError(f"Unexpected character {text!r}.", line, col)
            tokens.append(Token("name", text, line, col))
            continue
        if ch in "\"'":
            i, text = _string(source, i, line, col)
            tokens.append(Token("str", text, line, col))
            continue
        for op in _OPERATORS:
            if source.startswith(op, i):
                tokens.append(Token("op", op, line, col))
                i += len(op)
                break
        else:
            raise FormulaSyntaxError(f"Unexpected character {ch!r}.", line, col)
    tokens.append(Token("end", "", line, n - line_start + 1))
    return tokens


def _digit(ch: str) -> bool:
    """0-9 only: `str.isdigit` also takes '²' and other digits `float` cannot read."""
    return "0" <= ch <= "9"


def _follows_value(tokens: list[Token]) -> bool:
    return bool(tokens) and (tokens[-1].kind in ("num", "str", "name") or tokens[-1].text == ")")


def _number(source: str, i: int, line: int, col: int, tokens: list[Token]) -> int:
    start, n = i, len(source)
    while i < n and _digit(source[i]):
        i += 1
    if i < n and source[i] == "." and i + 1 < n and _digit(source[i + 1]):
        i += 1
        while i < n and _digit(source[i]):
            i += 1
    if i < n and source[i] in "eE":
        j = i + 1
        if j < n and source[j] in "+-":
            j += 1
        if j < n and _digit(source[j]):
            i = j
            while i < n and _digit(source[i]):
                i += 1
    text = source[start:i]
    if i < n and (source[i].isalpha() or source[i] == "_"):
        raise FormulaSyntaxError(f"Malformed number {source[start : i + 1]!r}.", line, col)
    tokens.append(Token("num", text, line, col, float(text)))
    return i


def _string(source: str, i: int, line: int, col: int) -> tuple[int, str]:
    quote = source[i]
    i += 1
    out: list[str] = []
    while i < len(source):
        ch = source[i]
        if ch == quote:
            return i + 1, "".join(out)
        if ch == "\n":
            break
        if ch == "\\" and i + 1 < len(source) and source[i + 1] in ("\\", quote):
            out.append(source[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise FormulaSyntaxError("Unterminated string.", line, col)
