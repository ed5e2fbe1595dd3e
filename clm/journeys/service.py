"""The journeys domain's public door: saving and enabling journeys, one worker tick (enrol, exit,
resolve waits, run steps, dispatch messages), the trace of a customer's path, outbox views."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text

from clm.core.errors import NotFound
from clm.core.timeutil import utcnow
from clm.journeys import store
from clm.journeys.checks import MissingReference, MissingReferences, check_references, missing_references
from clm.journeys.definition import JourneyDefinition, definition_from_dict, load_definition, presets
from clm.journeys.enrol import count_entrants, count_event_entrants, due_selection, next_run, scan
from clm.journeys.outbox import DispatchReport, dispatch, queue_message, recover, retry_message
from clm.journeys.steps import apply_exits, resolve_waits, run_steps
from clm.journeys.store import Journey, current_version, get_journey, list_journeys, save_journey
from clm.journeys.tables import enrolments, journey_log, journeys, outbox

_LOCK_CLASS = 0x4A6F  # "Jo": a PostgreSQL advisory lock per journey while its trigger is scanned


@dataclass
class Tick:
    """What one worker tick did."""

    enrolled: dict[str, int] = field(default_factory=dict)
    exited: int = 0
    waits_resolved: int = 0
    steps: int = 0
    dispatch: DispatchReport = field(default_factory=DispatchReport)
    requeued: int = 0
    unknown: int = 0


def import_journey(engine: Engine, source: str) -> tuple[str, int]:
    """Save a journey from a file, or a ready-made one by name; returns (name, version). Refused
    (MissingReferences) when it names a template, segment, survey or stage that does not exist."""
    ready = presets()
    definition = ready[source] if source in ready else load_definition(Path(source))
    check_references(engine, definition)
    return definition.name, save_journey(engine, definition)[1]


def save_definition(engine: Engine, raw: Any) -> tuple[str, int]:
    """Save a journey from its definition (API, console); refused like `import_journey`."""
    definition = definition_from_dict(raw)
    check_references(engine, definition)
    return definition.name, save_journey(engine, definition)[1]


def set_status(engine: Engine, name: str, status: str) -> None:
    """draft, live or paused. Going live checks the journey's references again (a template or
    segment may have gone since it was saved)."""
    if status == "live":
        check_references(engine, get_journey(engine, name)[1])
    store.set_status(engine, name, status)


ESTIMATE_DAYS = 7  # an event trigger's estimate: who would have entered over this many days


@dataclass(frozen=True)
class EnablePreview:
    """What making a journey live would do, without doing it."""

    journey: str
    status: str
    version: int
    trigger: str
    entering: int  # customers the trigger enrols at its next run, counted now (0 for event triggers)
    runs_at: datetime | None  # when that run is: now, or a broadcast's time (None: event trigger)
    recent_days: int | None  # event trigger: the look-back of `recent_entrants`
    recent_entrants: int | None  # event trigger: customers the events of the last days would enrol
    missing: list[MissingReference]


def enable_preview(engine: Engine, name: str, now: datetime | None = None) -> EnablePreview:
    """How many customers going live would enrol now (the same selection the worker's enrolment
    inserts, counted, with the re-entry rule), and which references are missing. Changes nothing."""
    now = now or utcnow()
    journey, d = get_journey(engine, name)
    missing = missing_references(engine, d)
    entering, runs_at, recent = 0, None, None
    with engine.connect() as conn:
        row = conn.execute(select(journeys).where(journeys.c.id == journey.id)).one()
        version_id = current_version(conn, journey.id)[0]
        if d.trigger.kind == "event":
            since = now - timedelta(days=ESTIMATE_DAYS)
            recent = count_event_entrants(conn, row.id, version_id, d, since, now)
        elif not any(m.kind == "segment" for m in missing):  # else the trigger cannot be evaluated
            due, later = next_run(row, d, now)
            runs_at = now if due is not None else later
            if runs_at is not None:
                at = runs_at if d.trigger.kind == "date" else now
                selected = due_selection(conn, row, d, at, run_at=runs_at)
                if selected is not None:
                    entering = count_entrants(conn, row.id, version_id, d, selected[0], selected[1], at)
    return EnablePreview(
        journey.name,
        journey.status,
        journey.version,
        journey.trigger,
        entering,
        runs_at,
        ESTIMATE_DAYS if recent is not None else None,
        recent,
        missing,
    )


def scan_triggers(engine: Engine, now: datetime) -> dict[str, int]:
    found: dict[str, int] = {}
    with engine.connect() as conn:
        live = conn.execute(select(journeys).where(journeys.c.status == "live")).all()
    for journey in live:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                got = conn.execute(
                    text("SELECT pg_try_advisory_xact_lock(:c, :j)"), {"c": _LOCK_CLASS, "j": journey.id}
                ).scalar()
                if not got:
                    continue  # another worker is scanning it now
            row = conn.execute(select(journeys).where(journeys.c.id == journey.id)).one()
            version_id, definition = current_version(conn, journey.id)
            n = scan(conn, row, version_id, definition, now)
        if n:
            found[journey.name] = n
    return found


def tick(engine: Engine, now: datetime | None = None, *, batch: int = 2_000, send: bool = True) -> Tick:
    """One round of a worker: enrol, apply exits, resolve waits, run due steps, send due messages."""
    now = now or utcnow()
    done = Tick()
    done.requeued, done.unknown = recover(engine, now)
    done.enrolled = scan_triggers(engine, now)
    done.exited = apply_exits(engine, now)
    done.waits_resolved = resolve_waits(engine, now)
    done.steps = run_steps(engine, now, batch)
    if send:
        while True:
            report = dispatch(engine, now, batch=min(batch, 500))
            _add(done.dispatch, report)
            if report.claimed == 0:
                break
    return done


def _add(total: DispatchReport, part: DispatchReport) -> None:
    for name in ("claimed", "sent", "skipped", "suppressed", "deferred", "failed", "retried"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    for k, v in part.reasons.items():
        total.reasons[k] = total.reasons.get(k, 0) + v


@dataclass(frozen=True)
class TraceLine:
    at: datetime
    journey: str
    enrolment_id: int
    step: str
    action: str
    outcome: str
    detail: str


@dataclass(frozen=True)
class MessageLine:
    created_at: datetime
    journey: str | None
    step: str | None
    channel: str
    template: str
    status: str
    reason: str | None
    sent_at: datetime | None


@dataclass(frozen=True)
class Trace:
    customer_id: int
    enrolments: list[dict[str, Any]]
    steps: list[TraceLine]
    messages: list[MessageLine]


def trace(engine: Engine, customer_id: int, journey: str | None = None) -> Trace:
    """Every journey step a customer went through and every message meant for them, with the
    reason any was not sent: the answer to "why did (or didn't) they get this message?"."""
    names_q = select(journeys.c.id, journeys.c.name)
    with engine.connect() as conn:
        names = dict(conn.execute(names_q).all())
        wanted = None
        if journey is not None:
            wanted = next((i for i, n in names.items() if n == journey), None)
            if wanted is None:
                raise NotFound(f"no journey named {journey!r}")
        eq = select(enrolments).where(enrolments.c.customer_id == customer_id)
        lq = select(journey_log).where(journey_log.c.customer_id == customer_id)
        oq = select(outbox).where(outbox.c.customer_id == customer_id)
        if wanted is not None:
            eq = eq.where(enrolments.c.journey_id == wanted)
            lq = lq.where(journey_log.c.journey_id == wanted)
            oq = oq.where(outbox.c.journey_id == wanted)
        enrolled = [
            {
                "id": r.id,
                "journey": names.get(r.journey_id),
                "state": r.state,
                "step": r.step,
                "variant": r.variant,
                "entered_at": r.entered_at,
                "finished_at": r.finished_at,
                "exit_reason": r.exit_reason,
            }
            for r in conn.execute(eq.order_by(enrolments.c.entered_at))
        ]
        steps = [
            TraceLine(
                r.at, names.get(r.journey_id, "?"), r.enrolment_id, r.step, r.action, r.outcome, r.detail
            )
            for r in conn.execute(lq.order_by(journey_log.c.at, journey_log.c.id))
        ]
        messages = [
            MessageLine(
                r.created_at,
                names.get(r.journey_id) if r.journey_id else None,
                r.step,
                r.channel,
                r.template,
                r.status,
                r.reason,
                r.sent_at,
            )
            for r in conn.execute(oq.order_by(outbox.c.created_at, outbox.c.id))
        ]
    return Trace(customer_id, enrolled, steps, messages)


def outbox_rows(engine: Engine, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Messages newest first (what was sent, skipped and why)."""
    columns = (
        "id",
        "key",
        "customer_id",
        "journey_id",
        "channel",
        "template",
        "status",
        "reason",
        "to_address",
    )
    query = (
        select(*(outbox.c[c] for c in columns), outbox.c["class"].label("kind"), outbox.c.created_at,
               outbox.c.sent_at, outbox.c.attempts)
        .order_by(outbox.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    if status:
        query = query.where(outbox.c.status == status)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


__all__ = [
    "EnablePreview",
    "Journey",
    "JourneyDefinition",
    "MissingReference",
    "MissingReferences",
    "Tick",
    "Trace",
    "enable_preview",
    "get_journey",
    "import_journey",
    "list_journeys",
    "outbox_rows",
    "presets",
    "queue_message",
    "retry_message",
    "save_definition",
    "set_status",
    "tick",
    "trace",
]
