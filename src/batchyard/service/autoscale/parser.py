"""Formula text -> `Program`. A recursive-descent parser with the usual precedence:

    ternary  ?:        (lowest, right to left)
    ||
    &&
    < <= == >= > !=
    + -
    * /
    unary - !
    postfix  .member  .Method(args)
    primary  number, string, name, function(args), (expr)

Statements are separated by `;` (a last one may omit it); line breaks and `//` comments are free.
Unknown functions, methods and members and writes to read-only variables are syntax errors, so a
formula is checked when it is set, not only when it runs.
"""

from __future__ import annotations

from batchyard.service.autoscale import nodes as n
from batchyard.service.autoscale.errors import FormulaSyntaxError
from batchyard.service.autoscale.functions import FUNCTIONS
from batchyard.service.autoscale.lexer import Token, tokenize
from batchyard.service.autoscale.samples import METHODS
from batchyard.service.autoscale.values import DEALLOCATION_OPTIONS, TIME_INTERVALS, TIMESTAMP_MEMBERS
from batchyard.service.autoscale.variables import READ_ONLY

MAX_STATEMENTS = 100
MAX_NESTING = 40  # parentheses, ternaries and unary chains; keeps recursion far from Python's limit
MAX_DEPTH = 200  # of the whole tree (long `a+b+c+...` chains), for the same reason

_COMPARISONS = ("<", "<=", "==", ">=", ">", "!=")


def parse(source: str) -> n.Program:
    return _Parser(source).program()


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0
        self.nesting = 0
        self._line_offsets = [0]
        for index, ch in enumerate(source):
            if ch == "\n":
                self._line_offsets.append(index + 1)

    # --- token helpers --------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def at(self, text: str) -> bool:
        return self.tok.kind == "op" and self.tok.text == text

    def expect(self, text: str, what: str) -> Token:
        if not self.at(text):
            raise self.error(f"Expected {what} but found {_describe(self.tok)}.")
        return self.next()

    def error(self, detail: str, tok: Token | None = None) -> FormulaSyntaxError:
        tok = tok or self.tok
        return FormulaSyntaxError(detail, tok.line, tok.col)

    def offset(self, tok: Token) -> int:
        return self._line_offsets[tok.line - 1] + tok.col - 1

    # --- statements -----------------------------------------------------------------------------

    def program(self) -> n.Program:
        statements: list[n.Statement] = []
        while self.tok.kind != "end":
            if self.at(";"):
                self.next()
                continue
            start = self.tok
            statement = self.statement(len(statements) + 1)
            if len(statements) == MAX_STATEMENTS:
                raise self.error(f"The formula has more than {MAX_STATEMENTS} statements.", start)
            if self.tok.kind != "end" and not self.at(";"):
                raise self.error(f"Expected ';' between statements but found {_describe(self.tok)}.")
            end = self.offset(self.tok) if self.tok.kind != "end" else len(self.source)
            text = " ".join(self.source[self.offset(start) : end].split())
            statements.append(n.Statement(statement.index, statement.pos, statement.target, statement.expr, text))
        return n.Program(tuple(statements), self.source)

    def statement(self, index: int) -> n.Statement:
        start = self.tok
        if start.kind == "name" and self.tokens[self.i + 1].kind == "op" and self.tokens[self.i + 1].text == "=":
            _check_assignable(start)
            self.next()
            self.next()
            expr = self.expression()
            _check_depth(expr)
            return n.Statement(index, start.pos, start.text, expr)
        expr = self.expression()
        _check_depth(expr)
        return n.Statement(index, start.pos, None, expr)

    # --- expressions ----------------------------------------------------------------------------

    def expression(self) -> n.Node:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(f"The expression is nested more than {MAX_NESTING} levels deep.")
        try:
            cond = self.binary(0)
            if not self.at("?"):
                return cond
            question = self.next()
            then = self.expression()
            self.expect(":", "':' of the ternary operator")
            other = self.expression()
            return n.Ternary(question.pos, cond, then, other)
        finally:
            self.nesting -= 1

    # Binary levels, lowest first.
    _LEVELS: tuple[tuple[str, ...], ...] = (("||",), ("&&",), _COMPARISONS, ("+", "-"), ("*", "/"))

    def binary(self, level: int) -> n.Node:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.tok.kind == "op" and self.tok.text in self._LEVELS[level]:
            op = self.next()
            right = self.binary(level + 1)
            left = n.Binary(op.pos, op.text, left, right)
        return left

    def unary(self) -> n.Node:
        if self.at("-") or self.at("!"):
            op = self.next()
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                raise self.error(f"The expression is nested more than {MAX_NESTING} levels deep.", op)
            try:
                return n.Unary(op.pos, op.text, self.unary())
            finally:
                self.nesting -= 1
        return self.postfix()

    def postfix(self) -> n.Node:
        node = self.primary()
        while self.at("."):
            self.next()
            name = self.tok
            if name.kind != "name" or name.text.startswith("$"):
                raise self.error(f"Expected a member or method name after '.' but found {_describe(name)}.")
            self.next()
            if self.at("("):
                if name.text not in METHODS:
                    raise self.error(f"Unknown method {name.text!r}; the methods are {', '.join(METHODS)}.", name)
                node = n.MethodCall(name.pos, node, name.text, self.arguments())
            else:
                if name.text not in TIMESTAMP_MEMBERS:
                    raise self.error(
                        f"Unknown member {name.text!r}; a timestamp has {', '.join(TIMESTAMP_MEMBERS)}.", name
                    )
                node = n.Member(name.pos, node, name.text)
        return node

    def arguments(self) -> tuple[n.Node, ...]:
        self.expect("(", "'('")
        args: list[n.Node] = []
        if not self.at(")"):
            args.append(self.expression())
            while self.at(","):
                self.next()
                args.append(self.expression())
        self.expect(")", "',' or ')'")
        return tuple(args)

    def primary(self) -> n.Node:
        tok = self.tok
        if tok.kind == "num":
            self.next()
            return n.Num(tok.pos, tok.number)
        if tok.kind == "str":
            self.next()
            return n.Str(tok.pos, tok.text)
        if tok.kind == "name":
            self.next()
            if self.at("("):
                if tok.text.startswith("$"):
                    raise self.error(f"{tok.text} is a variable, not a function.", tok)
                if tok.text not in FUNCTIONS:
                    raise self.error(f"Unknown function {tok.text!r}.", tok)
                return n.Call(tok.pos, tok.text, self.arguments())
            return n.Name(tok.pos, tok.text)
        if self.at("("):
            self.next()
            inner = self.expression()
            self.expect(")", "')'")
            return inner
        raise self.error(f"Expected a value but found {_describe(tok)}.")


