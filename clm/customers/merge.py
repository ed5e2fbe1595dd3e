"""Merging duplicate profiles into one survivor, and finding suspected duplicates.

A merge moves every row that points at the merged profile (events, orders, and whatever later
domains add) to the survivor. The tables to move are read from the database's own foreign keys,
so a new domain's table follows merges without this module knowing it exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import aliased

from clm.auth.service import record_audit
from clm.core.errors import InvalidInput, NotFound
from clm.core.timeutil import utcnow
from clm.customers.locks import lock_customers
from clm.customers.names import name_keys
from clm.customers.schemas import PROFILE_FIELDS, DuplicatePair
from clm.customers.tables import consents, customer_identities, customer_merges, customers
from clm.store.sql import strpos

# Our own tables are merged explicitly below; everything else referencing customers is generic.
_OWN_TABLES = {"customers", "customer_identities", "consents", "customer_merges"}
# Rebuilds of per-customer summaries kept by domains above this one, run inside every merge
# once the survivor holds all the rows (see `after_merge`).
_after_merge: list[Callable[[Connection, int], None]] = []
_reference_cache: dict[tuple[str, frozenset[str]], list[tuple[str, str, list[list[str]]]]] = {}


def after_merge(rebuild: Callable[[Connection, int], None]) -> None:
    """Have `rebuild(conn, survivor)` run inside every merge, after the rows have moved: for a
    summary whose rows must stay one per key (a plain moved row would be a duplicate)."""
    _after_merge.append(rebuild)


def merge_customers(
    engine: Engine, survivor_id: int, merged_ids: Sequence[int], *, reason: str, actor: str
) -> int:
    """Merge profiles by hand (e.g. after reviewing suspected duplicates); return the survivor."""
    with engine.begin() as conn:
        survivor = live_id(conn, survivor_id)
        others = sorted({live_id(conn, m) for m in merged_ids} - {survivor})
        if not others:
            raise InvalidInput("nothing to merge: the profiles are already one", "merged_ids")
        merge_into(conn, survivor, others, reason=reason, actor=actor)
    return survivor


def live_id(conn: Connection, customer_id: int) -> int:
    """The id of the profile that now holds `customer_id` (itself unless it was merged)."""
    current = customer_id
    for _ in range(32):
        row = conn.execute(select(customers.c.merged_into).where(customers.c.id == current)).first()
        if row is None:
            raise NotFound(f"no customer with id {customer_id}")
        if row[0] is None:
            return current
        current = row[0]
    raise NotFound(f"customer {customer_id} has a broken merge chain")


def merge_into(
    conn: Connection,
    survivor: int,
    merged: Sequence[int],
    *,
    reason: str,
    actor: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Fold `merged` profiles into `survivor` inside the caller's transaction."""
    merged = [m for m in merged if m != survivor]
    if not merged:
        return
    # the profiles first, in id order, as every writer takes them: then the rows that hang
    # off them (features, memberships) cannot be held by a refresh waiting for us
    lock_customers(conn, [survivor, *merged])
    now = utcnow()
    _merge_profile_fields(conn, survivor, merged, now)
    _merge_consents(conn, survivor, merged)
    conn.execute(
        update(customer_identities)
        .where(customer_identities.c.customer_id.in_(merged))
        .values(customer_id=survivor)
    )
    _move_references(conn, survivor, merged)
    for rebuild in _after_merge:
        rebuild(conn, survivor)
    conn.execute(
        update(customers)
        .where(or_(customers.c.id.in_(merged), customers.c.merged_into.in_(merged)))
        .values(merged_into=survivor, updated_at=now)
    )
    conn.execute(
        insert(customer_merges),
        [
            {
                "survivor_id": survivor,
                "merged_id": m,
                "merged_at": now,
                "reason": reason,
                "actor": actor,
                "details": details,
            }
            for m in merged
        ],
    )
    record_audit(
        conn,
        actor,
        "customer.merge",
        "customer",
        str(survivor),
        {"merged": list(merged), "reason": reason},
    )


def _merge_profile_fields(conn: Connection, survivor: int, merged: Sequence[int], now: Any) -> None:
    """The survivor keeps its own values; gaps are filled from the merged profiles, oldest first."""
    rows = {
        r["id"]: r
        for r in conn.execute(select(customers).where(customers.c.id.in_([survivor, *merged]))).mappings()
    }
    base = rows[survivor]
    values: dict[str, Any] = {}
    for name in PROFILE_FIELDS:
        if base[name] is None:
            for m in sorted(merged):
                if rows[m][name] is not None:
                    values[name] = rows[m][name]
                    break
    seen = [r["first_seen_at"] for r in rows.values() if r["first_seen_at"] is not None]
    if seen:
        values["first_seen_at"] = min(seen)
    attributes: dict[str, Any] = {}
    for m in sorted(merged, reverse=True):
        attributes.update(rows[m]["attributes"] or {})
    attributes.update(base["attributes"] or {})
    values["attributes"] = attributes
    if "first_name" in values or "last_name" in values:
        first, last = values.get("first_name", base["first_name"]), values.get("last_name", base["last_name"])
        values.update(name_keys(first, last))
    values["updated_at"] = now
    conn.execute(update(customers).where(customers.c.id == survivor).values(**values))


