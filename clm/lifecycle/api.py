"""Read-only HTTP routes of the lifecycle domain: model, stages, KPIs, funnel, cohorts, sBG."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from clm.auth.http import requires
from clm.core.payloads import IsoDate
from clm.customers.scope import CustomerScope
from clm.lifecycle.cohorts import CohortReport, cohorts
from clm.lifecycle.flows import StageFlowReport, stage_flows
from clm.lifecycle.funnel import FunnelReport, funnel
from clm.lifecycle.kpi import FORMULAS, KpiReport, kpis
from clm.lifecycle.retention import RetentionReport, parse_survivors, project_retention
from clm.lifecycle.service import current_model, stage_distribution

router = APIRouter(prefix="/api/v1/lifecycle", tags=["lifecycle"], dependencies=[Depends(requires("read"))])

Channel = Annotated[
    str | None, Query(max_length=100, description="Only customers acquired through this channel.")
]
Segment = Annotated[str | None, Query(max_length=100, description="Only this segment's members (now).")]


def _scope(request: Request, channel: str | None, segment: str | None) -> CustomerScope | None:
    # segment memberships sit above this domain: the app resolves them (clm.views.scope)
    scope: CustomerScope | None = request.app.state.customer_scope(request.app.state.engine, channel, segment)
    return scope


class StageCount(BaseModel):
    stage: str
    name_en: str
    name_zh: str
    rule: str
    customers: int


class StagesOut(BaseModel):
    model: str
    title_en: str
    title_zh: str
    evaluation_order: list[str]
    funnel: list[str]
    stages: list[StageCount]


@router.get("/stages", response_model=StagesOut)
def read_stages(request: Request, channel: Channel = None, segment: Segment = None) -> StagesOut:
    """The selected stage model, its rules, and how many customers are in each stage now."""
    engine = request.app.state.engine
    model = current_model(engine)
    counts = dict(stage_distribution(engine, _scope(request, channel, segment)))
    return StagesOut(
        model=model.name,
        title_en=model.title_en,
        title_zh=model.title_zh,
        evaluation_order=list(model.evaluation_order),
        funnel=list(model.funnel),
        stages=[
            StageCount(
                stage=s.key,
                name_en=s.name_en,
                name_zh=s.name_zh,
                rule=s.rule_text,
                customers=counts.get(s.key, 0),
            )
            for s in model.stages
        ],
    )


_KPI_DOC = "KPIs for the days `from` … `to` (inclusive), overall and per group.\n\nFormulas:\n" + "\n".join(
    f"- **{name}** = {text}" for name, text in FORMULAS.items()
)


@router.get("/kpi", response_model=KpiReport, description=_KPI_DOC)
def read_kpi(
    request: Request,
    start: Annotated[IsoDate, Query(alias="from", description="First day, YYYY-MM-DD.")],
    end: Annotated[IsoDate, Query(alias="to", description="Last day (inclusive), YYYY-MM-DD.")],
    by: Annotated[
        Literal["channel", "stage", "cohort"] | None, Query(description="Group rows by this.")
    ] = None,
    active_days: Annotated[
        int, Query(ge=1, le=3650, description="A customer is active with an order this recent.")
    ] = 365,
    channel: Channel = None,
    segment: Segment = None,
) -> KpiReport:
    model = current_model(request.app.state.engine).name
    scope = _scope(request, channel, segment)
    return kpis(
        request.app.state.engine, start, end, group_by=by, active_days=active_days, model=model, scope=scope
    )


@router.get("/funnel", response_model=FunnelReport)
def read_funnel(
    request: Request,
    window_days: Annotated[
        int, Query(ge=1, le=3650, description="How long a customer has to reach the next stage.")
    ] = 180,
    channel: Channel = None,
    segment: Segment = None,
) -> FunnelReport:
    """Stage-to-stage conversion of the selected model with median times and the weakest link
    (the step with the lowest conversion)."""
    return funnel(request.app.state.engine, window_days=window_days, scope=_scope(request, channel, segment))


@router.get("/flows", response_model=StageFlowReport)
def read_flows(
    request: Request,
    start: Annotated[IsoDate, Query(alias="from", description="First day, YYYY-MM-DD.")],
    end: Annotated[IsoDate, Query(alias="to", description="Last day (inclusive), YYYY-MM-DD.")],
    channel: Channel = None,
    segment: Segment = None,
) -> StageFlowReport:
    """Moves between stages of the selected model in the period: from which stage to which, how
    many moves and customers (a first stage has no `from_stage`)."""
    engine = request.app.state.engine
    return stage_flows(engine, start, end, current_model(engine).name, _scope(request, channel, segment))


@router.get("/cohorts", response_model=CohortReport)
def read_cohorts(
    request: Request,
    months: Annotated[int, Query(ge=1, le=120, description="Months after acquisition to show.")] = 12,
    since: Annotated[
        IsoDate | None, Query(description="First cohort month (default: the last `months`).")
    ] = None,
    channel: Channel = None,
    segment: Segment = None,
) -> CohortReport:
    """Retention by acquisition month × months since acquisition: share active, share purchasing."""
    return cohorts(
        request.app.state.engine, months=months, since=since, scope=_scope(request, channel, segment)
    )


@router.get("/retention/projection", response_model=RetentionReport)
def read_retention_projection(
    survivors: Annotated[
        str,
        Query(
            max_length=2000, description="Survivors of one cohort per period, comma-separated: 1000,869,743,…"
        ),
    ],
    periods: Annotated[int, Query(ge=1, le=240)] = 12,
    discount_rate: Annotated[float, Query(ge=0, le=10)] = 0.1,
) -> RetentionReport:
    """Fit the shifted-beta-geometric model (Fader & Hardie 2007) and project retention."""
    return project_retention(parse_survivors(survivors), periods, discount_rate)
