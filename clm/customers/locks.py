"""Row locks on profiles: every writer that changes a customer's rows takes them first, in id
order, so two writers of overlapping customers wait for each other instead of deadlocking."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from clm.customers.tables import customers
from clm.store.engine import is_postgres
from clm.store.sql import in_ids


def lock_customers(conn: Connection, customer_ids: Iterable[int]) -> None:
    """Serialise writers per customer: a row lock on PostgreSQL (SQLite's BEGIN IMMEDIATE
    already lets one writer in at a time). Ordered by id, so two lockers cannot deadlock.

    FOR NO KEY UPDATE, not FOR UPDATE: a transaction inserting events or orders holds a key-share
    lock on each of their customers (the foreign key's check), taken in the file's order; a
    FOR UPDATE here would wait for it while it waits for us."""
    ids = sorted(set(customer_ids))
    if not ids or not is_postgres(conn):
        return
    conn.execute(
        select(customers.c.id)
        .where(in_ids(customers.c.id))
        .order_by(customers.c.id)
        .with_for_update(key_share=True),
        {"scope": ids},
    ).all()
