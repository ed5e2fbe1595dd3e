"""The condition tree that both the text form and the JSON form parse into.

Expressions compute a value per customer (a field, a literal, arithmetic, a function call);
conditions combine comparisons of expressions with and/or/not. The tree knows nothing about
SQL: `compiler.py` turns it into one SQL expression over a field space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

Scalar: TypeAlias = int | float | str | bool | None

COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
ARITHMETIC = ("+", "-", "*", "/")


@dataclass(frozen=True)
class Field:
    """A per-customer value by name: `orders`, `days_since_last_purchase`, `attr.vip`."""

    name: str
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class Literal:
    value: Scalar
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class Arith:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Window:
    """`last 14d` inside a function call: the trailing number of days."""

    days: int
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class Filter:
    """`category = "shoes"` inside a function call: a property filter."""

    key: str
    op: str
    value: Scalar
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class Call:
    """A function: `max(a, b)`, `events(product_view, last 14d, category = "shoes")`."""

    fn: str
    args: tuple[Expr | Window | Filter, ...]
    pos: int = field(default=-1, compare=False)


Expr: TypeAlias = Field | Literal | Arith | Call


@dataclass(frozen=True)
class Compare:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class InList:
    expr: Expr
    values: tuple[Scalar, ...]
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    expr: Expr
    negated: bool = False


@dataclass(frozen=True)
class Test:
    """An expression used on its own as a condition: `purchased(last 60d)`, `consent.email`."""

    expr: Expr


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


@dataclass(frozen=True)
class Const:
    value: bool


Condition: TypeAlias = Compare | InList | IsNull | Test | And | Or | Not | Const
