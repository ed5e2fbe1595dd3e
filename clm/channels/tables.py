"""Tables of the channels domain: message templates a user added (the presets ship as files)."""

from sqlalchemy import Column, String, Table

from clm.store.schema import JSONType, UTCDateTime, metadata

message_templates = Table(
    "message_templates",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("definition", JSONType, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
