"""Tables of the commerce domain."""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    UniqueConstraint,
)

from clm.store.schema import JSONType, PKType, UTCDateTime, metadata

Money = Numeric(14, 2, asdecimal=False)

products = Table(
    "products",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("category", String(200), index=True),
    Column("price", Money, nullable=False),
    Column("cost", Money),
    Column("currency", String(3), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("in_stock", Boolean, nullable=False),
    Column("attributes", JSONType),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("order_id", String(128), nullable=False, unique=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("ordered_at", UTCDateTime, nullable=False),
    Column("refunded_at", UTCDateTime),
    Column("currency", String(3), nullable=False),
    Column("total", Money, nullable=False),
    Column("channel", String(32)),
    Column("campaign", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_orders_customer_time", "customer_id", "ordered_at"),
    Index("ix_orders_time", "ordered_at"),
)

order_items = Table(
    "order_items",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("order_pk", PKType, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("sku", String(64), nullable=False, index=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Money, nullable=False),
    UniqueConstraint("order_pk", "sku"),
)

# The counted orders of one customer on one day of the store's time zone (order_days_zone), as
# they stand between refunds: a row holds for the moments t with counted_from <= t < counted_until,
# so at any t a customer has at most one row per day. Kept in step with `orders` by every write
# (clm/commerce/order_days.py); reports over all customers read this instead of every order and
# line item.
order_days = Table(
    "order_days",
    metadata,
    Column("customer_id", PKType, ForeignKey("customers.id"), primary_key=True),
    Column("day", Integer, primary_key=True),  # whole days since 1970-01-01 in order_days_zone
    Column("counted_from", UTCDateTime, primary_key=True),  # order_days.BEGINNING, or a refund time
    Column("counted_until", UTCDateTime, nullable=False),  # a refund time, or order_days.NEVER
    # money as double precision: sums over millions of rows are several times faster than
    # exact decimals, and a report rounds them to cents anyway
    Column("orders", Integer, nullable=False),
    Column("revenue", Float, nullable=False),
    Column("cost", Float, nullable=False),  # quantity x the products' cost (0 where unknown)
    # SQLite keeps the rows themselves in key order: a report's grouping by customer then reads
    # the table once, in order, with no lookups from an index
    sqlite_with_rowid=False,
)

# The time zone (CLM_DEFAULT_TIMEZONE) whose calendar days `order_days` was cut in: one row. A
# changed setting is seen against it and the summary rebuilt (order_days.ensure_order_days_zone).
order_days_zone = Table(
    "order_days_zone",
    metadata,
    Column("zone", String(64), primary_key=True),
)

marketing_spend = Table(
    "marketing_spend",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    Column("campaign", String(200), nullable=False, default=""),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("amount", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    UniqueConstraint("channel", "campaign", "period_start", "period_end"),
)
