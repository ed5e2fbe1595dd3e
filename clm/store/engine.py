"""Engine creation: one code path for the embedded SQLite file and for PostgreSQL."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from clm.core.errors import UnusableInput
from clm.core.settings import settings
from clm.store.sql import local_time_sqlite


def normalize_url(url: str) -> str:
    """Accept plain postgres:// URLs and point them at psycopg 3, our PostgreSQL driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL and foreign keys. On SQLite, transactions begun on
    purpose (`engine.begin()`, `conn.begin()`) take the write lock at once, and transactions
    SQLAlchemy begins by itself for a statement (`engine.connect()` and read) do not: write in
    `engine.begin()`, never in `engine.connect()` with `commit()`."""
    url = normalize_url(url or settings().database_url)
    try:
        parsed = make_url(url)
    except Exception:
        raise UnusableInput(f"not a database URL: {url!r}")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # No JIT: compiling our wide report queries (a full stage run's features, say) takes
        # PostgreSQL seconds of LLVM time, more than the compiled code then saves.
        # No server-side prepared statements: psycopg prepares a statement after its fifth run,
        # and PostgreSQL may then switch to a generic plan that cannot see how many ids an
        # `= ANY(:scope)` list holds (`store.sql.in_ids`): 3x slower re-evaluations after ingestion.
        # Options given in the URL (`?options=-csearch_path=...`) are kept beside ours.
        given = parsed.query.get("options") or ()
        options = " ".join(["-c timezone=UTC -c jit=off", *([given] if isinstance(given, str) else given)])
        return create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"options": options, "prepare_threshold": None},
            **kwargs,
        )
    raise UnusableInput(f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL")


class _SQLiteCompiler(SQLiteCompiler):
    """SQLAlchemy's SQLite compiler drops table hints; SQLite has one, `INDEXED BY`, for the
    few queries where its planner cannot know that a narrow index beats the rowid lookup."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def _configure_sqlite(engine: Engine) -> None:
    engine.dialect.statement_compiler = _SQLiteCompiler

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) decide when transactions begin, so that we can
        # start a writer's with BEGIN IMMEDIATE: concurrent writers then wait for the lock
        # instead of failing with "database is locked" when a read upgrades to a write
        # (a reader's starts with a deferred BEGIN: see on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # A larger page cache than the default 2 MB keeps more of the indexes of big tables in
        # memory (64 MB; a bulk load's connection uses less: see `LOAD_CACHE_KIB`).
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        # Sorts and temporary tables too big for the page cache spill to temporary files (kept
        # in the OS's file cache while there is room): memory stays bounded whatever the data,
        # and a stage run over 5M events took 2.6 s this way against 6.9 s all in memory.
        cursor.execute("PRAGMA temp_store=FILE")
        # Checkpoint the WAL every ~40 MB rather than every 4 MB: index pages touched by many
        # chunks of a bulk load are then written back once, not once per chunk.
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.close()
        # SQLite has no time zone database: days and months in the store's zone (clm.store.sql)
        dbapi_connection.create_function("clm_local_time", 2, local_time_sqlite, deterministic=True)

    @event.listens_for(engine, "before_execute")
    def before_execute(conn: Connection, *_: Any) -> None:
        if not conn.in_transaction():  # this statement is about to begin a transaction itself
            conn.execution_options(**{_AUTOBEGUN: True})

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        # A transaction that SQLAlchemy begins for a statement (`with engine.connect()`, then
        # reads) is a reader's: a deferred BEGIN, a snapshot that neither waits for nor blocks
        # writers. One begun on purpose (`engine.begin()`, `conn.begin()`) is a writer's.
        deferred = options.get(_AUTOBEGUN) or options.get(_READ_ONLY)
        # set at every transaction (it cannot change inside one), so a pooled connection
        # never keeps a bulk load's setting
        loading = bool(options.get(UNCHECKED_KEYS))
        conn.exec_driver_sql(f"PRAGMA foreign_keys={'OFF' if loading else 'ON'}")
        conn.exec_driver_sql(f"PRAGMA cache_size=-{LOAD_CACHE_KIB if loading else CACHE_KIB}")
        patience = None
        if options.get(_NO_WAIT) and not deferred:
            patience = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
        try:
            conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")
        finally:
            if patience is not None:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={int(patience)}")
            conn.execution_options(**{_AUTOBEGUN: False})  # (the PRAGMAs above went through before_execute)


