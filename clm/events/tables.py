"""Tables of the events domain."""

from sqlalchemy import Column, ForeignKey, Index, String, Table

from clm.store.schema import JSONType, PKType, UTCDateTime, metadata

events = Table(
    "events",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    # The sender's id for the event: ingestion is idempotent on it.
    Column("event_id", String(128), nullable=False, unique=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("properties", JSONType),
    Index("ix_events_customer_time", "customer_id", "occurred_at"),
    Index("ix_events_type_time", "type", "occurred_at"),
)
