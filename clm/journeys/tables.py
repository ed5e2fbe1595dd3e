"""Tables of the journeys domain: journeys and their versions, enrolments (the durable state of
each customer in a journey), the step log, the outbox of messages, suppressions, coupons."""

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from clm.store.schema import JSONType, PKType, UTCDateTime, metadata

journeys = Table(
    "journeys",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # draft, live, paused, archived
    Column("version", Integer, nullable=False),  # the version new enrolments get
    # event triggers read the events table past this id; condition triggers run at most this often
    Column("event_cursor", BigInteger, nullable=False),
    Column("last_scan_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Every saved definition is kept: an enrolment runs on the version it entered with, so editing
# a live journey never changes the path of a customer already in it.
journey_versions = Table(
    "journey_versions",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("journey_id", PKType, ForeignKey("journeys.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("journey_id", "version"),
)

enrolments = Table(
    "enrolments",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("journey_id", PKType, ForeignKey("journeys.id", ondelete="CASCADE"), nullable=False),
    Column("version_id", PKType, ForeignKey("journey_versions.id"), nullable=False),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    # what let the customer in (an event id, a date, a broadcast run): one enrolment per entry key
    Column("entry_key", String(200), nullable=False),
    Column("state", String(16), nullable=False),  # active, waiting, done, exited
    Column("step", String(100)),  # the step to run next (active) or waited at (waiting)
    Column("due_at", UTCDateTime),  # active: when the step runs; waiting: the timeout
    Column("wait_event", String(64)),  # waiting for this event type
    Column("since", UTCDateTime),  # when the current step (or wait) began
    Column("visits", Integer, nullable=False),  # steps run so far: numbers each step's effects
    Column("variant", String(64)),  # the arm of a split (experiment), or holdout
    Column("context", JSONType),  # the trigger event's properties, for templates
    Column("entered_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("exit_reason", String(200)),
    UniqueConstraint("journey_id", "customer_id", "entry_key"),
    Index("ix_enrolments_due", "state", "due_at"),
    Index("ix_enrolments_customer", "customer_id", "journey_id"),
)

# Why did (or didn't) this customer get this message? Every step taken, with its outcome.
journey_log = Table(
    "journey_log",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("enrolment_id", PKType, nullable=False, index=True),
    Column("journey_id", PKType, nullable=False),
    Column("customer_id", PKType, nullable=False, index=True),
    Column("step", String(100), nullable=False),
    Column("action", String(32), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# Every message goes out through here. `key` (journey, enrolment, step) makes a step's message
# unique however often the step is retried; the dispatcher claims rows and records each result.
outbox = Table(
    "outbox",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    Column("journey_id", PKType),
    Column("enrolment_id", PKType),
    Column("step", String(100)),
    Column("channel", String(16), nullable=False),
    Column("class", String(16), nullable=False),  # marketing or transactional
    Column("template", String(100), nullable=False),
    Column("context", JSONType),
    # queued → claimed (by a dispatcher) → sending (handed to the transport) → sent; or skipped,
    # suppressed, failed; `unknown` when a dispatcher died while the transport had the message
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("to_address", String(320)),
    Column("subject", Text),
    Column("unsubscribe_hash", String(64), unique=True),
    Column("not_before", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("lease_until", UTCDateTime),
    # when a dispatcher last claimed it, by the database's clock (PostgreSQL: compared with the
    # server's start after a restart, see outbox.recover)
    Column("claimed_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    # the provider's id of the sent message (SMS BizId / SerialNo, WeChat msgid), and what its
    # delivery receipt said: delivered or undelivered, and when
    Column("provider_ref", String(100)),
    Column("delivery", String(16)),
    Column("delivered_at", UTCDateTime),
    Index("ix_outbox_due", "status", "not_before"),
    Index("ix_outbox_provider_ref", "channel", "provider_ref"),
    Index("ix_outbox_customer_sent", "customer_id", "channel", "sent_at"),
)

# Addresses that must not be written to again (hard bounces, complaints).
suppressions = Table(
    "suppressions",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

coupons = Table(
    "coupons",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    Column("campaign", String(100), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    UniqueConstraint("customer_id", "campaign"),
)