_READ_ONLY = "clm_read_only"
_NO_WAIT = "clm_no_wait"
_AUTOBEGUN = "clm_autobegun"
# SQLite: an engine with this option writes without checking foreign keys row by row; only
# for a bulk load that checks them all at once afterwards (see store.bulk.set_aside_for_load).
# Its connection keeps a smaller page cache too: such a load appends to a table whose indexes
# are set aside, and a 5M-event load ran as fast with 16 MB as with 64, 50 MB lighter.
UNCHECKED_KEYS = "clm_unchecked_keys"
CACHE_KIB = 65_536
LOAD_CACHE_KIB = 16_384


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for a report that only reads, even inside `conn.begin()`. On SQLite it reads
    a snapshot without taking the write lock, so reports neither wait for ingestion nor hold it
    up, and can run side by side; on PostgreSQL every transaction already works that way.
    (A plain `engine.connect()` that only executes reads does the same.)"""
    with engine.connect() as conn:
        yield conn.execution_options(**{_READ_ONLY: True})


@contextmanager
def writing_unless_busy(engine: Engine) -> Iterator[Connection]:
    """A write transaction that fails at once with a busy error (`is_busy`) where another
    writer holds the lock it needs, instead of waiting: for writes that may be skipped, such as
    noting when an API key was last used, in requests that must not wait for a bulk load."""
    with engine.connect() as conn:
        conn.execution_options(**{_NO_WAIT: True})
        with conn.begin():
            if is_postgres(conn):
                conn.exec_driver_sql("SET LOCAL lock_timeout = '1ms'")  # (0 would mean: wait forever)
            yield conn


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


log = logging.getLogger("clm.store")
T = TypeVar("T")
# PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back whole
# and may simply run again
_RETRYABLE = frozenset({"40P01", "40001"})


def retrying(work: Callable[[], T], attempts: int = 4) -> T:
    """Run `work` (which opens and commits its own transactions) again when PostgreSQL aborted
    it as a deadlock victim. Locks on profiles are taken in id order, so deadlocks should not
    happen; this is the safety net for the orders we do not control (foreign-key checks, merges).
    Only for work that is safe to repeat: idempotent ingestion, re-evaluations."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as exc:
            if attempt == attempts or getattr(exc.orig, "sqlstate", None) not in _RETRYABLE:
                raise
            log.warning("transaction aborted (%s); running it again", str(exc.orig).splitlines()[0])
            time.sleep(random.uniform(0, 0.02 * attempt))  # let the other transaction finish first
    raise AssertionError("unreachable")


def in_retried_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """`work(conn)` in a transaction of its own, run again whole if it is a deadlock victim."""

    def attempt() -> T:
        with engine.begin() as conn:
            return work(conn)

    return retrying(attempt)


def is_busy(exc: BaseException) -> bool:
    """Whether a database error only means another writer held the lock for too long: SQLite's
    single write lock past the busy timeout (a bulk import holds it chunk after chunk), or
    PostgreSQL's lock_not_available. Nothing was written; the same request can simply come again."""
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) == "55P03":
        return True
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig)


def store_advice(engine: Engine) -> list[str]:
    """What about the server's settings will hurt CLM, said once at `clm init` and `clm serve`.
    PostgreSQL without autovacuum never refreshes its planner statistics: as tables grow, the
    per-customer re-evaluation after every API batch reads all events (40 ms instead of 12 for
    500 customers of 100,000 events, and worse as they grow)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        autovacuum = conn.exec_driver_sql("SHOW autovacuum").scalar()
    if autovacuum == "off":
        return [
            "PostgreSQL's autovacuum is off: planner statistics go stale as tables grow and "
            "per-customer queries become full scans; turn it on, or run ANALYZE regularly"
        ]
    return []


def refresh_statistics(engine: Engine, tables: Collection[Table]) -> None:
    """PostgreSQL's planner statistics for tables a bulk load just filled, before anything reads
    them: autovacuum would gather them within a minute or so, and until then every statement is
    planned for the tables as they were (for 1M events into a new store, the refresh of 200,000
    profiles afterwards took ~11 s instead of ~9 with the ANALYZE, which samples a bounded
    number of rows whatever the table's size). SQLite plans well without them."""
    if engine.dialect.name != "postgresql" or not tables:
        return
    names = ", ".join(sorted(t.name for t in tables))
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f"ANALYZE {names}")
