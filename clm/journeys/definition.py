"""Journeys as data: a trigger, re-entry and exit rules, a goal, and a list of steps, read from
YAML/JSON and validated with errors that name the step and key at fault.

    name: cart-abandonment
    trigger: {event: add_to_cart}            # or segment_entered / stage_changed / tier_changed,
                                             # condition, inactive_days, churn_band, date, broadcast
    reentry: {every_days: 7}                 # once | always | {every_days: N}
    exit_when: {event: purchase}             # leave as soon as the customer buys
    goal: {event: purchase, within_days: 7}  # what experiments and ROI count
    steps:
      - wait: {hours: 4}
      - send: {channel: email, template: cart-reminder}
      - wait: {event: purchase, timeout_days: 1, then: done, timeout: coupon}
      - id: coupon
        send: {template: cart-coupon, coupon: CART10}
      - {id: done, exit: {}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clm.conditions import ConditionError, parse_condition
from clm.core.definitions import read_definition
from clm.core.errors import InvalidInput
from clm.journeys.step_models import check_step

ACTIONS = ("send", "wait", "branch", "split", "update", "task", "exit")
KEYS = ("name", "title", "description", "trigger", "reentry", "exit_when", "goal", "steps")
DATE_FIELDS = ("birthday", "first_seen")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class Trigger:
    kind: str  # event, condition, date, broadcast
    event: str | None = None
    where: dict[str, str] = field(default_factory=dict)  # event property = value
    condition: str | None = None  # condition language, for condition and broadcast triggers
    date_field: str | None = None
    offset_days: int = 0
    at: str | None = None  # broadcast: ISO time of the (first) send
    every_days: float | None = None  # broadcast: repeat; condition: how often to look
    holidays: tuple[str, ...] = ()  # date trigger on date_field "holiday": the festivals' names


@dataclass(frozen=True)
class Step:
    id: str
    action: str
    args: dict[str, Any]
    next: str | None  # the step after this one (None: the journey ends)


@dataclass(frozen=True)
class JourneyDefinition:
    name: str
    title: str
    description: str
    trigger: Trigger
    reentry: str  # once, always, every
    reentry_days: float | None
    exit_event: str | None
    goal_event: str | None
    goal_days: float
    steps: tuple[Step, ...]
    raw: dict[str, Any]

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def first_step(self) -> str:
        return self.steps[0].id

    @property
    def experiments(self) -> list[tuple[str, Step]]:
        return [(str(s.args["name"]), s) for s in self.steps if s.action == "split"]


def _bad(where: str, message: str) -> InvalidInput:
    return InvalidInput(message, where)


def _condition(where: str, text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise _bad(where, "a condition in the segment language, e.g. 'orders >= 1'")
    try:
        parse_condition(text)
    except ConditionError as exc:
        raise _bad(where, str(exc))
    return text


def _trigger(raw: Any) -> Trigger:
    if not isinstance(raw, dict) or len(raw) == 0:
        raise _bad("trigger", "say what starts the journey, e.g. {event: signup}")
    where = {str(k): str(v) for k, v in (raw.get("where") or {}).items()}
    if "event" in raw:
        return Trigger("event", event=str(raw["event"]), where=where)
    sugar = {
        "segment_entered": ("segment_entered", "segment"),
        "segment_exited": ("segment_exited", "segment"),
        "stage_changed": ("stage_changed", "to"),
        "tier_changed": ("tier_changed", "direction"),
    }
    if "tier_changed" in raw and raw["tier_changed"] not in ("up", "down"):
        raise _bad("trigger.tier_changed", "up or down (the direction of the move between tiers)")
    for key, (event, prop) in sugar.items():
        if key in raw:
            return Trigger("event", event=event, where={**where, prop: str(raw[key])})
    if "holiday" in raw:  # before "condition", which a holiday trigger may carry
        return _holiday_trigger(raw)
    every = raw.get("every_days")
    if "condition" in raw:
        return Trigger(
            "condition", condition=_condition("trigger.condition", raw["condition"]), every_days=every
        )
    if "inactive_days" in raw:
        days = raw["inactive_days"]
        if not isinstance(days, int | float) or days <= 0:
            raise _bad("trigger.inactive_days", "a number of days above 0")
        return Trigger("condition", condition=f"days_since_last_activity >= {days:g}", every_days=every)
    if "churn_band" in raw:
        band = raw["churn_band"]
        if band not in ("high", "medium", "low"):
            raise _bad("trigger.churn_band", "high, medium or low")
        return Trigger("condition", condition=f'churn_band = "{band}"', every_days=every)
    if "date" in raw:
        if raw["date"] not in DATE_FIELDS:
            raise _bad("trigger.date", f"one of {', '.join(DATE_FIELDS)}")
        offset = raw.get("offset_days", 0)
        if not isinstance(offset, int) or abs(offset) > 366:
            raise _bad("trigger.offset_days", "whole days between -366 and 366")
        return Trigger("date", date_field=raw["date"], offset_days=offset)
    if "broadcast" in raw:
        b = raw["broadcast"]
        if not isinstance(b, dict) or not (b.get("segment") or b.get("condition")):
            raise _bad("trigger.broadcast", "needs a segment (or a condition) and optionally at / every_days")
        condition = (
            _condition("trigger.broadcast.condition", b["condition"]) if b.get("condition")
            else f'in_segment("{b["segment"]}")'
        )  # fmt: skip
        return Trigger("broadcast", condition=condition, at=b.get("at"), every_days=b.get("every_days"))
    raise _bad("trigger", f"unknown trigger {sorted(raw)}; see docs/journeys.md")


def _holiday_trigger(raw: dict[str, Any]) -> Trigger:
    """`{holiday: [春节, 中秋], segment: active_users, offset_days: -1}`: each named festival's
    day (clm.journeys.holidays), offset, enrols the segment's (or condition's) customers, once a
    year per festival; without a segment or condition, every customer."""
    from clm.journeys.holidays import holiday_name  # the calendars load only for such journeys

    names = raw["holiday"] if isinstance(raw["holiday"], list) else [raw["holiday"]]
    if not names or not all(isinstance(n, str) for n in names):
        raise _bad("trigger.holiday", "one festival or a list of them (春节, 中秋, …)")
    try:
        festivals = tuple(dict.fromkeys(holiday_name(n) for n in names))
    except InvalidInput as exc:
        raise _bad("trigger.holiday", exc.reason) from None
    offset = raw.get("offset_days", 0)
    if not isinstance(offset, int) or abs(offset) > 60:
        raise _bad("trigger.offset_days", "whole days between -60 and 60")
    unknown = sorted(set(raw) - {"holiday", "segment", "condition", "offset_days", "every_days"})
    if unknown:
        raise _bad(f"trigger.{unknown[0]}", "unknown key; a holiday takes segment, condition, offset_days")
    condition = (
        _condition("trigger.condition", raw["condition"]) if raw.get("condition")
        else f'in_segment("{raw["segment"]}")' if raw.get("segment") else None
    )  # fmt: skip
    return Trigger("date", date_field="holiday", offset_days=offset, holidays=festivals, condition=condition)


def _duration_days(where: str, raw: dict[str, Any]) -> float:
    total = float(raw.get("days", 0)) + float(raw.get("hours", 0)) / 24 + float(raw.get("minutes", 0)) / 1440
    if total <= 0:
        raise _bad(where, "a duration above zero in days, hours and/or minutes")
    return total


SEND_CHANNELS = ("email", "sms", "webhook", "wechat", "wecom")
SendChannel = Literal["email", "sms", "webhook", "wechat", "wecom"]


class SendStep(BaseModel):
    """A send step's keys (unknown keys refused). `channels` is a preference list: the first
    channel the customer can be reached on (an address, consent, the cap) is used at send time,
    e.g. [wechat, sms, email]; `template` is then one name per channel."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    channel: SendChannel | None = None
    channels: list[SendChannel] | None = Field(None, min_length=1, max_length=len(SEND_CHANNELS))
    template: str | dict[SendChannel, str]
    kind: Literal["marketing", "transactional"] = Field("marketing", alias="class")
    coupon: str | None = Field(None, max_length=100)
    survey: str | None = Field(None, max_length=100)
    sender: str | None = Field(None, max_length=64, description="WeCom: the staff member's userid")


