"""Tables of the loyalty domain: the programme in force, the points ledger, tiers and their history."""

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text

from clm.store.schema import JSONType, PKType, UTCDateTime, metadata

# One row (id = 1): the programme definition in force (earn rules, expiry, tiers, perks).
loyalty_settings = Table(
    "loyalty_settings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("source", String(500), nullable=False),
    Column("definition", JSONType, nullable=False),
    Column("selected_at", UTCDateTime, nullable=False),
)

# The append-only ledger. A balance is the sum of `points`; nothing here is ever updated.
# Every positive posting is a lot that expires at `expires_at`; a `reverse` posting names the
# posting it takes back in `reverses_id`; an `expire` posting names its lot the same way.
points_postings = Table(
    "points_postings",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("points", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    # What caused it (order:<id>:<rule>, expire:<lot>, a client's key): posting is idempotent on it.
    Column("reference", String(300), nullable=False, unique=True),
    Column("rule", String(100)),
    Column("order_id", String(128), index=True),
    Column("reverses_id", PKType, ForeignKey("points_postings.id")),
    Column("posted_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("actor", String(200), nullable=False),
    Index("ix_points_postings_customer_time", "customer_id", "posted_at"),
    Index("ix_points_postings_reverses", "reverses_id"),
)

# The tier each customer holds; customers without a row hold the lowest tier.
customer_tiers = Table(
    "customer_tiers",
    metadata,
    Column("customer_id", PKType, ForeignKey("customers.id"), primary_key=True),
    Column("tier", String(64), nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("basis_value", Float, nullable=False),
)

tier_changes = Table(
    "tier_changes",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False, index=True),
    Column("from_tier", String(64), nullable=False),
    Column("to_tier", String(64), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("basis_value", Float, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("run_id", String(36), nullable=False, index=True),
)
