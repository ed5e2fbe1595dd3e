"""The per-customer-per-day order summary (`order_days`), kept in step with `orders`.

A day is a calendar day in the store's time zone (`CLM_DEFAULT_TIMEZONE`, Asia/Shanghai by
default): a Beijing customer's order at 00:30 on the 1st belongs to the 1st. The zone the rows
were cut in is recorded in `order_days_zone`; when the setting changes, `ensure_order_days_zone`
(run by `clm init`, the server's start and the worker's) rebuilds the summary in the new zone.

KPIs and the RFM/CLV summary look at every customer's orders. Reading one row per customer and
purchase day, with the cost of the items already added up, is several times cheaper than
scanning every order and joining every line item to its product for each report.

An order counts at time t when it is not cancelled and not refunded by t (the rule of
`clm.features.counted_order`). So a day's figures change at each refund time, and the summary
keeps one row per stretch between them: a row holds for t with

    counted_from <= t < counted_until

(`BEGINNING` … first refund, …, last refund … `NEVER`), which leaves every customer at most one
row per day at any t: a report aggregates straight by customer, with no regrouping by day.

A customer's rows are rebuilt from their orders in the transaction of every order write, for
the buyers of a product whose cost changed, and for the survivor of every merge; set-based, a few
hundred customers per statement.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, case, delete, func, insert, inspect, not_, select
from sqlalchemy.sql.elements import ColumnElement

from clm.commerce.tables import order_days, order_days_zone, order_items, orders, products
from clm.core.timeutil import store_day, store_midnight, store_zone
from clm.customers.merge import after_merge
from clm.store.schema import UTCDateTime
from clm.store.sql import day_number

BEGINNING = datetime(1900, 1, 1, tzinfo=UTC)  # before any order (orders start in 1990)
NEVER = datetime(9999, 12, 31, tzinfo=UTC)
EPOCH = date(1970, 1, 1)
_CHUNK = 500
log = logging.getLogger(__name__)

Scope = Callable[[Any], ColumnElement[bool]] | None


def day_of(moment: datetime | date) -> int:
    """The `day` number of a moment (its calendar day in the store's time zone) or of a date."""
    if isinstance(moment, datetime):
        moment = store_day(moment)
    return (moment - EPOCH).days


def start_of_day(day: int) -> datetime:
    """The UTC moment the store's day number `day` begins."""
    return store_midnight(EPOCH + timedelta(days=day))


def counted_at(moment: Any) -> ColumnElement[bool]:
    """The summary rows that hold at `moment` (a datetime or a bound parameter)."""
    return and_(order_days.c.counted_from <= moment, order_days.c.counted_until > moment)


def refresh_order_days(conn: Connection, customer_ids: Iterable[int]) -> None:
    """Rebuild the summary of these customers from their orders (inside the caller's transaction)."""
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), _CHUNK):
        _rebuild(conn, _among(ids[start : start + _CHUNK]))


def _among(ids: list[int]) -> Callable[[Any], ColumnElement[bool]]:
    return lambda column: column.in_(ids)


def refresh_for_products(conn: Connection, skus: Collection[str]) -> None:
    """Rebuild the summary of everyone who bought one of these products (their cost changed)."""
    if not skus:
        return
    buyers = (
        select(orders.c.customer_id)
        .join(order_items, order_items.c.order_pk == orders.c.id)
        .where(order_items.c.sku.in_(sorted(skus)))
        .distinct()
    )
    refresh_order_days(conn, conn.execute(buyers).scalars())


def rebuild_all_order_days(conn: Connection) -> int:
    """Rebuild the whole summary (after loading orders by other means, or in a new time zone);
    records the zone it was cut in; returns its row count."""
    _rebuild(conn, None)
    zone = store_zone().key
    conn.execute(delete(order_days_zone))
    conn.execute(insert(order_days_zone).values(zone=zone))
    return int(conn.execute(select(func.count()).select_from(order_days)).scalar_one())


