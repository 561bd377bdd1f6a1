"""Tokenizer and recursive-descent parser for the Azure Batch `$filter` grammar.

    filter     := or_expr EOF
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := primary ("and" primary)*
    primary    := "(" or_expr ")"
                | "startswith" "(" path "," string ")"
                | path op literal
    op         := eq | ne | gt | ge | lt | le
    literal    := 'string' (quote doubled inside) | integer | true | false | DateTime'...'
    path       := name ("/" name)*

Keywords, operators and property names are case-sensitive (OData and the Batch docs); only the
`DateTime` prefix is matched case-insensitively since both `DateTime'` (Batch docs) and `datetime'`
(OData v3) are in use. The Batch docs only combine conditions with `and`/`or`, so `not` is rejected.
This module checks syntax only; `validate` checks properties, operators and types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from batchyard.service import errors
from batchyard.service.odata import literals
from batchyard.service.odata.nodes import And, Compare, Expr, Literal, Or
from batchyard.service.odata.properties import COMPARE

# Bounds that keep parsing, Python evaluation and SQLite (expression depth, LIKE pattern length) safe.
MAX_DEPTH = 32
MAX_CONDITIONS = 1000
MAX_STRING = 4096
MAX_DIGITS = 20  # well past int32; keeps int() away from Python's digit limit

_SPACE = " \t\r\n"
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_PUNCT = {"(": "lparen", ")": "rparen", ",": "comma"}


@dataclass(frozen=True)
class Token:
    kind: str  # name, string, int, datetime, lparen, rparen, comma, eof
    text: str  # source text of the token
    pos: int
    value: object = None


class _Fail(Exception):
    def __init__(self, reason: str, pos: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pos = pos


def parse(text: str) -> Expr:
    """The syntax tree of a non-empty filter; raises BatchError (InvalidQueryParameterValue) otherwise."""
    try:
        bad = _surrogate_at(text)
        if bad >= 0:
            raise _Fail("The filter is not valid Unicode text", bad)
        if "\x00" in text:
            # SQLite's LIKE and JSON functions stop at NUL; no filterable value can contain one.
            raise _Fail("The filter contains a NUL character", text.index("\x00"))
        return _Parser(text).parse()
    except _Fail as fail:
        raise errors.invalid_query("$filter", text, f"{fail.reason} (at character {fail.pos + 1}).") from None


def _surrogate_at(text: str) -> int:
    """Offset of the first lone surrogate, or -1: those cannot be bound as SQLite parameters later."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return -1


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _SPACE:
            i += 1
        elif ch in _PUNCT:
            tokens.append(Token(_PUNCT[ch], ch, i))
            i += 1
        elif ch == "'":
            value, end = _string(text, i)
            tokens.append(Token("string", text[i:end], i, value))
            i = end
        elif ch in _DIGITS or (ch == "-" and i + 1 < n and text[i + 1] in _DIGITS):
            end = i + 1
            while end < n and text[end] in _DIGITS:
                end += 1
            if end < n and (text[end] in _NAME_CHARS or text[end] in ".'"):
                raise _Fail("Only whole numbers are supported as numeric literals", i)
            if end - i > MAX_DIGITS:
                raise _Fail(f"The number {text[i:end][:20]}... is too large", i)
            tokens.append(Token("int", text[i:end], i, int(text[i:end])))
            i = end
        elif ch in _NAME_START:
            end = _path_end(text, i)
            word = text[i:end]
            if end < n and text[end] == "'":
                if word.lower() != "datetime":
                    raise _Fail(f"Unsupported literal prefix {word!r}; only DateTime'...' is supported", i)
                raw, close = _string(text, end)
                tokens.append(Token("datetime", text[i:close], i, raw))
                i = close
            else:
                tokens.append(Token("name", word, i))
                i = end
        else:
            raise _Fail(f"Unexpected character {ch!r}", i)
    tokens.append(Token("eof", "", n))
    return tokens


def _path_end(text: str, i: int) -> int:
    """End of `name(/name)*` starting at i; a '/' must be followed by another name."""
    n = len(text)
    while True:
        while i < n and text[i] in _NAME_CHARS:
            i += 1
        if i < n and text[i] == "/":
            if i + 1 >= n or text[i + 1] not in _NAME_START:
                raise _Fail("A property path must have a property name after '/'", i)
            i += 1
            continue
        return i


