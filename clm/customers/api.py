"""HTTP routes of the customers domain: upsert, search, consent, duplicates and merges."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from clm.auth.http import requires
from clm.auth.service import Principal
from clm.core.errors import InvalidInput
from clm.core.followups import refresh_customers
from clm.core.payloads import MAX_ID
from clm.customers.identities import normalize_identity
from clm.customers.merge import merge_customers, suspected_duplicates
from clm.customers.schemas import CONSENT_CHANNELS, Customer, CustomerIn, DuplicatePair
from clm.customers.service import (
    find_customers,
    get_customer,
    list_customers,
    set_consent,
    upsert_customer,
)

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


class MergeIn(BaseModel):
    survivor_id: int = Field(..., ge=1, le=MAX_ID, description="The profile that stays.")
    merged_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        ..., min_length=1, max_length=100, description="Profiles folded into it."
    )
    reason: str = Field("manual merge", max_length=500)


ConsentChannel = Literal["email", "sms", "push", "phone", "whatsapp", "post", "wechat", "wecom"]
assert set(get_args(ConsentChannel)) == set(CONSENT_CHANNELS)  # one list of channels


class ConsentIn(BaseModel):
    channel: ConsentChannel
    granted: bool
    source: str = Field("api", max_length=200)


@router.post("", response_model=Customer, status_code=200, responses={201: {"model": Customer}})
def upsert(
    item: CustomerIn,
    request: Request,
    response: Response,
    principal: Principal = Depends(requires("write")),
) -> Customer:
    """Create a profile, or update the one that has any of the given identities
    (external_id, email, phone, anonymous_id). 201 when a profile was created."""
    engine = request.app.state.engine
    customer, created = upsert_customer(engine, item, actor=principal.actor)
    refresh_customers(request.app.state, engine, [customer.id], {"profile", "consent"})
    if created:
        response.status_code = 201
    return customer


@router.get("", response_model=list[Customer], dependencies=[Depends(requires("read"))])
def search(
    request: Request,
    external_id: Annotated[str | None, Query(max_length=200)] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    anonymous_id: Annotated[str | None, Query(max_length=200)] = None,
    wechat_openid: Annotated[str | None, Query(max_length=200, description="appid:openid")] = None,
    wechat_unionid: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[Customer]:
    """Find profiles by identity (normalised as on ingestion: any phone format, any email
    case); without one, list profiles newest first, page by page."""
    given = {
        "external_id": external_id,
        "email": email,
        "phone": phone,
        "anonymous_id": anonymous_id,
        "wechat_openid": wechat_openid,
        "wechat_unionid": wechat_unionid,
    }
    engine = request.app.state.engine
    if not any(given.values()):
        return list_customers(engine, limit, offset)
    identities = {}
    for kind, value in given.items():
        if value:
            try:
                identities[kind] = normalize_identity(kind, value)
            except InvalidInput:
                continue  # a malformed email or phone cannot belong to anyone
    return find_customers(engine, identities, limit) if identities else []


@router.get("/duplicates", response_model=list[DuplicatePair], dependencies=[Depends(requires("read"))])
def duplicates(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[DuplicatePair]:
    """Pairs of profiles that look like the same person, for review before merging."""
    return suspected_duplicates(request.app.state.engine, limit)


@router.post("/merge", response_model=Customer)
def merge(body: MergeIn, request: Request, principal: Principal = Depends(requires("write"))) -> Customer:
    """Merge profiles into the survivor: events, orders, identities and consents move to it."""
    engine = request.app.state.engine
    survivor = merge_customers(
        engine, body.survivor_id, body.merged_ids, reason=body.reason, actor=principal.actor
    )
    refresh_customers(request.app.state, engine, [survivor])  # everything about them changed
    return get_customer(engine, survivor)


@router.post("/{customer_id}/consents", response_model=Customer)
def consent(
    customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: ConsentIn,
    request: Request,
    principal: Principal = Depends(requires("write")),
) -> Customer:
    """Record that a customer granted or withdrew consent for a channel."""
    engine = request.app.state.engine
    customer = set_consent(engine, customer_id, body.channel, body.granted, source=body.source)
    refresh_customers(request.app.state, engine, [customer.id], {"consent"})
    return customer
