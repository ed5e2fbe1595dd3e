"""Fast set-based writes: many rows in one statement or COPY, skipping rows that already exist.

This is the hot path of ingestion. Rows arrive as tuples already in their stored form
(see `schema.to_db_timestamp`; JSON as text), so no per-row type processing happens here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import chain
from typing import Any, cast

from sqlalchemy import Connection, Engine, ForeignKeyConstraint, Table
from sqlalchemy.schema import AddConstraint

from clm.core.errors import StoreInconsistent
from clm.store.engine import UNCHECKED_KEYS, in_retried_transaction, retrying
from clm.store.pgcopy import copy_text
from clm.store.schema import to_db_timestamp


def insert_ignore_many(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    conflict_columns: Sequence[str],
) -> int:
    """Insert rows, silently skipping those that clash on `conflict_columns`; return how many went in."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        return _pg_copy_insert(conn, table, columns, rows, conflict_columns)
    return _sqlite_insert(conn, table, columns, rows, conflict_columns)


def _sqlite_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    conflict_columns: Sequence[str],
) -> int:
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    before = dbapi.total_changes
    conflict = f"ON CONFLICT ({', '.join(conflict_columns)}) DO NOTHING"
    _sqlite_values(dbapi, table, columns, len(rows), _by_row(rows), conflict)
    return int(dbapi.total_changes - before)


def insert_ignore_columns(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    values: Sequence[list[Any]],
    conflict_columns: Sequence[str],
) -> int:
    """`insert_ignore_many` for rows given column by column (one list per column): on SQLite
    the statements' values are laid out straight from the columns, no tuple made per row."""
    if conn.dialect.name == "postgresql":
        return insert_ignore_many(conn, table, columns, list(zip(*values, strict=True)), conflict_columns)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    before = dbapi.total_changes
    conflict = f"ON CONFLICT ({', '.join(conflict_columns)}) DO NOTHING"
    _sqlite_values(dbapi, table, columns, len(values[0]), _by_column(values), conflict)
    return int(dbapi.total_changes - before)


# the bound values of rows [start, stop), row after row
_Values = Callable[[int, int], list[Any]]


def _by_row(rows: Sequence[Sequence[Any]]) -> _Values:
    return lambda start, stop: list(chain.from_iterable(rows[start:stop]))


def _by_column(values: Sequence[list[Any]]) -> _Values:
    def laid_out(start: int, stop: int) -> list[Any]:
        width = len(values)
        out: list[Any] = [None] * (width * (stop - start))
        for k, column in enumerate(values):
            out[k::width] = column[start:stop]
        return out

    return laid_out


# Bound values per statement of `_sqlite_values`: under SQLite's default limit (32,766).
_SQLITE_MAX_VALUES = 28_000


