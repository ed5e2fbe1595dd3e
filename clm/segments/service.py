"""The segments domain's public door: define, preview, build and read segments, and keep
membership current as data arrives (`refresh_customers`, what ingestion calls after commit)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, literal, select, update

from clm.conditions import Condition, ConditionError, parse_condition, parse_text, to_json, to_text
from clm.core.errors import Conflict, InvalidInput, NotFound
from clm.core.exports import cell, open_csv, zoned_header
from clm.core.timeutil import as_utc, utcnow
from clm.customers.tables import customers
from clm.lifecycle.service import reassess_customers
from clm.segments.builtin import BUILTINS
from clm.segments.evaluate import (
    Changes,
    Compiled,
    Target,
    compile_segment,
    compiled_definition,
    levels_of,
    matching,
    rebuild,
    recheck,
    record_size,
)
from clm.segments.space import affected
from clm.segments.tables import segment_exits, segment_members, segment_sizes, segments
from clm.store.sql import in_ids

# letters of any script (高价值客户 as well as vip_buyers), digits, _ and -; the console's addresses
# use the segment's id, and the API's a percent-encoded name
NAME = re.compile(r"^[^\W_][\w\-]{0,99}$")
DYNAMIC, STATIC = "dynamic", "static"
PREVIEW_IDS = 50_000


@dataclass(frozen=True)
class Segment:
    """A segment's definition and its size at the last build or change."""

    id: int
    name: str
    description: str
    kind: str
    where: str | None
    condition: Any
    depends: list[str]
    builtin: bool
    created_at: datetime
    updated_at: datetime
    built_at: datetime | None
    members: int


@dataclass(frozen=True)
class MemberRow:
    """A customer in a segment (or a preview sample), with the fields a marketer looks at."""

    customer_id: int
    external_id: str | None
    email: str | None
    first_name: str | None
    last_name: str | None
    city: str | None
    entered_at: datetime | None = None


@dataclass(frozen=True)
class Preview:
    """How many customers a condition selects now, a sample of them, and what it reads."""

    where: str
    count: int
    sample: list[MemberRow]
    depends: list[str]


@dataclass(frozen=True)
class Build:
    """What a rebuild of one segment changed."""

    name: str
    members: int
    entered: int
    exited: int


def parse_definition(where: str | None = None, condition: Any = None) -> Condition:
    """A condition from its text form (`where`) or its JSON form (`condition`), exactly one."""
    if (where is None) == (condition is None):
        raise InvalidInput(
            "give the condition as text (`where`) or as JSON (`condition`), one of them", "where"
        )
    if where is not None:
        try:
            return parse_text(where)
        except ConditionError as exc:
            raise exc.within("where")
    return parse_condition(condition, "condition")


