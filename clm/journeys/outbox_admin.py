"""The outbox as a person sees and steers it: messages grouped by what is happening to them
(queued, held, sent, failed, not sent), and a marketer's release or cancellation of held messages.

A message is *held* while it is queued for a later time: quiet hours in the customer's time zone
(the dispatcher set the time they end), or the back-off before a failed attempt is tried again.
Releasing makes it due now and lets it pass quiet hours once (consent, the frequency cap and the
suppression list still apply); cancelling closes it as `cancelled`. Both are one statement over
the chosen messages that changes only rows still queued for later, so a message a dispatcher has
claimed meanwhile is left alone: nothing is sent twice, and each change is audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update

from clm.auth.service import record_audit
from clm.core.errors import InvalidInput
from clm.core.timeutil import utcnow
from clm.journeys.tables import journeys, outbox

# what the outbox page shows under each heading: status and whether the message is due yet
STATES = ("queued", "held", "sent", "failed", "not_sent")
RELEASED = "released by "  # a released message's reason starts so: the dispatcher skips quiet hours
CANCELLED = "cancelled"
MAX_CHOSEN = 1000  # messages one release or cancel may name


def _state_filter(state: str, now: datetime) -> Any:
    if state == "queued":
        return or_(
            and_(outbox.c.status == "queued", outbox.c.not_before <= now),
            outbox.c.status.in_(("claimed", "sending")),
        )
    if state == "held":
        return and_(outbox.c.status == "queued", outbox.c.not_before > now)
    if state == "sent":
        return outbox.c.status == "sent"
    if state == "failed":
        return outbox.c.status.in_(("failed", "unknown"))
    if state == "not_sent":
        return outbox.c.status.in_(("skipped", "suppressed", CANCELLED))
    raise InvalidInput(f"{state!r} is not one of {', '.join(STATES)}", "state")


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    customer_id: int
    journey: str | None
    step: str | None
    channel: str
    kind: str  # marketing or transactional
    template: str
    status: str
    reason: str | None
    to_address: str | None
    attempts: int
    created_at: datetime
    not_before: datetime  # held: when it will be sent
    sent_at: datetime | None


@dataclass(frozen=True)
class OutboxPage:
    state: str
    channel: str | None
    counts: dict[str, int]  # per state, within the channel filter
    channels: list[str]
    messages: list[OutboxMessage]
    page: int
    pages: int


def outbox_page(
    engine: Engine,
    state: str = "held",
    channel: str | None = None,
    page: int = 1,
    per_page: int = 50,
    now: datetime | None = None,
) -> OutboxPage:
    """One page of messages in a state (newest first; held ones by when they go out), with the
    count in each state for the channel chosen."""
    now = now or utcnow()
    wanted = _state_filter(state, now)
    by_channel = outbox.c.channel == channel if channel else None
    with engine.connect() as conn:
        counts = {}
        for s in STATES:
            q = select(func.count()).select_from(outbox).where(_state_filter(s, now))
            counts[s] = int(conn.execute(q if by_channel is None else q.where(by_channel)).scalar_one())
        channels = sorted(c for (c,) in conn.execute(select(outbox.c.channel).distinct()))
        pages = max(1, -(-counts[state] // per_page))
        page = min(max(page, 1), pages)
        order = (outbox.c.not_before, outbox.c.id) if state == "held" else (outbox.c.id.desc(),)
        query = (
            select(outbox, journeys.c.name.label("journey"))
            .select_from(outbox.outerjoin(journeys, journeys.c.id == outbox.c.journey_id))
            .where(wanted)
            .order_by(*order)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        if by_channel is not None:
            query = query.where(by_channel)
        rows = conn.execute(query).all()
    messages = [
        OutboxMessage(
            r.id, r.customer_id, r.journey, r.step, r.channel, r._mapping["class"], r.template, r.status,
            r.reason, r.to_address, r.attempts, r.created_at, r.not_before, r.sent_at,
        )
        for r in rows
    ]  # fmt: skip
    return OutboxPage(state, channel, counts, channels, messages, page, pages)


def _chosen(ids: Sequence[int]) -> list[int]:
    chosen = sorted({int(i) for i in ids})
    if not chosen:
        raise InvalidInput("choose at least one message", "ids")
    if len(chosen) > MAX_CHOSEN:
        raise InvalidInput(f"at most {MAX_CHOSEN:,} messages at once", "ids")
    return chosen


def _held(ids: list[int], now: datetime) -> Any:
    return and_(outbox.c.id.in_(ids), outbox.c.status == "queued", outbox.c.not_before > now)


def release_messages(
    engine: Engine, ids: Sequence[int], *, actor: str, now: datetime | None = None
) -> list[int]:
    """Send these held messages now (past quiet hours, once); returns the ids released. Messages
    no longer held (sent, claimed, cancelled meanwhile) are left as they are."""
    chosen, now = _chosen(ids), now or utcnow()
    with engine.begin() as conn:
        released = [
            int(i)
            for (i,) in conn.execute(
                update(outbox)
                .where(_held(chosen, now))
                .values(not_before=now, reason=f"{RELEASED}{actor}"[:2000])
                .returning(outbox.c.id)
            )
        ]
        if released:
            record_audit(conn, actor, "outbox.release", "outbox", ",".join(map(str, sorted(released)))[:200],
                         {"ids": sorted(released)})  # fmt: skip
    return sorted(released)


def cancel_messages(
    engine: Engine, ids: Sequence[int], *, actor: str, now: datetime | None = None
) -> list[int]:
    """Never send these held messages; returns the ids cancelled (the others were no longer held)."""
    chosen, now = _chosen(ids), now or utcnow()
    with engine.begin() as conn:
        cancelled = [
            int(i)
            for (i,) in conn.execute(
                update(outbox)
                .where(_held(chosen, now))
                .values(status=CANCELLED, reason=f"cancelled by {actor}"[:2000], lease_until=None)
                .returning(outbox.c.id)
            )
        ]
        if cancelled:
            record_audit(conn, actor, "outbox.cancel", "outbox", ",".join(map(str, sorted(cancelled)))[:200],
                         {"ids": sorted(cancelled)})  # fmt: skip
    return sorted(cancelled)


def was_released(reason: str | None) -> bool:
    """A person released this message: it goes out even in quiet hours."""
    return bool(reason) and str(reason).startswith(RELEASED)