def _sqlite_values(
    dbapi: Any, table: Table, columns: Sequence[str], count: int, values: _Values, tail: str = ""
) -> None:
    """Rows inserted thousands to a statement (`INSERT … VALUES (…), (…), …`).

    Why not `executemany`: it hands every row to SQLite separately, taking Python's interpreter
    lock back after each; with another thread busy in Python (an import checking the next
    chunk) each take waits up to the 5 ms switch interval, so the insert crawled. One statement
    of thousands of rows runs its whole B-tree work without the lock, and alone is ~20% faster.
    Statements hold a power of two of rows: the driver caches each statement it compiles (a
    few MB at this size), so only a dozen sizes may ever be asked for."""
    width = len(columns)
    most = 1 << max(0, (_SQLITE_MAX_VALUES // width).bit_length() - 1)
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    row = "(" + ",".join("?" * width) + ")"
    cursor = dbapi.cursor()
    try:
        start = 0
        while start < count:
            per = min(most, 1 << ((count - start).bit_length() - 1))
            cursor.execute(f"{head}{','.join([row] * per)} {tail}", values(start, start + per))
            start += per
    finally:
        cursor.close()


def insert_ignore_copy(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    body: str | bytes,
    conflict_columns: Sequence[str],
) -> int:
    """`insert_ignore_many` on PostgreSQL for rows already in a COPY body: text (`copy_text`)
    or binary (`copy_binary`)."""
    return _pg_copy_insert(conn, table, columns, body, conflict_columns)


def copy_new_rows(conn: Connection, table: Table, columns: Sequence[str], body: str | bytes) -> bool:
    """COPY rows (a text or binary body) straight into `table` (PostgreSQL), betting that none
    of them is there yet: the fastest load there is. Returns False, having written nothing, when
    a row clashed with a unique key; the caller then takes the careful `insert_ignore_copy` way."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    try:
        with (
            conn.begin_nested(),
            dbapi.cursor() as cursor,  # type: ignore[attr-defined]
            cursor.copy(_copy_from(table.name, columns, body)) as copy,
        ):
            copy.write(body)
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == _UNIQUE_VIOLATION:
            return False
        raise
    return True


_UNIQUE_VIOLATION = "23505"


def _copy_from(table: str, columns: Sequence[str], body: object) -> str:
    """The COPY statement for a body: bytes are the binary format (anything else: text)."""
    binary = " (FORMAT binary)" if isinstance(body, bytes) else ""
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN{binary}"


def _pg_copy_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]] | str | bytes,
    conflict_columns: Sequence[str],
) -> int:
    # COPY into a per-transaction staging table, then one INSERT … SELECT … ON CONFLICT:
    # COPY alone is the fastest load but cannot skip duplicates.
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    stage = f"_stage_{table.name}"
    cols = ", ".join(columns)
    with dbapi.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS "
            f"SELECT {cols} FROM {table.name} WITH NO DATA"
        )
        with cursor.copy(_copy_from(stage, columns, rows)) as copy:
            if isinstance(rows, str | bytes):
                copy.write(rows)
            else:
                for row in rows:
                    copy.write_row(row)
        # DISTINCT ON keeps duplicates inside one batch from aborting the insert.
        key = ", ".join(conflict_columns)
        cursor.execute(
            f"INSERT INTO {table.name} ({cols}) "
            f"SELECT DISTINCT ON ({key}) {cols} FROM {stage} "
            f"ON CONFLICT ({key}) DO NOTHING"
        )
        inserted = cursor.rowcount
        cursor.execute(f"DROP TABLE {stage}")
    return int(inserted)


def upsert_many(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key_columns: Sequence[str],
    update_columns: Sequence[str],
) -> None:
    """Insert rows or, when `key_columns` already exist, overwrite `update_columns` (one statement)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key_columns),
        set_={c: stmt.excluded[c] for c in update_columns},
    )
    conn.execute(stmt, list(rows))


