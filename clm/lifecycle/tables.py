"""Tables of the lifecycle domain: per-customer features, current stage, stage history."""

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text

from clm.store.schema import JSONType, PKType, UTCDateTime, metadata

# One row per live customer, rebuilt by every stage run (whole or for the touched customers).
# The columns are the features stage rules and segments are written over; see features.py.
customer_features = Table(
    "customer_features",
    metadata,
    Column("customer_id", PKType, ForeignKey("customers.id"), primary_key=True),
    Column("as_of", UTCDateTime, nullable=False),
    Column("first_seen_at", UTCDateTime),
    Column("days_since_first_seen", Float),
    Column("last_activity_at", UTCDateTime),
    Column("days_since_last_activity", Float),
    Column("first_purchase_at", UTCDateTime),
    Column("last_purchase_at", UTCDateTime),
    Column("days_since_last_purchase", Float),
    Column("orders", Integer, nullable=False),
    Column("refunds", Integer, nullable=False),
    Column("revenue", Float, nullable=False),
    Column("margin", Float, nullable=False),
    Column("aov", Float),
    Column("purchase_gap_days", Float),
    Column("shop_purchase_gap_days", Float),
    Column("orders_90d", Integer, nullable=False),
    Column("revenue_365d", Float, nullable=False),
    Column("categories", Integer, nullable=False),
    Column("views_30d", Integer, nullable=False),
    Column("product_views", Integer, nullable=False),
    Column("carts_30d", Integer, nullable=False),
    Column("carts", Integer, nullable=False),
    Column("email_opens_30d", Integer, nullable=False),
    Column("email_clicks_30d", Integer, nullable=False),
    Column("events_30d", Integer, nullable=False),
    Column("inquiries", Integer, nullable=False),
    Column("last_nps", Integer),
    Column("last_csat", Integer),
    Column("open_tickets", Integer, nullable=False),
    Column("age", Integer),
    Column("stage", String(64)),
    Index("ix_customer_features_stage", "stage"),
)

customer_stages = Table(
    "customer_stages",
    metadata,
    Column("customer_id", PKType, ForeignKey("customers.id"), primary_key=True),
    Column("model", String(64), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Index("ix_customer_stages_stage", "stage"),
)

stage_transitions = Table(
    "stage_transitions",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False, index=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    Column("model", String(64), nullable=False),
    Column("from_stage", String(64)),
    Column("to_stage", String(64), nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("rule", Text, nullable=False),
    Index("ix_stage_transitions_customer_time", "customer_id", "changed_at"),
    Index("ix_stage_transitions_time", "changed_at"),
)

# One row: the selected stage model (its definition is stored so that the API, the CLI and every
# worker evaluate the same rules) and what the last full run learnt about the shop.
lifecycle_settings = Table(
    "lifecycle_settings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("source", String(500), nullable=False),
    Column("definition", JSONType, nullable=False),
    Column("shop_purchase_gap_days", Float),
    Column("selected_at", UTCDateTime, nullable=False),
    Column("last_full_run_at", UTCDateTime),
)
