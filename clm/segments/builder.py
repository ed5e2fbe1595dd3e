"""The condition builder's form of a segment condition: a tree of groups (and/or, each may be
negated) and rules a form can edit, converted to and from the condition tree without loss.

    {"kind": "group", "op": "and", "not": false, "items": [rule or group, …]}
    {"kind": "field", "not": false, "field": "orders", "op": ">=", "value": 2}
        op: = != < <= > >= in, not in (value: a list), is null, is not null, is true
    {"kind": "count", "not": false, "fn": "events" | "orders" | "spent", "types": ["product_view"],
     "days": 14, "filters": [{"key": "category", "op": "=", "value": "shoes"}], "op": ">=", "value": 3}
    {"kind": "purchased", "not": true, "days": 60, "filters": []}
    {"kind": "segment", "not": false, "segment": "vip"}
    {"kind": "raw", "not": false, "text": "events(last 30d) * 2 < events(last 60d)"}

`to_builder` keeps a part as a form rule only when converting it back gives the very same
condition; anything else (arithmetic, nested functions) becomes a `raw` rule holding its text,
so switching between the builder and the text form never loses anything.
"""

from __future__ import annotations

from typing import Any

from clm.conditions import ConditionError, parse_text, to_text
from clm.conditions.ast import (
    COMPARISONS,
    And,
    Call,
    Compare,
    Condition,
    Field,
    Filter,
    InList,
    IsNull,
    Literal,
    Not,
    Or,
    Test,
    Window,
    number_problem,
)
from clm.core.errors import InvalidInput

COUNTED = ("events", "orders", "spent")
MAX_NODES = 500


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, "tree")


