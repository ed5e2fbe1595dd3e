"""The lifecycle domain's public door: stage models, runs, history, KPIs, funnel, cohorts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Engine, func, select

from clm.customers.scope import CustomerScope, in_scope
from clm.lifecycle.assign import (
    StageRun,
    active_model,
    assign_stages,
    clear_history,
    latest_change,
    reassess_customers,
    replay_stages,
    select_model,
)
from clm.lifecycle.cohorts import CohortReport, cohorts
from clm.lifecycle.funnel import FunnelReport, funnel
from clm.lifecycle.kpi import GROUPINGS, KpiReport, kpis
from clm.lifecycle.models import PRESETS, StageModel, load_model
from clm.lifecycle.tables import customer_stages, stage_transitions


class StageChange(BaseModel):
    from_stage: str | None
    to_stage: str
    changed_at: datetime
    rule: str


class CustomerStage(BaseModel):
    model: str
    stage: str | None
    name_en: str | None
    name_zh: str | None
    since: datetime | None
    history: list[StageChange]


def customer_stage(engine: Engine, customer_id: int, limit: int = 50) -> CustomerStage:
    """A customer's current stage under the selected model and their stage history, oldest first."""
    t = stage_transitions
    with engine.connect() as conn:
        model = active_model(conn)
        current = conn.execute(
            select(customer_stages.c.stage, customer_stages.c.since).where(
                customer_stages.c.customer_id == customer_id, customer_stages.c.model == model.name
            )
        ).first()
        rows = conn.execute(
            select(t.c.from_stage, t.c.to_stage, t.c.changed_at, t.c.rule)
            .where(t.c.customer_id == customer_id, t.c.model == model.name)
            .order_by(t.c.changed_at.desc(), t.c.id.desc())
            .limit(limit)
        ).all()
    stage = model.stage(current.stage) if current and current.stage in model.keys else None
    return CustomerStage(
        model=model.name,
        stage=current.stage if current else None,
        name_en=stage.name_en if stage else None,
        name_zh=stage.name_zh if stage else None,
        since=current.since if current else None,
        history=[
            StageChange(from_stage=a, to_stage=b, changed_at=c, rule=r) for a, b, c, r in reversed(rows)
        ],
    )


def stage_distribution(engine: Engine, scope: CustomerScope | None = None) -> list[tuple[str, int]]:
    """Customers per stage of the selected model, in the model's order (those in `scope` only,
    when given)."""
    with engine.connect() as conn:
        model = active_model(conn)
        counts: dict[str, int] = dict(
            conn.execute(
                select(customer_stages.c.stage, func.count())
                .where(customer_stages.c.model == model.name, *in_scope(customer_stages.c.customer_id, scope))
                .group_by(customer_stages.c.stage)
            ).all()
        )
    return [(key, int(counts.get(key, 0))) for key in model.keys]


def current_model(engine: Engine) -> StageModel:
    with engine.connect() as conn:
        return active_model(conn)


def lapsed_rule(engine: Engine) -> str | None:
    """When the selected stage model calls a customer lapsed, as one condition: a stage outside
    its funnel (clm5's win-back, the churn stage of funnel5 and classic4) is the stage of the
    customers it has lost, and a customer is in it when its rule matches and no rule evaluated
    before it does. None when every stage is in the funnel. Churn scoring reads this to tell
    "already lost" from "at risk"."""
    model = current_model(engine)
    order = list(model.evaluation_order)
    parts = []
    for key in order:
        if key in model.funnel:
            continue
        earlier = [f"not ({model.stage(k).rule_text})" for k in order[: order.index(key)]]
        parts.append(" and ".join([f"({model.stage(key).rule_text})", *earlier]))
    return " or ".join(f"({p})" for p in parts) if parts else None


__all__ = [
    "GROUPINGS",
    "PRESETS",
    "CohortReport",
    "CustomerStage",
    "FunnelReport",
    "KpiReport",
    "StageChange",
    "StageModel",
    "StageRun",
    "assign_stages",
    "clear_history",
    "cohorts",
    "current_model",
    "customer_stage",
    "funnel",
    "kpis",
    "lapsed_rule",
    "latest_change",
    "load_model",
    "reassess_customers",
    "replay_stages",
    "select_model",
    "stage_distribution",
]
