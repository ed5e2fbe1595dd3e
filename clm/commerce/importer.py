"""Bulk import of orders (one row per line item, or JSON with `items`), products and spend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine

from clm.commerce.schemas import OrderIn, ProductIn, SpendIn
from clm.commerce.service import ingest_orders, record_spend, upsert_products
from clm.core.files import DataFile
from clm.core.imports import ChunkOutcome, ImportReport, run_transactional_import
from clm.customers.identities import identities_from

_ITEM_FIELDS = ("sku", "quantity", "unit_price")
_PRODUCT_FIELDS = set(ProductIn.model_fields)


def order_from_row(row: dict[str, Any]) -> OrderIn:
    fields = dict(row)
    if "timestamp" in fields and "ordered_at" not in fields:
        fields["ordered_at"] = fields.pop("timestamp")
    if "sku" in fields:
        item = {k: fields.pop(k) for k in _ITEM_FIELDS if k in fields}
        fields["items"] = [*fields.get("items", []), item]
    order = OrderIn.model_validate(fields)
    identities_from(order.identity_fields())  # reject malformed emails/phones here, row by row
    return order


def product_from_row(row: dict[str, Any]) -> ProductIn:
    fields = {k: v for k, v in row.items() if k in _PRODUCT_FIELDS}
    extra = {k.removeprefix("attr."): v for k, v in row.items() if k not in _PRODUCT_FIELDS}
    if extra:
        fields["attributes"] = {**fields.get("attributes", {}), **extra}
    return ProductIn.model_validate(fields)


def _run(
    kind: str,
    engine: Engine,
    data: DataFile,
    parse: Callable[[dict[str, Any]], BaseModel],
    store: Callable[[Connection, list[Any]], tuple[dict[str, int], set[int]]],
    chunk_size: int,
    rejections_path: Path | None,
    progress: Callable[[int], None] | None,
) -> ImportReport:
    """Every valid row is stored; `store` returns the counters to report and the customers touched."""

    def write(conn: Connection, batch: list[Any]) -> ChunkOutcome:
        counters, customer_ids = store(conn, batch)
        return ChunkOutcome(accepted=len(batch), counters=counters, customer_ids=customer_ids)

    return run_transactional_import(
        kind,
        engine,
        data,
        parse,
        write,
        chunk_size=chunk_size,
        rejections_path=rejections_path,
        progress=progress,
    )


def import_orders(
    engine: Engine,
    data: DataFile,
    *,
    actor: str = "import",
    chunk_size: int = 5_000,
    rejections_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    def store(conn: Connection, batch: list[OrderIn]) -> tuple[dict[str, int], set[int]]:
        result = ingest_orders(conn, batch, actor=actor)
        counters = {
            "orders_created": result.created,
            "orders_updated": result.updated,
            "customers_created": result.created_customers,
        }
        return counters, result.customer_ids

    return _run("orders", engine, data, order_from_row, store, chunk_size, rejections_path, progress)


def import_products(
    engine: Engine,
    data: DataFile,
    *,
    chunk_size: int = 5_000,
    rejections_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    return _run(
        "products",
        engine,
        data,
        product_from_row,
        lambda conn, batch: ({"products": upsert_products(conn, batch)}, set()),
        chunk_size,
        rejections_path,
        progress,
    )


def import_spend(
    engine: Engine,
    data: DataFile,
    *,
    chunk_size: int = 5_000,
    rejections_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    return _run(
        "spend",
        engine,
        data,
        SpendIn.model_validate,
        lambda conn, batch: ({"spend_rows": record_spend(conn, batch)}, set()),
        chunk_size,
        rejections_path,
        progress,
    )