def order_days_zone_name(conn: Connection) -> str | None:
    """The time zone the summary's days were cut in (None before any rebuild recorded one)."""
    return conn.execute(select(order_days_zone.c.zone)).scalar()


def ensure_order_days_zone(engine: Engine) -> str | None:
    """Rebuild the summary when `CLM_DEFAULT_TIMEZONE` differs from the zone its days were cut
    in (a changed setting). Returns None when nothing was done (cheap: one row read), else the
    zone it was cut in before ("" when none was recorded: a new or emptied store)."""
    zone = store_zone().key
    with engine.connect() as conn:
        if not inspect(conn).has_table(order_days_zone.name):  # a schema not yet upgraded
            return None
        if order_days_zone_name(conn) == zone:
            return None
    with engine.begin() as conn:
        before = order_days_zone_name(conn)
        if before == zone:  # another process rebuilt it meanwhile
            return None
        rows = rebuild_all_order_days(conn)
    if before:
        log.warning("order_days rebuilt in the time zone %s (was %s; %d rows)", zone, before, rows)
    return before or ""


def _rebuild(conn: Connection, scope: Scope) -> None:
    def within(column: Any) -> list[ColumnElement[bool]]:
        return [scope(column)] if scope is not None else []

    conn.execute(delete(order_days).where(*within(order_days.c.customer_id)))
    cost = (
        select(
            order_items.c.order_pk,
            func.sum(order_items.c.quantity * func.coalesce(products.c.cost, 0)).label("cost"),
        )
        .select_from(
            order_items.join(orders, orders.c.id == order_items.c.order_pk).outerjoin(
                products, products.c.sku == order_items.c.sku
            )
        )
        .where(*within(orders.c.customer_id))
        .group_by(order_items.c.order_pk)
        .subquery("cost")
    )
    # each counted order with the moment it stops counting
    refunded = orders.c.status == "refunded"
    until = case((refunded, orders.c.refunded_at), else_=bindparam("never", NEVER, type_=UTCDateTime))
    counted = (
        select(
            orders.c.customer_id,
            day_number(orders.c.ordered_at).label("day"),
            until.label("until"),
            orders.c.total,
            cost.c.cost,
        )
        .select_from(orders.outerjoin(cost, cost.c.order_pk == orders.c.id))
        .where(
            orders.c.status != "cancelled",
            # a refund without a time has never counted (as in clm.features.refunded_order)
            not_(and_(refunded, orders.c.refunded_at.is_(None))),
            *within(orders.c.customer_id),
        )
        .subquery("counted")
    )
    c = counted.c
    ends = (
        select(
            c.customer_id,
            c.day,
            c.until,
            func.count().label("orders"),
            func.sum(c.total).label("revenue"),
            func.coalesce(func.sum(c.cost), 0).label("cost"),
        )
        .group_by(c.customer_id, c.day, c.until)
        .subquery("ends")
    )
    # the stretch that ends at a refund time (or NEVER) counts every order that stops counting
    # then or later, and begins where the previous stretch ended
    e = ends.c
    later_first: dict[str, Any] = {"partition_by": [e.customer_id, e.day], "order_by": e.until.desc()}
    rows = select(
        e.customer_id,
        e.day,
        func.lead(e.until, 1, bindparam("beginning", BEGINNING, type_=UTCDateTime)).over(**later_first),
        e.until,
        func.sum(e.orders).over(**later_first),
        func.sum(e.revenue).over(**later_first),
        func.sum(e.cost).over(**later_first),
    )
    columns = ["customer_id", "day", "counted_from", "counted_until", "orders", "revenue", "cost"]
    conn.execute(insert(order_days).from_select(columns, rows))


# orders move with a merge; the survivor's days then need one row per stretch again
after_merge(lambda conn, survivor: refresh_order_days(conn, [survivor]))