def _merge_consents(conn: Connection, survivor: int, merged: Sequence[int]) -> None:
    """Per channel the stricter answer wins: a withdrawal on any profile withdraws for all."""
    rows = (
        conn.execute(select(consents).where(consents.c.customer_id.in_([survivor, *merged]))).mappings().all()
    )
    by_channel: dict[str, dict[str, Any]] = {}
    for r in rows:
        best = by_channel.get(r["channel"])
        stricter = best is None or (best["granted"] and not r["granted"])
        same_but_newer = (
            best is not None and best["granted"] == r["granted"] and r["updated_at"] > best["updated_at"]
        )
        if stricter or same_but_newer:
            by_channel[r["channel"]] = dict(r)
    conn.execute(delete(consents).where(consents.c.customer_id.in_([survivor, *merged])))
    if by_channel:
        conn.execute(insert(consents), [{**r, "customer_id": survivor} for r in by_channel.values()])


def _references(conn: Connection) -> list[tuple[str, str, list[list[str]]]]:
    """(table, column, unique column sets containing it) for every foreign key to customers.id."""
    insp = inspect(conn)
    names = frozenset(insp.get_table_names())
    key = (str(conn.engine.url), names)
    if key not in _reference_cache:
        found = []
        for table in sorted(names - _OWN_TABLES):
            for fk in insp.get_foreign_keys(table):
                if fk["referred_table"] == "customers" and fk["referred_columns"] == ["id"]:
                    column = fk["constrained_columns"][0]
                    uniques: list[list[str]] = [
                        [c for c in u["column_names"] if c] for u in insp.get_unique_constraints(table)
                    ]
                    pk = insp.get_pk_constraint(table)["constrained_columns"]
                    uniques += [pk] if pk else []
                    uniques += [
                        [c for c in ix["column_names"] if c]
                        for ix in insp.get_indexes(table)
                        if ix.get("unique")
                    ]
                    found.append((table, column, [u for u in uniques if column in u]))
        _reference_cache[key] = found
    return _reference_cache[key]


def _move_references(conn: Connection, survivor: int, merged: Sequence[int]) -> None:
    quote = conn.dialect.identifier_preparer.quote
    params: dict[str, Any] = {"survivor": survivor}
    placeholders = []
    for i, m in enumerate(merged):
        params[f"m{i}"] = m
        placeholders.append(f":m{i}")
    merged_list = ", ".join(placeholders)
    for table, column, unique_sets in _references(conn):
        t, c = quote(table), quote(column)
        guard = ""
        for cols in unique_sets:
            same = "".join(f" AND other.{quote(o)} = {t}.{quote(o)}" for o in cols if o != column)
            # neither a row the survivor already has, nor a second merged profile's row for the
            # same key (the lowest merged id's row moves; the subquery sees the table as it was)
            guard += f" AND NOT EXISTS (SELECT 1 FROM {t} AS other WHERE other.{c} = :survivor{same})"
            guard += (
                f" AND NOT EXISTS (SELECT 1 FROM {t} AS other"
                f" WHERE other.{c} IN ({merged_list}) AND other.{c} < {t}.{c}{same})"
            )
        conn.execute(text(f"UPDATE {t} SET {c} = :survivor WHERE {c} IN ({merged_list}){guard}"), params)
        if unique_sets:
            # Rows that would clash with the survivor's own or each other (e.g. one membership
            # per segment): the row that moved stands for them all.
            conn.execute(text(f"DELETE FROM {t} WHERE {c} IN ({merged_list})"), params)


def suspected_duplicates(engine: Engine, limit: int = 100) -> list[DuplicatePair]:
    """Pairs of live profiles that look like one person: same name and a second matching detail,
    the most telling matches (same birthday) first."""
    a, b = aliased(customers), aliased(customers)
    same_name = and_(
        func.lower(a.c.first_name) == func.lower(b.c.first_name),
        func.lower(a.c.last_name) == func.lower(b.c.last_name),
        a.c.id < b.c.id,
        a.c.merged_into.is_(None),
        b.c.merged_into.is_(None),
    )
    local_part = func.substr(a.c.email, 1, strpos(a.c.email, "@"))
    other_local = func.substr(b.c.email, 1, strpos(b.c.email, "@"))
    rules = [
        ("same name and birthday", a.c.birthday == b.c.birthday),
        ("same name and email user name", and_(local_part == other_local, a.c.email != b.c.email)),
        (
            "same name, city and occupation",
            and_(a.c.city == b.c.city, a.c.occupation == b.c.occupation),
        ),
    ]
    found: dict[tuple[int, int], DuplicatePair] = {}  # strongest rule first
    with engine.connect() as conn:
        for reason, extra in rules:
            query = (
                select(a.c.id, b.c.id, a.c.first_name, a.c.last_name)
                .where(same_name, extra)
                .order_by(a.c.id, b.c.id)
                .limit(limit)
            )
            for x, y, first, last in conn.execute(query):
                found.setdefault((x, y), DuplicatePair(x, y, reason, f"{first} {last}"))
    return list(found.values())[:limit]