def insert_many(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Plain bulk insert of rows already in stored form (COPY on PostgreSQL)."""
    if not rows:
        return
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cols = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cursor, cursor.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
        return
    _sqlite_values(dbapi, table, columns, len(rows), _by_row(rows))


def insert_columns(
    conn: Connection, table: Table, columns: Sequence[str], values: Sequence[Sequence[Any]]
) -> None:
    """`insert_many` for rows given column by column (one sequence per column, already in stored
    form): no tuple per row, on PostgreSQL no `write_row` per row either (see `copy_text`)."""
    if not len(values[0]):
        return
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    if conn.dialect.name == "postgresql":
        body = copy_text([_copy_cells(column) for column in values])
        load = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        with dbapi.cursor() as cursor, cursor.copy(load) as copy:  # type: ignore[attr-defined]
            copy.write(body)
        return
    _sqlite_values(dbapi, table, columns, len(values[0]), _by_column([list(c) for c in values]))


def _copy_cells(column: Sequence[Any]) -> Sequence[str | None]:
    """A column's values as COPY text cells: text as it is; numbers and times spelled out, each
    distinct time once (new profiles' columns of one `now` repeated: spelling it 200,000 times
    took 0.4 s a column)."""
    if all(isinstance(v, str) or v is None for v in column):
        return cast(Sequence[str | None], column)
    if all(type(v) is int for v in column):
        return list(map(str, column))
    times: dict[datetime, str] = {}

    def spell(v: Any) -> str | None:
        if v is None:
            return None
        if isinstance(v, datetime):
            text = times.get(v)
            if text is None:
                text = times[v] = v.isoformat()
            return text
        return str(v)

    return list(map(spell, column))


def reserve_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """Allocate `count` new primary keys for `table`, so rows can be bulk-inserted with known ids.

    PostgreSQL draws them from the column's sequence (safe with concurrent writers); SQLite
    continues after the current maximum, which is safe because a SQLite write transaction
    holds the database's single write lock (see engine.py: BEGIN IMMEDIATE).
    """
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        sequence = conn.exec_driver_sql(
            "SELECT pg_get_serial_sequence(%(t)s, 'id')", {"t": table.name}
        ).scalar_one()
        # one array, not a row per id: the driver reads it in C (200,000 ids 0.63 → 0.24 s)
        ids = conn.exec_driver_sql(
            "SELECT array_agg(nextval(%(s)s)) FROM generate_series(1, %(n)s)", {"s": sequence, "n": count}
        ).scalar_one()
        return list(ids)
    start = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table.name}").scalar_one()
    return list(range(start + 1, start + count + 1))


# up to this many (id, time) pairs go to PostgreSQL as two arrays, more through a temporary table
_ARRAY_ROWS = 5_000


def update_if_earlier(conn: Connection, table: Table, column: str, values: dict[int, datetime]) -> None:
    """Set `column` to the given time for each id where it is NULL or later (one pass)."""
    dialect = conn.dialect.name
    update_if_earlier_stored(
        conn, table, column, [(key, to_db_timestamp(ts, dialect)) for key, ts in values.items()]
    )


def update_if_earlier_stored(
    conn: Connection, table: Table, column: str, rows: Sequence[tuple[int, Any]]
) -> None:
    """`update_if_earlier` for (id, time) pairs whose time is already in its stored form
    (SQLite's text; on PostgreSQL a datetime or ISO text with its offset)."""
    if not rows:
        return
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    if conn.dialect.name == "postgresql":
        # the rows locked in id order first, as every locker of profiles does: an UPDATE
        # joined to the staged times would lock them in hash order and could deadlock
        def update(staged: str, *, only: str = "") -> str:
            return (
                f"WITH s AS (SELECT s.id, s.ts FROM {staged} JOIN {table.name} AS t ON t.id = s.id "
                f"WHERE {only}(t.{column} IS NULL OR t.{column} > s.ts) "
                f"ORDER BY s.id FOR NO KEY UPDATE OF t) "
                f"UPDATE {table.name} AS t SET {column} = s.ts FROM s "
                f"WHERE t.id = s.id AND (t.{column} IS NULL OR t.{column} > s.ts)"
            )

        with dbapi.cursor() as cursor:  # type: ignore[attr-defined]
            if len(rows) <= _ARRAY_ROWS:
                # an API batch: the ids repeated as `= ANY` make PostgreSQL fetch just these rows
                # by key; joined to the times alone it hashes the whole table for a few hundred
                # (with 45,000 profiles 11 ms instead of 2, growing with the table)
                ids = [int(key) for key, _ in rows]
                times = [ts if isinstance(ts, str) else ts.isoformat() for _, ts in rows]
                staged = "unnest(%(ids)s::bigint[], %(ts)s::timestamptz[]) AS s(id, ts)"
                cursor.execute(
                    update(staged, only="t.id = ANY(%(ids)s::bigint[]) AND "), {"ids": ids, "ts": times}
                )
                return
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS _stage_times (id bigint, ts timestamptz) ON COMMIT DROP"
            )
            with cursor.copy("COPY _stage_times (id, ts) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(update("_stage_times AS s"))
            cursor.execute("DROP TABLE _stage_times")
        return
    cursor = dbapi.cursor()
    try:
        cursor.executemany(
            f"UPDATE {table.name} SET {column} = ?2 WHERE id = ?1 AND ({column} IS NULL OR {column} > ?2)",
            rows,
        )
    finally:
        cursor.close()


def approximate_rows(conn: Connection, table: Table) -> int:
    """Roughly how many rows `table` holds, without counting them (a bulk load's yardstick)."""
    if conn.dialect.name == "postgresql":
        estimate = conn.exec_driver_sql(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%(t)s)", {"t": table.name}
        ).scalar()
        if estimate is not None and estimate >= 0:
            return int(estimate)
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table.name}").scalar_one())
    # ids only grow, so the span of rowids bounds the count from above
    span = f"SELECT coalesce(max(rowid) - min(rowid) + 1, 0) FROM {table.name}"
    return int(conn.exec_driver_sql(span).scalar_one())


