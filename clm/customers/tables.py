"""Tables of the customers domain."""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from clm.store.schema import JSONType, PKType, UTCDateTime, key_text, metadata

customers = Table(
    "customers",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("external_id", String(200), index=True),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("birthday", Date),
    Column("gender", String(20)),
    Column("city", String(200)),
    Column("region", String(200)),
    Column("country", String(2)),
    Column("timezone", String(64)),
    Column("occupation", String(200)),
    Column("acquisition_channel", String(64), index=True),
    Column("acquisition_campaign", String(200)),
    Column("first_seen_at", UTCDateTime),
    Column("attributes", JSONType),
    # Set when this profile was merged into another; it is then a tombstone that redirects.
    Column("merged_into", PKType, ForeignKey("customers.id"), index=True),
    # the name as search compares it (clm.customers.names.name_keys), family name first and given
    # name first: a prefix of either is one range read of its index, at a million customers too
    Column("name_key", key_text(400)),
    Column("given_name_key", key_text(400)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_customers_names", "last_name", "first_name"),
    # narrow: reports grouped by acquisition channel look up a million customers' channels here
    # instead of in the wide profile rows (SQLite is told to, see clm.lifecycle.kpi)
    Index("ix_customers_id_channel", "id", "acquisition_channel"),
    Index("ix_customers_name_key", "name_key", "id"),
    Index("ix_customers_given_name_key", "given_name_key", "id"),
)

customer_identities = Table(
    "customer_identities",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False, index=True),
    Column("kind", key_text(32), nullable=False),
    Column("value", key_text(320), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "value"),
)

consents = Table(
    "consents",
    metadata,
    Column("customer_id", PKType, ForeignKey("customers.id"), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("source", String(200)),
    PrimaryKeyConstraint("customer_id", "channel"),
)

customer_merges = Table(
    "customer_merges",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("survivor_id", PKType, ForeignKey("customers.id"), nullable=False, index=True),
    Column("merged_id", PKType, ForeignKey("customers.id"), nullable=False, index=True),
    Column("merged_at", UTCDateTime, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("details", JSONType),
)
