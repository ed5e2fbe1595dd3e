"""Tables of the events domain."""

from sqlalchemy import Column, Float, ForeignKey, Index, String, Table

from clm.store.schema import JSONType, PKType, UTCDateTime, key_text, metadata

events = Table(
    "events",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    # The sender's id for the event: ingestion is idempotent on it.
    Column("event_id", key_text(128), nullable=False, unique=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("properties", JSONType),
    # type and channel too, so per-customer counts over all events (the features of a full stage
    # run) read only this index, in customer order, never the wide rows with their JSON
    Index("ix_events_customer_time", "customer_id", "occurred_at", "type", "channel"),
    Index("ix_events_type_time", "type", "occurred_at"),
)

# Survey answers (NPS, CSAT, …) taken out of their `survey_response` events when those are stored:
# narrow rows in time order, so reports over a year of answers need not parse every event's JSON.
survey_answers = Table(
    "survey_answers",
    metadata,
    Column("event_pk", PKType, ForeignKey("events.id"), primary_key=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    Column("answered_at", UTCDateTime, nullable=False),
    Column("channel", String(64), nullable=False),
    Column("survey", String(64)),  # the event's `survey` property: nps, csat, …
    Column("score", Float),  # its numeric `score`; null when absent or not a number
    # covering: a period's answers are read from the index alone, in time order
    Index("ix_survey_answers_time", "answered_at", "survey", "score", "customer_id"),
    Index("ix_survey_answers_customer_time", "customer_id", "answered_at"),
)
