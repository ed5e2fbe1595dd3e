"""HTTP routes of the commerce domain: orders, products and marketing spend."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, Tag

from clm.auth.http import requires
from clm.auth.service import Principal
from clm.commerce.schemas import Order, OrderIn, Product, ProductIn, Spend, SpendIn
from clm.commerce.service import (
    get_order,
    get_product,
    ingest_order_batch,
    list_products,
    list_spend,
    record_spend,
    upsert_products,
)
from clm.core.errors import InvalidInput
from clm.core.followups import refresh_customers
from clm.core.payloads import MAX_ID, IsoDate, batch_or_single
from clm.customers.identities import identities_from

router = APIRouter(prefix="/api/v1", tags=["commerce"])


class OrderBatch(BaseModel):
    orders: list[OrderIn] = Field(..., min_length=1, max_length=1000)


class ProductBatch(BaseModel):
    products: list[ProductIn] = Field(..., min_length=1, max_length=1000)


class SpendBatch(BaseModel):
    spend: list[SpendIn] = Field(..., min_length=1, max_length=1000)


OrdersPayload = Annotated[
    Annotated[OrderBatch, Tag("batch")] | Annotated[OrderIn, Tag("single")], batch_or_single("orders")
]
ProductsPayload = Annotated[
    Annotated[ProductBatch, Tag("batch")] | Annotated[ProductIn, Tag("single")], batch_or_single("products")
]
SpendPayload = Annotated[
    Annotated[SpendBatch, Tag("batch")] | Annotated[SpendIn, Tag("single")], batch_or_single("spend")
]


class OrdersOut(BaseModel):
    created: int
    updated: int
    customer_ids: list[int]


class CountOut(BaseModel):
    stored: int


@router.post("/orders", response_model=OrdersOut)
def post_orders(
    payload: OrdersPayload, request: Request, principal: Principal = Depends(requires("write"))
) -> OrdersOut:
    """Create or update orders by `order_id` (one, or `{"orders": [...]}`). Sending an order
    again with status `refunded` records the refund."""
    items = payload.orders if isinstance(payload, OrderBatch) else [payload]
    for i, order in enumerate(items):
        try:
            identities_from(order.identity_fields())
        except InvalidInput as exc:
            where = f"orders[{i}]." if isinstance(payload, OrderBatch) else ""
            raise InvalidInput(exc.reason, f"{where}{exc.field}")
    engine = request.app.state.engine
    result = ingest_order_batch(engine, items, actor=principal.actor)
    refresh_customers(request.app.state, engine, result.customer_ids, {"orders"})
    return OrdersOut(created=result.created, updated=result.updated, customer_ids=sorted(result.customer_ids))


@router.get("/orders/{order_id}", response_model=Order, dependencies=[Depends(requires("read"))])
def read_order(order_id: str, request: Request) -> Order:
    return get_order(request.app.state.engine, order_id)


@router.post("/products", response_model=CountOut)
def post_products(
    payload: ProductsPayload, request: Request, _: Principal = Depends(requires("write"))
) -> CountOut:
    """Create or update products by SKU (one, or `{"products": [...]}`)."""
    items = payload.products if isinstance(payload, ProductBatch) else [payload]
    with request.app.state.engine.begin() as conn:
        return CountOut(stored=upsert_products(conn, items))


@router.get("/products", response_model=list[Product], dependencies=[Depends(requires("read"))])
def read_products(
    request: Request,
    category: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[Product]:
    return list_products(request.app.state.engine, category, limit, offset)


@router.get("/products/{sku}", response_model=Product, dependencies=[Depends(requires("read"))])
def read_product(sku: str, request: Request) -> Product:
    return get_product(request.app.state.engine, sku)


@router.post("/spend", response_model=CountOut)
def post_spend(
    payload: SpendPayload, request: Request, _: Principal = Depends(requires("write"))
) -> CountOut:
    """Record marketing spend per channel/campaign and period (replaces the same period's figure)."""
    items = payload.spend if isinstance(payload, SpendBatch) else [payload]
    with request.app.state.engine.begin() as conn:
        return CountOut(stored=record_spend(conn, items))


@router.get("/spend", response_model=list[Spend], dependencies=[Depends(requires("read"))])
def read_spend(
    request: Request,
    channel: Annotated[str | None, Query(max_length=64)] = None,
    start: IsoDate | None = None,
    end: IsoDate | None = None,
) -> list[Spend]:
    return list_spend(request.app.state.engine, channel, start, end)
