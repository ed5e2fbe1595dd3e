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

# Limits every condition keeps, whichever form it comes in (docs/conditions.md, "Limits"): a
# condition beyond them is refused with a message before any SQL is built or run.
MAX_DEPTH = 20  # levels of nesting: and/or, not, comparisons, arithmetic, function calls, fields
MAX_WINDOW_DAYS = 36_500  # `last 36500d`: a hundred years
MAX_NUMBER = 10**15  # numbers lie within ±10^15: exact as 64-bit integers and as doubles


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


def number_problem(value: Scalar) -> str | None:
    """Why a number cannot be used in a condition (None when it can)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return "numbers must be finite"
    if abs(value) > MAX_NUMBER:
        shown = str(value) if isinstance(value, int) and len(str(value)) <= 40 else f"{value:g}"
        return f"numbers must lie within ±1e15 (±10^15); {shown} is out of range"
    return None


def depth(cond: Condition) -> int:
    """How many levels the tree nests (`orders > 1` is 2: the comparison and its operands).

    Walked with a stack rather than recursion, so any tree can be measured."""
    deepest = 0
    stack: list[tuple[object, int]] = [(cond, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children: tuple[object, ...] = ()
        if isinstance(node, And | Or):
            children = node.items
        elif isinstance(node, Not):
            children = (node.item,)
        elif isinstance(node, Compare | Arith):
            children = (node.left, node.right)
        elif isinstance(node, InList | IsNull | Test):
            children = (node.expr,)
        elif isinstance(node, Call):
            children = node.args
        stack.extend((child, level + 1) for child in children)
    return deepest
