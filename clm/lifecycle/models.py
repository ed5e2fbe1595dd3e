"""Stage models as data: the presets in `presets/`, or a YAML/JSON file a user writes.

A model is an ordered list of stages (the lifecycle order, used by the funnel), each with a rule
in the condition language. Rules are checked in `evaluation_order` (default: the listed order)
and the first that matches gives the customer's stage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from clm.conditions import Condition, ConditionError, compile_condition, parse_condition, to_text
from clm.core.errors import InvalidInput, UnusableInput
from clm.features import CustomerSpace
from clm.lifecycle.tables import customer_features

DEFAULT_MODEL = "clm5"
PRESETS = ("clm5", "funnel5", "classic4")
_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class Stage:
    key: str
    name_en: str
    name_zh: str
    description: str
    rule: Condition
    rule_text: str


@dataclass(frozen=True)
class StageModel:
    name: str
    title_en: str
    title_zh: str
    stages: tuple[Stage, ...]
    evaluation_order: tuple[str, ...]
    funnel: tuple[str, ...]

    def stage(self, key: str) -> Stage:
        return next(s for s in self.stages if s.key == key)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.stages)

    def as_dict(self) -> dict[str, Any]:
        """The definition in its file form (rules as text), stored with the selection."""
        return {
            "name": self.name,
            "title": {"en": self.title_en, "zh": self.title_zh},
            "evaluation_order": list(self.evaluation_order),
            "funnel": list(self.funnel),
            "stages": [
                {
                    "key": s.key,
                    "name": {"en": s.name_en, "zh": s.name_zh},
                    "description": s.description,
                    "rule": s.rule_text,
                }
                for s in self.stages
            ],
        }


def _names(value: Any, where: str) -> tuple[str, str]:
    if isinstance(value, str) and value.strip():
        return value.strip(), value.strip()
    if isinstance(value, dict) and isinstance(value.get("en"), str) and value["en"].strip():
        zh = value.get("zh")
        return value["en"].strip(), zh.strip() if isinstance(zh, str) and zh.strip() else value["en"].strip()
    raise InvalidInput("needs a name: a string or {en: ..., zh: ...}", where)


def _key_list(value: Any, keys: list[str], where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise InvalidInput("expected a list of stage keys", where)
    for k in value:
        if k not in keys:
            raise InvalidInput(f"{k!r} is not a stage of this model ({', '.join(keys)})", where)
    if len(set(value)) != len(value):
        raise InvalidInput("lists a stage twice", where)
    return tuple(value)


def model_from_dict(data: Any) -> StageModel:
    """Validate a model definition; an error names the stage and the part of its rule at fault."""
    if not isinstance(data, dict):
        raise InvalidInput("a stage model is a mapping with `name` and `stages`", "model")
    unknown = sorted(set(data) - {"name", "title", "stages", "evaluation_order", "funnel", "description"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", "model")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise InvalidInput("needs a name (up to 64 characters)", "model.name")
    title_en, title_zh = _names(data.get("title", name), "model.title")
    raw = data.get("stages")
    if not isinstance(raw, list) or len(raw) < 2:
        raise InvalidInput("a model needs at least two stages", "model.stages")
    space = CustomerSpace(customer_features.c)
    stages: list[Stage] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidInput("each stage is a mapping with key, name and rule", f"stages[{i}]")
        key = item.get("key")
        where = f"stages[{i}]" + (f" ({key})" if isinstance(key, str) else "")
        if not isinstance(key, str) or not key or len(key) > 64 or not set(key) <= _KEY_CHARS:
            raise InvalidInput("needs a key of lowercase letters, digits, - or _ (up to 64)", f"{where}.key")
        if any(s.key == key for s in stages):
            raise InvalidInput(f"stage {key!r} appears twice", f"{where}.key")
        extra = sorted(set(item) - {"key", "name", "description", "rule"})
        if extra:
            raise InvalidInput(f"unknown key {extra[0]!r}", where)
        name_en, name_zh = _names(item.get("name", key), f"{where}.name")
        if "rule" not in item:
            raise InvalidInput("needs a rule (a condition, or `true` for everyone left)", f"{where}.rule")
        source = item["rule"]
        try:
            rule = parse_condition(source, f"{where}.rule")
            compile_condition(rule, space, text=source if isinstance(source, str) else None)
        except ConditionError as exc:
            raise exc.within(f"{where}.rule")
        description = item.get("description") or ""
        stages.append(Stage(key, name_en, name_zh, str(description).strip(), rule, to_text(rule)))
    keys = [s.key for s in stages]
    order = _key_list(data.get("evaluation_order", keys), keys, "model.evaluation_order")
    missing = [k for k in keys if k not in order]
    if missing:
        raise InvalidInput(f"does not list {', '.join(missing)}", "model.evaluation_order")
    funnel = _key_list(data.get("funnel", keys), keys, "model.funnel")
    if len(funnel) < 2:
        raise InvalidInput("a funnel needs at least two stages", "model.funnel")
    return StageModel(name.strip(), title_en, title_zh, tuple(stages), order, funnel)


def preset(name: str) -> StageModel:
    text = (
        resources.files("clm.lifecycle")
        .joinpath("presets")
        .joinpath(f"{name}.yaml")
        .read_text(encoding="utf-8")
    )
    return model_from_dict(yaml.safe_load(text))


def load_model(source: str) -> StageModel:
    """A preset by name (clm5, funnel5, classic4) or a YAML/JSON file."""
    if source in PRESETS:
        return preset(source)
    path = Path(source)
    if not path.is_file():
        raise UnusableInput(f"{source!r} is neither a preset ({', '.join(PRESETS)}) nor a readable file")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise UnusableInput(f"cannot read {source}: {exc}")
    return model_from_dict(data)
