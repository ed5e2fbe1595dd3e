"""HTTP routes of the loyalty domain: a customer's account and history, postings, tier runs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from clm.auth.http import requires
from clm.auth.service import Principal
from clm.core.payloads import MAX_ID
from clm.loyalty.service import (
    Account,
    Posting,
    account,
    accrue,
    evaluate_tiers,
    history,
    post_points,
    programme,
    reverse_posting,
    tiers_overview,
)

router = APIRouter(prefix="/api/v1/loyalty", tags=["loyalty"])
read = [Depends(requires("read"))]
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID, description="The customer's id.")]


class PostingIn(BaseModel):
    kind: Literal["earn", "redeem", "adjust"] = Field(
        ..., description="earn adds points, redeem spends them, adjust adds or removes (signed)."
    )
    points: int = Field(
        ..., ge=-10_000_000, le=10_000_000, description="Size of the posting; signed for adjust."
    )
    reason: str = Field(..., min_length=1, max_length=500, description="Shown in the customer's history.")
    reference: str = Field(
        ...,
        min_length=1,
        max_length=300,
        description="Idempotency key: the same reference again returns the first posting, not a second one.",
    )


class PostingOut(BaseModel):
    posting: Posting
    created: bool = Field(..., description="False when the reference had been posted before.")
    balance: int


class ReverseIn(BaseModel):
    reason: str = Field("", max_length=500)


class TierRunOut(BaseModel):
    upgrades: int
    downgrades: int
    moves: list[dict[str, str | int]]


class AccrualOut(BaseModel):
    earned: int
    earn_postings: int
    reversed: int
    reversals: int
    expired: int


@router.get("/programme", dependencies=read)
def read_programme(request: Request) -> dict[str, object]:
    """The programme in force: earn rules, point expiry, tiers and their perks."""
    return programme(request.app.state.engine).as_dict()


@router.get("/tiers", dependencies=read)
def read_tiers(request: Request) -> dict[str, int]:
    """How many customers hold each tier."""
    return tiers_overview(request.app.state.engine)


@router.get("/customers/{customer_id}", response_model=Account, dependencies=read)
def read_account(customer_id: CustomerId, request: Request) -> Account:
    """Balance (after expiry), points expiring within 30 days, tier with perks and history,
    and how far the next tier is."""
    return account(request.app.state.engine, customer_id)


@router.get("/customers/{customer_id}/postings", response_model=list[Posting], dependencies=read)
def read_postings(
    customer_id: CustomerId,
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_ID),
) -> list[Posting]:
    """The customer's ledger, newest first."""
    return history(request.app.state.engine, customer_id, limit, offset)


@router.post("/customers/{customer_id}/postings", response_model=PostingOut, status_code=201)
def create_posting(
    customer_id: CustomerId,
    body: PostingIn,
    request: Request,
    principal: Principal = Depends(requires("write")),
) -> PostingOut:
    """Earn, redeem or adjust points. A redemption larger than the balance is refused (422);
    concurrent postings for one customer are serialised, so the balance never goes below zero."""
    engine = request.app.state.engine
    posting, created = post_points(
        engine, customer_id, body.kind, body.points, body.reason, body.reference, actor=principal.actor
    )
    return PostingOut(posting=posting, created=created, balance=account(engine, customer_id).balance)


@router.post("/postings/{posting_id}/reverse", response_model=PostingOut, status_code=201)
def reverse(
    posting_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: ReverseIn,
    request: Request,
    principal: Principal = Depends(requires("write")),
) -> PostingOut:
    """Take back an earn (never below a zero balance) or give back a redemption; once per posting."""
    engine = request.app.state.engine
    posting, created = reverse_posting(engine, posting_id, body.reason, actor=principal.actor)
    return PostingOut(posting=posting, created=created, balance=account(engine, posting.customer_id).balance)


@router.post("/accrue", response_model=AccrualOut, dependencies=[Depends(requires("write"))])
def run_accrual(request: Request) -> AccrualOut:
    """Post what completed orders and earning events earned, reverse refunded orders, expire lots."""
    done = accrue(request.app.state.engine)
    return AccrualOut(
        earned=done.earned,
        earn_postings=done.earn_postings,
        reversed=done.reversed,
        reversals=done.reversals,
        expired=done.expired,
    )


@router.post("/evaluate", response_model=TierRunOut, dependencies=[Depends(requires("write"))])
def run_tiers(request: Request) -> TierRunOut:
    """Re-evaluate every customer's tier now; changes are recorded and emitted as tier_changed events."""
    run = evaluate_tiers(request.app.state.engine)
    return TierRunOut(
        upgrades=run.upgrades,
        downgrades=run.downgrades,
        moves=[{"from": a, "to": b, "customers": n} for (a, b), n in sorted(run.moves.items())],
    )
