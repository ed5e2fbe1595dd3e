"""Customer-service tickets: status (open, assigned, waiting, resolved, closed), messages,
first-response and resolution times against SLA targets per priority, and the events
(`ticket_opened`, `ticket_resolved`) that profiles and journeys see. Resolving a ticket can
send the customer a CSAT survey."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, insert, select, update

from clm.core.errors import InvalidInput, NotFound
from clm.core.timeutil import utcnow
from clm.customers.service import require_customer
from clm.events.schemas import SYSTEM_ID_PREFIX
from clm.events.tables import events
from clm.feedback.surveys import Invitation, invite
from clm.feedback.tables import sla_targets, ticket_messages, tickets

STATUSES = ("open", "assigned", "waiting", "resolved", "closed")
PRIORITIES = ("urgent", "high", "normal", "low")
AUTHOR_KINDS = ("customer", "agent", "note")
# Hours to the first agent reply and to resolution; `clm tickets sla` overrides them.
DEFAULT_SLA: dict[str, tuple[float, float]] = {
    "urgent": (1, 8),
    "high": (4, 24),
    "normal": (8, 72),
    "low": (24, 120),
}
# Where each status may go next (a resolved ticket can be reopened; closed is final).
MOVES = {
    "open": {"assigned", "waiting", "resolved", "closed"},
    "assigned": {"open", "waiting", "resolved", "closed"},
    "waiting": {"open", "assigned", "resolved", "closed"},
    "resolved": {"open", "closed"},
    "closed": set(),
}


@dataclass(frozen=True)
class Message:
    author_kind: str
    author: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class Sla:
    first_response_hours: float
    resolution_hours: float
    first_response_due: datetime
    resolution_due: datetime
    first_response_breached: bool
    resolution_breached: bool


@dataclass(frozen=True)
class Ticket:
    id: int
    customer_id: int
    subject: str
    channel: str
    priority: str
    status: str
    assignee: str | None
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime
    reopened: int
    first_response_hours: float | None
    resolution_hours: float | None
    sla: Sla
    messages: list[Message]
    survey: Invitation | None = None  # the CSAT invitation a resolution just sent


def sla_table(conn: Connection) -> dict[str, tuple[float, float]]:
    table = dict(DEFAULT_SLA)
    for r in conn.execute(select(sla_targets)):
        table[r.priority] = (r.first_response_hours, r.resolution_hours)
    return table


def set_sla(engine: Engine, priority: str, first_response_hours: float, resolution_hours: float) -> None:
    if priority not in PRIORITIES:
        raise InvalidInput(f"must be one of {', '.join(PRIORITIES)}", "priority")
    if not 0 < first_response_hours <= resolution_hours:
        raise InvalidInput("need 0 < first response hours <= resolution hours", "first_response_hours")
    with engine.begin() as conn:
        conn.execute(sla_targets.delete().where(sla_targets.c.priority == priority))
        conn.execute(
            insert(sla_targets).values(
                priority=priority,
                first_response_hours=first_response_hours,
                resolution_hours=resolution_hours,
            )
        )


def _hours(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds() / 3600


def _ticket(
    r: Any, targets: dict[str, tuple[float, float]], now: datetime, messages: list[Message]
) -> Ticket:
    first_h, resolve_h = targets[r.priority]
    first_due = r.created_at + timedelta(hours=first_h)
    resolve_due = r.created_at + timedelta(hours=resolve_h)
    sla = Sla(
        first_h,
        resolve_h,
        first_due,
        resolve_due,
        (r.first_response_at or now) > first_due,
        (r.resolved_at or now) > resolve_due,
    )
    return Ticket(
        r.id,
        r.customer_id,
        r.subject,
        r.channel,
        r.priority,
        r.status,
        r.assignee,
        r.created_at,
        r.first_response_at,
        r.resolved_at,
        r.closed_at,
        r.updated_at,
        r.reopened,
        _hours(r.created_at, r.first_response_at),
        _hours(r.created_at, r.resolved_at),
        sla,
        messages,
    )


def _emit(conn: Connection, row: Any, kind: str, at: datetime) -> None:
    conn.execute(
        insert(events).values(
            event_id=f"{SYSTEM_ID_PREFIX}ticket:{row.id}:{kind}:{row.reopened}",
            customer_id=row.customer_id,
            type=f"ticket_{kind}",
            channel="support",
            occurred_at=at,
            received_at=at,
            properties={"ticket_id": row.id, "priority": row.priority, "subject": row.subject},
        )
    )


def open_ticket(
    engine: Engine,
    customer_id: int,
    subject: str,
    body: str,
    *,
    channel: str = "email",
    priority: str = "normal",
    author: str | None = None,
    now: datetime | None = None,
) -> Ticket:
    """A new ticket with the customer's first message."""
    if priority not in PRIORITIES:
        raise InvalidInput(f"must be one of {', '.join(PRIORITIES)}", "priority")
    if not subject.strip():
        raise InvalidInput("must not be empty", "subject")
    if not body.strip():
        raise InvalidInput("must not be empty", "body")
    now = now or utcnow()
    with engine.begin() as conn:
        require_customer(conn, customer_id)
        row = conn.execute(
            insert(tickets)
            .values(
                customer_id=customer_id,
                subject=subject.strip()[:300],
                channel=channel,
                priority=priority,
                status="open",
                created_at=now,
                updated_at=now,
                reopened=0,
            )
            .returning(*tickets.c)
        ).one()
        conn.execute(
            insert(ticket_messages).values(
                ticket_id=row.id,
                author_kind="customer",
                author=author or f"customer:{customer_id}",
                body=body,
                created_at=now,
            )
        )
        _emit(conn, row, "opened", now)
    return get_ticket(engine, row.id)


