"""Enrolment: who enters a live journey, set-based. Event triggers read the events stored since
the journey's cursor (one statement, the first matching event per customer); condition, date and
broadcast triggers select the customers that match at their scheduled moment. Re-entry rules are
part of the same statement, and (journey, customer, entry key) is unique, so running a scan twice
enrols nobody twice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, String, and_, cast, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from clm.core.timeutil import store_day, store_midnight
from clm.customers.tables import customers
from clm.events.tables import events
from clm.journeys.definition import JourneyDefinition
from clm.journeys.holidays import celebrates_lunar_birthday_on, holidays_on
from clm.journeys.tables import enrolments, journeys
from clm.segments.service import customers_matching
from clm.store.schema import UTCDateTime
from clm.store.sql import json_text, month_day

_COLUMNS = [
    "journey_id", "version_id", "customer_id", "entry_key", "state", "step", "due_at", "since", "visits",
    "context", "entered_at",
]  # fmt: skip
CHUNK = 10_000


def _insert(conn: Connection) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(enrolments)


def _reentry_ok(d: JourneyDefinition, journey_id: int, customer: Any, now: datetime) -> Any:
    """SQL: may this customer enter again, by the journey's re-entry rule?"""
    mine = and_(enrolments.c.journey_id == journey_id, enrolments.c.customer_id == customer)
    if d.reentry == "once":
        return ~exists().where(mine)
    busy = exists().where(mine, enrolments.c.state.in_(("active", "waiting")))
    if d.reentry == "always":
        return ~busy
    recent = exists().where(mine, enrolments.c.entered_at > now - timedelta(days=d.reentry_days or 0))
    return ~busy & ~recent


def _row_values(
    journey_id: int, version_id: int, d: JourneyDefinition, now: datetime
) -> tuple[list[Any], list[Any]]:
    """The constant columns of new enrolments: before and after (customer_id, entry_key)."""
    return [literal(journey_id), literal(version_id)], [
        literal("active"),
        literal(d.first_step),
        literal(now, UTCDateTime),
        literal(now, UTCDateTime),
        literal(0),
    ]


def _event_entrants(
    journey_id: int, version_id: int, d: JourneyDefinition, filters: list[Any], now: datetime
) -> Any:
    """SELECT the new enrolment rows for the customers with a trigger event among `filters`
    (their first such event), by the journey's re-entry rule."""
    e = events
    filters = [*filters, e.c.type == d.trigger.event]
    filters += [json_text(e.c.properties, k) == v for k, v in d.trigger.where.items()]
    first = (
        select(e.c.customer_id, func.min(e.c.id).label("eid"))
        .where(*filters)
        .group_by(e.c.customer_id)
        .subquery()
    )
    trigger = e.alias("trigger")
    entry = literal("once") if d.reentry == "once" else literal("event:", String) + cast(first.c.eid, String)
    head, tail = _row_values(journey_id, version_id, d, now)
    return (
        select(
            *head,
            first.c.customer_id,
            entry,
            *tail[:4],
            tail[4],
            trigger.c.properties,
            literal(now, UTCDateTime),
        )
        .select_from(
            first.join(trigger, trigger.c.id == first.c.eid).join(
                customers, customers.c.id == first.c.customer_id
            )
        )
        .where(customers.c.merged_into.is_(None), _reentry_ok(d, journey_id, first.c.customer_id, now))
    )


def enrol_from_events(
    conn: Connection, journey_id: int, version_id: int, d: JourneyDefinition, cursor: int, now: datetime
) -> tuple[int, int]:
    """Enrol the customers with a matching event after `cursor`; returns (enrolled, new cursor)."""
    top = conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
    if top <= cursor:
        return 0, cursor
    rows = _event_entrants(journey_id, version_id, d, [events.c.id > cursor, events.c.id <= top], now)
    stmt = _insert(conn).from_select(_COLUMNS, rows).on_conflict_do_nothing().returning(enrolments.c.id)
    enrolled = len(conn.execute(stmt).all())
    conn.execute(update(journeys).where(journeys.c.id == journey_id).values(event_cursor=top))
    return enrolled, top