def _insert(conn: Connection, values: dict[str, Any]) -> int:
    key = conn.execute(insert(segments).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def _member(r: Any) -> MemberRow:
    entered = r[6] if len(r) > 6 else None
    return MemberRow(r[0], r[1], r[2], r[3], r[4], r[5], as_utc(entered) if entered else None)


def _ids(conn: Connection) -> dict[str, int]:
    return {name: sid for name, sid in conn.execute(select(segments.c.name, segments.c.id))}


def _compile(conn: Connection, cond: Condition, text: str | None, field: str = "where") -> Compiled:
    names = _ids(conn)
    try:
        return compile_segment(cond, names.get, text)
    except ConditionError as exc:
        raise exc.within(field)


def _row(r: Any) -> Segment:
    return Segment(
        id=r.id,
        name=r.name,
        description=r.description,
        kind=r.kind,
        where=r.condition_text,
        condition=r.condition,
        depends=list(r.depends or []),
        builtin=bool(r.builtin),
        created_at=as_utc(r.created_at),
        updated_at=as_utc(r.updated_at),
        built_at=as_utc(r.built_at) if r.built_at else None,
        members=int(r.members),
    )


def _member_columns() -> list[Any]:
    c = customers.c
    return [c.id, c.external_id, c.email, c.first_name, c.last_name, c.city]


def preview(
    engine: Engine,
    where: str | None = None,
    condition: Any = None,
    *,
    sample: int = 10,
    as_of: datetime | None = None,
) -> Preview:
    """Count and sample the customers a condition selects, without saving anything."""
    cond = parse_definition(where, condition)
    now = as_of or utcnow()
    with engine.connect() as conn:
        compiled = _compile(conn, cond, where, "where" if where is not None else "condition")
        if conn.dialect.name == "postgresql":
            # room for the grouped counts of windowed conditions (`orders(last 365d) >= 2` groups
            # millions of orders): with the default 4 MB their hash spills to disk
            conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        ids = matching(compiled).subquery("m")
        params = compiled.params(now)
        # one evaluation for the usual segment: its ids come back and are counted here; only a
        # segment larger than PREVIEW_IDS is counted by a second query
        found = [r[0] for r in conn.execute(select(ids.c.id).limit(PREVIEW_IDS + 1), params)]
        count = len(found)
        if count > PREVIEW_IDS:
            count = conn.execute(select(func.count()).select_from(ids), params).scalar_one()
        wanted = sorted(found)[: max(0, sample)]
        query = select(*_member_columns()).where(customers.c.id.in_(wanted)).order_by(customers.c.id)
        rows = list(conn.execute(query)) if wanted else []
        return Preview(compiled.text, int(count), [_member(r) for r in rows], sorted(compiled.depends))


def customers_matching(
    conn: Connection, where: str, customer_ids: Collection[int] | None = None, as_of: datetime | None = None
) -> list[int]:
    """The live customers (all, or among `customer_ids`) who satisfy a condition now; for
    journeys that branch on a condition or enrol whoever matches one."""
    compiled = _compile(conn, parse_definition(where, None), where, "where")
    params = compiled.params(as_of or utcnow())
    if customer_ids is None:
        return [r[0] for r in conn.execute(matching(compiled), params)]
    ids = sorted(set(customer_ids))
    found: list[int] = []
    for start in range(0, len(ids), 10_000):
        chunk = {**params, "scope": ids[start : start + 10_000]}
        found += [r[0] for r in conn.execute(matching(compiled, scoped=True), chunk)]
    return found


def _load(conn: Connection, name: str) -> Any:
    row = conn.execute(select(segments).where(segments.c.name == name)).first()
    if row is None:
        raise NotFound(f"no segment named {name!r}")
    return row


def get_segment(engine: Engine, name: str) -> Segment:
    with engine.connect() as conn:
        return _row(_load(conn, name))


def list_segments(engine: Engine) -> list[Segment]:
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(select(segments).order_by(segments.c.name))]


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise InvalidInput(
            "a segment name is 1-100 letters (Chinese too), digits, `_` or `-`, "
            "starting with a letter or digit",
            "name",
        )


def create_segment(
    engine: Engine,
    name: str,
    *,
    description: str = "",
    where: str | None = None,
    condition: Any = None,
    static: bool = False,
    customer_ids: Collection[int] = (),
    builtin: bool = False,
) -> tuple[Segment, Build]:
    """Save a dynamic segment (built at once) or a static list (with the given customers)."""
    _check_name(name)
    now = utcnow()
    with engine.begin() as conn:
        if conn.execute(select(segments.c.id).where(segments.c.name == name)).first():
            raise Conflict(f"a segment named {name!r} already exists")
        values: dict[str, Any] = {
            "name": name,
            "description": description,
            "builtin": builtin,
            "created_at": now,
            "updated_at": now,
            "members": 0,
        }
        if static:
            if where is not None or condition is not None:
                raise InvalidInput("a static list has members, not a condition", "where")
            values.update(kind=STATIC, condition=None, condition_text=None, depends=[])
            segment_id = _insert(conn, values)
            entered = _add(conn, segment_id, name, customer_ids, now)
            conn.execute(update(segments).where(segments.c.id == segment_id).values(built_at=now))
            record_size(conn, segment_id, now, entered, 0)
            built = Build(name, entered, entered, 0)
        else:
            if customer_ids:
                raise InvalidInput("only a static list takes customer ids", "customer_ids")
            cond = parse_definition(where, condition)
            compiled = _compile(conn, cond, where, "where" if where is not None else "condition")
            values.update(
                kind=DYNAMIC,
                condition=to_json(cond),
                condition_text=to_text(cond),
                depends=sorted(compiled.depends),
            )
            segment_id = _insert(conn, values)
            entered, exited = rebuild(conn, segment_id, name, compiled, now)
            built = Build(name, entered, entered, exited)
        return _row(_load(conn, name)), built