def add_message(
    engine: Engine, ticket_id: int, author_kind: str, author: str, body: str, *, now: datetime | None = None
) -> Ticket:
    """A reply or an internal note. The first agent reply is the ticket's first response; a
    customer's reply to a ticket waiting on them puts it back in the queue."""
    if author_kind not in AUTHOR_KINDS:
        raise InvalidInput(f"must be one of {', '.join(AUTHOR_KINDS)}", "author_kind")
    if not body.strip():
        raise InvalidInput("must not be empty", "body")
    now = now or utcnow()
    with engine.begin() as conn:
        row = _locked(conn, ticket_id)
        if row.status == "closed":
            raise InvalidInput(f"ticket {ticket_id} is closed; open a new one", "ticket_id")
        conn.execute(
            insert(ticket_messages).values(
                ticket_id=ticket_id, author_kind=author_kind, author=author, body=body, created_at=now
            )
        )
        values: dict[str, Any] = {"updated_at": now}
        if author_kind == "agent" and row.first_response_at is None:
            values["first_response_at"] = now
        if author_kind == "customer" and row.status == "waiting":
            values["status"] = "assigned" if row.assignee else "open"
        conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**values))
    return get_ticket(engine, ticket_id)


def _locked(conn: Connection, ticket_id: int) -> Any:
    query = select(tickets).where(tickets.c.id == ticket_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no ticket with id {ticket_id}")
    return row


def update_ticket(
    engine: Engine,
    ticket_id: int,
    *,
    status: str | None = None,
    assignee: str | None = None,
    priority: str | None = None,
    csat_survey: str | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Assign, re-prioritise or move a ticket. Assigning an open ticket makes it `assigned`;
    resolving emits `ticket_resolved` and, with `csat_survey`, invites the customer to rate the
    help; reopening a resolved ticket emits `ticket_opened` again."""
    now = now or utcnow()
    invitation = None
    with engine.begin() as conn:
        row = _locked(conn, ticket_id)
        values: dict[str, Any] = {"updated_at": now}
        new_status = status
        if priority is not None:
            if priority not in PRIORITIES:
                raise InvalidInput(f"must be one of {', '.join(PRIORITIES)}", "priority")
            values["priority"] = priority
        if assignee is not None:
            values["assignee"] = assignee.strip() or None
            if new_status is None and row.status == "open" and values["assignee"]:
                new_status = "assigned"
        if new_status is not None and new_status != row.status:
            if new_status not in STATUSES:
                raise InvalidInput(f"must be one of {', '.join(STATUSES)}", "status")
            if new_status not in MOVES[row.status]:
                allowed = ", ".join(sorted(MOVES[row.status])) or "nothing (closed is final)"
                raise InvalidInput(f"a {row.status} ticket can move to {allowed}, not {new_status}", "status")
            values["status"] = new_status
            if new_status == "resolved":
                values["resolved_at"] = now
            elif new_status == "closed":
                values["closed_at"] = now
                if row.resolved_at is None:
                    values["resolved_at"] = now
            elif row.status == "resolved":  # reopened
                values["resolved_at"] = None
                values["reopened"] = row.reopened + 1
        conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**values))
        after = conn.execute(select(tickets).where(tickets.c.id == ticket_id)).one()
        if "resolved_at" in values and values["resolved_at"] is not None and row.resolved_at is None:
            _emit(conn, after, "resolved", now)
        if values.get("reopened"):
            _emit(conn, after, "opened", now)
    if csat_survey and after.status in ("resolved", "closed"):
        invitation = invite(
            engine,
            csat_survey,
            after.customer_id,
            channel=after.channel if after.channel in ("email", "sms") else "email",
            context={"ticket_id": ticket_id},
            reference=f"ticket:{ticket_id}:{after.reopened}",
        )
    ticket = get_ticket(engine, ticket_id)
    return Ticket(**{**ticket.__dict__, "survey": invitation})


def get_ticket(engine: Engine, ticket_id: int) -> Ticket:
    with engine.connect() as conn:
        row = conn.execute(select(tickets).where(tickets.c.id == ticket_id)).first()
        if row is None:
            raise NotFound(f"no ticket with id {ticket_id}")
        messages = [
            Message(m.author_kind, m.author, m.body, m.created_at)
            for m in conn.execute(
                select(ticket_messages)
                .where(ticket_messages.c.ticket_id == ticket_id)
                .order_by(ticket_messages.c.created_at, ticket_messages.c.id)
            )
        ]
        return _ticket(row, sla_table(conn), utcnow(), messages)


def list_tickets(
    engine: Engine,
    *,
    status: str | None = None,
    priority: str | None = None,
    assignee: str | None = None,
    customer_id: int | None = None,
    breached: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[Ticket]:
    """Tickets, newest first (messages left out); `breached` keeps those past an SLA target."""
    query = select(tickets)
    if status is not None:
        query = query.where(tickets.c.status == status)
    if priority is not None:
        query = query.where(tickets.c.priority == priority)
    if assignee is not None:
        query = query.where(tickets.c.assignee == assignee)
    if customer_id is not None:
        query = query.where(tickets.c.customer_id == customer_id)
    query = query.order_by(tickets.c.created_at.desc(), tickets.c.id.desc())
    now = utcnow()
    with engine.connect() as conn:
        targets = sla_table(conn)
        if not breached:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
            return [_ticket(r, targets, now, []) for r in rows]
        found = [_ticket(r, targets, now, []) for r in conn.execute(query)]
    late = [t for t in found if t.sla.first_response_breached or t.sla.resolution_breached]
    return late[offset : offset + limit]


@dataclass(frozen=True)
class PriorityStats:
    priority: str
    tickets: int
    unresolved: int
    first_response_target_hours: float
    resolution_target_hours: float
    median_first_response_hours: float | None
    median_resolution_hours: float | None
    first_response_breaches: int
    resolution_breaches: int
    first_response_breach_rate: float | None
    resolution_breach_rate: float | None


def ticket_stats(
    engine: Engine, start: datetime | None = None, end: datetime | None = None
) -> list[PriorityStats]:
    """Per priority, for tickets opened in [start, end): medians of first-response and
    resolution hours (over the tickets that have them) and how many missed each SLA target
    (tickets still waiting count as breached once their due time has passed)."""
    query = select(
        tickets.c.priority, tickets.c.created_at, tickets.c.first_response_at, tickets.c.resolved_at
    )
    if start is not None:
        query = query.where(tickets.c.created_at >= start)
    if end is not None:
        query = query.where(tickets.c.created_at < end)
    now = utcnow()
    with engine.connect() as conn:
        targets = sla_table(conn)
        rows = conn.execute(query).all()
    out = []
    for priority in PRIORITIES:
        mine = [r for r in rows if r.priority == priority]
        if not mine:
            continue
        first_h, resolve_h = targets[priority]
        created = np.array([r.created_at.timestamp() for r in mine])
        first = np.array([(r.first_response_at or now).timestamp() for r in mine])
        resolved = np.array([(r.resolved_at or now).timestamp() for r in mine])
        answered = np.array([r.first_response_at is not None for r in mine])
        done = np.array([r.resolved_at is not None for r in mine])
        first_hours = (first - created) / 3600
        resolve_hours = (resolved - created) / 3600
        fr_breach = int(np.sum(first_hours > first_h))
        rs_breach = int(np.sum(resolve_hours > resolve_h))
        n = len(mine)
        out.append(
            PriorityStats(
                priority,
                n,
                int(n - done.sum()),
                first_h,
                resolve_h,
                float(np.median(first_hours[answered])) if answered.any() else None,
                float(np.median(resolve_hours[done])) if done.any() else None,
                fr_breach,
                rs_breach,
                fr_breach / n,
                rs_breach / n,
            )
        )
    return out
