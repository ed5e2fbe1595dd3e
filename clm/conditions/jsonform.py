"""The JSON form of conditions, for the API and for stored definitions.

Conditions:
    {"and": [C, ...]}   {"or": [C, ...]}   {"not": C}   true   false
    {"field": "orders", "op": ">=", "value": 2}                      (shorthand)
    {"op": ">=", "left": E, "right": E}
    {"op": "in" | "not in", "left": E, "values": [1, 2]}
    {"op": "is null" | "is not null", "left": E}
    {"test": E}                                                        (e.g. purchased(last 60d))
Expressions:
    1.5   "text"   true   null   {"field": "orders"}
    {"fn": "max", "args": [E | {"last_days": 14} | {"key": "category", "op": "=", "value": "shoes"}]}
    {"arith": "*", "left": E, "right": E}
Errors name the JSON path of the bad part, e.g. `condition.and[1].op`.
"""

from __future__ import annotations

from typing import Any

from clm.conditions.ast import (
    ARITHMETIC,
    COMPARISONS,
    MAX_DEPTH,
    MAX_WINDOW_DAYS,
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
    depth,
    number_problem,
)
from clm.conditions.errors import ConditionError


def _fail(path: str, message: str) -> ConditionError:
    return ConditionError(message, field=path)


def _scalar(value: Any, path: str) -> Scalar:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        problem = number_problem(value)
        if problem:
            raise _fail(path, problem)
        return value
    raise _fail(path, "expected a number, a string, true, false or null")


def _keys(node: dict[str, Any], allowed: set[str], path: str) -> None:
    extra = sorted(set(node) - allowed)
    if extra:
        raise _fail(path, f"unexpected key {extra[0]!r}; expected {', '.join(sorted(allowed))}")


def parse_json(node: Any, path: str = "condition", level: int = 0) -> Condition:
    """Parse the JSON form; errors name the path of the bad part."""
    cond = _condition(node, path, level)
    if level == 0 and depth(cond) > MAX_DEPTH:
        raise _fail(path, f"nested deeper than {MAX_DEPTH} levels")
    return cond


def _condition(node: Any, path: str, depth: int) -> Condition:
    if depth > MAX_DEPTH:
        raise _fail(path, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, bool):
        return Const(node)
    if not isinstance(node, dict) or not node:
        raise _fail(path, 'expected a condition object such as {"field": ..., "op": ..., "value": ...}')
    for word, cls in (("and", And), ("or", Or)):
        if word in node:
            _keys(node, {word}, path)
            items = node[word]
            if not isinstance(items, list) or not items:
                raise _fail(f"{path}.{word}", "expected a non-empty list of conditions")
            return cls(tuple(_condition(c, f"{path}.{word}[{i}]", depth + 1) for i, c in enumerate(items)))
    if "not" in node:
        _keys(node, {"not"}, path)
        return Not(_condition(node["not"], f"{path}.not", depth + 1))
    if "test" in node:
        _keys(node, {"test"}, path)
        return Test(parse_expr(node["test"], f"{path}.test", depth + 1))
    if "op" not in node:
        raise _fail(path, "expected `and`, `or`, `not`, `test` or `op`")
    op = node["op"]
    if "field" in node:
        _keys(node, {"field", "op", "value", "values"}, path)
        left: Expr = parse_expr({"field": node["field"]}, f"{path}.field", depth + 1)
    else:
        _keys(node, {"left", "op", "right", "values"}, path)
        if "left" not in node:
            raise _fail(path, "missing `left` (or `field`)")
        left = parse_expr(node["left"], f"{path}.left", depth + 1)
    if op in ("in", "not in"):
        values = node.get("values")
        if not isinstance(values, list):
            raise _fail(f"{path}.values", "expected a list of values")
        return InList(
            left, tuple(_scalar(v, f"{path}.values[{i}]") for i, v in enumerate(values)), op == "not in"
        )
    if op in ("is null", "is not null"):
        return IsNull(left, op == "is not null")
    if op not in COMPARISONS:
        allowed = ", ".join([*COMPARISONS, "in", "not in", "is null", "is not null"])
        raise _fail(f"{path}.op", f"unknown operator {op!r}; expected one of {allowed}")
    if "field" in node:
        if "value" not in node:
            raise _fail(path, "missing `value`")
        right: Expr = Literal(_scalar(node["value"], f"{path}.value"))
    else:
        if "right" not in node:
            raise _fail(path, "missing `right`")
        right = parse_expr(node["right"], f"{path}.right", depth + 1)
    return Compare(op, left, right)


