"""Compile a condition tree into one SQLAlchemy boolean expression over a field space.

A field space says which names exist (`orders`, `city`, …), what SQL computes each and of
which kind it is, and which domain functions it offers (`events(...)`, `purchased(...)`). The
lifecycle features are one space; segments add theirs. The result is plain SQL that runs on
SQLite and PostgreSQL alike.

NULL follows SQL: a comparison with a missing value is not true. `not` means "not true", so
`not (days_since_last_purchase < 30)` holds for a customer who never bought.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    String,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    true,
)
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, ColumnElement, Grouping, UnaryExpression
from sqlalchemy.sql.selectable import Exists, ScalarSelect, Select

from clm.conditions.ast import (
    And,
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
)
from clm.conditions.errors import ConditionError
from clm.conditions.places import expand_places
from clm.store.sql import greatest, least

KINDS = ("number", "text", "bool")
# The comparison operators, for SQL expressions and plain values alike.
COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Typed:
    """A compiled expression and its kind: number, text or bool (None for a bare null)."""

    sql: ColumnElement[Any]
    kind: str | None


CompileArg = Callable[[Expr], Typed]


class FieldSpace(Protocol):
    def field(self, name: str) -> Typed | None:
        """The SQL for a field name, or None when there is no such field."""

    def names(self) -> Sequence[str]:
        """Every field name, for "did you mean" hints and documentation."""

    def function(
        self, call: Call, compile_arg: CompileArg, fail: Callable[[str, int], ConditionError]
    ) -> Typed | None:
        """The SQL for a domain function (e.g. `events`), or None when the space has none by that name."""


def _kind_of(value: Scalar) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text"


def _literal(value: Scalar) -> ColumnElement[Any]:
    if value is None:
        return null()
    if isinstance(value, bool):
        return true() if value else false()
    if isinstance(value, int):
        # 64-bit: PostgreSQL would cast a plain Integer parameter to int4 and refuse 3000000000
        return literal(value, BigInteger())
    if isinstance(value, float):
        return literal(value, Float())
    return literal(value, String())


def _never_null(expr: Any) -> bool:
    """EXISTS, and a non-null column IN / NOT IN a subquery, are true or false, never NULL."""
    if isinstance(expr, Exists):
        return True
    if isinstance(expr, Grouping):
        return _never_null(expr.element)
    if isinstance(expr, UnaryExpression) and expr.operator is operators.inv:
        return _never_null(expr.element)
    return (
        isinstance(expr, BinaryExpression)
        and expr.operator in (operators.in_op, operators.not_in_op)
        and isinstance(expr.left, Column)
        and not expr.left.nullable
        and isinstance(expr.right, Select | ScalarSelect | Grouping)
    )


def _pos(expr: Any) -> int:
    while isinstance(expr, Arith):
        expr = expr.left
    return getattr(expr, "pos", -1)


class _Compiler:
    def __init__(self, space: FieldSpace, text: str | None) -> None:
        self.space = space
        self.text = text

    def fail(self, message: str, pos: int = -1) -> ConditionError:
        return ConditionError(message, text=self.text if pos >= 0 else None, pos=pos)

    def expr(self, node: Expr | Window | Filter) -> Typed:
        if isinstance(node, Window | Filter):
            raise self.fail("a window or property filter is only allowed inside a function call", node.pos)
        if isinstance(node, Literal):
            return Typed(_literal(node.value), _kind_of(node.value))
        if isinstance(node, Field):
            found = self.space.field(node.name)
            if found is None:
                hint = difflib.get_close_matches(node.name, list(self.space.names()), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise self.fail(f"unknown field {node.name!r}{suggestion}", node.pos)
            return found
        if isinstance(node, Arith):
            left, right = self.expr(node.left), self.expr(node.right)
            for side, part in ((left, node.left), (right, node.right)):
                if side.kind not in ("number", None):
                    raise self.fail(f"`{node.op}` needs numbers, not {side.kind}", _pos(part))
            if node.op == "/":
                # always real division (SQLite would truncate integers); x / 0 is NULL
                return Typed(left.sql * 1.0 / func.nullif(right.sql, 0), "number")
            ops: dict[str, Callable[[Any, Any], Any]] = {
                "+": lambda a, b: a + b,
                "-": lambda a, b: a - b,
                "*": lambda a, b: a * b,
            }
            return Typed(ops[node.op](left.sql, right.sql), "number")
        return self.call(node)

    def call(self, node: Call) -> Typed:
        if node.fn in ("max", "min", "coalesce", "abs"):
            args = [self.expr(a) for a in node.args]
            if not args or (node.fn == "abs" and len(args) != 1):
                raise self.fail(
                    f"{node.fn}() needs {'one argument' if node.fn == 'abs' else 'arguments'}", node.pos
                )
            kinds = {a.kind for a in args if a.kind is not None}
            if len(kinds) > 1:
                raise self.fail(f"{node.fn}() mixes {' and '.join(sorted(kinds))}", node.pos)
            kind = kinds.pop() if kinds else None
            sqls = [a.sql for a in args]
            if node.fn == "abs":
                return Typed(func.abs(sqls[0]), "number")
            if node.fn == "coalesce":
                return Typed(func.coalesce(*sqls), kind)
            return Typed((greatest if node.fn == "max" else least)(*sqls), kind)
        found = self.space.function(node, self.expr, self.fail)
        if found is None:
            raise self.fail(f"unknown function {node.fn}()", node.pos)
        return found

    def condition(self, node: Condition) -> ColumnElement[bool]:
        if isinstance(node, Const):
            return true() if node.value else false()
        if isinstance(node, And):
            return and_(*(self.condition(c) for c in node.items))
        if isinstance(node, Or):
            return or_(*(self.condition(c) for c in node.items))
        if isinstance(node, Not):
            inner = self.condition(node.item)
            # NOT EXISTS / NOT IN (subquery) stay plain so the database can plan an anti-join
            return not_(inner) if _never_null(inner) else not_(func.coalesce(inner, false()))
        if isinstance(node, Test):
            typed = self.expr(node.expr)
            if typed.kind != "bool":
                raise self.fail(
                    f"{typed.kind or 'null'} is not a condition; compare it, e.g. `... > 0`", _pos(node.expr)
                )
            if _never_null(typed.sql) or not isinstance(typed.sql.type, Boolean):
                return typed.sql
            return typed.sql == true()
        if isinstance(node, IsNull):
            typed = self.expr(node.expr)
            return typed.sql.is_not(None) if node.negated else typed.sql.is_(None)
        if isinstance(node, InList):
            typed = self.expr(node.expr)
            for value in node.values:
                kind = _kind_of(value)
                if kind is None:
                    raise self.fail("null cannot be in a list; use `is null`", _pos(node.expr))
                self._check_kinds(typed.kind, kind, "in", _pos(node.expr))
            if not node.values:
                return true() if node.negated else false()
            values = [_literal(v) for v in node.values]
            return typed.sql.not_in(values) if node.negated else typed.sql.in_(values)
        counted = self._counted(node)
        if counted is not None:
            return counted
        left, right = self.expr(node.left), self.expr(node.right)
        if left.kind is None or right.kind is None:
            raise self.fail(
                "comparing with null is never true; use `is null` or `is not null`", _pos(node.left)
            )
        self._check_kinds(left.kind, right.kind, node.op, _pos(node.left))
        if node.op in ("<", "<=", ">", ">=") and left.kind == "bool":
            raise self.fail(f"`{node.op}` does not apply to true/false", _pos(node.left))
        result: ColumnElement[bool] = COMPARE[node.op](left.sql, right.sql)
        return result

    def _counted(self, node: Compare) -> ColumnElement[bool] | None:
        """A space may answer `function(...) <op> number` set-based (e.g. a grouped semi-join
        instead of a count per customer); it offers `compare_count` for that."""
        hook = getattr(self.space, "compare_count", None)
        if hook is None:
            return None
        call, op, value = node.left, node.op, node.right
        if isinstance(call, Literal) and isinstance(value, Call):  # 3 <= events(...)
            call, value = value, call
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        if not isinstance(call, Call) or not isinstance(value, Literal):
            return None
        if isinstance(value.value, bool) or not isinstance(value.value, int | float):
            return None
        result: ColumnElement[bool] | None = hook(call, op, value.value, self.fail)
        return result

    def _check_kinds(self, left: str | None, right: str | None, op: str, pos: int) -> None:
        if left is not None and right is not None and left != right:
            raise self.fail(f"cannot compare {left} with {right} using `{op}`", pos)


def compile_condition(cond: Condition, space: FieldSpace, *, text: str | None = None) -> ColumnElement[bool]:
    """One SQL boolean for `cond`; `text` (the source) lets errors point at the column. A place
    field compared with a known place matches every spelling of it (clm.conditions.places)."""
    return _Compiler(space, text).condition(expand_places(cond))


def compile_expression(expr: Expr, space: FieldSpace, *, text: str | None = None) -> Typed:
    return _Compiler(space, text).expr(expr)


def first_match(
    branches: Sequence[tuple[ColumnElement[bool], Any]], default: Any = None
) -> ColumnElement[Any]:
    """CASE WHEN c1 THEN v1 WHEN c2 THEN v2 … ELSE default: the first true condition wins."""
    return case(*((cond, literal(value)) for cond, value in branches), else_=literal(default))
