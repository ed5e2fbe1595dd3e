"""Bulk import of orders (one row per line item, or JSON with `items`), products and spend.

Cells are read as people write them (`clm.core.values`): times like `2026/11/1 10:05` (no zone:
the store's time zone), amounts like `￥1,299.00` or `1,299元`, yes/no as 是/否, and order
statuses as Chinese shops write them (`ORDER_STATUS_WORDS`, extended by CLM_ORDER_STATUSES).
A bad cell in an optional field (an order's channel or campaign, its refund time) leaves the
field out with a warning; any other bad cell rejects the row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine

from clm.commerce.schemas import ORDER_STATUSES, OrderIn, ProductIn, SpendIn
from clm.commerce.service import ingest_orders, record_spend, upsert_products
from clm.core.errors import InvalidInput, UnusableInput
from clm.core.files import DataFile
from clm.core.imports import Checked, ChunkOutcome, ImportReport, describe_error, run_transactional_import
from clm.core.settings import settings
from clm.core.values import parse_local_date, parse_local_datetime, parse_money, parse_yes_no
from clm.customers.identities import identities_from

_ITEM_FIELDS = ("sku", "quantity", "unit_price")
_PRODUCT_FIELDS = set(ProductIn.model_fields)
# An order is kept without these, with a warning, when their cell is bad.
OPTIONAL_ORDER_FIELDS = frozenset({"channel", "campaign", "refunded_at"})

# Statuses as Chinese shop systems and spreadsheets write them. A paid order (shipped,
# received) counts as completed: CLM's statuses say whether the money stayed.
ORDER_STATUS_WORDS = {
    **dict.fromkeys(
        ("已完成", "完成", "交易成功", "交易完成", "已付款", "已支付", "已发货", "已签收", "已收货"),
        "completed",
    ),
    **dict.fromkeys(("已退款", "退款成功", "退款完成", "已退货", "退货退款"), "refunded"),
    **dict.fromkeys(("已取消", "取消", "交易关闭", "已关闭", "订单取消"), "cancelled"),
}
_CURRENCY_WORDS = {
    "人民币": "CNY",
    "元": "CNY",
    "RMB": "CNY",
    "¥": "CNY",
    "￥": "CNY",
    "美元": "USD",
    "港币": "HKD",
}


def order_statuses(extra: str | None = None) -> dict[str, str]:
    """The status words read, the built-in ones overridden and extended by `extra`
    ("已发货=completed,退货完成=refunded"; CLM_ORDER_STATUSES by default)."""
    words = dict(ORDER_STATUS_WORDS)
    text = settings().order_statuses if extra is None else extra
    for pair in filter(None, (p.strip() for p in text.split(","))):
        word, sep, status = pair.partition("=")
        if not sep or status.strip().lower() not in ORDER_STATUSES or not word.strip():
            raise UnusableInput(
                f"CLM_ORDER_STATUSES: {pair!r} is not WORD=STATUS, STATUS one of " + ", ".join(ORDER_STATUSES)
            )
        words[word.strip().lower()] = status.strip().lower()
    return words


def order_from_row(
    row: dict[str, Any], tz: ZoneInfo | None = None, statuses: dict[str, str] | None = None
) -> OrderIn | Checked[OrderIn]:
    """One row (a line item, or a whole order without items) → OrderIn; times without a zone
    are in `tz` (default: the store's time zone)."""
    tz = tz or ZoneInfo(settings().default_timezone)
    statuses = order_statuses() if statuses is None else statuses
    fields = dict(row)
    warnings: list[str] = []
    if "timestamp" in fields and "ordered_at" not in fields:
        fields["ordered_at"] = fields.pop("timestamp")
    for name in ("ordered_at", "refunded_at"):
        if name in fields:
            try:
                fields[name] = parse_local_datetime(fields[name], tz, name)
            except InvalidInput as exc:
                if name not in OPTIONAL_ORDER_FIELDS:
                    raise
                warnings.append(describe_error(exc))
                del fields[name]
    for name in ("total", "unit_price"):
        if name in fields:
            fields[name] = parse_money(fields[name], name)
    if isinstance(fields.get("status"), str):
        word = fields["status"].strip()
        status = statuses.get(word.lower(), word.lower())
        if status not in ORDER_STATUSES:
            raise InvalidInput(
                f"{word!r} is not an order status: use {', '.join(ORDER_STATUSES)}, a word such as "
                "已完成, 已退款 or 已取消, or add it to CLM_ORDER_STATUSES (e.g. 待发货=completed)",
                "status",
            )
        fields["status"] = status
    if isinstance(fields.get("currency"), str):
        fields["currency"] = _CURRENCY_WORDS.get(fields["currency"].strip().upper(), fields["currency"])
    if "sku" in fields:
        item = {k: fields.pop(k) for k in _ITEM_FIELDS if k in fields}
        fields["items"] = [*fields.get("items", []), item]
    try:
        order = OrderIn.model_validate(fields)
    except ValidationError as exc:
        bad = {str(err["loc"][0]) if err["loc"] else "" for err in exc.errors()}
        if not bad <= OPTIONAL_ORDER_FIELDS:
            raise
        warnings.append(describe_error(exc))
        order = OrderIn.model_validate({k: v for k, v in fields.items() if k not in bad})
    identities_from(order.identity_fields())  # reject malformed emails/phones here, row by row
    return Checked(order, warnings) if warnings else order


def product_from_row(row: dict[str, Any]) -> ProductIn:
    fields = {k: v for k, v in row.items() if k in _PRODUCT_FIELDS}
    extra = {k.removeprefix("attr."): v for k, v in row.items() if k not in _PRODUCT_FIELDS}
    for name in ("price", "cost"):
        if name in fields:
            fields[name] = parse_money(fields[name], name)
    for name in ("active", "in_stock"):
        if name in fields:
            fields[name] = parse_yes_no(fields[name], name)
    if extra:
        fields["attributes"] = {**fields.get("attributes", {}), **extra}
    return ProductIn.model_validate(fields)


def spend_from_row(row: dict[str, Any]) -> SpendIn:
    fields = dict(row)
    for name in ("period_start", "period_end"):
        if name in fields:
            fields[name] = parse_local_date(fields[name], name)
    if "amount" in fields:
        fields["amount"] = parse_money(fields["amount"], "amount")
    return SpendIn.model_validate(fields)


def _run(
    kind: str,
    engine: Engine,
    data: DataFile,
    parse: Callable[[dict[str, Any]], BaseModel | Checked[Any]],
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
    tz = ZoneInfo(settings().default_timezone)
    statuses = order_statuses()

    def store(conn: Connection, batch: list[OrderIn]) -> tuple[dict[str, int], set[int]]:
        result = ingest_orders(conn, batch, actor=actor)
        counters = {
            "orders_created": result.created,
            "orders_updated": result.updated,
            "customers_created": result.created_customers,
        }
        return counters, result.customer_ids

    return _run(
        "orders",
        engine,
        data,
        lambda row: order_from_row(row, tz, statuses),
        store,
        chunk_size,
        rejections_path,
        progress,
    )


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
        spend_from_row,
        lambda conn, batch: ({"spend_rows": record_spend(conn, batch)}, set()),
        chunk_size,
        rejections_path,
        progress,
    )