@contextmanager
def set_aside_for_load(
    engine: Engine, table: Table, index_names: Sequence[str], *, before_keys: Repair | None = None
) -> Iterator[Engine]:
    """Drop some secondary indexes of `table`, and set its foreign keys aside, for a bulk load;
    build them again afterwards. Yields the engine to load with.

    Why: keeping an index up to date row by row costs a random B-tree insert per row; building
    it once from sorted data afterwards is several times cheaper when the load is large next to
    the table. A foreign key is checked row by row too: on PostgreSQL by a trigger, over half
    the cost of COPYing an event; on SQLite by a lookup, 1.4 µs of a 4.5 µs insert. Afterwards
    the same check is one pass over the whole table (0.4 s a million rows). PostgreSQL's keys
    are dropped and added back; SQLite's cannot be dropped, so the yielded engine's
    transactions do not enforce them (`UNCHECKED_KEYS`) and the rows are checked at the end.
    Either way the keys hold again before anything is reported. Should the process die in
    between, `restore_set_aside` (run by `clm init` and at the start of every import) puts back
    what is missing. While a key is away, whatever follows it (a merge moving a profile's rows)
    does not see the table: `before_keys` puts such rows right once the indexes are back.
    """

    def set_aside(conn: Connection) -> None:
        _lock_referred_first(conn, table, "ACCESS EXCLUSIVE")
        for index in table.indexes:
            if index.name in index_names:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
        if conn.dialect.name == "postgresql":
            for key in table.foreign_key_constraints:
                conn.exec_driver_sql(f"ALTER TABLE {table.name} DROP CONSTRAINT IF EXISTS {_name(conn, key)}")

    in_retried_transaction(engine, set_aside)  # (a safety net: see `_lock_referred_first`)
    try:
        if engine.dialect.name == "sqlite" and table.foreign_key_constraints:
            yield engine.execution_options(**{UNCHECKED_KEYS: True})
        else:
            yield engine
    finally:
        restore_set_aside(engine, [table], before_keys=before_keys)


# Put right, in the store behind the engine, what went wrong while foreign keys were away.
Repair = Callable[[Engine], None]


def restore_set_aside(
    engine: Engine, tables: Sequence[Table], *, before_keys: Repair | None = None
) -> list[str]:
    """Create the model's indexes and foreign keys that are missing from the store (and check
    foreign keys added but not yet checked); return their names. `before_keys` runs between
    the two when a key was missing."""
    rebuilt = retrying(lambda: _restore_indexes(engine, tables))  # (see set_aside_for_load)
    if before_keys is not None and _keys_away(engine, tables):
        before_keys(engine)
    if rebuilt and engine.dialect.name == "sqlite":
        _check_sqlite_keys(engine, tables)  # a load that set indexes aside did not check them
    return rebuilt + retrying(lambda: _restore_foreign_keys(engine, tables))


def _check_sqlite_keys(engine: Engine, tables: Sequence[Table]) -> None:
    """SQLite: fail when a row points at nothing. Each distinct referring value is looked up
    once (read off an index that leads with the key's column, where there is one)."""
    with engine.connect() as conn, _small_sqlite_cache(conn):
        for table in tables:
            for key in table.foreign_key_constraints:
                mine = [c.name for c in key.columns]
                theirs = [e.column.name for e in key.elements]
                parent = key.referred_table.name
                values = ", ".join(mine)
                picked = ", ".join(f"v.{a}" for a in mine)
                joined = " AND ".join(f"p.{b} = v.{a}" for a, b in zip(mine, theirs, strict=True))
                present = " AND ".join(f"v.{a} IS NOT NULL" for a in mine)
                orphan = conn.exec_driver_sql(
                    f"SELECT {picked} FROM (SELECT DISTINCT {values} FROM {table.name}) v WHERE {present}"
                    f" AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {joined}) LIMIT 1"
                ).first()
                if orphan is not None:
                    raise StoreInconsistent(
                        f"{table.name} holds rows whose {values} ({', '.join(map(str, orphan))}) "
                        f"is not in {parent}: they were loaded while foreign keys were not checked"
                    )


