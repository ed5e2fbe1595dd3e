"""Stage flows: who moved from which stage to which during a period (the Sankey of the
overview). Each recorded change of stage counts once; a customer who moved twice counts in both
moves. A customer's first stage ever has no `from` stage: they *entered* the model."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import Engine, and_, func, select

from clm.core.errors import InvalidInput
from clm.customers.scope import CustomerScope, in_scope
from clm.lifecycle.tables import stage_transitions
from clm.store.engine import reading


class StageFlow(BaseModel):
    from_stage: str | None = Field(
        ..., description="The stage left; null when the customer entered the model."
    )
    to_stage: str
    moves: int = Field(..., description="Changes of stage from `from_stage` to `to_stage` in the period.")
    customers: int = Field(..., description="Distinct customers who made that move.")


class StageFlowReport(BaseModel):
    model: str
    start: date
    end: date = Field(..., description="Last day of the period (inclusive).")
    flows: list[StageFlow]


def stage_flows(
    engine: Engine, start: date, end: date, model: str, scope: CustomerScope | None = None
) -> StageFlowReport:
    """Moves between stages of `model` on the days `start` … `end` (both inclusive, UTC), largest
    first, of the customers in `scope` (all when None): one GROUP BY over the transitions' time
    index."""
    if end < start:
        raise InvalidInput("must not be before `from`", "to")
    t = stage_transitions
    lower = datetime.combine(start, time(), UTC)
    upper = datetime.combine(end + timedelta(days=1), time(), UTC)
    query = (
        select(t.c.from_stage, t.c.to_stage, func.count(), func.count(t.c.customer_id.distinct()))
        .where(
            and_(t.c.changed_at >= lower, t.c.changed_at < upper, t.c.model == model),
            *in_scope(t.c.customer_id, scope),
        )
        .group_by(t.c.from_stage, t.c.to_stage)
    )
    with reading(engine) as conn:
        rows = conn.execute(query).all()
    flows = [StageFlow(from_stage=f, to_stage=to, moves=int(n), customers=int(c)) for f, to, n, c in rows]
    flows.sort(key=lambda f: (-f.moves, f.from_stage or "", f.to_stage))
    return StageFlowReport(model=model, start=start, end=end, flows=flows)