def update_segment(
    engine: Engine,
    name: str,
    *,
    description: str | None = None,
    where: str | None = None,
    condition: Any = None,
) -> tuple[Segment, Build | None]:
    """Change a segment's description and/or condition; a new condition rebuilds it at once."""
    now = utcnow()
    with engine.begin() as conn:
        row = _load(conn, name)
        values: dict[str, Any] = {"updated_at": now}
        if description is not None:
            values["description"] = description
        built = None
        if where is not None or condition is not None:
            if row.kind == STATIC:
                raise InvalidInput("a static list has members, not a condition", "where")
            cond = parse_definition(where, condition)
            compiled = _compile(conn, cond, where, "where" if where is not None else "condition")
            _refuse_cycle(conn, name, compiled)
            values.update(
                condition=to_json(cond), condition_text=to_text(cond), depends=sorted(compiled.depends)
            )
            conn.execute(update(segments).where(segments.c.id == row.id).values(**values))
            entered, exited = rebuild(conn, row.id, name, compiled, now)
            built = Build(name, 0, entered, exited)
        else:
            conn.execute(update(segments).where(segments.c.id == row.id).values(**values))
        segment = _row(_load(conn, name))
    return segment, (Build(name, segment.members, built.entered, built.exited) if built else None)


def _refuse_cycle(conn: Connection, name: str, compiled: Compiled) -> None:
    """A segment may not read itself, directly or through other segments."""
    reads = {
        r.name: {d[8:] for d in (r.depends or []) if d.startswith("segment:")}
        for r in conn.execute(select(segments))
    }
    reads[name] = {d[8:] for d in compiled.depends if d.startswith("segment:")}
    stack, seen = list(reads[name]), set()
    while stack:
        current = stack.pop()
        if current == name:
            raise InvalidInput(f"segment {name!r} would depend on itself through in_segment()", "where")
        if current not in seen:
            seen.add(current)
            stack.extend(reads.get(current, ()))


def delete_segment(engine: Engine, name: str) -> None:
    """Delete a segment with its membership history; refused while another segment reads it."""
    with engine.begin() as conn:
        row = _load(conn, name)
        readers = [
            r.name
            for r in conn.execute(select(segments.c.name, segments.c.depends))
            if f"segment:{name}" in (r.depends or [])
        ]
        if readers:
            raise Conflict(f"segment {name!r} is used by {', '.join(sorted(readers))}; change those first")
        conn.execute(delete(segment_members).where(segment_members.c.segment_id == row.id))
        conn.execute(delete(segment_exits).where(segment_exits.c.segment_id == row.id))
        conn.execute(delete(segment_sizes).where(segment_sizes.c.segment_id == row.id))
        conn.execute(delete(segments).where(segments.c.id == row.id))


def members(engine: Engine, name: str, *, limit: int = 100, offset: int = 0) -> tuple[int, list[MemberRow]]:
    """The segment's current members by customer id, page by page, with the total."""
    with engine.connect() as conn:
        row = _load(conn, name)
        m = segment_members
        total = conn.execute(select(func.count()).where(m.c.segment_id == row.id)).scalar_one()
        rows = conn.execute(
            select(*_member_columns(), m.c.entered_at)
            .select_from(m.join(customers, customers.c.id == m.c.customer_id))
            .where(m.c.segment_id == row.id)
            .order_by(m.c.customer_id)
            .limit(limit)
            .offset(offset)
        )
        return int(total), [_member(r) for r in rows]


