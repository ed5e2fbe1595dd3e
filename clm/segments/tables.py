"""Tables of the segments domain: definitions, current members, and past memberships."""

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from clm.store.schema import JSONType, PKType, UTCDateTime, metadata

segments = Table(
    "segments",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("kind", String(16), nullable=False),  # dynamic (follows a condition) or static (a list)
    Column("condition", JSONType),  # the JSON form; null for a static list
    Column("condition_text", Text),
    # the kinds of data the condition reads ("event:product_view", "orders", "profile", …):
    # an ingested change re-checks only the segments that depend on it
    Column("depends", JSONType, nullable=False),
    Column("builtin", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("built_at", UTCDateTime),
    Column("members", Integer, nullable=False, default=0),
)

# Who is in a segment now, since when, and which run put them there.
segment_members = Table(
    "segment_members",
    metadata,
    Column("segment_id", PKType, ForeignKey("segments.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    Column("entered_at", UTCDateTime, nullable=False),
    Column("run_id", String(36), nullable=False),
    PrimaryKeyConstraint("segment_id", "customer_id"),
    Index("ix_segment_members_customer_id", "customer_id"),
    Index("ix_segment_members_run_id", "run_id"),
)

# A membership that ended: the row moves here from segment_members when the customer leaves.
segment_exits = Table(
    "segment_exits",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("segment_id", PKType, ForeignKey("segments.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    Column("entered_at", UTCDateTime, nullable=False),
    Column("exited_at", UTCDateTime, nullable=False),
    Column("run_id", String(36), nullable=False),
    Index("ix_segment_exits_customer_id", "customer_id"),
    Index("ix_segment_exits_segment_time", "segment_id", "exited_at"),
    Index("ix_segment_exits_run_id", "run_id"),
)

# The segment's size after each full evaluation (a rebuild): the console draws its trend from it.
segment_sizes = Table(
    "segment_sizes",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("segment_id", PKType, ForeignKey("segments.id", ondelete="CASCADE"), nullable=False),
    Column("measured_at", UTCDateTime, nullable=False),
    Column("members", Integer, nullable=False),
    Column("entered", Integer, nullable=False),
    Column("exited", Integer, nullable=False),
    Index("ix_segment_sizes_segment_time", "segment_id", "measured_at"),
)
