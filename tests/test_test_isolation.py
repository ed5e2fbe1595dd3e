"""The test suite never touches data it did not create (a user's `test` database once lost its
`public` schema to it): on PostgreSQL each run works in a schema of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, text


def test_postgres_runs_work_in_a_schema_of_their_own(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs use a temporary file")
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        public_exists = conn.execute(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'")
        ).scalar_one()
    assert schema.startswith("clm_run_")
    assert public_exists == 1


def test_the_test_command_names_the_projects_own_database() -> None:
    script = (Path(__file__).parents[1] / "scripts" / "test").read_text()
    default = re.search(r"CLM_TEST_POSTGRES_URL:-([^}]+)\}", script)
    assert default is not None
    assert default.group(1).rsplit("/", 1)[1] == "clm_test"
    assert "DROP SCHEMA" not in script
