"""Tables of the feedback domain: surveys and their single-use invitations, support tickets with
their messages and SLA targets, and follow-up tasks for people."""

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from clm.store.schema import JSONType, PKType, UTCDateTime, metadata

surveys = Table(
    "surveys",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # nps, csat or feedback (free text only)
    Column("question_en", Text, nullable=False),
    Column("question_zh", Text),
    # answers at or below this score open a follow-up task (null: none); 6 for NPS, 2 for CSAT
    Column("follow_up_at_or_below", Integer),
    Column("follow_up_assignee", String(200)),
    Column("active", Boolean, nullable=False),
    Column("builtin", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# One link per customer and occasion. Only the SHA-256 of the link's token is kept; the
# answer itself is a `survey_response` event (the event log is the record of every answer).
survey_invitations = Table(
    "survey_invitations",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("survey_id", PKType, ForeignKey("surveys.id"), nullable=False, index=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("channel", String(32), nullable=False),
    Column("context", JSONType),
    # what caused it (ticket:12, order:A-1, a journey step): one invitation per reference
    Column("reference", String(300), unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("answered_at", UTCDateTime),
    Column("score", Integer),
    Column("event_id", String(128)),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False, index=True),
    Column("subject", String(300), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("assignee", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("first_response_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("reopened", Integer, nullable=False),
    Index("ix_tickets_status", "status"),
    Index("ix_tickets_created", "created_at"),
)

ticket_messages = Table(
    "ticket_messages",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("ticket_id", PKType, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("author_kind", String(16), nullable=False),  # customer, agent or note (internal)
    Column("author", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Overrides of the default SLA targets per priority (see tickets.DEFAULT_SLA).
sla_targets = Table(
    "sla_targets",
    metadata,
    Column("priority", String(16), primary_key=True),
    Column("first_response_hours", Float, nullable=False),
    Column("resolution_hours", Float, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False, index=True),
    Column("title", String(300), nullable=False),
    Column("notes", Text, nullable=False),
    Column("assignee", String(200)),
    Column("due_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # open, done, cancelled
    Column("source", String(16), nullable=False),  # manual, detractor, ticket, journey
    # what caused it (survey answer, ticket, journey step): one task per reference
    Column("reference", String(300), unique=True),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime),
    Index("ix_tasks_status_due", "status", "due_at"),
)
