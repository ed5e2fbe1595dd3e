"""Lifecycle KPIs for any period, overall and grouped by acquisition channel, stage or cohort.

Who counts as a customer is decided by orders, so the figures can be checked by hand:
a customer is *active* at a moment t when they have a counted order in the `active_days`
(default 365) before t. A counted order is one not cancelled and not refunded by the end of
the period. The formulas are those of DESIGN.md and are returned with every report.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Engine, and_, bindparam, func, literal, select, text

from clm.commerce.order_days import counted_at, day_of, start_of_day
from clm.commerce.tables import marketing_spend, order_days
from clm.core.errors import InvalidInput
from clm.customers.scope import CustomerScope, in_scope
from clm.customers.tables import customers
from clm.events.tables import survey_answers
from clm.lifecycle.tables import stage_transitions
from clm.store.engine import reading
from clm.store.schema import UTCDateTime
from clm.store.sql import year_month

GROUPINGS = ("channel", "stage", "cohort")
_CHANNEL_INDEX = "INDEXED BY ix_customers_id_channel"  # (id, channel): not the wide profile rows
MIN_YEAR, MAX_YEAR = 1900, 2999
FORMULAS = {
    "customers_at_start": "customers with a counted order in the active window before the period's start",
    "customers_at_end": "customers with a counted order in the active window before the period's end",
    "new_customers": "customers whose first counted order falls in the period",
    "lost_customers": "customers active at the start and not active at the end",
    "churn_rate": "lost_customers / customers_at_start",
    "retention_rate": "(customers_at_end - new_customers) / customers_at_start",
    "repurchase_rate": "customers with >= 2 orders in the period / customers with >= 1 order in the period",
    "aov": "revenue / orders (counted orders in the period)",
    "cac": "acquisition spend of the channel in the period / its new_customers "
    "(spend rows prorated by days of overlap; undefined without spend or without new customers)",
    "nps": "% promoters (9-10) - % detractors (0-6) among NPS answers in the period",
    "csat": "% of answers 4-5 among CSAT answers (1-5) in the period",
    "historical_clv": "margin to the period's end (revenue - product cost) / customers with an order by then",
}


class KpiRow(BaseModel):
    group: str = Field(..., description="The group's value, or `all` for the overall row.")
    customers_at_start: int
    customers_at_end: int
    new_customers: int
    lost_customers: int
    churn_rate: float | None
    retention_rate: float | None
    buyers: int = Field(..., description="Customers with at least one counted order in the period.")
    repeat_buyers: int
    repurchase_rate: float | None
    orders: int
    revenue: float
    aov: float | None
    spend: float | None
    cac: float | None
    nps: float | None
    nps_responses: int
    csat: float | None
    csat_responses: int
    historical_clv: float | None
    notes: list[str] = Field(default_factory=list, description="Why a figure is undefined, in words.")


class KpiReport(BaseModel):
    start: date
    end: date = Field(..., description="Last day of the period (inclusive).")
    active_days: int
    group_by: str | None
    overall: KpiRow
    groups: list[KpiRow]
    formulas: dict[str, str]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _spend(engine: Engine, start: date, end_exclusive: date) -> dict[str, float]:
    """Spend per channel in [start, end), each row prorated by its days inside the period."""
    ms = marketing_spend
    query = select(ms.c.channel, ms.c.period_start, ms.c.period_end, ms.c.amount).where(
        ms.c.period_start < end_exclusive, ms.c.period_end >= start
    )
    out: dict[str, float] = defaultdict(float)
    with reading(engine) as conn:
        for channel, p_start, p_end, amount in conn.execute(query):
            days = (p_end - p_start).days + 1
            overlap = (min(p_end + timedelta(days=1), end_exclusive) - max(p_start, start)).days
            if days > 0 and overlap > 0:
                out[channel] += float(amount) * overlap / days
    return dict(out)


def kpis(
    engine: Engine,
    start: date,
    end: date,
    *,
    group_by: str | None = None,
    active_days: int = 365,
    model: str = "clm5",
    scope: CustomerScope | None = None,
) -> KpiReport:
    """KPIs for the days `start` … `end` (both inclusive, UTC), of the customers in `scope` (all
    when None). Within a channel CAC is that channel's spend; within a segment it is undefined."""
    for name, value in (("from", start), ("to", end)):
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise InvalidInput(f"a date between {MIN_YEAR} and {MAX_YEAR}", name)
    if end < start:
        raise InvalidInput("the period ends before it starts", "to")
    if group_by is not None and group_by not in GROUPINGS:
        raise InvalidInput(f"group by one of {', '.join(GROUPINGS)}", "by")
    if active_days < 1:
        raise InvalidInput("the active window is at least one day", "active_days")
    d0, d1 = day_of(start), day_of(end) + 1  # the period's first day and the day after it
    t0, t1 = start_of_day(d0), start_of_day(d1)
    p_start, p_end = bindparam("t0", t0, type_=UTCDateTime), bindparam("t1", t1, type_=UTCDateTime)
    # Counted orders come from the per-customer-per-day summary: the period's bounds are whole
    # UTC days, so "ordered before t" is "day < day_of(t)", and the rows that hold at the
    # period's end count its refunds (see clm.commerce.order_days).
    od = order_days
    dw0, dw1 = d0 - active_days, d1 - active_days
    in_period = od.c.day >= d0
    per_customer = (
        select(
            od.c.customer_id,
            func.min(od.c.day).label("first_day"),
            func.coalesce(func.sum(od.c.orders).filter(and_(od.c.day < d0, od.c.day >= dw0)), 0).label(
                "before_start"
            ),
            func.coalesce(func.sum(od.c.orders).filter(od.c.day >= dw1), 0).label("before_end"),
            func.coalesce(func.sum(od.c.orders).filter(in_period), 0).label("orders_in"),
            func.coalesce(func.sum(od.c.revenue).filter(in_period), 0.0).label("revenue_in"),
            func.sum(od.c.revenue).label("revenue_to_end"),
            func.sum(od.c.cost).label("cost"),
        )
        .where(od.c.day < d1, counted_at(p_end), *in_scope(od.c.customer_id, scope))
        .group_by(od.c.customer_id)
        .subquery("pc")
    )

    def group_key(customer_id: Any) -> Any:
        if group_by == "channel":
            return func.coalesce(customers.c.acquisition_channel, "unknown")
        if group_by == "cohort":
            return func.coalesce(
                year_month(func.coalesce(customers.c.first_seen_at, customers.c.created_at)), "unknown"
            )
        if group_by == "stage":
            t = stage_transitions
            latest = (
                select(t.c.to_stage)
                .where(t.c.customer_id == customer_id, t.c.model == model, t.c.changed_at <= p_start)
                .order_by(t.c.changed_at.desc(), t.c.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            return func.coalesce(latest, "none")
        return literal("all")

    pc = per_customer
    active_start = pc.c.before_start > 0
    active_end = pc.c.before_end > 0
    is_new = pc.c.first_day >= d0
    key = group_key(pc.c.customer_id).label("grp")
    base = (
        select(
            key,
            func.count().filter(active_start),
            func.count().filter(active_end),
            func.count().filter(is_new),
            func.count().filter(and_(active_start, ~active_end)),
            func.count().filter(pc.c.orders_in >= 1),
            func.count().filter(pc.c.orders_in >= 2),
            func.sum(pc.c.orders_in),
            func.sum(pc.c.revenue_in),
            func.count(),
            func.sum(pc.c.revenue_to_end - pc.c.cost),
        )
        # the overall row needs nothing from the profiles
        .select_from(pc if group_by is None else pc.join(customers, customers.c.id == pc.c.customer_id))
        .group_by(key)
    )
    if group_by == "channel":
        base = base.with_hint(customers, _CHANNEL_INDEX, "sqlite")
    a = survey_answers
    skey = group_key(a.c.customer_id).label("grp")
    answers = (
        select(
            skey,
            func.count().filter(and_(a.c.survey == "nps", a.c.score >= 0, a.c.score <= 10)),
            func.count().filter(and_(a.c.survey == "nps", a.c.score >= 9, a.c.score <= 10)),
            func.count().filter(and_(a.c.survey == "nps", a.c.score >= 0, a.c.score <= 6)),
            func.count().filter(and_(a.c.survey == "csat", a.c.score >= 1, a.c.score <= 5)),
            func.count().filter(and_(a.c.survey == "csat", a.c.score >= 4, a.c.score <= 5)),
        )
        .select_from(
            a if group_by in (None, "stage") else a.join(customers, customers.c.id == a.c.customer_id)
        )
        .where(a.c.answered_at >= p_start, a.c.answered_at < p_end, *in_scope(a.c.customer_id, scope))
        .group_by(skey)
    )
    if group_by == "channel":
        answers = answers.with_hint(customers, _CHANNEL_INDEX, "sqlite")

    def read(query: Any, single_process: bool) -> list[Any]:
        with reading(engine) as conn:
            if conn.dialect.name == "postgresql":
                # a million customers' partial sums stay in memory instead of spilling to disk
                conn.execute(text("SET LOCAL work_mem = '256MB'"))
                if single_process:
                    # joined to the profiles, a parallel plan has every worker sum every customer
                    # again for its own hash table: one process sums them once, and sooner
                    conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            else:
                # grouping a million customers' sums sorts them: SQLite may sort on a second thread
                conn.execute(text("PRAGMA threads = 2"))
            return list(conn.execute(query))

    # the orders and the survey answers are independent reads: both at once, one core each
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="kpi") as pool:
        order_rows = pool.submit(read, base, group_by is not None)
        answer_rows = pool.submit(read, answers, False)
        sums: dict[str, list[float]] = defaultdict(lambda: [0.0] * 15)
        for row in order_rows.result():
            sums[row[0]][:10] = [float(v or 0) for v in row[1:]]
        for row in answer_rows.result():
            sums[row[0]][10:15] = [float(v or 0) for v in row[1:]]
    spend = _spend(engine, start, end + timedelta(days=1))
    scope_note = None
    if scope is not None and scope.segment is not None:
        scope_note, spend = "spend is recorded per channel, not per segment: CAC undefined", {}
    elif scope is not None and scope.channel is not None:
        spend = {scope.channel: spend[scope.channel]} if scope.channel in spend else {}

    def make_row(name: str, v: list[float], spent: float | None, spend_note: str | None) -> KpiRow:
        at_start, at_end, new, lost, buyers, repeat, n_orders, revenue, with_orders, margin = v[:10]
        nps_n, promoters, detractors, csat_n, satisfied = v[10:]
        notes = []
        if not at_start:
            notes.append("no customers at the start: churn and retention rates undefined")
        cac = None
        if spend_note:
            notes.append(spend_note)
        elif not spent:
            notes.append("no marketing spend recorded for the period: CAC undefined")
        elif not new:
            notes.append("no new customers in the period: CAC undefined")
        else:
            cac = spent / new
        return KpiRow(
            group=name,
            customers_at_start=int(at_start),
            customers_at_end=int(at_end),
            new_customers=int(new),
            lost_customers=int(lost),
            churn_rate=_ratio(lost, at_start),
            retention_rate=_ratio(at_end - new, at_start),
            buyers=int(buyers),
            repeat_buyers=int(repeat),
            repurchase_rate=_ratio(repeat, buyers),
            orders=int(n_orders),
            revenue=round(revenue, 2),
            aov=_ratio(revenue, n_orders),
            spend=None if spend_note else round(spent or 0.0, 2),
            cac=cac,
            nps=None if not nps_n else 100.0 * (promoters - detractors) / nps_n,
            nps_responses=int(nps_n),
            csat=None if not csat_n else 100.0 * satisfied / csat_n,
            csat_responses=int(csat_n),
            historical_clv=_ratio(margin, with_orders),
            notes=notes,
        )

    total = [sum(col) for col in zip(*sums.values(), strict=True)] if sums else [0.0] * 15
    overall = make_row("all", total, sum(spend.values()), scope_note)
    groups: list[KpiRow] = []
    if group_by is not None:
        names = set(sums) | (set(spend) if group_by == "channel" else set())
        for name in sorted(names):
            if group_by == "channel":
                row = sums.get(name, [0.0] * 15)
                groups.append(make_row(name, row, spend.get(name, 0.0), scope_note))
            else:
                groups.append(
                    make_row(name, sums[name], None, f"spend is recorded per channel, not per {group_by}")
                )
    return KpiReport(
        start=start,
        end=end,
        active_days=active_days,
        group_by=group_by,
        overall=overall,
        groups=groups,
        formulas=FORMULAS,
    )
