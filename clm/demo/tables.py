"""The demo's ground truth: what the simulator decided about each customer."""

from sqlalchemy import Boolean, Column, Float, ForeignKey, String, Table

from clm.store.schema import PKType, UTCDateTime, metadata

demo_truth = Table(
    "demo_truth",
    metadata,
    Column("customer_id", PKType, ForeignKey("customers.id"), primary_key=True),
    Column("segment", String(32), nullable=False),
    # Repeat buying with dropout (BG/NBD): purchases per day while alive, and the chance of
    # dropping out after each purchase.
    Column("purchase_rate", Float, nullable=False),
    Column("dropout_prob", Float, nullable=False),
    Column("mean_order_value", Float, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("dropped_out_at", UTCDateTime),
    Column("alive_at_end", Boolean, nullable=False),
    # For planted duplicate profiles: the customer they really are.
    Column("duplicate_of", PKType, ForeignKey("customers.id")),
    # The day the simulation ended (same for all rows), so "now" for analyses of demo data.
    Column("observed_until", UTCDateTime, nullable=False),
)