def count_event_entrants(
    conn: Connection, journey_id: int, version_id: int, d: JourneyDefinition, since: datetime, now: datetime
) -> int:
    """How many customers the event trigger would have enrolled from the events since `since`:
    the same selection `enrol_from_events` inserts, counted."""
    rows = _event_entrants(
        journey_id, version_id, d, [events.c.occurred_at >= since, events.c.occurred_at <= now], now
    )
    return int(conn.execute(select(func.count()).select_from(rows.subquery())).scalar_one())


def _customer_entrants(
    journey_id: int,
    version_id: int,
    d: JourneyDefinition,
    chunk: Sequence[int],
    entry_key: str,
    now: datetime,
    context: dict[str, Any] | None = None,
) -> Any:
    """SELECT the new enrolment rows for the given customers, by the journey's re-entry rule."""
    head, tail = _row_values(journey_id, version_id, d, now)
    key = literal("once") if d.reentry == "once" else literal(entry_key)
    return select(
        *head,
        customers.c.id,
        key,
        *tail,
        literal(context or {}, enrolments.c.context.type),
        literal(now, UTCDateTime),
    ).where(
        customers.c.id.in_(chunk),
        customers.c.merged_into.is_(None),
        _reentry_ok(d, journey_id, customers.c.id, now),
    )


def enrol_customers(
    conn: Connection,
    journey_id: int,
    version_id: int,
    d: JourneyDefinition,
    customer_ids: Sequence[int],
    entry_key: str,
    now: datetime,
    context: dict[str, Any] | None = None,
) -> int:
    """Enrol the given customers (a condition's or a broadcast's matches) under one entry key."""
    total = 0
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = _customer_entrants(journey_id, version_id, d, chunk, entry_key, now, context)
        stmt = _insert(conn).from_select(_COLUMNS, rows).on_conflict_do_nothing().returning(enrolments.c.id)
        total += len(conn.execute(stmt).all())
    return total


def count_entrants(
    conn: Connection,
    journey_id: int,
    version_id: int,
    d: JourneyDefinition,
    customer_ids: Sequence[int],
    entry_key: str,
    now: datetime,
) -> int:
    """How many of the given customers `enrol_customers` would enrol: the same selection, counted."""
    total = 0
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), CHUNK):
        rows = _customer_entrants(journey_id, version_id, d, ids[start : start + CHUNK], entry_key, now)
        total += int(conn.execute(select(func.count()).select_from(rows.subquery())).scalar_one())
    return total


LUNAR_CALENDAR = ("lunar", "农历", "阴历")  # attribute birthday_calendar: celebrated by the lunar calendar


def _anniversary_ids(conn: Connection, d: JourneyDefinition, now: datetime) -> tuple[list[int], str]:
    # the day is the store's (CLM_DEFAULT_TIMEZONE): a Beijing birthday starts at its midnight
    target = store_day(now) + timedelta(days=d.trigger.offset_days)
    if d.trigger.date_field == "holiday":
        return _holiday_ids(conn, d, target, now)
    column = customers.c.birthday if d.trigger.date_field == "birthday" else customers.c.first_seen_at
    days = [target.strftime("%m-%d")]
    leap = target.year % 4 == 0 and (target.year % 100 != 0 or target.year % 400 == 0)
    if days[0] == "02-28" and not leap:
        days.append("02-29")  # born on 29 February: celebrated on the 28th in other years
    live = [customers.c.merged_into.is_(None), column.is_not(None)]
    if d.trigger.date_field != "birthday":
        return [
            r[0] for r in conn.execute(select(customers.c.id).where(*live, month_day(column).in_(days)))
        ], (f"date:{target.year}")
    calendar = func.coalesce(json_text(customers.c.attributes, "birthday_calendar"), "")
    lunar = calendar.in_(LUNAR_CALENDAR)
    ids = [
        r[0] for r in conn.execute(select(customers.c.id).where(*live, ~lunar, month_day(column).in_(days)))
    ]
    # a lunar birthday moves on the Gregorian calendar: those (few) profiles are checked one by one
    for cid, born in conn.execute(select(customers.c.id, column).where(*live, lunar)):
        if celebrates_lunar_birthday_on(born, target):
            ids.append(cid)
    return sorted(ids), f"date:{target.year}"


