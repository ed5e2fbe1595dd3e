"""The readable text form of conditions: a small recursive-descent parser and its printer.

    orders >= 2 and days_since_last_purchase > max(3 * purchase_gap_days, 30)
    stage = "retention" and events(product_view, last 14d) >= 3 and not purchased(last 60d)
    city in ["Shanghai", "Beijing"] or attr.vip = true

Precedence, loosest first: `or`, `and`, `not`, comparisons, `+ -`, `* /`, unary minus.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from clm.conditions.ast import (
    MAX_DEPTH,
    MAX_WINDOW_DAYS,
    Arith,
    Call,
    Compare,
    Condition,
    Const,
    Expr,
    Field,
    Filter,
    InList,
    IsNull,
    Literal,
    Not,
    Or,
    Scalar,
    Test,
    Window,
    depth,
    number_problem,
)
from clm.conditions.ast import And as AndNode
from clm.conditions.errors import ConditionError

KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false", "last"}
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<duration>\d+(?:\.\d+)?[dw](?![A-Za-z0-9_]))
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op><=|>=|!=|<>|==|[=<>+\-*/(),\[\]])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # duration, number, string, name, keyword, op, end
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ConditionError(f"unexpected character {text[pos]!r}", text=text, pos=pos)
        kind = m.lastgroup or ""
        if kind != "space":
            value = m.group()
            if kind == "name" and value.lower() in KEYWORDS:
                kind, value = "keyword", value.lower()
            tokens.append(Token(kind, value, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.level = 0  # brackets, `not`s, unary minuses and calls open around the current token

    # -- helpers ---------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, token: Token | None = None) -> ConditionError:
        token = token or self.tok
        found = "the end of the condition" if token.kind == "end" else repr(token.text)
        return ConditionError(f"{message}, found {found}", text=self.text, pos=token.pos)

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        if self.tok.kind == kind and (text is None or self.tok.text == text):
            token = self.tok
            self.i += 1
            return token
        return None

    def expect(self, kind: str, text: str | None, what: str) -> Token:
        token = self.accept(kind, text)
        if token is None:
            raise self.error(f"expected {what}")
        return token

    @contextmanager
    def nested(self, token: Token) -> Iterator[None]:
        """One level deeper; past MAX_DEPTH the condition is refused before recursion runs out."""
        self.level += 1
        try:
            if self.level > MAX_DEPTH:
                raise ConditionError(
                    f"the condition nests deeper than {MAX_DEPTH} levels", text=self.text, pos=token.pos
                )
            yield
        finally:
            self.level -= 1

    # -- conditions ------------------------------------------------------------------------
    def parse(self) -> Condition:
        if self.tok.kind == "end":
            raise ConditionError("the condition is empty", text=self.text, pos=0)
        cond = self.or_()
        if self.tok.kind != "end":
            raise self.error("expected `and`, `or` or the end of the condition")
        if depth(cond) > MAX_DEPTH:
            raise ConditionError(
                f"the condition nests deeper than {MAX_DEPTH} levels (comparisons, arithmetic, "
                "functions, `not`, `and`/`or` each count one)",
                text=self.text,
                pos=0,
            )
        return cond

    def or_(self) -> Condition:
        items = [self.and_()]
        while self.accept("keyword", "or"):
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self) -> Condition:
        items = [self.not_()]
        while self.accept("keyword", "and"):
            items.append(self.not_())
        return items[0] if len(items) == 1 else AndNode(tuple(items))

    def not_(self) -> Condition:
        t = self.tok
        if self.accept("keyword", "not"):
            with self.nested(t):
                return Not(self.not_())
        return self.primary()

    def primary(self) -> Condition:
        if self.tok.kind == "op" and self.tok.text == "(":
            # Either a parenthesised condition or a parenthesised expression such as
            # `(a + b) > 3`: try the condition first and fall back on the expression,
            # reporting whichever attempt got further when both fail.
            start = self.i
            self.i += 1
            first_error: ConditionError | None = None
            try:
                with self.nested(self.tokens[start]):
                    cond = self.or_()
                if self.accept("op", ")") and not self._at_comparison():
                    return cond
                if self.tokens[self.i - 1].text != ")":
                    first_error = self.error("expected `)`")
            except ConditionError as exc:
                first_error = exc
            self.i = start
            try:
                with self.nested(self.tokens[start]):
                    return self.comparison()
            except ConditionError as exc:
                if first_error is not None and first_error.pos > exc.pos:
                    raise first_error
                raise
        if self.tok.kind == "keyword" and self.tok.text in ("true", "false"):
            self.i += 1
            literal_value = self._at_comparison() or (
                self.tok.text == "not" and self.tokens[self.i + 1].text == "in"
            )
            self.i -= 1
            if not literal_value:
                self.i += 1
                return Const(self.tokens[self.i - 1].text == "true")
        return self.comparison()

    def _at_comparison(self) -> bool:
        t = self.tok
        return (
            t.kind == "op" and t.text in ("=", "==", "!=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/")
        ) or (t.kind == "keyword" and t.text in ("in", "is"))

    def comparison(self) -> Condition:
        left = self.expr()
        t = self.tok
        if t.kind == "op" and t.text in ("=", "==", "!=", "<>", "<", "<=", ">", ">="):
            self.i += 1
            op = {"==": "=", "<>": "!="}.get(t.text, t.text)
            return Compare(op, left, self.expr())
        if self.accept("keyword", "is"):
            negated = bool(self.accept("keyword", "not"))
            self.expect("keyword", "null", "`null` after `is`")
            return IsNull(left, negated)
        if t.kind == "keyword" and t.text == "not" and self.tokens[self.i + 1].text == "in":
            self.i += 2
            return InList(left, self.values(), negated=True)
        if self.accept("keyword", "in"):
            return InList(left, self.values())
        return Test(left)

    def values(self) -> tuple[Scalar, ...]:
        self.expect("op", "[", "`[` to start a list of values")
        out: list[Scalar] = []
        if not self.accept("op", "]"):
            while True:
                out.append(self.scalar())
                if self.accept("op", "]"):
                    break
                self.expect("op", ",", "`,` or `]` in the list")
        return tuple(out)

    def scalar(self) -> Scalar:
        negative = bool(self.accept("op", "-"))
        t = self.tok
        if t.kind == "number":
            self.i += 1
            value = float(t.text) if any(c in t.text for c in ".eE") else int(t.text)
            problem = number_problem(value)
            if problem:
                raise ConditionError(problem, text=self.text, pos=t.pos)
            return -value if negative else value
        if negative:
            raise self.error("expected a number after `-`")
        if t.kind == "string":
            self.i += 1
            return _unquote(t.text)
        if t.kind == "keyword" and t.text in ("true", "false", "null"):
            self.i += 1
            return {"true": True, "false": False, "null": None}[t.text]
        raise self.error('expected a value (a number, a "string", true, false or null)')

    # -- expressions -----------------------------------------------------------------------
    def expr(self) -> Expr:
        left = self.term()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.tok.text
            self.i += 1
            left = Arith(op, left, self.term())
        return left

    def term(self) -> Expr:
        left = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            op = self.tok.text
            self.i += 1
            left = Arith(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        t = self.tok
        if self.accept("op", "-"):
            with self.nested(t):
                operand = self.unary()
            if isinstance(operand, Literal) and isinstance(operand.value, int | float):
                return Literal(-operand.value, t.pos)
            return Arith("-", Literal(0, t.pos), operand)
        return self.atom()

    def atom(self) -> Expr:
        t = self.tok
        if t.kind == "op" and t.text == "(":
            self.i += 1
            with self.nested(t):
                inner = self.expr()
            self.expect("op", ")", "`)`")
            return inner
        if t.kind in ("number", "string") or (t.kind == "keyword" and t.text in ("true", "false", "null")):
            return Literal(self.scalar(), t.pos)
        if t.kind == "duration":
            raise self.error("a duration such as `14d` belongs in a window: `last 14d`")
        if t.kind == "name":
            self.i += 1
            if self.accept("op", "("):
                with self.nested(t):
                    return Call(t.text.lower(), self.arguments(), t.pos)
            return Field(t.text, t.pos)
        raise self.error("expected a field, a value or a function")

    def arguments(self) -> tuple[Expr | Window | Filter, ...]:
        args: list[Expr | Window | Filter] = []
        if self.accept("op", ")"):
            return ()
        while True:
            args.append(self.argument())
            if self.accept("op", ")"):
                return tuple(args)
            self.expect("op", ",", "`,` or `)` after an argument")

    def argument(self) -> Expr | Window | Filter:
        t = self.tok
        if self.accept("keyword", "last"):
            d = self.expect("duration", None, "a duration such as `14d` or `2w` after `last`")
            number = float(d.text[:-1])
            days = number * 7 if d.text.endswith("w") else number
            if days != int(days) or days <= 0:
                raise ConditionError(
                    "a window is a whole, positive number of days", text=self.text, pos=d.pos
                )
            if days > MAX_WINDOW_DAYS:
                raise ConditionError(
                    f"a window is at most {MAX_WINDOW_DAYS} days (`last {MAX_WINDOW_DAYS}d`)",
                    text=self.text,
                    pos=d.pos,
                )
            return Window(int(days), t.pos)
        nxt = self.tokens[self.i + 1]
        if t.kind == "name" and nxt.kind == "op" and nxt.text in ("=", "==", "!=", "<>"):
            self.i += 2
            op = {"==": "=", "<>": "!="}.get(nxt.text, nxt.text)
            return Filter(t.text, op, self.scalar(), t.pos)
        return self.expr()


def parse_text(text: str) -> Condition:
    """Parse the text form; errors say what was expected and point at the column."""
    return _Parser(text).parse()


# -- printing --------------------------------------------------------------------------------
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "cmp": 4}


def format_scalar(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def format_expr(expr: Expr | Window | Filter, parent: int = 0) -> str:
    if isinstance(expr, Field):
        return expr.name
    if isinstance(expr, Literal):
        return format_scalar(expr.value)
    if isinstance(expr, Window):
        return f"last {expr.days}d"
    if isinstance(expr, Filter):
        return f"{expr.key} {expr.op} {format_scalar(expr.value)}"
    if isinstance(expr, Call):
        return f"{expr.fn}({', '.join(format_expr(a) for a in expr.args)})"
    level = 1 if expr.op in "+-" else 2
    # the right operand of - and / binds tighter, so a - (b - c) keeps its brackets
    text = f"{format_expr(expr.left, level)} {expr.op} {format_expr(expr.right, level + 1)}"
    return f"({text})" if level < parent else text


def to_text(cond: Condition, parent: int = 0) -> str:
    """The canonical text form; parsing it gives back an equal tree."""
    if isinstance(cond, Const):
        return "true" if cond.value else "false"
    if isinstance(cond, Compare):
        return f"{format_expr(cond.left)} {cond.op} {format_expr(cond.right)}"
    if isinstance(cond, InList):
        values = ", ".join(format_scalar(v) for v in cond.values)
        return f"{format_expr(cond.expr)} {'not in' if cond.negated else 'in'} [{values}]"
    if isinstance(cond, IsNull):
        return f"{format_expr(cond.expr)} is {'not null' if cond.negated else 'null'}"
    if isinstance(cond, Test):
        return format_expr(cond.expr)
    if isinstance(cond, Not):
        return f"not {to_text(cond.item, _PRECEDENCE['not'])}"
    word = "and" if isinstance(cond, AndNode) else "or"
    level = _PRECEDENCE[word]
    # a nested and/or always gets brackets: `a or (b and c)` reads better than precedence
    text = f" {word} ".join(to_text(c, level + 1) for c in cond.items)
    return f"({text})" if parent else text
