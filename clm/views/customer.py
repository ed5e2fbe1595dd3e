"""The 360° customer view: profile, identities, consents, lifecycle stage and its history,
segments, loyalty standing, open tickets and follow-up tasks, orders and the recent timeline."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Engine

from clm.commerce.schemas import Order, OrderSummary
from clm.commerce.service import customer_orders, order_summary
from clm.customers.schemas import Customer
from clm.customers.service import get_customer
from clm.events.schemas import Event
from clm.events.service import event_counts, timeline
from clm.feedback.service import Task, Ticket, list_tasks, list_tickets
from clm.lifecycle.service import CustomerStage, customer_stage
from clm.loyalty.service import Account, account
from clm.segments.service import customer_segments


class SegmentMembership(BaseModel):
    segment: str
    entered_at: datetime


class CustomerView(BaseModel):
    requested_id: int
    profile: Customer
    stage: CustomerStage
    segments: list[SegmentMembership]
    loyalty: Account
    open_tickets: list[Ticket]
    open_tasks: list[Task]
    orders: OrderSummary
    event_counts: dict[str, int]
    recent_orders: list[Order]
    timeline: list[Event]


def customer_view(
    engine: Engine, customer_id: int, events: int = 50, orders: int = 10, cases: bool = True
) -> CustomerView:
    """Everything known about one customer; a merged id shows the profile it was merged into.
    `events` and `orders` say how many of the latest to include, `cases` whether the open tickets
    and tasks (the console's 360° page reads those itself, pages of them and of every status)."""
    profile = get_customer(engine, customer_id)
    return CustomerView(
        requested_id=customer_id,
        profile=profile,
        stage=customer_stage(engine, profile.id),
        segments=[
            SegmentMembership(segment=n, entered_at=t) for n, t in customer_segments(engine, profile.id)
        ],
        loyalty=account(engine, profile.id),
        open_tickets=[
            t
            for t in (list_tickets(engine, customer_id=profile.id, limit=20) if cases else [])
            if t.status not in ("resolved", "closed")
        ],
        open_tasks=list_tasks(engine, customer_id=profile.id, limit=20) if cases else [],
        orders=order_summary(engine, profile.id),
        event_counts=event_counts(engine, profile.id),
        recent_orders=customer_orders(engine, profile.id, limit=orders) if orders else [],
        timeline=timeline(engine, profile.id, limit=events) if events else [],
    )
