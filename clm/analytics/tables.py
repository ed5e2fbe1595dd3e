"""Tables of the analytics domain: the latest predictive value score of each customer."""

from sqlalchemy import Column, Float, ForeignKey, String, Table

from clm.store.schema import PKType, UTCDateTime, metadata

clv_scores = Table(
    "clv_scores",
    metadata,
    Column("customer_id", PKType, ForeignKey("customers.id"), primary_key=True),
    Column("scored_at", UTCDateTime, nullable=False),
    Column("model", String(32), nullable=False),
    Column("horizon_days", Float, nullable=False),
    Column("p_alive", Float, nullable=False),
    Column("expected_purchases", Float, nullable=False),
    Column("expected_spend", Float, nullable=False),
    Column("clv", Float, nullable=False),
)