# -- builder tree → condition ------------------------------------------------------------------
def _number(value: Any, what: str) -> int | float:
    if isinstance(value, bool):
        raise _bad(f"{what}: expected a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            raise _bad(f"{what}: {value!r} is not a number") from None
    if not isinstance(value, int | float):
        raise _bad(f"{what}: expected a number")
    problem = number_problem(value)
    if problem:
        raise _bad(f"{what}: {problem}")
    return value


def _scalar(value: Any, kind: str, what: str) -> Any:
    if value is None:
        return None
    if kind == "number":
        return _number(value, what)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise _bad(f"{what}: expected true or false")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return str(value)


def _window_and_filters(node: dict[str, Any], what: str) -> list[Window | Filter]:
    args: list[Window | Filter] = []
    days = node.get("days")
    if days not in (None, "", 0):
        whole = _number(days, f"{what}: days")
        if whole != int(whole) or whole <= 0:
            raise _bad(f"{what}: a window is a whole, positive number of days")
        args.append(Window(int(whole)))
    for f in node.get("filters") or []:
        if not isinstance(f, dict) or not str(f.get("key") or "").strip():
            raise _bad(f"{what}: a filter needs a property name")
        op = f.get("op", "=")
        if op not in ("=", "!="):
            raise _bad(f"{what}: a filter uses = or !=")
        value = f.get("value")
        args.append(
            Filter(str(f["key"]).strip(), op, value if isinstance(value, int | float) else str(value))
        )
    return args


def from_builder(
    node: Any, kinds: dict[str, str] | None = None, _count: list[int] | None = None
) -> Condition:
    """The condition a builder tree describes; `kinds` maps field names to number/text/bool so a
    value typed into a box becomes a number where the field is one."""
    kinds = kinds or {}
    count = _count if _count is not None else [0]
    count[0] += 1
    if count[0] > MAX_NODES:
        raise _bad(f"the builder holds more than {MAX_NODES} rules and groups")
    if not isinstance(node, dict):
        raise _bad("expected a rule or a group")
    kind = node.get("kind")
    cond: Condition
    if kind == "group":
        items = [from_builder(i, kinds, count) for i in node.get("items") or []]
        if not items:
            raise _bad("a group needs at least one rule")
        op = node.get("op", "and")
        if op not in ("and", "or"):
            raise _bad("a group is `and` or `or`")
        cond = items[0] if len(items) == 1 else (And if op == "and" else Or)(tuple(items))
    elif kind == "field":
        name = str(node.get("field") or "").strip()
        if not name or name == "attr.":
            raise _bad("choose a field")
        left = Field(name)
        op = node.get("op")
        field_kind = kinds.get(name, "text")
        if op == "is true":
            cond = Test(left)
        elif op in ("is null", "is not null"):
            cond = IsNull(left, op == "is not null")
        elif op in ("in", "not in"):
            raw = node.get("value")
            values = raw if isinstance(raw, list) else [v.strip() for v in str(raw or "").split(",")]
            cond = InList(
                left, tuple(_scalar(v, field_kind, name) for v in values if v != ""), op == "not in"
            )
        elif op in COMPARISONS:
            value = node.get("value")
            if value is None or value == "":
                raise _bad(f"{name}: enter a value")
            cond = Compare(op, left, Literal(_scalar(value, field_kind, name)))
        else:
            raise _bad(f"{name}: unknown operator {op!r}")
    elif kind == "count":
        fn = node.get("fn")
        if fn not in COUNTED:
            raise _bad(f"unknown count {fn!r}")
        types = tuple(Field(str(t).strip()) for t in node.get("types") or [] if str(t).strip())
        args = (
            (*types, *_window_and_filters(node, fn))
            if fn == "events"
            else tuple(_window_and_filters(node, fn))
        )
        op = node.get("op", ">=")
        if op not in COMPARISONS:
            raise _bad(f"{fn}: unknown operator {op!r}")
        cond = Compare(op, Call(fn, args), Literal(_number(node.get("value"), fn)))
    elif kind == "purchased":
        cond = Test(Call("purchased", tuple(_window_and_filters(node, "purchased"))))
    elif kind == "segment":
        name = str(node.get("segment") or "").strip()
        if not name:
            raise _bad("choose a segment")
        cond = Test(Call("in_segment", (Literal(name),)))
    elif kind == "raw":
        text = str(node.get("text") or "")
        try:
            cond = parse_text(text)
        except ConditionError as exc:
            raise exc.within("tree")
    else:
        raise _bad(f"unknown rule kind {kind!r}")
    return Not(cond) if node.get("not") else cond


# -- condition → builder tree ------------------------------------------------------------------
def _args(args: tuple[Any, ...]) -> tuple[list[str], int | None, list[dict[str, Any]]] | None:
    types: list[str] = []
    days: int | None = None
    filters: list[dict[str, Any]] = []
    for a in args:
        if isinstance(a, Field):
            types.append(a.name)
        elif isinstance(a, Window) and days is None:
            days = a.days
        elif isinstance(a, Filter):
            filters.append({"key": a.key, "op": a.op, "value": a.value})
        else:
            return None
    return types, days, filters


def _rule(cond: Condition) -> dict[str, Any] | None:
    if isinstance(cond, Compare) and isinstance(cond.left, Field) and isinstance(cond.right, Literal):
        return {"kind": "field", "field": cond.left.name, "op": cond.op, "value": cond.right.value}
    if isinstance(cond, InList) and isinstance(cond.expr, Field):
        op = "not in" if cond.negated else "in"
        return {"kind": "field", "field": cond.expr.name, "op": op, "value": list(cond.values)}
    if isinstance(cond, IsNull) and isinstance(cond.expr, Field):
        op = "is not null" if cond.negated else "is null"
        return {"kind": "field", "field": cond.expr.name, "op": op, "value": None}
    if isinstance(cond, Test) and isinstance(cond.expr, Field):
        return {"kind": "field", "field": cond.expr.name, "op": "is true", "value": None}
    if isinstance(cond, Compare) and isinstance(cond.left, Call) and isinstance(cond.right, Literal):
        call = cond.left
        parts = _args(call.args)
        if call.fn in COUNTED and parts is not None:
            types, days, filters = parts
            return {
                "kind": "count",
                "fn": call.fn,
                "types": types,
                "days": days,
                "filters": filters,
                "op": cond.op,
                "value": cond.right.value,
            }
    if isinstance(cond, Test) and isinstance(cond.expr, Call):
        call = cond.expr
        if call.fn == "purchased":
            parts = _args(call.args)
            if parts is not None and not parts[0]:
                return {"kind": "purchased", "days": parts[1], "filters": parts[2]}
        if call.fn == "in_segment" and len(call.args) == 1 and isinstance(call.args[0], Literal):
            return {"kind": "segment", "segment": call.args[0].value}
    return None


def _node(cond: Condition, kinds: dict[str, str], negated: bool = False) -> dict[str, Any]:
    if isinstance(cond, Not) and not negated:
        inner = _node(cond.item, kinds, True)
        if inner["kind"] != "raw":
            return inner
    node: dict[str, Any] | None
    if isinstance(cond, And | Or):
        node = {
            "kind": "group",
            "op": "and" if isinstance(cond, And) else "or",
            "items": [_node(c, kinds) for c in cond.items],
        }
    else:
        node = _rule(cond)
    if node is not None:
        node["not"] = negated
        try:
            if from_builder(node, kinds) == (Not(cond) if negated else cond):
                return node
        except InvalidInput:
            pass
    return {"kind": "raw", "not": False, "text": to_text(Not(cond) if negated else cond)}


def to_builder(cond: Condition, kinds: dict[str, str] | None = None) -> dict[str, Any]:
    """The builder tree of a condition, always a group at the top; converting it back with
    `from_builder` gives an equal condition."""
    node = _node(cond, kinds or {})
    if node["kind"] != "group":
        node = {"kind": "group", "op": "and", "not": False, "items": [node]}
    return node


__all__ = ["from_builder", "to_builder"]
