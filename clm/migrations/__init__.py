"""Schema migrations (Alembic): `upgrade` brings any database to the current schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

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
        return list(compare_metadata(ctx, load_metadata()))


def reset_schema(engine: Engine) -> None:
    """Drop every table (data included) and build the schema again; for demos and tests."""
    from sqlalchemy import text

    metadata = load_metadata()
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(engine)
