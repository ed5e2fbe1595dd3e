"""HTTP routes of the analytics domain: churn risk with reasons, the at-risk list, the churn
model card, a customer's predicted value, and product recommendations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from clm.analytics.recommend_store import Recommendation, build_recommendations, recommend, rules
from clm.analytics.service import (
    ValueScore,
    already_lost,
    at_risk,
    customer_risk,
    customer_value,
    load_model,
    risk_summary,
)
from clm.auth.http import requires
from clm.core.payloads import MAX_ID

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"], dependencies=[Depends(requires("read"))])


class Reason(BaseModel):
    feature: str
    value: Any
    typical: Any
    weight: float
    text: str


class ChurnRiskOut(BaseModel):
    customer_id: int
    name: str | None
    email: str | None
    status: Literal["at_risk", "lost"]
    probability: float
    band: str
    reasons: list[Reason]
    clv: float | None
    value_at_risk: float | None
    reachable: bool
    scored_at: datetime


@router.get("/churn/at-risk", response_model=list[ChurnRiskOut])
def read_at_risk(
    request: Request,
    top: Annotated[int, Query(ge=1, le=10_000, description="How many customers.")] = 50,
    band: Annotated[
        Literal["high", "medium", "low"] | None, Query(description="Only this risk band.")
    ] = None,
    by: Annotated[
        Literal["risk", "value"],
        Query(description="Order by value at risk (probability x CLV, then probability), or by probability."),
    ] = "value",
    reachable_only: Annotated[
        bool, Query(description="Only customers a message can reach (an address with marketing consent).")
    ] = True,
) -> list[ChurnRiskOut]:
    """Customers at risk of churning (latest `clm churn score`; not those already lost), each
    with the top reasons in words. Bands: high ≥ 0.5, medium ≥ 0.2, low below (calibrated
    probabilities)."""
    risks = at_risk(request.app.state.engine, top=top, band=band, by=by, reachable_only=reachable_only)
    return [ChurnRiskOut.model_validate(r.as_dict()) for r in risks]


@router.get("/churn/lost", response_model=list[ChurnRiskOut])
def read_lost(
    request: Request,
    top: Annotated[int, Query(ge=1, le=10_000, description="How many customers.")] = 50,
    by: Annotated[
        Literal["risk", "value"],
        Query(description="Order by value at risk (probability x CLV, then probability), or by probability."),
    ] = "value",
) -> list[ChurnRiskOut]:
    """Customers already lost (band `lost`: past the selected stage model's lapse threshold),
    for win-back rather than early warning."""
    return [
        ChurnRiskOut.model_validate(r.as_dict())
        for r in already_lost(request.app.state.engine, top=top, by=by)
    ]


@router.get("/churn/summary")
def read_risk_summary(
    request: Request,
    channel: Annotated[
        str | None, Query(max_length=100, description="Only customers acquired through this channel.")
    ] = None,
    segment: Annotated[
        str | None, Query(max_length=100, description="Only this segment's members (now).")
    ] = None,
) -> dict[str, Any]:
    """How the latest churn scores split: customers and share per band (high, medium, low,
    lost), the band thresholds, and how many at-risk customers a message can reach (of one
    acquisition channel's customers or one segment's members, when given)."""
    engine = request.app.state.engine
    return risk_summary(engine, request.app.state.customer_scope(engine, channel, segment))


@router.get("/churn/customers/{customer_id}", response_model=ChurnRiskOut)
def read_customer_risk(customer_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request) -> ChurnRiskOut:
    """A customer's churn probability, band and reasons."""
    return ChurnRiskOut.model_validate(customer_risk(request.app.state.engine, customer_id).as_dict())


@router.get("/churn/model")
def read_churn_model(
    request: Request,
    source: Annotated[
        Literal["store", "table"], Query(description="Trained on the store or a table.")
    ] = "store",
) -> dict[str, Any]:
    """The model card of the newest churn model: data windows, features, held-out metrics
    against the baselines (recency, P(alive)), calibration table."""
    return load_model(request.app.state.engine, source)[2]


@router.get("/clv/customers/{customer_id}", response_model=ValueScore)
def read_customer_value(customer_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request) -> ValueScore:
    """A customer's P(alive), expected purchases and spend over the horizon, and discounted CLV."""
    return customer_value(request.app.state.engine, customer_id)


class RuleOut(BaseModel):
    antecedent: str
    consequent: str
    together: int
    support: float
    confidence: float
    lift: float
    built_at: datetime


class BuildOut(BaseModel):
    customers: int
    products: int
    rules: int
    built_at: datetime


@router.get("/recommendations/customers/{customer_id}", response_model=list[Recommendation])
def read_recommendations(
    customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    n: Annotated[int, Query(ge=1, le=100, description="How many products.")] = 10,
) -> list[Recommendation]:
    """The customer's top-n products not owned yet and in stock: cross-sell (bought together),
    upsell (a step up in a category they buy) or popular, each with its reason."""
    return recommend(request.app.state.engine, customer_id, n)


@router.get("/recommendations/rules", response_model=list[RuleOut])
def read_rules(
    request: Request,
    sku: Annotated[str | None, Query(max_length=64, description="Only rules from this product.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """Association rules X → Y, strongest lift first: support = buyers of both / all buyers,
    confidence = buyers of both / buyers of X, lift = confidence / share of buyers of Y."""
    return rules(request.app.state.engine, sku, limit)


@router.post("/recommendations/build", response_model=BuildOut, dependencies=[Depends(requires("write"))])
def post_build(request: Request) -> dict[str, Any]:
    """Recount the association rules and product popularity from every order."""
    return build_recommendations(request.app.state.engine)
