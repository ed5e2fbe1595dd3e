"""Fast set-based writes: many rows in one statement or COPY, skipping rows that already exist.

This is the hot path of ingestion. Rows arrive as tuples already in their stored form
(see `schema.to_db_timestamp`; JSON as text), so no per-row type processing happens here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table

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
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(conflict_columns)}) DO NOTHING"
    )
    before = dbapi.total_changes
    cursor = dbapi.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()
    return int(dbapi.total_changes - before)


def _pg_copy_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
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
        with cursor.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
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
    cursor = dbapi.cursor()
    try:
        cursor.executemany(
            f"INSERT INTO {table.name} ({cols}) VALUES ({', '.join('?' * len(columns))})", rows
        )
    finally:
        cursor.close()


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
        return list(
            conn.exec_driver_sql(
                "SELECT nextval(%(s)s) FROM generate_series(1, %(n)s)", {"s": sequence, "n": count}
            ).scalars()
        )
    start = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table.name}").scalar_one()
    return list(range(start + 1, start + count + 1))


def update_if_earlier(conn: Connection, table: Table, column: str, values: dict[int, datetime]) -> None:
    """Set `column` to the given time for each id where it is NULL or later (one pass)."""
    if not values:
        return
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS _stage_times (id bigint, ts timestamptz) ON COMMIT DROP"
            )
            with cursor.copy("COPY _stage_times (id, ts) FROM STDIN") as copy:
                for key, ts in values.items():
                    copy.write_row((key, ts))
            cursor.execute(
                f"UPDATE {table.name} AS t SET {column} = s.ts FROM _stage_times AS s "
                f"WHERE t.id = s.id AND (t.{column} IS NULL OR t.{column} > s.ts)"
            )
            cursor.execute("DROP TABLE _stage_times")
        return
    rows = [(ts, key, ts) for key, ts in ((k, to_db_timestamp(v, "sqlite")) for k, v in values.items())]
    cursor = dbapi.cursor()
    try:
        cursor.executemany(
            f"UPDATE {table.name} SET {column} = ? WHERE id = ? AND ({column} IS NULL OR {column} > ?)",
            rows,
        )
    finally:
        cursor.close()