def _holiday_ids(
    conn: Connection, d: JourneyDefinition, target: date, now: datetime
) -> tuple[list[int], str]:
    """The customers a holiday trigger enrols on `target` (none unless one of its festivals falls
    then); the entry key names the festival and year, so each is celebrated once."""
    festivals = [name for name in holidays_on(target) if name in d.trigger.holidays]
    key = f"holiday:{'+'.join(festivals) or 'none'}:{target.year}"
    if not festivals:
        return [], key
    if d.trigger.condition:
        return customers_matching(conn, d.trigger.condition, as_of=now), key
    return list(conn.execute(select(customers.c.id).where(customers.c.merged_into.is_(None))).scalars()), key


def next_run(journey: Any, d: JourneyDefinition, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(when the trigger's current run is due, when the one after it is): the first is None when
    a condition, date or broadcast trigger is not due at `now` (already run, or not yet time)."""
    last = journey.last_scan_at
    kind = d.trigger.kind
    if kind == "broadcast":
        start = datetime.fromisoformat(d.trigger.at) if d.trigger.at else journey.created_at
        start = start if start.tzinfo else start.replace(tzinfo=now.tzinfo)
        if now < start:
            return None, start
        run_at = start
        step = timedelta(days=d.trigger.every_days) if d.trigger.every_days else None
        if step:
            run_at = start + step * int((now - start) / step)
        if last is not None and last >= run_at:
            return None, run_at + step if step else None
        return run_at, None
    if kind == "date":  # once a day, the store's day (CLM_DEFAULT_TIMEZONE)
        if last is not None and store_day(last) == store_day(now):
            return None, store_midnight(store_day(now) + timedelta(days=1))
        return now, None
    every = timedelta(days=d.trigger.every_days or 1)
    if last is not None and now - last < every:
        return None, last + every
    return now, None


def due_selection(
    conn: Connection, journey: Any, d: JourneyDefinition, now: datetime, *, run_at: datetime | None = None
) -> tuple[list[int], str] | None:
    """The customers a condition, date or broadcast trigger selects now and the entry key they
    enter under; None when the trigger is not due (`run_at`: take the run at that moment as due)."""
    run_at = run_at or next_run(journey, d, now)[0]
    if run_at is None:
        return None
    kind = d.trigger.kind
    if kind == "broadcast":
        ids = customers_matching(conn, d.trigger.condition or "", as_of=now)
        return ids, f"broadcast:{run_at.isoformat()}"
    if kind == "date":
        return _anniversary_ids(conn, d, now)
    return customers_matching(conn, d.trigger.condition or "", as_of=now), f"scan:{now.isoformat()}"


def scan(conn: Connection, journey: Any, version_id: int, d: JourneyDefinition, now: datetime) -> int:
    """Run one live journey's trigger now; returns how many customers entered."""
    if d.trigger.kind == "event":
        return enrol_from_events(conn, journey.id, version_id, d, journey.event_cursor, now)[0]
    selected = due_selection(conn, journey, d, now)
    if selected is None:
        return 0
    ids, key = selected
    conn.execute(update(journeys).where(journeys.c.id == journey.id).values(last_scan_at=now))
    return enrol_customers(conn, journey.id, version_id, d, ids, key, now)
