"""Shared fixtures: one real database per test run (SQLite by default, PostgreSQL when
CLM_TEST_DATABASE_URL says so), emptied before each test, and named personas with API keys."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from clm.auth.service import create_api_key
from clm.migrations import load_metadata, upgrade
from clm.store.engine import make_engine

warnings.filterwarnings("ignore", message=".*httpx.*", category=DeprecationWarning)


def pytest_report_header() -> str:
    return f"clm test database: {os.environ.get('CLM_TEST_DATABASE_URL') or 'SQLite (temporary file)'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("CLM_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'clm-test.db'}"


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    yield engine
    engine.dispose()


def empty_all_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(load_metadata().sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    """The test database, empty at the start of the test."""
    empty_all_tables(migrated_engine)
    return migrated_engine


@pytest.fixture
def db_url(engine: Engine) -> str:
    """URL of the (emptied) test database, for CLI runs with --db."""
    return engine.url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class Personas:
    """alice is an admin, mark a marketer, ana an analyst, vic a viewer (keys for the API)."""

    alice: str
    mark: str
    ana: str
    vic: str

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, who)}"}


@pytest.fixture
def personas(engine: Engine) -> Personas:
    keys = {
        who: create_api_key(engine, who, role)[1]
        for who, role in (
            ("alice", "admin"),
            ("mark", "marketer"),
            ("ana", "analyst"),
            ("vic", "viewer"),
        )
    }
    return Personas(**keys)


@pytest.fixture
def client(engine: Engine):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from clm.api import create_app

    with TestClient(create_app(engine)) as test_client:
        yield test_client


@pytest.fixture
def write_file(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a text file into the test's temporary folder and return its path."""

    def write(name: str, content: str) -> Path:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        return path

    return write
