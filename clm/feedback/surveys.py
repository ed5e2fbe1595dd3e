"""Surveys: NPS (0-10), CSAT (1-5) and free-text feedback; single-use links per customer; answers
stored once as `survey_response` events; a low score opens a follow-up task.

A link carries a random 256-bit token; only its SHA-256 is stored, so the database cannot
reproduce a link and a guessed one never matches. Answering marks the invitation answered with a
conditional UPDATE in the same transaction that writes the event, so a link works exactly once
even when it is submitted twice at the same moment."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from clm.core.errors import Conflict, InvalidInput, NotFound
from clm.core.settings import settings
from clm.core.timeutil import utcnow
from clm.core.tokens import token_digest
from clm.customers.service import require_customer
from clm.customers.tables import customers
from clm.events.schemas import SYSTEM_ID_PREFIX
from clm.events.service import SURVEY_RESPONSE, record_answers
from clm.events.tables import events
from clm.feedback.tables import survey_invitations, surveys
from clm.feedback.tasks import create_task_in

KINDS = ("nps", "csat", "feedback")
SCALES = {"nps": (0, 10), "csat": (1, 5)}
# Answers at or below these scores are flagged for follow-up: NPS detractors (0-6), CSAT 1-2.
FLAG_AT_OR_BELOW = {"nps": 6, "csat": 2}
LINK_DAYS = 30
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")

BUILTIN_SURVEYS = (
    (
        "nps",
        "nps",
        "How likely are you to recommend us to a friend or colleague?",
        "您有多大可能向朋友或同事推荐我们?",
    ),
    (
        "support-csat",
        "csat",
        "How satisfied are you with the help you received?",
        "您对本次服务满意吗?",
    ),
    ("feedback", "feedback", "Tell us what we could do better.", "请告诉我们可以改进的地方。"),
)


@dataclass(frozen=True)
class Survey:
    id: int
    name: str
    kind: str
    question_en: str
    question_zh: str | None
    follow_up_at_or_below: int | None
    follow_up_assignee: str | None
    active: bool
    builtin: bool
    created_at: datetime

    @property
    def scale(self) -> tuple[int, int] | None:
        return SCALES.get(self.kind)


@dataclass(frozen=True)
class Invitation:
    id: int
    survey: str
    customer_id: int
    channel: str
    link: str | None  # only when just created: the token is not stored
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None


@dataclass(frozen=True)
class OpenInvitation:
    """What the answer page needs to show: the survey and whether the link can still be used."""

    invitation_id: int
    survey: Survey
    customer_id: int
    first_name: str | None
    state: str  # open, answered, expired


@dataclass(frozen=True)
class Answer:
    event_id: str
    survey: str
    customer_id: int
    score: int | None
    flagged: bool
    task_id: int | None


def _survey(r: Any) -> Survey:
    return Survey(
        r.id,
        r.name,
        r.kind,
        r.question_en,
        r.question_zh,
        r.follow_up_at_or_below,
        r.follow_up_assignee,
        r.active,
        r.builtin,
        r.created_at,
    )


def create_survey(
    engine: Engine,
    name: str,
    kind: str,
    question_en: str,
    question_zh: str | None = None,
    *,
    follow_up: bool = True,
    follow_up_assignee: str | None = None,
    builtin: bool = False,
) -> Survey:
    """A new survey; with `follow_up`, NPS answers 0-6 and CSAT answers 1-2 open a follow-up task."""
    name = name.strip()
    if not name or len(name) > 100 or not set(name) <= _NAME_CHARS:
        raise InvalidInput("use 1-100 lower-case letters, digits, _ and -", "name")
    if kind not in KINDS:
        raise InvalidInput(f"must be one of {', '.join(KINDS)}", "kind")
    if not question_en.strip():
        raise InvalidInput("the question people see must not be empty", "question_en")
    values = {
        "name": name,
        "kind": kind,
        "question_en": question_en.strip(),
        "question_zh": (question_zh or "").strip() or None,
        "follow_up_at_or_below": FLAG_AT_OR_BELOW.get(kind) if follow_up else None,
        "follow_up_assignee": follow_up_assignee,
        "active": True,
        "builtin": builtin,
        "created_at": utcnow(),
    }
    try:
        with engine.begin() as conn:
            new_id = conn.execute(insert(surveys).values(**values).returning(surveys.c.id)).scalar_one()
    except IntegrityError:
        raise Conflict(f"a survey named {name!r} already exists")
    return get_survey(engine, new_id)


def install_builtin_surveys(engine: Engine) -> list[str]:
    existing = {s.name for s in list_surveys(engine)}
    added = []
    for name, kind, en, zh in BUILTIN_SURVEYS:
        if name not in existing:
            create_survey(engine, name, kind, en, zh, builtin=True)
            added.append(name)
    return added


def list_surveys(engine: Engine) -> list[Survey]:
    with engine.connect() as conn:
        return [_survey(r) for r in conn.execute(select(surveys).order_by(surveys.c.id))]


def get_survey(engine: Engine, name_or_id: str | int) -> Survey:
    column = surveys.c.id if isinstance(name_or_id, int) else surveys.c.name
    with engine.connect() as conn:
        row = conn.execute(select(surveys).where(column == name_or_id)).first()
    if row is None:
        raise NotFound(f"no survey {name_or_id!r}")
    return _survey(row)


def invite(
    engine: Engine,
    survey_name: str,
    customer_id: int,
    *,
    channel: str = "email",
    context: dict[str, Any] | None = None,
    reference: str | None = None,
) -> Invitation:
    """A single-use answer link for one customer. With a `reference` (ticket:12, order:A-1) the
    same occasion never gets two links: asking again returns the first one, without its link."""
    survey = get_survey(engine, survey_name)
    if not survey.active:
        raise InvalidInput(f"survey {survey.name!r} is closed", "survey")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with engine.begin() as conn:
        require_customer(conn, customer_id)
        if reference is not None:
            found = conn.execute(
                select(survey_invitations).where(survey_invitations.c.reference == reference)
            ).first()
            if found is not None:
                return _invitation(found, survey.name, None)
        row = conn.execute(
            insert(survey_invitations)
            .values(
                survey_id=survey.id,
                customer_id=customer_id,
                token_hash=token_digest(token),
                channel=channel,
                context=context or {},
                reference=reference,
                created_at=now,
                expires_at=now + timedelta(days=LINK_DAYS),
            )
            .returning(*survey_invitations.c)
        ).one()
    return _invitation(row, survey.name, f"{settings().public_url}/s/{token}")


def _invitation(r: Any, survey: str, link: str | None) -> Invitation:
    return Invitation(r.id, survey, r.customer_id, r.channel, link, r.created_at, r.expires_at, r.answered_at)


def open_invitation(engine: Engine, token: str) -> OpenInvitation:
    """The invitation behind a link, for the answer page; NotFound for a link that never existed."""
    with engine.connect() as conn:
        row = conn.execute(
            select(survey_invitations, customers.c.first_name)
            .join(customers, customers.c.id == survey_invitations.c.customer_id)
            .where(survey_invitations.c.token_hash == token_digest(token))
        ).first()
        if row is None:
            raise NotFound("this survey link is not valid")
        survey = _survey(conn.execute(select(surveys).where(surveys.c.id == row.survey_id)).one())
    state = "answered" if row.answered_at else "expired" if row.expires_at <= utcnow() else "open"
    return OpenInvitation(row.id, survey, row.customer_id, row.first_name, state)


def _check_answer(survey: Survey, score: int | None, comment: str) -> None:
    if survey.scale is None:
        if score is not None:
            raise InvalidInput("a feedback survey takes a comment, not a score", "score")
        if not comment.strip():
            raise InvalidInput("please write something", "comment")
        return
    low, high = survey.scale
    if score is None or not low <= score <= high:
        raise InvalidInput(f"choose a score from {low} to {high}", "score")


def answer(engine: Engine, token: str, score: int | None, comment: str = "") -> Answer:
    """Store the answer behind a link once; a second use raises Conflict."""
    comment = comment.strip()[:5_000]
    invitation = open_invitation(engine, token)
    survey = invitation.survey
    if invitation.state == "answered":
        raise Conflict("this survey has already been answered: thank you")
    if invitation.state == "expired":
        raise Conflict("this survey link has expired")
    _check_answer(survey, score, comment)
    now = utcnow()
    event_id = f"{SYSTEM_ID_PREFIX}survey:{invitation.invitation_id}"
    with engine.begin() as conn:
        claimed = conn.execute(
            update(survey_invitations)
            .where(
                survey_invitations.c.id == invitation.invitation_id,
                survey_invitations.c.answered_at.is_(None),
            )
            .values(answered_at=now, score=score, event_id=event_id)
        ).rowcount
        if claimed != 1:
            raise Conflict("this survey has already been answered: thank you")
        row = conn.execute(
            select(survey_invitations.c.channel, survey_invitations.c.context).where(
                survey_invitations.c.id == invitation.invitation_id
            )
        ).one()
        return _record(
            conn, survey, invitation.customer_id, score, comment, row.channel, row.context, event_id, now
        )


def record_feedback(
    engine: Engine,
    survey_name: str,
    customer_id: int,
    score: int | None,
    comment: str = "",
    *,
    channel: str = "web",
    context: dict[str, Any] | None = None,
    event_id: str | None = None,
) -> Answer:
    """An answer that arrived another way (a form on the shop, a call, an import)."""
    survey = get_survey(engine, survey_name)
    comment = comment.strip()[:5_000]
    _check_answer(survey, score, comment)
    now = utcnow()
    event_id = event_id or f"{SYSTEM_ID_PREFIX}feedback:{secrets.token_hex(12)}"
    with engine.begin() as conn:
        require_customer(conn, customer_id)
        if conn.execute(select(events.c.id).where(events.c.event_id == event_id)).first() is not None:
            raise Conflict(f"an answer with event id {event_id!r} is already stored")
        return _record(conn, survey, customer_id, score, comment, channel, context or {}, event_id, now)


def _record(
    conn: Connection,
    survey: Survey,
    customer_id: int,
    score: int | None,
    comment: str,
    channel: str,
    context: dict[str, Any] | None,
    event_id: str,
    now: datetime,
) -> Answer:
    properties: dict[str, Any] = {**(context or {}), "survey": survey.kind, "survey_name": survey.name}
    if score is not None:
        properties["score"] = score
    if comment:
        properties["comment"] = comment
    conn.execute(
        insert(events).values(
            event_id=event_id,
            customer_id=customer_id,
            type=SURVEY_RESPONSE,
            channel=channel,
            occurred_at=now,
            received_at=now,
            properties=properties,
        )
    )
    record_answers(conn, [event_id])
    flagged = score is not None and score <= FLAG_AT_OR_BELOW.get(survey.kind, -1)
    task_id = None
    if (
        flagged
        and survey.follow_up_at_or_below is not None
        and score is not None
        and score <= survey.follow_up_at_or_below
    ):
        label = "NPS" if survey.kind == "nps" else "CSAT"
        task_id = create_task_in(
            conn,
            customer_id,
            f"Call back: {label} {score} on {survey.name}",
            notes=comment,
            assignee=survey.follow_up_assignee,
            due_at=now + timedelta(days=2),
            source="detractor",
            reference=f"response:{event_id}",
            created_by="survey",
        )
    return Answer(event_id, survey.name, customer_id, score, flagged, task_id)
