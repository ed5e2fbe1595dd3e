"""The condition language shared by stage rules and segments: text and JSON forms, one compiler."""

from __future__ import annotations

from typing import Any

from clm.conditions.ast import Condition
from clm.conditions.compiler import FieldSpace, Typed, compile_condition, first_match
from clm.conditions.errors import ConditionError
from clm.conditions.jsonform import parse_json, to_json
from clm.conditions.text import parse_text, to_text


def parse_condition(source: Any, path: str = "condition") -> Condition:
    """A condition from its text form (a string) or its JSON form (an object or true/false)."""
    if isinstance(source, str):
        try:
            return parse_text(source)
        except ConditionError as exc:
            raise exc.within(path)
    return parse_json(source, path)


__all__ = [
    "Condition",
    "ConditionError",
    "FieldSpace",
    "Typed",
    "compile_condition",
    "first_match",
    "parse_condition",
    "parse_json",
    "parse_text",
    "to_json",
    "to_text",
]