def send_args(where: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A send step's arguments, checked: `channel` (the first choice), `channels` when a
    preference list is given, `template` (one name, or one per channel) and `templates`."""
    try:
        step = SendStep.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        if first["type"] == "missing" and key == "template":
            raise _bad(f"{where}.template", "names the message template") from None
        if first["type"] == "extra_forbidden":
            raise _bad(f"{where}.{key}", f"unknown key; a send step takes {', '.join(_SEND_KEYS)}") from None
        if key in ("channel", "channels"):
            raise _bad(f"{where}.{key}", f"one of {', '.join(SEND_CHANNELS)}") from None
        if key == "class":
            raise _bad(f"{where}.class", "marketing or transactional") from None
        raise _bad(f"{where}.{key}", str(first["msg"])) from None
    if step.channel and step.channels:
        raise _bad(where, "give channel or channels (a preference list), not both")
    channels = step.channels or [step.channel or "email"]
    if len(set(channels)) != len(channels):
        raise _bad(f"{where}.channels", "names a channel twice")
    if isinstance(step.template, str):
        if not step.template:
            raise _bad(f"{where}.template", "names the message template")
        if len(channels) > 1:
            raise _bad(f"{where}.template", "one template per channel: {wechat: NAME, sms: NAME, …}")
        templates = {channels[0]: step.template}
    else:
        templates = dict(step.template)
        if set(templates) != set(channels) or not all(templates.values()):
            raise _bad(f"{where}.template", f"one template for each of {', '.join(channels)}")
    args: dict[str, Any] = {
        "channel": channels[0],
        "template": templates[channels[0]],
        "class": step.kind,
        **{k: v for k, v in (("coupon", step.coupon), ("survey", step.survey), ("sender", step.sender)) if v},
    }
    if len(channels) > 1:
        args["channels"], args["templates"] = channels, templates
    return args


_SEND_KEYS = ("channel", "channels", "template", "class", "coupon", "survey", "sender")


def _step(i: int, raw: Any, ids: list[str]) -> Step:
    if not isinstance(raw, dict):
        raise _bad(f"steps[{i}]", "each step is a mapping with one action")
    step_id = str(raw.get("id") or f"step-{i + 1}")
    where = f"step {step_id!r}"
    actions = [a for a in ACTIONS if a in raw]
    if len(actions) != 1:
        raise _bad(where, f"needs exactly one action of {', '.join(ACTIONS)}")
    action = actions[0]
    args = raw[action] if isinstance(raw[action], dict) else {}
    unknown = sorted(set(raw) - {"id", "next", action})
    if unknown:
        raise _bad(f"{where}.{unknown[0]}", f"unknown key; a step has an id, one action ({action}) and next")
    check_step(action, f"{where}.{action}", args)  # the step kind's model (step_models.py)
    nxt = raw.get("next", ids[i + 1] if i + 1 < len(ids) else None)
    if action == "send":
        args = send_args(f"{where}.send", args)
    elif action == "wait":
        if "event" in args:
            args = {
                **args,
                "timeout_days": _duration_days(f"{where}.wait", {"days": args.get("timeout_days", 0)}),
            }
        elif "until_local" in args:
            hh, _, mm = str(args["until_local"]).partition(":")
            if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
                raise _bad(f"{where}.wait.until_local", "a local time HH:MM")
        else:
            args = {"days": _duration_days(f"{where}.wait", args)}
    elif action == "branch":
        args = {**args, "if": _condition(f"{where}.branch.if", args.get("if"))}
    elif action == "split":
        arms = args.get("arms")
        if not isinstance(arms, dict) or len(arms) < 1:
            raise _bad(f"{where}.split.arms", "arm name → share, e.g. {a: 45, b: 45}")
        holdout = args.get("holdout", 0)
        shares = [*arms.values(), holdout]
        if any(not isinstance(v, int | float) or v < 0 for v in shares) or sum(shares) <= 0:
            raise _bad(f"{where}.split", "shares are numbers ≥ 0 with a positive total")
        args = {
            "name": args.get("name") or step_id,
            "arms": arms,
            "holdout": holdout,
            "goto": args.get("goto", {}),
        }
    elif action == "update":
        if not args.get("attribute"):
            raise _bad(f"{where}.update.attribute", "names the profile attribute to set")
    elif action == "task" and not args.get("title"):
        raise _bad(f"{where}.task.title", "says what the person should do")
    return Step(step_id, action, dict(args), None if action == "exit" else nxt)


def definition_from_dict(raw: Any) -> JourneyDefinition:
    if not isinstance(raw, dict):
        raise InvalidInput("a journey is a mapping with name, trigger and steps")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise _bad(unknown[0], f"unknown key; a journey has {', '.join(KEYS)}")
    name = str(raw.get("name") or "")
    if not name or not set(name) <= _NAME_CHARS or len(name) > 100:
        raise _bad("name", "use 1-100 lower-case letters, digits, _ and -")
    trigger = _trigger(raw.get("trigger"))
    reentry_raw = raw.get("reentry", "once")
    if reentry_raw in ("once", "always"):
        reentry, days = str(reentry_raw), None
    elif isinstance(reentry_raw, dict) and isinstance(reentry_raw.get("every_days"), int | float):
        reentry, days = "every", float(reentry_raw["every_days"])
    else:
        raise _bad("reentry", "once, always or {every_days: N}")
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise _bad("steps", "a journey needs at least one step")
    ids = [
        str(s.get("id") or f"step-{i + 1}") if isinstance(s, dict) else "" for i, s in enumerate(steps_raw)
    ]
    if len(set(ids)) != len(ids):
        raise _bad("steps", "step ids must be unique")
    steps = tuple(_step(i, s, ids) for i, s in enumerate(steps_raw))
    known = set(ids)
    for s in steps:
        targets: list[Any] = [s.next] if s.next else []
        targets += [s.args[k] for k in ("then", "else", "timeout") if s.args.get(k)]
        targets += list(s.args.get("goto", {}).values()) if s.action == "split" else []
        for t in targets:
            if t not in known:
                raise _bad(f"step {s.id!r}", f"goes to {t!r}, which is not a step")
    exit_when = raw.get("exit_when") or {}
    goal = raw.get("goal") or {}
    return JourneyDefinition(
        name,
        str(raw.get("title") or name),
        str(raw.get("description") or ""),
        trigger,
        reentry,
        days,
        exit_when.get("event"),
        goal.get("event"),
        float(goal.get("within_days", 7)),
        steps,
        raw,
    )


def load_definition(path: Path) -> JourneyDefinition:
    return definition_from_dict(read_definition(path))


def presets() -> dict[str, JourneyDefinition]:
    out = {}
    for entry in resources.files("clm.journeys").joinpath("presets").iterdir():
        if entry.name.endswith(".yaml"):
            d = definition_from_dict(yaml.safe_load(entry.read_text("utf-8")))
            out[d.name] = d
    return out
