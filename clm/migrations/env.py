"""Alembic environment: runs migrations on the engine handed over by `clm.migrations.upgrade`."""

from alembic import context

from clm.migrations import load_metadata
from clm.store.engine import make_engine

target_metadata = load_metadata()
engine = context.config.attributes.get("engine") or make_engine()

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
