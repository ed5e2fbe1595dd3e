"""What a journey names must exist before it is saved or goes live: its message templates (for the
step's channel), segments (segment triggers, broadcasts, `in_segment()` in conditions), surveys
(open ones) and lifecycle stages. A journey naming something missing is refused with every
missing name, instead of failing message by message at send time.

Coupon campaigns are not looked up: a `coupon: NAME` step issues a code per customer and
campaign on first use, so there is no list of campaigns for a name to be missing from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from clm.channels.templates import get_template
from clm.conditions import parse_condition
from clm.conditions.ast import Call, Field, Literal
from clm.core.errors import InvalidInput, NotFound
from clm.feedback.service import list_surveys
from clm.journeys.definition import JourneyDefinition
from clm.lifecycle.service import current_model
from clm.segments.service import list_segments


@dataclass(frozen=True)
class MissingReference:
    kind: str  # template, segment, survey, stage
    name: str
    where: str  # the part of the journey that names it: "step 'coupon'.send.template"
    problem: str  # what is wrong: "no template named 'cart-remindr'"


class MissingReferences(InvalidInput):
    """A journey names templates, segments, surveys or stages that do not exist (or cannot be used).
    The API answers 422 with one `fields` entry per missing name."""

    code = "missing_references"

    def __init__(self, journey: str, missing: list[MissingReference]) -> None:
        problems = "; ".join(f"{m.where}: {m.problem}" for m in missing)
        super().__init__(f"journey {journey!r} names what does not exist or cannot be used: {problems}")
        self.missing = missing
        self.fields = [
            {"field": m.where, "message": m.problem, "kind": m.kind, "name": m.name} for m in missing
        ]


def _segments_in(node: Any, found: set[str]) -> None:
    """Collect the names passed to in_segment() anywhere in a parsed condition."""
    if isinstance(node, Call) and node.fn == "in_segment" and len(node.args) == 1:
        arg = node.args[0]
        if isinstance(arg, Literal | Field):
            found.add(str(arg.value if isinstance(arg, Literal) else arg.name))
    if isinstance(node, tuple):
        for item in node:
            _segments_in(item, found)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            _segments_in(getattr(node, f.name), found)


def references(d: JourneyDefinition) -> list[tuple[str, str, str, str | None]]:
    """(kind, name, where, channel) of every named thing the journey uses, in the order written;
    `channel` is the channel a template is sent on."""
    out: list[tuple[str, str, str, str | None]] = []
    raw = d.raw.get("trigger") or {}
    for key in ("segment_entered", "segment_exited"):
        if key in raw:
            out.append(("segment", str(raw[key]), f"trigger.{key}", None))
    if "stage_changed" in raw:
        out.append(("stage", str(raw["stage_changed"]), "trigger.stage_changed", None))
    conditions = [("trigger", d.trigger.condition)] if d.trigger.condition else []
    conditions += [(f"step {s.id!r}.branch.if", s.args["if"]) for s in d.steps if s.action == "branch"]
    for where, text in conditions:
        names: set[str] = set()
        _segments_in(parse_condition(text), names)
        out += [("segment", n, where, None) for n in sorted(names)]
    for s in d.steps:
        if s.action == "send":
            where = f"step {s.id!r}.send"
            per_channel = s.args.get("templates") or {s.args["channel"]: s.args["template"]}
            for channel, name in per_channel.items():
                at = f"{where}.template" if len(per_channel) == 1 else f"{where}.template.{channel}"
                out.append(("template", str(name), at, channel))
            if s.args.get("survey"):
                out.append(("survey", str(s.args["survey"]), f"{where}.survey", None))
    return out


def missing_references(engine: Engine, d: JourneyDefinition) -> list[MissingReference]:
    """Every reference of the journey that does not resolve now, with what is wrong with it."""
    refs = references(d)
    kinds = {kind for kind, *_ in refs}
    segments = {s.name for s in list_segments(engine)} if "segment" in kinds else set()
    surveys = {s.name: s.active for s in list_surveys(engine)} if "survey" in kinds else {}
    stages = set(current_model(engine).keys) if "stage" in kinds else set()
    missing: list[MissingReference] = []
    for kind, name, where, channel in refs:
        problem = None
        if kind == "segment" and name not in segments:
            problem = f"no segment named {name!r}"
        elif kind == "survey":
            if name not in surveys:
                problem = f"no survey named {name!r}"
            elif not surveys[name]:
                problem = f"survey {name!r} is closed"
        elif kind == "stage" and name not in stages:
            problem = f"no stage {name!r} in the stage model in use ({', '.join(sorted(stages))})"
        elif kind == "template":
            try:
                template = get_template(engine, name)
                if template.channel != channel:
                    problem = f"template {name!r} is for {template.channel}, the step sends {channel}"
            except NotFound:
                problem = f"no template named {name!r}"
            except InvalidInput as exc:
                problem = f"template {name!r} cannot be used: {exc.reason}"
        if problem:
            missing.append(MissingReference(kind, name, where, problem))
    return missing


def check_references(engine: Engine, d: JourneyDefinition) -> None:
    """Refuse a journey that names anything missing (raises MissingReferences naming all of them)."""
    missing = missing_references(engine, d)
    if missing:
        raise MissingReferences(d.name, missing)
