"""Cohort retention: customers grouped by the month they were first seen, and for each later
month the share still active (any activity event or order) and the share purchasing.

The current month is still running: its shares count only the days so far, so they are marked
(`partial`, the month's index) rather than read as a full month."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Engine, bindparam, case, func, select, union

from clm.commerce.tables import orders
from clm.core.timeutil import as_utc, store_day, store_midnight, utcnow
from clm.customers.scope import CustomerScope, in_scope
from clm.customers.tables import customers
from clm.events.tables import events
from clm.features import SYSTEM_CHANNEL, counted_order
from clm.store.schema import UTCDateTime
from clm.store.sql import month_number


class Cohort(BaseModel):
    cohort: str = Field(..., description="Acquisition month, YYYY-MM.")
    customers: int
    active: list[float | None] = Field(
        ...,
        description="Share active in month 0, 1, 2, … after acquisition (null: that month has not come yet).",
    )
    purchasing: list[float | None] = Field(..., description="Share with a counted order in that month.")
    partial: int | None = Field(
        None,
        description="Index of the month still running (its shares cover only the days so far, not a "
        "full month); null when every month shown is complete.",
    )


class CohortReport(BaseModel):
    months: int
    cohorts: list[Cohort]
    as_of: date | None = Field(
        None,
        description="The day (store's time zone) the report was made: the running month is counted up to it.",
    )


def _month_label(number: int) -> str:
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def _month_of(moment: Any, first: int, last: int) -> Any:
    """The store-zone month number (as `month_number`) of a timestamp from month `first` on (NULL
    before it; `last` for anything later): a CASE over the months' first moments in UTC, so the
    database compares stored timestamps instead of converting each of a year of events to local
    time (on SQLite a Python function call per event and per part)."""
    starts = [(m, store_midnight(date(m // 12, m % 12 + 1, 1))) for m in range(first, last + 1)]
    return case(
        *((moment >= bindparam(None, t, type_=UTCDateTime), m) for m, t in reversed(starts)), else_=None
    )


def cohorts(
    engine: Engine, *, months: int = 12, since: date | None = None, scope: CustomerScope | None = None
) -> CohortReport:
    """The retention matrix for cohorts from `since` (default: the last `months` cohorts), of the
    customers in `scope` (all when None)."""
    now = utcnow()
    today = store_day(now)  # months are the store's calendar months (CLM_DEFAULT_TIMEZONE)
    current = today.year * 12 + today.month - 1
    first_month = since.year * 12 + since.month - 1 if since is not None else current - months + 1
    if first_month > current:  # cohorts that have not begun yet: none to report
        return CohortReport(months=months, cohorts=[], as_of=today)
    first_seen = func.coalesce(customers.c.first_seen_at, customers.c.created_at)
    live = customers.c.merged_into.is_(None)
    start = month_number(first_seen).label("m0")
    base = select(customers.c.id, start).where(live, *in_scope(customers.c.id, scope)).subquery("base")
    earliest = bindparam(
        "earliest", store_midnight(date(first_month // 12, first_month % 12 + 1, 1)), UTCDateTime
    )
    activity = union(
        select(
            events.c.customer_id, _month_of(events.c.occurred_at, first_month, current + 1).label("m")
        ).where(events.c.channel != SYSTEM_CHANNEL, events.c.occurred_at >= earliest),
        select(
            orders.c.customer_id, _month_of(orders.c.ordered_at, first_month, current + 1).label("m")
        ).where(orders.c.ordered_at >= earliest),
    ).subquery("act")
    bought = (
        select(orders.c.customer_id, _month_of(orders.c.ordered_at, first_month, current + 1).label("m"))
        .where(counted_order(as_utc(now)), orders.c.ordered_at >= earliest)
        .distinct()
        .subquery("buy")
    )
    sizes: dict[int, int] = {}
    active: dict[int, dict[int, int]] = defaultdict(dict)
    buying: dict[int, dict[int, int]] = defaultdict(dict)
    with engine.connect() as conn:
        for m0, n in conn.execute(
            select(base.c.m0, func.count()).where(base.c.m0 >= first_month).group_by(base.c.m0)
        ):
            sizes[int(m0)] = int(n)
        for target, sub in ((active, activity), (buying, bought)):
            offset = (sub.c.m - base.c.m0).label("k")
            query = (
                select(base.c.m0, offset, func.count(func.distinct(sub.c.customer_id)))
                .select_from(base.join(sub, sub.c.customer_id == base.c.id))
                .where(base.c.m0 >= first_month, sub.c.m >= base.c.m0, sub.c.m - base.c.m0 < months)
                .group_by(base.c.m0, offset)
            )
            for m0, k, n in conn.execute(query):
                target[int(m0)][int(k)] = int(n)
    out = []
    for m0 in sorted(sizes):
        size = sizes[m0]

        def shares(counts: dict[int, int], m0: int = m0, size: int = size) -> list[float | None]:
            return [counts.get(k, 0) / size if m0 + k <= current else None for k in range(months)]

        out.append(
            Cohort(
                cohort=_month_label(m0),
                customers=size,
                active=shares(active[m0]),
                purchasing=shares(buying[m0]),
                partial=current - m0 if 0 <= current - m0 < months else None,
            )
        )
    return CohortReport(months=months, cohorts=out, as_of=today)
