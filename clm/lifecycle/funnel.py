"""The stage funnel: how many customers move from each stage to the next, how fast, and where
the funnel leaks most (the weakest link, seed 004: 找出薄弱环节).

Reaching stage k means entering k or any later funnel stage (a customer whose first two orders
came together skips activation but has passed it). Conversion k → k+1 is the share of customers
who reached k that reached k+1 within `window_days`; customers who reached k less than
`window_days` ago and have not moved on yet are left out, because their window is still open.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import Engine, and_, bindparam, func, select

from clm.core.timeutil import utcnow
from clm.customers.scope import CustomerScope, in_scope
from clm.lifecycle.assign import active_model
from clm.lifecycle.models import StageModel
from clm.lifecycle.tables import customer_stages, stage_transitions
from clm.store.schema import UTCDateTime
from clm.store.sql import days_between


class FunnelStep(BaseModel):
    from_stage: str
    to_stage: str
    reached: int = Field(..., description="Customers who reached `from_stage` with a full window to move on.")
    converted: int = Field(..., description="Of them, those who reached `to_stage` within the window.")
    conversion: float | None
    median_days_to_convert: float | None


class StageStat(BaseModel):
    stage: str
    name_en: str
    name_zh: str
    customers_now: int
    entries: int = Field(..., description="How many times customers entered the stage.")
    median_days_in_stage: float | None = Field(
        ..., description="Median length of finished stays (a customer still in the stage is not counted)."
    )


class FunnelReport(BaseModel):
    model: str
    window_days: int
    stages: list[StageStat]
    steps: list[FunnelStep]
    weakest_link: FunnelStep | None = Field(..., description="The step with the lowest conversion.")


def funnel(
    engine: Engine,
    *,
    window_days: int = 180,
    as_of: datetime | None = None,
    scope: CustomerScope | None = None,
) -> FunnelReport:
    """The funnel of the selected stage model over the customers in `scope` (all when None)."""
    as_of = as_of or utcnow()
    t = stage_transitions
    with engine.connect() as conn:
        model: StageModel = active_model(conn)
        keys = list(model.funnel)
        of_model = and_(t.c.model == model.name, *in_scope(t.c.customer_id, scope))
        reach = [
            func.min(t.c.changed_at).filter(t.c.to_stage.in_(keys[k:])).label(f"r{k}")
            for k in range(len(keys))
        ]
        per = select(t.c.customer_id, *reach).where(of_model).group_by(t.c.customer_id).subquery("reach")
        mature = bindparam("mature", as_of - timedelta(days=window_days), type_=UTCDateTime)
        columns = []
        for k in range(len(keys) - 1):
            here, nxt = per.c[f"r{k}"], per.c[f"r{k + 1}"]
            in_time = and_(nxt.is_not(None), days_between(nxt, here) <= window_days)
            columns += [
                func.count().filter(and_(here.is_not(None), (here <= mature) | in_time)),
                func.count().filter(and_(here.is_not(None), in_time)),
            ]
        counts = conn.execute(select(*columns).select_from(per)).one() if columns else ()
        # time to convert and time in stage: fetched as numbers, medians taken with NumPy
        steps_days: dict[int, list[float]] = defaultdict(list)
        if len(keys) > 1:
            gaps = select(
                *(days_between(per.c[f"r{k + 1}"], per.c[f"r{k}"]) for k in range(len(keys) - 1))
            ).select_from(per)
            for row in conn.execute(gaps):
                for k, value in enumerate(row):
                    if value is not None and value <= window_days:
                        steps_days[k].append(float(value))
        following = func.lead(t.c.changed_at).over(
            partition_by=t.c.customer_id, order_by=[t.c.changed_at, t.c.id]
        )
        stays = (
            select(t.c.to_stage, t.c.changed_at.label("entered"), following.label("left"))
            .where(of_model)
            .subquery()
        )
        durations: dict[str, list[float]] = defaultdict(list)
        entered: dict[str, int] = defaultdict(int)
        for stage, days in conn.execute(
            select(stays.c.to_stage, days_between(stays.c.left, stays.c.entered))
        ):
            entered[stage] += 1
            if days is not None:
                durations[stage].append(float(days))
        now: dict[str, int] = dict(
            conn.execute(
                select(customer_stages.c.stage, func.count())
                .where(customer_stages.c.model == model.name, *in_scope(customer_stages.c.customer_id, scope))
                .group_by(customer_stages.c.stage)
            ).all()
        )
    steps = []
    for k in range(len(keys) - 1):
        reached, converted = int(counts[2 * k]), int(counts[2 * k + 1])
        days = steps_days.get(k, [])
        steps.append(
            FunnelStep(
                from_stage=keys[k],
                to_stage=keys[k + 1],
                reached=reached,
                converted=converted,
                conversion=converted / reached if reached else None,
                median_days_to_convert=float(np.median(days)) if days else None,
            )
        )
    rated = [s for s in steps if s.conversion is not None]
    weakest = min(rated, key=lambda s: s.conversion or 0.0) if rated else None
    stages = [
        StageStat(
            stage=s.key,
            name_en=s.name_en,
            name_zh=s.name_zh,
            customers_now=int(now.get(s.key, 0)),
            entries=entered.get(s.key, 0),
            median_days_in_stage=float(np.median(durations[s.key])) if durations.get(s.key) else None,
        )
        for s in model.stages
    ]
    return FunnelReport(
        model=model.name, window_days=window_days, stages=stages, steps=steps, weakest_link=weakest
    )