def _string(text: str, start: int) -> tuple[str, int]:
    """The value of the quoted string at `start` ('' stands for one quote) and the offset after it."""
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        j = text.find("'", i)
        if j < 0:
            break
        out.append(text[i:j])
        if j + 1 < n and text[j + 1] == "'":
            out.append("'")
            i = j + 2
            continue
        value = "".join(out)
        if len(value) > MAX_STRING:
            raise _Fail(f"String literals are limited to {MAX_STRING} characters", start)
        return value, j + 1
    raise _Fail("Unterminated string literal", start)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.conditions = 0

    # --- token helpers ----------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def is_word(self, word: str) -> bool:
        return self.tok.kind == "name" and self.tok.text == word

    def expect(self, kind: str, what: str) -> Token:
        if self.tok.kind != kind:
            self.fail(f"Expected {what} but found {_describe(self.tok)}")
        return self.advance()

    def fail(self, reason: str, pos: int | None = None) -> NoReturn:
        raise _Fail(reason, self.tok.pos if pos is None else pos)

    # --- grammar ------------------------------------------------------------------------------------

    def parse(self) -> Expr:
        if self.tok.kind == "eof":
            self.fail("The filter is empty")
        expr = self.or_expr()
        if self.tok.kind != "eof":
            if self.tok.kind == "rparen":
                self.fail("Unbalanced ')'")
            self.fail(f"Expected 'and', 'or' or the end of the filter but found {_describe(self.tok)}")
        return expr

    def or_expr(self) -> Expr:
        terms = [self.and_expr()]
        while self.is_word("or"):
            self.advance()
            terms.append(self.and_expr())
        return _flat(Or, terms)

    def and_expr(self) -> Expr:
        terms = [self.primary()]
        while self.is_word("and"):
            self.advance()
            terms.append(self.primary())
        return _flat(And, terms)

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "lparen":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                self.fail(f"Parentheses are nested more than {MAX_DEPTH} deep")
            self.advance()
            expr = self.or_expr()
            self.expect("rparen", "')'")
            self.depth -= 1
            return expr
        if tok.kind != "name":
            if tok.kind == "eof":
                self.fail("The filter ends where a condition was expected")
            self.fail(f"Expected a condition (property operator value, or startswith) but found {_describe(tok)}")
        if tok.text == "not":
            self.fail("The 'not' operator is not supported; conditions can only be combined with 'and' and 'or'")
        if tok.text in ("and", "or"):
            self.fail(f"'{tok.text}' must come between two conditions")
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            self.fail(f"A filter can have at most {MAX_CONDITIONS} conditions")
        if self.tokens[self.i + 1].kind == "lparen":
            return self.function()
        path = self.advance()
        op = self.tok
        if op.kind != "name" or op.text not in COMPARE:
            hint = " (operators are lower-case)" if op.kind == "name" and op.text.lower() in COMPARE else ""
            found = _describe(op)
            self.fail(f"Expected an operator (eq, ne, gt, ge, lt, le) after '{path.text}' but found {found}{hint}")
        self.advance()
        return Compare(path.text, op.text, self.literal(), path.pos)

    def function(self) -> Expr:
        name = self.advance()
        if name.text != "startswith":
            self.fail(f"Unsupported function '{name.text}'; only startswith(property, 'prefix') is supported", name.pos)
        self.advance()  # (
        path = self.expect("name", "a property name")
        if "/" not in path.text and path.text in _WORDS:
            self.fail(f"Expected a property name but found '{path.text}'", path.pos)
        self.expect("comma", "','")
        if self.tok.kind != "string":
            self.fail(f"startswith needs a string literal as its second argument, found {_describe(self.tok)}")
        literal = self.literal()
        self.expect("rparen", "')'")
        if self.is_word("eq") or self.is_word("ne"):
            self.fail("startswith(...) is a condition by itself; comparing it with eq or ne is not supported")
        return Compare(path.text, "startswith", literal, path.pos)

    def literal(self) -> Literal:
        tok = self.tok
        if tok.kind == "string":
            assert isinstance(tok.value, str)
            lit = Literal("string", tok.value, tok.text, tok.pos)
        elif tok.kind == "int":
            assert isinstance(tok.value, int)
            lit = Literal("int", tok.value, tok.text, tok.pos)
        elif tok.kind == "datetime":
            assert isinstance(tok.value, str)
            try:
                when = literals.parse_datetime(tok.value)
            except ValueError as exc:
                self.fail(
                    f"Invalid DateTime literal {tok.text} ({exc}); use W3C-DTF, e.g. DateTime'2011-05-08T08:49:37Z',"
                    " or RFC 1123, e.g. DateTime'Sun, 08 May 2011 08:49:37 GMT'"
                )
            lit = Literal("datetime", when, tok.text, tok.pos)
        elif tok.kind == "name" and tok.text in ("true", "false"):
            lit = Literal("bool", tok.text == "true", tok.text, tok.pos)
        elif tok.kind == "name" and tok.text == "null":
            self.fail("null literals are not supported")
        elif tok.kind == "name":
            self.fail(f"Expected a literal value but found '{tok.text}' (strings are quoted: '...')")
        else:
            self.fail(f"Expected a literal value but found {_describe(tok)}")
        self.advance()
        return lit


_WORDS = frozenset(("and", "or", "not", "true", "false", "null", *COMPARE))


def _flat(cls: type[And] | type[Or], terms: list[Expr]) -> Expr:
    if len(terms) == 1:
        return terms[0]
    flat: list[Expr] = []
    for term in terms:
        flat.extend(term.terms if isinstance(term, cls) else (term,))
    return cls(tuple(flat))


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "the end of the filter"
    shown = tok.text if len(tok.text) <= 40 else tok.text[:37] + "..."
    return f"'{shown}'"
