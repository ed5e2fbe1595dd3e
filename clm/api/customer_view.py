"""Routes for reading one customer: the 360° view, the timeline and the orders, page by page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from clm.auth.http import requires
from clm.commerce.schemas import Order
from clm.commerce.service import customer_orders
from clm.core.payloads import MAX_ID
from clm.customers.service import get_customer
from clm.events.schemas import Event
from clm.events.service import timeline
from clm.views.customer import CustomerView, customer_view

router = APIRouter(prefix="/api/v1/customers", tags=["customers"], dependencies=[Depends(requires("read"))])


@router.get("/{customer_id}", response_model=CustomerView)
def read_customer(
    customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    events: Annotated[int, Query(ge=0, le=500)] = 50,
) -> CustomerView:
    """One customer's unified profile with recent activity. The id of a merged profile
    returns the profile it was merged into (`profile.id` differs from `requested_id`)."""
    return customer_view(request.app.state.engine, customer_id, events)


@router.get("/{customer_id}/events", response_model=list[Event])
def read_events(
    customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[Event]:
    """A customer's events, newest first, page by page."""
    engine = request.app.state.engine
    return timeline(engine, get_customer(engine, customer_id).id, limit, offset)


@router.get("/{customer_id}/orders", response_model=list[Order])
def read_orders(
    customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[Order]:
    engine = request.app.state.engine
    return customer_orders(engine, get_customer(engine, customer_id).id, limit, offset)