def parse_expr(node: Any, path: str, depth: int = 0) -> Expr:
    if depth > MAX_DEPTH:
        raise _fail(path, f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(node, dict):
        return Literal(_scalar(node, path))
    if "field" in node:
        _keys(node, {"field"}, path)
        name = node["field"]
        if not isinstance(name, str) or not name:
            raise _fail(f"{path}.field", "expected a field name")
        return Field(name)
    if "arith" in node:
        _keys(node, {"arith", "left", "right"}, path)
        if node["arith"] not in ARITHMETIC:
            raise _fail(f"{path}.arith", f"expected one of {' '.join(ARITHMETIC)}")
        if "left" not in node or "right" not in node:
            raise _fail(path, "arithmetic needs `left` and `right`")
        return Arith(
            node["arith"],
            parse_expr(node["left"], f"{path}.left", depth + 1),
            parse_expr(node["right"], f"{path}.right", depth + 1),
        )
    if "fn" in node:
        _keys(node, {"fn", "args"}, path)
        fn, args = node["fn"], node.get("args", [])
        if not isinstance(fn, str) or not fn:
            raise _fail(f"{path}.fn", "expected a function name")
        if not isinstance(args, list):
            raise _fail(f"{path}.args", "expected a list of arguments")
        return Call(
            fn.lower(), tuple(_argument(a, f"{path}.args[{i}]", depth + 1) for i, a in enumerate(args))
        )
    raise _fail(path, "expected a value or an object with `field`, `fn` or `arith`")


def _argument(node: Any, path: str, depth: int) -> Expr | Window | Filter:
    if isinstance(node, dict) and "last_days" in node:
        _keys(node, {"last_days"}, path)
        days = node["last_days"]
        if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
            raise _fail(f"{path}.last_days", "expected a positive whole number of days")
        if days > MAX_WINDOW_DAYS:
            raise _fail(f"{path}.last_days", f"a window is at most {MAX_WINDOW_DAYS} days")
        return Window(days)
    if isinstance(node, dict) and "key" in node:
        _keys(node, {"key", "op", "value"}, path)
        op = node.get("op", "=")
        if op not in ("=", "!="):
            raise _fail(f"{path}.op", "a property filter uses = or !=")
        if not isinstance(node["key"], str) or not node["key"]:
            raise _fail(f"{path}.key", "expected a property name")
        return Filter(node["key"], op, _scalar(node.get("value"), f"{path}.value"))
    return parse_expr(node, path, depth)


def expr_to_json(expr: Expr | Window | Filter) -> Any:
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Field):
        return {"field": expr.name}
    if isinstance(expr, Window):
        return {"last_days": expr.days}
    if isinstance(expr, Filter):
        return {"key": expr.key, "op": expr.op, "value": expr.value}
    if isinstance(expr, Call):
        return {"fn": expr.fn, "args": [expr_to_json(a) for a in expr.args]}
    return {"arith": expr.op, "left": expr_to_json(expr.left), "right": expr_to_json(expr.right)}


def to_json(cond: Condition) -> Any:
    """The JSON form; `parse_json(to_json(c)) == c`."""
    if isinstance(cond, Const):
        return cond.value
    if isinstance(cond, And):
        return {"and": [to_json(c) for c in cond.items]}
    if isinstance(cond, Or):
        return {"or": [to_json(c) for c in cond.items]}
    if isinstance(cond, Not):
        return {"not": to_json(cond.item)}
    if isinstance(cond, Test):
        return {"test": expr_to_json(cond.expr)}
    if isinstance(cond, IsNull):
        return {"op": "is not null" if cond.negated else "is null", "left": expr_to_json(cond.expr)}
    if isinstance(cond, InList):
        return {
            "op": "not in" if cond.negated else "in",
            "left": expr_to_json(cond.expr),
            "values": list(cond.values),
        }
    if isinstance(cond.left, Field) and isinstance(cond.right, Literal):
        return {"field": cond.left.name, "op": cond.op, "value": cond.right.value}
    return {"op": cond.op, "left": expr_to_json(cond.left), "right": expr_to_json(cond.right)}