def _check_assignable(tok: Token) -> None:
    name = tok.text
    if name in READ_ONLY:
        raise FormulaSyntaxError(f"{name} is a read-only service-defined variable.", tok.line, tok.col)
    if name in TIME_INTERVALS or name in DEALLOCATION_OPTIONS:
        raise FormulaSyntaxError(f"{name} is a constant and cannot be assigned.", tok.line, tok.col)
    if name in FUNCTIONS:
        raise FormulaSyntaxError(f"{name} is a function and cannot be assigned.", tok.line, tok.col)


def _check_depth(root: n.Node) -> None:
    """Reject trees deeper than MAX_DEPTH without recursing (the evaluator recurses)."""
    stack: list[tuple[n.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FormulaSyntaxError(f"The expression is more than {MAX_DEPTH} operations deep.", *node.pos)
        stack.extend((child, depth + 1) for child in _children(node))


def _children(node: n.Node) -> tuple[n.Node, ...]:
    if isinstance(node, n.Unary):
        return (node.operand,)
    if isinstance(node, n.Binary):
        return (node.left, node.right)
    if isinstance(node, n.Ternary):
        return (node.cond, node.then, node.other)
    if isinstance(node, n.Call):
        return node.args
    if isinstance(node, n.Member):
        return (node.target,)
    if isinstance(node, n.MethodCall):
        return (node.target, *node.args)
    return ()


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the formula"
    return repr(tok.text)
