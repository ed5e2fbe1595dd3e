"""Place names in conditions: `city = "上海"` also matches profiles that say Shanghai or 上海市
(clm.core.places), for the profile fields that hold places."""

from __future__ import annotations

from clm.conditions.ast import And, Compare, Condition, Field, InList, Literal, Not, Or
from clm.core.places import find_places, place_names

PLACE_FIELDS = frozenset({"city", "region"})


def _is_place_field(expr: object) -> bool:
    return isinstance(expr, Field) and expr.name in PLACE_FIELDS


def expand_places(cond: Condition) -> Condition:
    """The condition with every comparison of a place field with a known place's name widened to
    all its spellings (`city = "上海"` → `city in ["上海", "上海市", "Shanghai", …]`); any other
    part is returned as it is."""
    if isinstance(cond, And | Or):
        return type(cond)(tuple(expand_places(c) for c in cond.items))
    if isinstance(cond, Not):
        return Not(expand_places(cond.item))
    if isinstance(cond, Compare) and cond.op in ("=", "!="):
        field, value = (cond.left, cond.right) if _is_place_field(cond.left) else (cond.right, cond.left)
        known = isinstance(value, Literal) and isinstance(value.value, str) and find_places(value.value)
        if _is_place_field(field) and known:
            names = place_names(value.value)  # type: ignore[union-attr,arg-type]
            return InList(field, names, negated=cond.op == "!=")
        return cond
    known_in = isinstance(cond, InList) and any(isinstance(v, str) and find_places(v) for v in cond.values)
    if isinstance(cond, InList) and _is_place_field(cond.expr) and known_in:
        spelled = (place_names(v) if isinstance(v, str) else (v,) for v in cond.values)
        return InList(cond.expr, tuple(dict.fromkeys(n for names in spelled for n in names)), cond.negated)
    return cond
