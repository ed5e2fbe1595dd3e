"""Schema migrations (Alembic): `upgrade` brings any database to the current schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData

HERE = Path(__file__).parent


def load_metadata() -> MetaData:
    """Import every domain's tables so the shared metadata is complete."""
    import clm.analytics.tables
    import clm.auth.tables
    import clm.channels.tables
    import clm.commerce.tables
    import clm.customers.tables
    import clm.demo.tables
    import clm.events.tables
    import clm.feedback.tables
    import clm.journeys.tables
    import clm.lifecycle.tables
    import clm.loyalty.tables
    import clm.segments.tables
    import clm.worker.tables  # noqa: F401
    from clm.store.schema import metadata

    return metadata


def config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema; safe to run on an up-to-date database."""
    command.upgrade(config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(config()).get_current_head()


def schema_diff(engine: Engine) -> list[Any]:
    """Differences between the models and the migrated database (empty when they agree)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        metadata = load_metadata()
        return list(compare_metadata(ctx, metadata)) + _collation_diff(conn, metadata)


# ("collation", table, column, the database's, the model's): None is the type's default
_CollationDiff = tuple[str, str, str, str | None, str | None]


def _collation_diff(conn: Connection, metadata: MetaData) -> list[_CollationDiff]:
    """PostgreSQL columns whose collation is not the model's: Alembic does not compare them.
    Reported beside Alembic's differences, in the same list."""
    if conn.dialect.name != "postgresql":
        return []
    stored = {
        (table, column): collation
        for table, column, collation in conn.exec_driver_sql(
            "SELECT c.relname, a.attname, CASE WHEN a.attcollation = t.typcollation THEN NULL"
            " ELSE co.collname END FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_collation co ON co.oid = a.attcollation"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
            " AND a.attnum > 0 AND a.attcollation <> 0"
        )
    }
    wrong = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            wanted = getattr(column.type.dialect_impl(conn.dialect), "collation", None)
            have = stored.get((table.name, column.name))
            if (table.name, column.name) in stored and have != wanted:
                wrong.append(("collation", table.name, column.name, have, wanted))
    return wrong


def reset_schema(engine: Engine) -> None:
    """Drop every table (data included) and build the schema again; for demos and tests."""
    from sqlalchemy import text

    metadata = load_metadata()
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(engine)