def export_members(
    engine: Engine,
    name: str,
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    encoding: str | None = None,
) -> int:
    """Write every current member to a CSV file (`clm.core.exports`: UTF-8 with a byte-order mark,
    so Excel shows Chinese names, unless `encoding` or CLM_EXPORT_ENCODING says otherwise; times
    in the store's zone, named in the header); returns how many."""
    c = customers.c
    written = 0
    with engine.connect() as conn, open_csv(path, encoding) as out:
        row = _load(conn, name)
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(
            [
                "customer_id",
                "external_id",
                "email",
                "phone",
                "first_name",
                "last_name",
                "city",
                zoned_header("entered_at"),
            ]
        )
        m = segment_members
        result = conn.execution_options(stream_results=True, yield_per=10_000).execute(
            select(c.id, c.external_id, c.email, c.phone, c.first_name, c.last_name, c.city, m.c.entered_at)
            .select_from(m.join(customers, c.id == m.c.customer_id))
            .where(m.c.segment_id == row.id)
            .order_by(m.c.customer_id)
        )
        for r in result:
            writer.writerow([cell(v) for v in r])
            written += 1
            if progress and written % 10_000 == 0:
                progress(written)
    return written


def iter_members(engine: Engine, name: str) -> Iterator[tuple[Any, ...]]:
    """Every current member, streamed by customer id: (customer_id, external_id, email, phone,
    first_name, last_name, city, entered_at); for exports that write as they read."""
    c, m = customers.c, segment_members
    with engine.connect() as conn:
        row = _load(conn, name)
        result = conn.execution_options(stream_results=True, yield_per=5_000).execute(
            select(c.id, c.external_id, c.email, c.phone, c.first_name, c.last_name, c.city, m.c.entered_at)
            .select_from(m.join(customers, c.id == m.c.customer_id))
            .where(m.c.segment_id == row.id)
            .order_by(m.c.customer_id)
        )
        for r in result:
            yield (*r[:-1], as_utc(r[-1]))


