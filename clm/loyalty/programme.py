"""The loyalty programme as data: earn rules, point expiry, tiers and their perks.

A programme is a YAML/JSON file (the default is `presets/default.yaml`); a bad file gets an
error naming the rule or tier and the key at fault."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from clm.core.definitions import read_definition
from clm.core.errors import InvalidInput

DEFAULT_PROGRAMME = "default"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")
BASES = ("spend", "points")


@dataclass(frozen=True)
class EarnRule:
    """Points for completed orders (`from: order`) or for an event type (`from: event`)."""

    name: str
    on: str
    points_per_unit: float = 0.0  # order rules: points per currency unit, rounded down
    category: str | None = None  # only the order lines of this product category count
    campaign: str | None = None  # only orders attributed to this campaign
    channel: str | None = None  # only orders from this channel
    starts: date | None = None  # only orders placed on or after this day (UTC)
    ends: date | None = None  # ... and on or before this day
    event: str | None = None  # event rules: the event type
    points: int = 0  # event rules: points per event (or once per customer)
    once: bool = True


@dataclass(frozen=True)
class Tier:
    name: str
    title_en: str
    title_zh: str
    min: float
    perks: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Programme:
    name: str
    title_en: str
    title_zh: str
    expiry_days: int | None
    earn: tuple[EarnRule, ...]
    basis: str
    window_days: int
    tiers: tuple[Tier, ...]  # ascending by `min`; the first is the tier everybody starts in

    @property
    def lowest(self) -> Tier:
        return self.tiers[0]

    def tier(self, name: str) -> Tier:
        for t in self.tiers:
            if t.name == name:
                return t
        return self.lowest

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": {"en": self.title_en, "zh": self.title_zh},
            "expiry_days": self.expiry_days,
            "earn": [_rule_dict(r) for r in self.earn],
            "tiers": {
                "basis": self.basis,
                "window_days": self.window_days,
                "levels": [
                    {
                        "name": t.name,
                        "title": {"en": t.title_en, "zh": t.title_zh},
                        "min": t.min,
                        "perks": t.perks,
                    }
                    for t in self.tiers
                ],
            },
        }


def _rule_dict(rule: EarnRule) -> dict[str, Any]:
    if rule.on == "event":
        return {
            "name": rule.name,
            "from": "event",
            "event": rule.event,
            "points": rule.points,
            "once": rule.once,
        }
    out: dict[str, Any] = {"name": rule.name, "from": "order", "points_per_unit": rule.points_per_unit}
    for key in ("category", "campaign", "channel"):
        if getattr(rule, key):
            out[key] = getattr(rule, key)
    for key in ("starts", "ends"):
        if getattr(rule, key):
            out[key] = getattr(rule, key).isoformat()
    return out


def _bad(where: str, message: str) -> InvalidInput:
    return InvalidInput(message, where)


def _title(raw: Any, fallback: str) -> tuple[str, str]:
    if isinstance(raw, str):
        return raw, raw
    if isinstance(raw, dict):
        return str(raw.get("en", fallback)), str(raw.get("zh", raw.get("en", fallback)))
    return fallback, fallback


def _number(where: str, value: Any, *, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise _bad(where, f"must be a number ≥ {minimum:g}, not {value!r}")
    return float(value)


def _day(where: str, value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _bad(where, f"not a date (YYYY-MM-DD): {value!r}")


def _earn_rule(i: int, raw: Any) -> EarnRule:
    if not isinstance(raw, dict):
        raise _bad(f"earn[{i}]", "each rule is a mapping with name and from (order or event)")
    name = str(raw.get("name") or "")
    where = f"earn rule {name!r}" if name else f"earn[{i}]"
    if not name or not set(name) <= _NAME_CHARS:
        raise _bad(where, "needs a name of lower-case letters, digits, _ and -")
    unknown = set(raw) - {
        "name", "from", "points_per_unit", "category", "campaign", "channel", "starts", "ends",
        "event", "points", "once",
    }  # fmt: skip
    if unknown:
        raise _bad(where, f"unknown keys {sorted(unknown)}")
    on = raw.get("from")
    if on == "order":
        starts, ends = _day(f"{where}.starts", raw.get("starts")), _day(f"{where}.ends", raw.get("ends"))
        if starts and ends and ends < starts:
            raise _bad(where, "ends before it starts")
        per_unit = _number(f"{where}.points_per_unit", raw.get("points_per_unit"))
        if per_unit <= 0:
            raise _bad(f"{where}.points_per_unit", "must be more than 0")
        return EarnRule(
            name,
            "order",
            points_per_unit=per_unit,
            category=raw.get("category"),
            campaign=raw.get("campaign"),
            channel=raw.get("channel"),
            starts=starts,
            ends=ends,
        )
    if on == "event":
        event = raw.get("event")
        if not isinstance(event, str) or not event:
            raise _bad(f"{where}.event", "names the event type that earns, e.g. signup")
        points = raw.get("points")
        if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
            raise _bad(f"{where}.points", f"must be a whole number above 0, not {points!r}")
        return EarnRule(name, "event", event=event, points=points, once=bool(raw.get("once", True)))
    raise _bad(f"{where}.from", f"must be 'order' or 'event', not {on!r}")


def _tier(i: int, raw: Any) -> Tier:
    if not isinstance(raw, dict) or not raw.get("name"):
        raise _bad(f"tiers.levels[{i}]", "each tier is a mapping with name, min and perks")
    name = str(raw["name"])
    if not set(name) <= _NAME_CHARS:
        raise _bad(f"tier {name!r}", "name must be lower-case letters, digits, _ and -")
    perks = raw.get("perks") or {}
    if not isinstance(perks, dict):
        raise _bad(f"tier {name!r}.perks", "must be a mapping, e.g. {discount_rate: 0.05}")
    rate = perks.get("discount_rate", 0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        raise _bad(f"tier {name!r}.perks.discount_rate", f"must be a fraction in [0, 1), not {rate!r}")
    en, zh = _title(raw.get("title"), name)
    return Tier(name, en, zh, _number(f"tier {name!r}.min", raw.get("min", 0)), dict(perks))


def programme_from_dict(raw: Any) -> Programme:
    """Validate a programme definition; raise InvalidInput naming the bad rule or tier."""
    if not isinstance(raw, dict):
        raise InvalidInput("a loyalty programme is a mapping with name, earn and tiers")
    name = str(raw.get("name") or "")
    if not name:
        raise _bad("name", "the programme needs a name")
    expiry = raw.get("expiry_days")
    if expiry is not None and (isinstance(expiry, bool) or not isinstance(expiry, int) or expiry <= 0):
        raise _bad("expiry_days", f"must be a whole number of days above 0, or null, not {expiry!r}")
    rules = raw.get("earn") or []
    if not isinstance(rules, list):
        raise _bad("earn", "must be a list of rules")
    earn = tuple(_earn_rule(i, r) for i, r in enumerate(rules))
    names = [r.name for r in earn]
    if len(set(names)) != len(names):
        raise _bad("earn", "rule names must be unique")
    tiers_raw = raw.get("tiers") or {}
    if not isinstance(tiers_raw, dict):
        raise _bad("tiers", "must be a mapping with basis, window_days and levels")
    basis = tiers_raw.get("basis", "spend")
    if basis not in BASES:
        raise _bad("tiers.basis", f"must be one of {', '.join(BASES)}, not {basis!r}")
    window = tiers_raw.get("window_days", 365)
    if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
        raise _bad("tiers.window_days", f"must be a whole number of days above 0, not {window!r}")
    levels = tiers_raw.get("levels") or [{"name": "member", "min": 0}]
    if not isinstance(levels, list):
        raise _bad("tiers.levels", "must be a list of tiers")
    tiers = tuple(_tier(i, t) for i, t in enumerate(levels))
    if len({t.name for t in tiers}) != len(tiers):
        raise _bad("tiers.levels", "tier names must be unique")
    for lower, upper in itertools.pairwise(tiers):
        if upper.min <= lower.min:
            raise _bad(
                f"tier {upper.name!r}.min", f"must be above the tier before it ({lower.name}: {lower.min:g})"
            )
    if tiers[0].min != 0:
        raise _bad(f"tier {tiers[0].name!r}.min", "the first tier is where everybody starts: its min is 0")
    en, zh = _title(raw.get("title"), name)
    return Programme(name, en, zh, expiry, earn, basis, window, tiers)


def preset() -> Programme:
    text = resources.files("clm.loyalty").joinpath(f"presets/{DEFAULT_PROGRAMME}.yaml").read_text("utf-8")
    return programme_from_dict(yaml.safe_load(text))


def load_programme(path: Path) -> Programme:
    """Read a programme file (YAML or JSON)."""
    return programme_from_dict(read_definition(path))
