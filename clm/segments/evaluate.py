"""Segment evaluation: a condition compiled to one SQL query, applied to the membership table
set-based (a full rebuild) or for the few customers an event touched (incremental re-check).

Every entry and exit is stored (`segment_members`, `segment_exits`) and emitted as a
`segment_entered` / `segment_exited` event on the system channel, which journeys trigger on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from clm.analytics.tables import churn_scores, clv_scores
from clm.conditions import compile_condition, parse_json, to_text
from clm.customers.locks import lock_customers
from clm.customers.tables import customers
from clm.events.schemas import SYSTEM_CHANNEL, SYSTEM_ID_PREFIX
from clm.events.tables import events
from clm.lifecycle.tables import customer_features, customer_stages
from clm.segments.space import SegmentSpace
from clm.segments.tables import segment_exits, segment_members, segment_sizes, segments
from clm.store.bulk import insert_many
from clm.store.schema import UTCDateTime, to_db_timestamp
from clm.store.sql import in_ids, json_object

ENTERED, EXITED = "segment_entered", "segment_exited"
_LOCK_CLASS = 0x5365  # "Se": PostgreSQL advisory locks per segment id


@dataclass(frozen=True)
class Compiled:
    """A segment condition ready to run: the SQL boolean, what it reads, which windows it uses."""

    where: ColumnElement[bool]  # per customer: for re-checking a few
    depends: frozenset[str]
    joined: frozenset[str]
    windows: frozenset[int]
    text: str
    where_all: ColumnElement[bool] | None = None  # set-based: for evaluating everyone at once

    def params(self, as_of: datetime) -> dict[str, Any]:
        return {"as_of": as_of, **{f"since_{d}d": as_of - timedelta(days=d) for d in self.windows}}


def compile_segment(
    condition: Any, segment_ids: Callable[[str], int | None], text: str | None = None
) -> Compiled:
    """Compile a parsed condition over the segment field space, twice: per customer (re-checks)
    and set-based (full evaluation); errors point into `text`."""
    space = SegmentSpace(segment_ids)
    where = compile_condition(condition, space, text=text)
    whole = SegmentSpace(segment_ids, set_based=True)
    where_all = compile_condition(condition, whole, text=text)
    return Compiled(
        where,
        frozenset(space.depends),
        frozenset(space.joined),
        frozenset(space.windows | whole.windows),
        to_text(condition),
        where_all,
    )


@lru_cache(maxsize=256)
def compiled_definition(condition_json: str, ids: tuple[tuple[str, int], ...]) -> Compiled:
    """A stored definition compiled once per (condition, segment ids) and reused by every re-check."""
    names = dict(ids)
    return compile_segment(parse_json(json.loads(condition_json)), names.get)


def source(joined: Iterable[str]) -> Any:
    """`customers` with the tables a condition reads left-joined on (only those)."""
    wanted = set(joined)
    result: Any = customers
    for name, table in (
        ("features", customer_features),
        ("stage", customer_stages),
        ("value", clv_scores),
        ("churn", churn_scores),
    ):
        if name in wanted:
            result = result.outerjoin(table, table.c.customer_id == customers.c.id)
    return result


def matching(compiled: Compiled, scoped: bool = False) -> Any:
    """SELECT the ids of live customers who satisfy the condition (only `:scope` if scoped)."""
    where = compiled.where if scoped or compiled.where_all is None else compiled.where_all
    query = (
        select(customers.c.id)
        .select_from(source(compiled.joined))
        .where(customers.c.merged_into.is_(None), where)
    )
    return query.where(in_ids(customers.c.id)) if scoped else query


@dataclass
class Changes:
    """What one evaluation changed: customers who entered and left, per segment name."""

    entered: dict[str, int]
    exited: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.entered.values()) + sum(self.exited.values())


def _event_id(segment_id: int, direction: str, run: Any, customer: Any) -> Any:
    return (
        literal(f"{SYSTEM_ID_PREFIX}segment:{segment_id}:{direction}:")
        + run
        + literal(":")
        + cast(customer, String)
    )


def lock_segments(conn: Connection, segment_ids: Iterable[int], *, shared: bool) -> None:
    """Serialise writers of the same segment on PostgreSQL: a full rebuild holds its segment
    exclusively, re-checks share it (and lock their customers' rows against each other).
    SQLite's BEGIN IMMEDIATE already lets one writer in at a time."""
    if conn.dialect.name != "postgresql":
        return
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    for segment_id in sorted(set(segment_ids)):
        conn.exec_driver_sql(f"SELECT {fn}(%(c)s, %(s)s)", {"c": _LOCK_CLASS, "s": int(segment_id)})


def rebuild(
    conn: Connection, segment_id: int, name: str, compiled: Compiled, now: datetime
) -> tuple[int, int]:
    """Make the stored membership equal the condition's answer, set-based; returns (entered, exited)."""
    lock_segments(conn, [segment_id], shared=False)
    if conn.dialect.name == "postgresql":  # room for the hashes of a big segment's joins
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
    run = str(uuid.uuid4())
    m = segment_members
    values = {**compiled.params(now), "run": run, "now": now}
    run_p = bindparam("run", type_=String(36))
    now_p = bindparam("now", type_=UTCDateTime)
    matches = matching(compiled).subquery("matches")
    ours = m.c.segment_id == segment_id
    # NOT EXISTS, not NOT IN: an anti-join on both databases, whatever the sizes (PostgreSQL
    # runs NOT IN over a big subquery row by row once its hash no longer fits in memory)
    still = select(literal(1)).select_from(matches).where(matches.c.id == m.c.customer_id)
    leaving = select(literal(segment_id), m.c.customer_id, m.c.entered_at, now_p, run_p).where(
        ours, ~exists(still)
    )
    conn.execute(
        insert(segment_exits).from_select(
            ["segment_id", "customer_id", "entered_at", "exited_at", "run_id"], leaving
        ),
        values,
    )
    left = select(segment_exits.c.customer_id).where(
        segment_exits.c.run_id == run_p, segment_exits.c.segment_id == segment_id
    )
    conn.execute(delete(m).where(ours, m.c.customer_id.in_(left)), {"run": run})
    already = select(literal(1)).select_from(m).where(ours, m.c.customer_id == matches.c.id)
    joining = select(literal(segment_id), matches.c.id, now_p, run_p).where(~exists(already))
    conn.execute(
        insert(m).from_select(["segment_id", "customer_id", "entered_at", "run_id"], joining), values
    )
    entered = conn.execute(select(func.count()).where(m.c.run_id == run, ours)).scalar_one()
    exited = conn.execute(
        select(func.count()).where(segment_exits.c.run_id == run, segment_exits.c.segment_id == segment_id)
    ).scalar_one()
    _emit(conn, segment_id, name, run, now, entered, exited)
    total = conn.execute(select(func.count()).where(ours)).scalar_one()
    conn.execute(update(segments).where(segments.c.id == segment_id).values(members=total, built_at=now))
    record_size(conn, segment_id, now, entered, exited)
    return int(entered), int(exited)


def record_size(conn: Connection, segment_id: int, now: datetime, entered: int, exited: int) -> None:
    """Note the segment's stored size now (after a rebuild or a static list's edit), for its trend."""
    total = select(segments.c.members).where(segments.c.id == segment_id).scalar_subquery()
    conn.execute(
        insert(segment_sizes).values(
            segment_id=segment_id, measured_at=now, members=total, entered=int(entered), exited=int(exited)
        )
    )


def _emit(
    conn: Connection, segment_id: int, name: str, run: str, now: datetime, entered: int, exited: int
) -> None:
    """One segment_entered / segment_exited event per change of this run."""
    columns = ["event_id", "customer_id", "type", "channel", "occurred_at", "received_at", "properties"]
    run_p = bindparam("run", type_=String(36))
    now_p = bindparam("now", type_=UTCDateTime)
    props = json_object("segment", literal(name), "segment_id", literal(segment_id))
    params = {"run": run, "now": now}
    for count, table, kind, direction in (
        (entered, segment_members, ENTERED, "in"),
        (exited, segment_exits, EXITED, "out"),
    ):
        if not count:
            continue
        rows = select(
            _event_id(segment_id, direction, run_p, table.c.customer_id),
            table.c.customer_id,
            literal(kind),
            literal(SYSTEM_CHANNEL),
            now_p,
            now_p,
            props,
        ).where(table.c.run_id == run_p, table.c.segment_id == segment_id)
        conn.execute(insert(events).from_select(columns, rows), params)


@dataclass(frozen=True)
class Target:
    """A dynamic segment to re-check: its id, name and compiled condition."""

    id: int
    name: str
    compiled: Compiled


def recheck(
    conn: Connection,
    levels: Sequence[Sequence[Target]],
    customer_ids: Sequence[int],
    now: datetime,
    *,
    live_only: bool = True,
) -> Changes:
    """Re-check a few customers against the given segments: one query per dependency level
    answers every segment of that level for all the customers, and only differences are written.
    Segments that read other segments come in later levels, after those are up to date."""
    changes = Changes({}, {})
    ids = sorted(set(customer_ids))
    if not ids:
        return changes
    dialect = conn.dialect.name
    stamp = to_db_timestamp(now, dialect)
    run = str(uuid.uuid4())
    lock_segments(conn, [t.id for level in levels for t in level], shared=True)
    lock_customers(conn, ids)  # two requests about the same customer wait for each other
    for level in levels:
        if not level:
            continue
        joined = set().union(*(t.compiled.joined for t in level))
        params: dict[str, Any] = {"scope": ids}
        for t in level:
            params.update(t.compiled.params(now))
        query = (
            select(
                customers.c.id,
                *(case((t.compiled.where, 1), else_=0).label(f"s{i}") for i, t in enumerate(level)),
            )
            .select_from(source(joined))
            .where(in_ids(customers.c.id), customers.c.merged_into.is_(None) if live_only else literal(True))
        )
        answers = {row[0]: row[1:] for row in conn.execute(query, params)}
        current = {
            (s, c): entered
            for s, c, entered in conn.execute(
                select(
                    segment_members.c.segment_id, segment_members.c.customer_id, segment_members.c.entered_at
                ).where(
                    in_ids(segment_members.c.customer_id),
                    segment_members.c.segment_id.in_([t.id for t in level]),
                ),
                {"scope": ids},
            )
        }
        joins: list[tuple[Any, ...]] = []
        leaves: list[tuple[Any, ...]] = []
        new_events: list[tuple[Any, ...]] = []
        for i, t in enumerate(level):
            props = json.dumps({"segment": t.name, "segment_id": t.id})
            for cid in ids:
                inside = bool(answers.get(cid, (0,) * len(level))[i])
                was = (t.id, cid) in current
                if inside and not was:
                    joins.append((t.id, cid, stamp, run))
                    new_events.append(
                        (
                            f"{SYSTEM_ID_PREFIX}segment:{t.id}:in:{run}:{cid}",
                            cid,
                            ENTERED,
                            SYSTEM_CHANNEL,
                            stamp,
                            stamp,
                            props,
                        )
                    )
                    changes.entered[t.name] = changes.entered.get(t.name, 0) + 1
                elif was and not inside:
                    entered_at = to_db_timestamp(current[(t.id, cid)], dialect)
                    leaves.append((t.id, cid, entered_at, stamp, run))
                    new_events.append(
                        (
                            f"{SYSTEM_ID_PREFIX}segment:{t.id}:out:{run}:{cid}",
                            cid,
                            EXITED,
                            SYSTEM_CHANNEL,
                            stamp,
                            stamp,
                            props,
                        )
                    )
                    changes.exited[t.name] = changes.exited.get(t.name, 0) + 1
        if leaves:
            insert_many(
                conn,
                segment_exits,
                ("segment_id", "customer_id", "entered_at", "exited_at", "run_id"),
                leaves,
            )
            for segment_id, cid, *_ in leaves:
                conn.execute(
                    delete(segment_members).where(
                        segment_members.c.segment_id == segment_id, segment_members.c.customer_id == cid
                    )
                )
        if joins:
            insert_many(conn, segment_members, ("segment_id", "customer_id", "entered_at", "run_id"), joins)
        if new_events:
            insert_many(
                conn,
                events,
                ("event_id", "customer_id", "type", "channel", "occurred_at", "received_at", "properties"),
                new_events,
            )
        for t in level:
            delta = changes.entered.get(t.name, 0) - changes.exited.get(t.name, 0)
            if t.name in changes.entered or t.name in changes.exited:
                conn.execute(
                    update(segments).where(segments.c.id == t.id).values(members=segments.c.members + delta)
                )
    return changes


def levels_of(targets: Sequence[Target]) -> list[list[Target]]:
    """Order segments so that each comes after the segments its condition reads."""
    by_name = {t.name: t for t in targets}
    placed: dict[str, int] = {}

    def level(t: Target, seen: frozenset[str]) -> int:
        if t.name in placed:
            return placed[t.name]
        upstream = [d[8:] for d in t.compiled.depends if d.startswith("segment:")]
        deepest = -1
        for name in upstream:
            if name in by_name and name not in seen:
                deepest = max(deepest, level(by_name[name], seen | {t.name}))
        placed[t.name] = deepest + 1
        return deepest + 1

    out: list[list[Target]] = []
    for t in targets:
        k = level(t, frozenset())
        while len(out) <= k:
            out.append([])
        out[k].append(t)
    return out


__all__ = [
    "ENTERED",
    "EXITED",
    "Changes",
    "Compiled",
    "Target",
    "compile_segment",
    "compiled_definition",
    "levels_of",
    "matching",
    "rebuild",
    "recheck",
    "record_size",
    "source",
]
