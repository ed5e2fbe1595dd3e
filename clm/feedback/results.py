"""Survey results from the `survey_response` events, whatever brought them in (our links, the
API, an import): NPS and CSAT exactly as DESIGN.md defines them, per period, channel, month,
stage or segment, the score distribution, and the comments with low scores flagged.

NPS = % promoters (9-10) - % detractors (0-6); CSAT = % of answers 4-5 on the 1-5 scale."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, and_, func, literal, select

from clm.core.errors import InvalidInput
from clm.events.service import SURVEY_RESPONSE
from clm.events.tables import events
from clm.feedback.surveys import FLAG_AT_OR_BELOW, SCALES
from clm.feedback.tables import tasks
from clm.store.sql import json_number, json_text, year_month

GROUPINGS = ("channel", "month", "stage", "segment")


@dataclass
class Scores:
    """One group's answers."""

    label: str
    responses: int = 0
    distribution: dict[int, int] = field(default_factory=dict)
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    nps: float | None = None
    satisfied: int = 0
    csat: float | None = None

    def finish(self, kind: str) -> Scores:
        n = self.responses
        if kind == "nps" and n:
            self.promoters = sum(c for s, c in self.distribution.items() if s >= 9)
            self.detractors = sum(c for s, c in self.distribution.items() if s <= 6)
            self.passives = n - self.promoters - self.detractors
            self.nps = 100.0 * (self.promoters - self.detractors) / n
        if kind == "csat" and n:
            self.satisfied = sum(c for s, c in self.distribution.items() if s >= 4)
            self.csat = 100.0 * self.satisfied / n
        return self


@dataclass(frozen=True)
class Results:
    kind: str
    survey: str | None
    start: datetime | None
    end: datetime | None
    by: str | None
    overall: Scores
    groups: list[Scores]


@dataclass(frozen=True)
class Comment:
    event_id: str
    customer_id: int
    survey: str | None
    kind: str
    score: int | None
    comment: str
    channel: str
    answered_at: datetime
    flagged: bool  # a detractor (NPS 0-6) or an unhappy CSAT answer (1-2)
    task_id: int | None  # the follow-up task opened for it, if any


def _filters(kind: str, survey: str | None, start: datetime | None, end: datetime | None) -> list[Any]:
    props = events.c.properties
    out: list[Any] = [events.c.type == SURVEY_RESPONSE, json_text(props, "survey") == kind]
    if survey is not None:
        out.append(json_text(props, "survey_name") == survey)
    if start is not None:
        out.append(events.c.occurred_at >= start)
    if end is not None:
        out.append(events.c.occurred_at < end)
    return out


def survey_results(
    engine: Engine,
    kind: str,
    *,
    survey: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    by: str | None = None,
    groups: Select[Any] | None = None,
) -> Results:
    """Scores of the NPS or CSAT answers in [start, end), overall and per group. For `by` stage or
    segment the caller passes `groups`: a select of (customer_id, label) rows; a customer in
    several segments counts in each. `groups` without `by` only narrows the answers (one segment)."""
    if kind not in SCALES:
        raise InvalidInput(f"results are scored for {', '.join(SCALES)} surveys", "kind")
    if by is not None and by not in GROUPINGS:
        raise InvalidInput(f"must be one of {', '.join(GROUPINGS)}", "by")
    if by in ("stage", "segment") and groups is None:
        raise InvalidInput(f"results by {by} need the customers' {by}s", "by")
    low, high = SCALES[kind]
    score = json_number(events.c.properties, "score")
    conditions = [*_filters(kind, survey, start, end), score >= low, score <= high]
    source: Any = events
    label: Any
    if groups is not None:
        grp = groups.subquery("groups")
        source = events.join(grp, grp.c[grp.c.keys()[0]] == events.c.customer_id)
        label = grp.c[grp.c.keys()[1]]
    if by == "channel":
        label = events.c.channel
    elif by == "month":
        label = year_month(events.c.occurred_at)
    elif by is None:
        label = literal("all")
    per_group: dict[str, Scores] = {}
    overall = Scores("all")
    with engine.connect() as conn:
        rows = conn.execute(
            select(label.label("label"), score.label("score"), func.count().label("n"))
            .select_from(source)
            .where(and_(*conditions))
            .group_by(label, score)
        ).all()
        if groups is not None and by in ("stage", "segment"):
            # overall counts each answer once, however many segments its customer is in
            plain = conn.execute(
                select(score.label("score"), func.count().label("n")).where(and_(*conditions)).group_by(score)
            ).all()
        else:
            plain = None
    for r in rows:
        group = per_group.setdefault(str(r.label), Scores(str(r.label)))
        s = int(r.score)
        group.distribution[s] = group.distribution.get(s, 0) + int(r.n)
        group.responses += int(r.n)
    totals: dict[int, int] = defaultdict(int)
    pairs = (
        [(r.score, r.n) for r in plain]
        if plain is not None
        else [(s, c) for group in per_group.values() for s, c in group.distribution.items()]
    )
    for score_value, count in pairs:
        totals[int(score_value)] += int(count)
    overall.distribution = {s: totals.get(s, 0) for s in range(low, high + 1)}
    overall.responses = sum(totals.values())
    for g in per_group.values():
        g.distribution = {s: g.distribution.get(s, 0) for s in range(low, high + 1)}
    ordered = [per_group[k].finish(kind) for k in sorted(per_group)] if by else []
    return Results(kind, survey, start, end, by, overall.finish(kind), ordered)


def comments(
    engine: Engine,
    kind: str | None = None,
    *,
    survey: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    flagged_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[Comment]:
    """Answers with a comment, newest first, low scores flagged with their follow-up task."""
    props = events.c.properties
    text = json_text(props, "comment")
    score = json_number(props, "score")
    conditions: list[Any] = [events.c.type == SURVEY_RESPONSE, text.is_not(None), text != ""]
    if kind is not None:
        conditions.append(json_text(props, "survey") == kind)
    if survey is not None:
        conditions.append(json_text(props, "survey_name") == survey)
    if start is not None:
        conditions.append(events.c.occurred_at >= start)
    if end is not None:
        conditions.append(events.c.occurred_at < end)
    if flagged_only:
        conditions.append(
            (json_text(props, "survey") == "nps") & (score <= FLAG_AT_OR_BELOW["nps"])
            | (json_text(props, "survey") == "csat") & (score <= FLAG_AT_OR_BELOW["csat"])
        )
    query = (
        select(
            events.c.event_id,
            events.c.customer_id,
            json_text(props, "survey_name").label("survey"),
            json_text(props, "survey").label("kind"),
            score.label("score"),
            text.label("comment"),
            events.c.channel,
            events.c.occurred_at,
            tasks.c.id.label("task_id"),
        )
        .select_from(events.outerjoin(tasks, tasks.c.reference == "response:" + events.c.event_id))
        .where(and_(*conditions))
        .order_by(events.c.occurred_at.desc(), events.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        out = []
        for r in conn.execute(query):
            s = None if r.score is None else int(r.score)
            flagged = s is not None and s <= FLAG_AT_OR_BELOW.get(r.kind, -1)
            out.append(
                Comment(
                    r.event_id,
                    r.customer_id,
                    r.survey,
                    r.kind,
                    s,
                    r.comment,
                    r.channel,
                    r.occurred_at,
                    flagged,
                    r.task_id,
                )
            )
        return out
