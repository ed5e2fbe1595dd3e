"""Shared fixtures: one real database per test run (SQLite by default, PostgreSQL when
CLM_TEST_DATABASE_URL says so), emptied before each test, and named personas with API keys."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from clm.auth.service import create_api_key
from clm.migrations import load_metadata, upgrade
from clm.store.engine import make_engine, normalize_url

warnings.filterwarnings("ignore", message=".*httpx.*", category=DeprecationWarning)


def pytest_report_header() -> str:
    return f"clm test database: {os.environ.get('CLM_TEST_DATABASE_URL') or 'SQLite (temporary file)'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite: a temporary file. PostgreSQL: a schema of this run's own inside the named
    database (created when missing), dropped at the end: a test run never touches anything
    it did not create, and two runs against the same server do not meet."""
    url = os.environ.get("CLM_TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'clm-test.db'}"
        return
    if make_engine(url).dialect.name != "postgresql":
        yield url
        return
    ensure_postgres_database(url)
    schema = f"clm_run_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    owner = make_engine(url)
    with owner.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield with_search_path(url, schema)
    finally:
        with owner.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        owner.dispose()


def ensure_postgres_database(url: str) -> None:
    """Create the test database when it does not exist yet (never drop one)."""
    parsed = make_url(normalize_url(url))
    server = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
        ).first()
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
    server.dispose()


def with_search_path(url: str, schema: str) -> str:
    """The URL with `schema` first on the search path (make_engine keeps URL options)."""
    parsed = make_url(normalize_url(url))
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
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


@pytest.fixture
def server(engine: Engine) -> Iterator[str]:
    """The whole app (API and pages) served by uvicorn on a free local port, for browser tests."""
    import uvicorn

    from clm.api import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