def customer_segments(engine: Engine, customer_id: int) -> list[tuple[str, datetime]]:
    """The segments a customer is in now, with when they entered."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(segments.c.name, segment_members.c.entered_at)
            .select_from(segment_members.join(segments, segments.c.id == segment_members.c.segment_id))
            .where(segment_members.c.customer_id == customer_id)
            .order_by(segments.c.name)
        )
        return [(n, as_utc(t)) for n, t in rows]


# -- static lists ---------------------------------------------------------------------------
def _add(conn: Connection, segment_id: int, name: str, customer_ids: Iterable[int], now: datetime) -> int:
    wanted = sorted(set(customer_ids))
    if not wanted:
        return 0
    live = _live_ids(conn, wanted)
    unknown = [c for c in wanted if c not in live]
    if unknown:
        shown = ", ".join(map(str, unknown[:10]))
        raise NotFound(f"no customer with id {shown}{' …' if len(unknown) > 10 else ''}")
    return _enter(conn, segment_id, name, sorted(set(live.values())), now)


def _live_ids(conn: Connection, ids: list[int]) -> dict[int, int]:
    """Each given id mapped to its live profile (a merged profile's survivor)."""
    found: dict[int, int] = {}
    for start in range(0, len(ids), 5_000):
        part = ids[start : start + 5_000]
        for cid, merged in conn.execute(
            select(customers.c.id, customers.c.merged_into).where(in_ids(customers.c.id)), {"scope": part}
        ):
            found[cid] = merged or cid
    return found


def _enter(conn: Connection, segment_id: int, name: str, ids: list[int], now: datetime) -> int:
    target = Target(segment_id, name, _static_compiled(ids))
    changes = recheck(conn, [[target]], ids, now)
    return changes.entered.get(name, 0)


def _static_compiled(ids: list[int]) -> Compiled:
    """A static list's 'condition' while adding these customers (it is checked only for them)."""
    return Compiled(customers.c.id.in_(ids), frozenset(), frozenset(), frozenset(), "")


def add_members(engine: Engine, name: str, customer_ids: Collection[int]) -> int:
    """Add customers to a static list; returns how many were not in it yet."""
    with engine.begin() as conn:
        row = _load(conn, name)
        if row.kind != STATIC:
            raise InvalidInput(f"{name!r} is a dynamic segment: its condition decides who is in it", "name")
        now = utcnow()
        added = _add(conn, row.id, name, customer_ids, now)
        if added:
            record_size(conn, row.id, now, added, 0)
    recheck_customers(engine, customer_ids, {f"segment:{name}"})  # segments that read the list
    return added


def remove_members(engine: Engine, name: str, customer_ids: Collection[int]) -> int:
    """Take customers off a static list (their membership moves to the history)."""
    with engine.begin() as conn:
        row = _load(conn, name)
        if row.kind != STATIC:
            raise InvalidInput(f"{name!r} is a dynamic segment: its condition decides who is in it", "name")
        ids = sorted(set(customer_ids))
        keep = Compiled(customers.c.id.not_in(ids), frozenset(), frozenset(), frozenset(), "")
        now = utcnow()
        removed = recheck(conn, [[Target(row.id, name, keep)]], ids, now).exited.get(name, 0)
        if removed:
            record_size(conn, row.id, now, 0, removed)
    recheck_customers(engine, ids, {f"segment:{name}"})
    return removed


# -- building and keeping current -----------------------------------------------------------
def _targets(conn: Connection, rows: Iterable[Any]) -> list[Target]:
    ids = tuple(sorted(_ids(conn).items()))
    return [
        Target(r.id, r.name, compiled_definition(json.dumps(r.condition, sort_keys=True), ids))
        for r in rows
        if r.kind == DYNAMIC
    ]


def rebuild_segments(
    engine: Engine,
    names: Collection[str] | None = None,
    *,
    depends: Collection[str] | None = None,
    as_of: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Build]:
    """Re-evaluate dynamic segments in full (all, the named ones and the segments reading them,
    or those reading any of `depends`), each in its own transaction, upstream segments first."""
    with engine.connect() as conn:
        rows = list(conn.execute(select(segments).order_by(segments.c.name)))
        if names is not None:
            missing = set(names) - {r.name for r in rows}
            if missing:
                raise NotFound(f"no segment named {sorted(missing)[0]!r}")
            wanted = set(names)
            grew = True
            while grew:  # and the segments that read them, which would be stale otherwise
                readers = {r.name for r in rows if any(f"segment:{n}" in (r.depends or []) for n in wanted)}
                grew = bool(readers - wanted)
                wanted |= readers
            rows = [r for r in rows if r.name in wanted]
        if depends is not None:
            rows = [r for r in rows if set(r.depends or []) & set(depends)]
        targets = _targets(conn, rows)
    builds = []
    for level in levels_of(targets):
        for t in level:
            with engine.begin() as conn:
                entered, exited = rebuild(conn, t.id, t.name, t.compiled, as_of or utcnow())
                total = conn.execute(select(segments.c.members).where(segments.c.id == t.id)).scalar_one()
            builds.append(Build(t.name, int(total), entered, exited))
            if progress:
                progress(t.name)
    return builds


def recheck_customers(
    engine: Engine, customer_ids: Collection[int], changed: Collection[str] | None = None
) -> Changes:
    """Re-check these customers against the dynamic segments that read the changed kinds of data
    (all of them when `changed` is None), and against segments that read those in turn."""
    if not customer_ids:
        return Changes({}, {})
    _retire_merged(engine, customer_ids)
    with engine.begin() as conn:
        rows = list(conn.execute(select(segments).where(segments.c.kind == DYNAMIC)))
        if changed is not None:
            kinds = set(changed)
            chosen = {r.name for r in rows if affected(r.depends or [], kinds)}
            grew = True
            while grew:  # segments reading a chosen segment are re-checked too
                more = {r.name for r in rows if any(f"segment:{n}" in (r.depends or []) for n in chosen)}
                grew = bool(more - chosen)
                chosen |= more
            rows = [r for r in rows if r.name in chosen]
        if not rows:
            return Changes({}, {})
        return recheck(conn, levels_of(_targets(conn, rows)), list(customer_ids), utcnow())


def _retire_merged(engine: Engine, survivors: Collection[int]) -> None:
    """Profiles merged into these customers leave every segment (their data now belongs to the
    survivor, who is re-checked); a static list keeps the person by taking the survivor in."""
    m, c = segment_members, customers
    with engine.begin() as conn:
        merged = dict(
            conn.execute(
                select(c.c.id, c.c.merged_into).where(in_ids(c.c.merged_into)),
                {"scope": sorted(set(survivors))},
            ).all()
        )
        if not merged:  # the usual case, answered by the index on merged_into
            return
        rows = conn.execute(
            select(m.c.segment_id, segments.c.name, segments.c.kind, m.c.customer_id)
            .select_from(m.join(segments, segments.c.id == m.c.segment_id))
            .where(m.c.customer_id.in_(sorted(merged)))
        ).all()
        if not rows:
            return
        now = utcnow()
        for segment_id, name, kind, tombstone in rows:
            survivor = merged[tombstone]
            gone = Compiled(literal(False), frozenset(), frozenset(), frozenset(), "")
            recheck(conn, [[Target(segment_id, name, gone)]], [tombstone], now, live_only=False)
            if kind == STATIC:
                _enter(conn, segment_id, name, [survivor], now)


def refresh_customers(
    engine: Engine, customer_ids: Collection[int], changed: Collection[str] | None = None
) -> Changes:
    """After ingestion commits: re-evaluate the customers' lifecycle stages, then their segments."""
    reassess_customers(engine, customer_ids)
    return recheck_customers(engine, customer_ids, changed)


def segment_by_id(engine: Engine, segment_id: int) -> Segment:
    """A segment by its id (the console's links use ids, so any name works in a URL)."""
    with engine.connect() as conn:
        row = conn.execute(select(segments).where(segments.c.id == segment_id)).first()
    if row is None:
        raise NotFound(f"no segment with id {segment_id}")
    return _row(row)


def check_condition(engine: Engine, where: str) -> list[str]:
    """Parse and compile a condition without running it; returns what it reads (raises
    ConditionError pointing at the column when it is wrong)."""
    cond = parse_definition(where, None)
    with engine.connect() as conn:
        return sorted(_compile(conn, cond, where, "where").depends)


def size_history(
    engine: Engine, segment_ids: Collection[int], since: datetime
) -> dict[int, list[tuple[datetime, int]]]:
    """Each segment's size at every rebuild or list edit since `since`, oldest first."""
    wanted = sorted(set(segment_ids))
    out: dict[int, list[tuple[datetime, int]]] = {i: [] for i in wanted}
    if not wanted:
        return out
    s = segment_sizes.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.segment_id, s.measured_at, s.members)
            .where(s.segment_id.in_(wanted), s.measured_at >= since)
            .order_by(s.segment_id, s.measured_at, s.id)
        )
        for segment_id, at, size in rows:
            out[segment_id].append((as_utc(at), int(size)))
    return out


def install_builtins(engine: Engine) -> list[str]:
    """Create the built-in segments that do not exist yet; returns their names."""
    existing = {s.name for s in list_segments(engine)}
    added = []
    for b in BUILTINS:
        if b.name not in existing:
            create_segment(engine, b.name, description=b.description, where=b.where, builtin=True)
            added.append(b.name)
    return added


__all__ = [
    "Build",
    "Changes",
    "MemberRow",
    "Preview",
    "Segment",
    "add_members",
    "check_condition",
    "create_segment",
    "customer_segments",
    "customers_matching",
    "delete_segment",
    "export_members",
    "get_segment",
    "install_builtins",
    "iter_members",
    "list_segments",
    "members",
    "parse_definition",
    "preview",
    "rebuild_segments",
    "recheck_customers",
    "refresh_customers",
    "remove_members",
    "segment_by_id",
    "size_history",
    "update_segment",
]