@contextmanager
def _small_sqlite_cache(conn: Connection) -> Iterator[None]:
    """SQLite: a small page cache while a pass over a whole big table runs on this connection.
    Its sorter (building an index) holds as much as the page cache, and a table read once fills
    it for nothing: a smaller one keeps the memory of such a pass near the usual size."""
    if conn.dialect.name != "sqlite":
        yield
        return
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    conn.exec_driver_sql(f"PRAGMA cache_size = {_SORT_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")


def _restore_indexes(engine: Engine, tables: Sequence[Table]) -> list[str]:
    with engine.connect() as conn:
        missing = [i for table in tables for i in table.indexes if not _has_index(conn, str(i.name))]
    if not missing:
        return []
    with engine.begin() as conn, _small_sqlite_cache(conn):
        if conn.dialect.name == "sqlite":
            # sort with helper threads: both event indexes over 5M rows in 8.1 s, not 11.2
            conn.exec_driver_sql(f"PRAGMA threads = {min(os.cpu_count() or 1, 4)}")
        else:
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        try:
            for index in missing:
                if not _has_index(conn, str(index.name)):  # another process may have been quicker
                    index.create(conn)
        finally:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA threads = 0")
    return [str(index.name) for index in missing]


# a foreign key of a table, its name, and whether it is there and checked (None: not there)
_KeyState = tuple[Table, ForeignKeyConstraint, str, bool | None]


def _keys_away(engine: Engine, tables: Sequence[Table]) -> bool:
    return any(present is not True for _, _, _, present in _foreign_keys(engine, tables))


def _foreign_keys(engine: Engine, tables: Sequence[Table]) -> list[_KeyState]:
    """The tables' foreign keys as PostgreSQL has them (none listed on SQLite, whose keys
    cannot be dropped)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        present: dict[str, bool] = dict(
            conn.exec_driver_sql(
                "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f'"
                " AND connamespace = current_schema()::regnamespace"
            ).all()
        )
        return [
            (t, k, _name(conn, k), present.get(_name(conn, k)))
            for t in tables
            for k in t.foreign_key_constraints
        ]


def _restore_foreign_keys(engine: Engine, tables: Sequence[Table]) -> list[str]:
    """PostgreSQL: add missing foreign keys NOT VALID (a brief lock, no scan), then VALIDATE
    them: one set-based check that lets writers go on meanwhile."""
    restored = []
    for table, key, name, present in _foreign_keys(engine, tables):
        if present is True:
            continue
        with engine.begin() as conn:
            if present is None:
                _lock_referred_first(conn, table, "SHARE ROW EXCLUSIVE")
                add = AddConstraint(key, isolate_from_table=False).compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"{add} NOT VALID")
                restored.append(name)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {table.name} VALIDATE CONSTRAINT {name}")
    return restored


def _lock_referred_first(conn: Connection, table: Table, mode: str) -> None:
    """PostgreSQL: lock the tables `table`'s keys point to, then `table`, before dropping or
    adding a key (which locks both). Requests take them in that order too (they match
    customers before they store their events), so waiting here cannot close a circle; left to
    the ALTER, the table is locked first and a request holding the other deadlocks with us."""
    if conn.dialect.name != "postgresql":
        return
    referred = sorted({k.referred_table.name for k in table.foreign_key_constraints} - {table.name})
    conn.exec_driver_sql(f"LOCK TABLE {', '.join([*referred, table.name])} IN {mode} MODE")


def _name(conn: Connection, key: ForeignKeyConstraint) -> str:
    return str(conn.dialect.identifier_preparer.format_constraint(key))


_SORT_CACHE_KIB = -16384  # 16 MB, as a negative PRAGMA cache_size (each sorting thread holds as much)


def _has_index(conn: Connection, name: str) -> bool:
    if conn.dialect.name == "postgresql":
        found = conn.exec_driver_sql("SELECT to_regclass(%(n)s)", {"n": name}).scalar()
    else:
        found = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
        ).scalar()
    return found is not None
