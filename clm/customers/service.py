"""The customers domain's public door: resolve identities to profiles, upsert, read, consent.

Identity resolution is set-based: a whole batch of records (events, orders, profile rows) is
matched with one lookup per identity kind, new profiles are created in one insert, and records
that carry identities of two profiles merge them (see `merge.merge_into`).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from clm.auth.service import record_audits
from clm.core.errors import Conflict, NotFound
from clm.core.timeutil import utcnow
from clm.customers.identities import identity_pairs
from clm.customers.locks import lock_customers
from clm.customers.merge import live_id, merge_into
from clm.customers.names import NAME_KEYS, name_keys
from clm.customers.schemas import (
    PROFILE_FIELDS,
    Consent,
    Customer,
    CustomerIn,
    Identity,
    ProfileSeed,
    Resolution,
    SeedColumns,
)
from clm.customers.tables import consents, customer_identities, customer_merges, customers
from clm.store.bulk import (
    insert_columns,
    insert_many,
    reserve_ids,
    update_if_earlier,
    update_if_earlier_stored,
)
from clm.store.engine import is_postgres
from clm.store.schema import to_db_timestamp, to_db_timestamps
from clm.store.sql import in_ids

_LOOKUP_CHUNK = 500
_SQLITE_IN_CHUNK = 5000  # below SQLite's limit of 32,766 bound parameters
_LOCK_BUCKETS = 256
_LOCK_CLASS = 4242
# The identity kinds that also have a column of the same name on the profile.
_PRIMARY_COLUMNS = ("external_id", "email", "phone")
_NEW_PROFILE_COLUMNS = (
    "id",
    "external_id",
    "email",
    "phone",
    "first_seen_at",
    "acquisition_channel",
    "acquisition_campaign",
    "attributes",
    "created_at",
    "updated_at",
)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, x: Any) -> Any:
        parent = self.parent
        root = parent.setdefault(x, x)
        while root != parent[root]:
            root = parent[root]
        while x != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def resolve_customers(
    conn: Connection,
    identity_rows: Sequence[dict[str, str]],
    seed_of: Callable[[int], ProfileSeed | None] | None = None,
    *,
    actor: str = "ingest",
) -> Resolution:
    """Map each record's (normalised, non-empty) identities to one live profile id.

    Unknown people get a new profile, seeded by `seed_of(i)` for their earliest record `i`; a
    record whose identities belong to several profiles merges them into the oldest.
    """
    keys = {(kind, value) for row in identity_rows for kind, value in row.items()}
    _lock_identities(conn, keys)
    known = _lookup_identities(conn, keys)
    if all(len(row) == 1 for row in identity_rows):  # no stored profile changes here
        return _resolve_single_identities(conn, identity_rows, seed_of, known)
    # merges and newly attached identities change stored profiles: every one this may touch is
    # locked at once, in id order, before any changes (statement by statement, in whatever
    # order they come, two requests about the same people could deadlock)
    lock_customers(conn, known.values())

    # Union-find over identities and profiles; a record with one identity needs no union.
    uf = _UnionFind()
    anchors: list[tuple[str, str, str]] = []
    for row in identity_rows:
        items = iter(row.items())
        kind, value = next(items)
        anchor = ("i", kind, value)
        anchors.append(anchor)
        for other_kind, other_value in items:
            uf.union(anchor, ("i", other_kind, other_value))
    for (kind, value), customer_id in known.items():
        uf.union(("i", kind, value), ("c", customer_id, ""))

    existing: dict[Any, set[int]] = {}
    for customer_id in set(known.values()):
        existing.setdefault(uf.find(("c", customer_id, "")), set()).add(customer_id)

    owner: dict[Any, int] = {}
    merges: list[tuple[int, int]] = []
    for root, ids in existing.items():
        survivor = min(ids)
        owner[root] = survivor
        if len(ids) > 1:
            others = sorted(ids - {survivor})
            merge_into(
                conn,
                survivor,
                others,
                reason="a record carried identities of several profiles",
                actor=actor,
                details={"identities": sorted(f"{k}:{v}" for k, v in keys if known.get((k, v)) in ids)},
            )
            merges.extend((survivor, o) for o in others)

    roots = [uf.find(a) for a in anchors]
    created = _create_profiles(conn, identity_rows, seed_of, roots, owner)
    _attach_new_identities(conn, keys, known, uf, owner, created)
    return Resolution([owner[r] for r in roots], frozenset(created), merges)


def key_batch(keys: Sequence[str] | np.ndarray) -> KeyBatch:
    """Records' identity keys made ready for `RememberingResolver.look_up`: each distinct key
    once (pure: may run in another process)."""
    codes, uniques = pd.factorize(np.asarray(keys, dtype=object))
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return KeyBatch(codes, uniques.tolist(), first, [], _NOT_LOOKED_UP)


_NOT_LOOKED_UP = -1  # the generation of a KeyBatch no resolver has looked at


@dataclass
class KeyBatch:
    """A chunk's identity keys made ready for `RememberingResolver.resolve_batch` (by `prepare`,
    possibly in another thread): each distinct key once, and the profiles remembered for them
    at the time, valid while the resolver's memory is not reset."""

    codes: np.ndarray  # each record's index into unique_keys
    unique_keys: list[str]
    first: np.ndarray  # per distinct key, its first record
    guess: list[int | None]
    generation: int


@dataclass
class KeyMatches:
    customer_ids: np.ndarray  # int64, one per record
    created: frozenset[int]
    merges: list[tuple[int, int]]


class RememberingResolver:
    """Identity resolution for a long import: remembers the profile each identity set resolved
    to, so the many later records of the same people are matched by a dictionary lookup.

    Only a merge moves an identity to another profile, so the memory holds while the merge log
    does not grow; it is checked (and the identities locked) in every transaction. The lookup
    can be made ahead, in the thread that reads the file (`prepare`): a reset of the memory in
    between (a new `generation`) voids it.
    """

    MAX_REMEMBERED = 250_000  # identity sets; beyond, start afresh (memory stays bounded)

    def __init__(self, *, actor: str) -> None:
        self.actor = actor
        self.owners: dict[str, int] = {}  # identity_key -> profile id
        # per profile, a first-seen time (µs since the epoch) known to be stored or earlier
        self.first_seen: dict[int, int] = {}
        self._merge_mark: int | None = -1
        self.generation = 0  # bumped whenever `owners` is forgotten

    def resolve(
        self,
        conn: Connection,
        keys: Sequence[str] | np.ndarray,
        seed_of: Callable[[int], ProfileSeed | None],
    ) -> Resolution:
        """Profiles for records given by `identity_key`, as `resolve_customers` would match them;
        a new profile is seeded by the first record of its key (pass them earliest first)."""
        matches = self.resolve_batch(conn, self.prepare(keys), seed_of)
        return Resolution(matches.customer_ids.tolist(), matches.created, matches.merges)

    def prepare(self, keys: Sequence[str] | np.ndarray) -> KeyBatch:
        """The keys' distinct values and the profiles remembered for them now (no database)."""
        return self.look_up(key_batch(keys))

    def look_up(self, batch: KeyBatch) -> KeyBatch:
        """`batch` with the profiles remembered for its keys now (no database)."""
        generation = self.generation  # read before the lookups: a reset during them voids them
        batch.guess = list(map(self.owners.get, batch.unique_keys))
        batch.generation = generation
        return batch

    def resolve_batch(
        self, conn: Connection, batch: KeyBatch, seed_of: Callable[[int], ProfileSeed | None]
    ) -> KeyMatches:
        """`resolve` for keys made ready by `prepare`."""
        unique_keys, first = batch.unique_keys, batch.first
        if is_postgres(conn):
            if len(unique_keys) > 8 * _LOCK_BUCKETS:  # they fall into every bucket anyway
                _lock_buckets(conn, list(range(_LOCK_BUCKETS)))
            else:
                _lock_identities(conn, {p for key in unique_keys for p in identity_pairs(key).items()})
        self._check_merges(conn)
        owners = self.owners
        if batch.generation == self.generation:
            found = list(batch.guess)
            for j in [j for j, cid in enumerate(found) if cid is None]:  # remembered since?
                found[j] = owners.get(unique_keys[j])
        else:
            found = list(map(owners.get, unique_keys))
        unknown = [j for j, cid in enumerate(found) if cid is None]
        created: frozenset[int] = frozenset()
        merges: list[tuple[int, int]] = []
        if unknown:
            seeds: Callable[[int], ProfileSeed | None]
            if isinstance(seed_of, SeedColumns):  # kept as columns: the unknown keys' first records'
                seeds = seed_of.take(first[np.array(unknown, dtype=np.int64)])
            else:
                seeds = functools.partial(_seed_of_record, seed_of, first, unknown)
            result = resolve_customers(
                conn, [identity_pairs(unique_keys[j]) for j in unknown], seeds, actor=self.actor
            )
            created, merges = result.created, result.merges
            if merges:  # profiles this import already used may be gone: match everything again
                self._forget()
                again = resolve_customers(conn, [identity_pairs(k) for k in unique_keys], actor=self.actor)
                found = list(again.customer_ids)
                self._merge_mark = self._mark(conn)
            else:
                for j, cid in zip(unknown, result.customer_ids, strict=True):
                    found[j] = cid
            owners.update(zip(unique_keys, cast(list[int], found), strict=True))
        ids = np.array(found, dtype=np.int64)[batch.codes]
        return KeyMatches(ids, created, merges)

    def _check_merges(self, conn: Connection) -> None:
        mark = self._mark(conn)
        if mark != self._merge_mark or len(self.owners) > self.MAX_REMEMBERED:
            self._forget()
            self._merge_mark = mark

    def _forget(self) -> None:
        self.owners.clear()
        self.first_seen.clear()
        # after the clearing: a `prepare` that read the generation before this line may have
        # seen the old entries, and is void; one that reads it after sees only new entries
        self.generation += 1

    @staticmethod
    def _mark(conn: Connection) -> int | None:
        return conn.execute(select(func.max(customer_merges.c.id))).scalar()


def _resolve_single_identities(
    conn: Connection,
    identity_rows: Sequence[dict[str, str]],
    seed_of: Callable[[int], ProfileSeed | None] | None,
    known: dict[tuple[str, str], int],
) -> Resolution:
    """The common bulk case (each record names its customer one way): no merges are possible,
    so no union-find is needed."""
    row_keys = [next(iter(row.items())) for row in identity_rows]
    owner: dict[Any, int] = dict(known)
    if isinstance(seed_of, SeedColumns):
        created = _create_seeded_profiles(conn, row_keys, seed_of, owner)
    else:
        created = _create_profiles(conn, identity_rows, seed_of, row_keys, owner)
    if created:
        fresh = [key for key in dict.fromkeys(row_keys) if key not in known]
        insert_columns(
            conn,
            customer_identities,
            ("customer_id", "kind", "value", "created_at"),
            [
                [owner[key] for key in fresh],
                [kind for kind, _ in fresh],
                [value for _, value in fresh],
                [to_db_timestamp(utcnow(), conn.dialect.name)] * len(fresh),
            ],
        )
    return Resolution([owner[key] for key in row_keys], frozenset(created), [])


def _seed_of_record(
    seed_of: Callable[[int], ProfileSeed | None], first: np.ndarray, unknown: list[int], i: int
) -> ProfileSeed | None:
    """The seed of the `i`-th unknown key: its first record's."""
    return seed_of(int(first[unknown[i]]))


def _create_seeded_profiles(
    conn: Connection, keys: list[tuple[str, str]], seeds: SeedColumns, owner: dict[Any, int]
) -> set[int]:
    """`_create_profiles` for records of one identity each, with their seeds as columns (a bulk
    import's): a new profile per unknown identity, seeded by its first record (records come
    earliest first), its columns built whole."""
    first: dict[tuple[str, str], int] = {}
    for i, key in enumerate(keys):
        if key not in owner and key not in first:
            first[key] = i
    if not first:
        return set()
    new = list(first)
    ids = reserve_ids(conn, customers, len(new))
    owner.update(zip(new, ids, strict=True))
    seeded = seeds.take(np.fromiter(first.values(), dtype=np.int64, count=len(first)))
    now = to_db_timestamp(utcnow(), conn.dialect.name)  # (insert_columns spells it for COPY)
    dialect = conn.dialect.name
    known_time = ~np.isnat(seeded.first_seen_at)
    first_seen = np.full(len(new), now, dtype=object)
    first_seen[known_time] = to_db_timestamps(seeded.first_seen_at[known_time], dialect)
    # a seed without a time brings no channel or campaign either (as `_create_profiles`)
    channel = seeded.acquisition_channel.copy()
    campaign = seeded.acquisition_campaign.copy()
    channel[~known_time] = campaign[~known_time] = None
    count = len(new)
    insert_columns(
        conn,
        customers,
        _NEW_PROFILE_COLUMNS,
        [
            ids,
            *([value if kind == column else None for kind, value in new] for column in _PRIMARY_COLUMNS),
            first_seen.tolist(),
            channel.tolist(),
            campaign.tolist(),
            ["{}"] * count,
            [now] * count,
            [now] * count,
        ],
    )
    return set(ids)


def _lock_identities(conn: Connection, keys: Iterable[tuple[str, str]]) -> None:
    """On PostgreSQL, serialise concurrent resolution of the same identities (hash buckets,
    locked in ascending order so two batches can never deadlock). SQLite's write lock already
    serialises writers."""
    if not is_postgres(conn):
        return
    _lock_buckets(conn, sorted({zlib.crc32(f"{k}:{v}".encode()) % _LOCK_BUCKETS for k, v in keys}))


def _lock_buckets(conn: Connection, buckets: list[int]) -> None:
    if buckets:
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(%(cls)s, b) "
            "FROM (SELECT unnest(%(buckets)s::int[]) AS b ORDER BY 1) s",
            {"cls": _LOCK_CLASS, "buckets": buckets},
        )


def _lookup_identities(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Owners of the given identities: one query per kind (per few thousand values on SQLite)."""
    by_kind: dict[str, list[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, []).append(value)
    found: dict[tuple[str, str], int] = {}
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        for kind, values in by_kind.items():
            if is_postgres(conn):
                cursor.execute(
                    "SELECT value, customer_id FROM customer_identities WHERE kind = %s AND value = ANY(%s)",
                    (kind, values),
                )
                found.update(((kind, v), cid) for v, cid in cursor.fetchall())
                continue
            for start in range(0, len(values), _SQLITE_IN_CHUNK):
                chunk = values[start : start + _SQLITE_IN_CHUNK]
                cursor.execute(
                    "SELECT value, customer_id FROM customer_identities "
                    f"WHERE kind = ? AND value IN ({', '.join('?' * len(chunk))})",
                    (kind, *chunk),
                )
                found.update(((kind, v), cid) for v, cid in cursor.fetchall())
    finally:
        cursor.close()
    return found


def _create_profiles(
    conn: Connection,
    identity_rows: Sequence[dict[str, str]],
    seed_of: Callable[[int], ProfileSeed | None] | None,
    roots: list[Any],
    owner: dict[Any, int],
) -> set[int]:
    new: dict[Any, dict[str, Any]] = {}
    for i, root in enumerate(roots):
        if root in owner:
            continue
        profile = new.get(root)
        if profile is None:
            profile = new[root] = {
                "first_seen_at": None,
                "acquisition_channel": None,
                "acquisition_campaign": None,
            }
        for kind in _PRIMARY_COLUMNS:
            if kind in identity_rows[i]:
                profile.setdefault(kind, identity_rows[i][kind])
        seed = seed_of(i) if seed_of else None
        if (
            seed is not None
            and seed.first_seen_at is not None
            and (profile["first_seen_at"] is None or seed.first_seen_at < profile["first_seen_at"])
        ):
            profile["first_seen_at"] = seed.first_seen_at
            profile["acquisition_channel"] = seed.acquisition_channel
            profile["acquisition_campaign"] = seed.acquisition_campaign
    if not new:
        return set()
    ids = reserve_ids(conn, customers, len(new))
    dialect = conn.dialect.name
    now = to_db_timestamp(utcnow(), dialect)
    rows = []
    for root, customer_id in zip(new, ids, strict=True):
        owner[root] = customer_id
        p = new[root]
        first_seen = to_db_timestamp(p["first_seen_at"], dialect) if p["first_seen_at"] else now
        rows.append(
            (
                customer_id,
                p.get("external_id"),
                p.get("email"),
                p.get("phone"),
                first_seen,
                p["acquisition_channel"],
                p["acquisition_campaign"],
                "{}",
                now,
                now,
            )
        )
    insert_many(conn, customers, _NEW_PROFILE_COLUMNS, rows)
    return set(ids)


def _attach_new_identities(
    conn: Connection,
    keys: set[tuple[str, str]],
    known: dict[tuple[str, str], int],
    uf: _UnionFind,
    owner: dict[Any, int],
    created: set[int],
) -> None:
    now = to_db_timestamp(utcnow(), conn.dialect.name)
    rows = [
        {"customer_id": owner[uf.find(("i", kind, value))], "kind": kind, "value": value}
        for kind, value in keys
        if (kind, value) not in known
    ]
    if not rows:
        return
    insert_many(
        conn,
        customer_identities,
        ("customer_id", "kind", "value", "created_at"),
        [(r["customer_id"], r["kind"], r["value"], now) for r in rows],
    )
    # An existing profile that gains its first email/phone/external id shows it on the profile.
    fills = [r for r in rows if r["kind"] in _PRIMARY_COLUMNS and r["customer_id"] not in created]
    for kind in _PRIMARY_COLUMNS:
        params = [{"cid": r["customer_id"], "v": r["value"]} for r in fills if r["kind"] == kind]
        if params:
            conn.execute(
                update(customers)
                .where(customers.c.id == bindparam("cid"), customers.c[kind].is_(None))
                .values({kind: bindparam("v")}),
                params,
            )


def note_first_seen(conn: Connection, first_seen: dict[int, datetime]) -> None:
    """Move profiles' first_seen_at earlier when older activity arrives (set-based)."""
    update_if_earlier(conn, customers, "first_seen_at", first_seen)


def note_first_seen_stored(conn: Connection, rows: Sequence[tuple[int, Any]]) -> None:
    """`note_first_seen` for (id, time) pairs already in the store's form of a timestamp."""
    update_if_earlier_stored(conn, customers, "first_seen_at", rows)


def upsert_customers(conn: Connection, items: Sequence[CustomerIn], *, actor: str) -> Resolution:
    """Create or update profiles in one pass; provided fields overwrite, attributes are merged."""

    def seed_of(i: int) -> ProfileSeed:
        item = items[i]
        return ProfileSeed(item.first_seen_at, item.acquisition_channel, item.acquisition_campaign)

    resolution = resolve_customers(conn, [i.identities() for i in items], seed_of, actor=actor)
    ids = sorted(set(resolution.customer_ids))
    lock_customers(conn, ids)  # all of them change below, one statement per profile
    current: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        for row in conn.execute(select(customers).where(in_ids(customers.c.id)), {"scope": chunk}).mappings():
            current[row["id"]] = dict(row)
    now = utcnow()
    consent_rows: dict[tuple[int, str], dict[str, Any]] = {}
    for item, cid in zip(items, resolution.customer_ids, strict=True):
        state = current[cid]
        given = item.model_dump(include=set(PROFILE_FIELDS), exclude_none=True)
        if "first_seen_at" in given and state["first_seen_at"] is not None:
            given["first_seen_at"] = min(given["first_seen_at"], state["first_seen_at"])
        state.update(given)
        state["attributes"] = {**(state["attributes"] or {}), **item.attributes}
        for channel, granted in item.consents.items():
            consent_rows[(cid, channel)] = {
                "customer_id": cid,
                "channel": channel,
                "granted": granted,
                "updated_at": now,
                "source": item.consent_source or actor,
            }
    for state in current.values():
        state.update(name_keys(state["first_name"], state["last_name"]))
    columns = [*PROFILE_FIELDS, "attributes", *NAME_KEYS]
    conn.execute(
        update(customers)
        .where(customers.c.id == bindparam("cid"))
        .values({c: bindparam(f"v_{c}") for c in columns} | {"updated_at": now}),
        [{"cid": cid, **{f"v_{c}": current[cid][c] for c in columns}} for cid in ids],
    )
    if consent_rows:
        _write_consents(conn, list(consent_rows.values()))
    return resolution


def set_attributes(conn: Connection, changes: dict[int, dict[str, Any]], *, actor: str) -> None:
    """Set attributes (key → value; others kept) on profiles, in the caller's transaction: the
    profiles are locked first, as upserts lock them, so two writers of different keys of one
    customer both keep theirs; one audit row per profile."""
    ids = sorted(changes)
    if not ids:
        return
    lock_customers(conn, ids)
    current: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        query = select(customers.c.id, customers.c.attributes).where(in_ids(customers.c.id))
        current.update({cid: attrs or {} for cid, attrs in conn.execute(query, {"scope": chunk})})
    now = utcnow()
    conn.execute(
        update(customers)
        .where(customers.c.id == bindparam("cid"))
        .values(attributes=bindparam("attrs"), updated_at=now),
        [{"cid": cid, "attrs": {**current[cid], **changes[cid]}} for cid in ids if cid in current],
    )
    audits = [(str(cid), {"set": changes[cid]}) for cid in ids]
    record_audits(conn, actor, "customer.attributes", "customer", audits)


def upsert_customer(engine: Engine, item: CustomerIn, *, actor: str) -> tuple[Customer, bool]:
    """Create or update one profile; return it and whether it is new."""
    with engine.begin() as conn:
        resolution = upsert_customers(conn, [item], actor=actor)
        cid = resolution.customer_ids[0]
        return _load(conn, cid), cid in resolution.created


_MOVED_TRIES = 5


def set_consent(
    engine: Engine,
    customer_id: int,
    channel: str,
    granted: bool,
    *,
    source: str,
    at: datetime | None = None,
) -> Customer:
    for _ in range(_MOVED_TRIES):
        with engine.begin() as conn:
            cid = live_id(conn, customer_id)
            # a merge folds consents together: not while we write one (nor into a tombstone)
            lock_customers(conn, [cid])
            if live_id(conn, cid) != cid:  # merged while we waited: start again, holding nothing
                continue
            _write_consents(
                conn,
                [
                    {
                        "customer_id": cid,
                        "channel": channel,
                        "granted": granted,
                        "updated_at": at or utcnow(),
                        "source": source,
                    }
                ],
            )
            return _load(conn, cid)
    raise Conflict(f"customer {customer_id} kept being merged while its consent was written; try again")


def _write_consents(conn: Connection, rows: list[dict[str, Any]]) -> None:
    keys = [(r["customer_id"], r["channel"]) for r in rows]
    ids = sorted({k[0] for k in keys})
    existing = {
        (r.customer_id, r.channel): r.updated_at
        for r in conn.execute(
            select(consents.c.customer_id, consents.c.channel, consents.c.updated_at).where(
                consents.c.customer_id.in_(ids)
            )
        )
    }
    # A consent record older than the one we hold is history, not news: keep the newer.
    fresh = [
        r
        for r in rows
        if existing.get((r["customer_id"], r["channel"])) is None
        or existing[(r["customer_id"], r["channel"])] <= r["updated_at"]
    ]
    updates = [r for r in fresh if (r["customer_id"], r["channel"]) in existing]
    inserts = [r for r in fresh if (r["customer_id"], r["channel"]) not in existing]
    if updates:
        conn.execute(
            update(consents)
            .where(consents.c.customer_id == bindparam("cid"), consents.c.channel == bindparam("ch"))
            .values(granted=bindparam("g"), updated_at=bindparam("at"), source=bindparam("src")),
            [
                {
                    "cid": r["customer_id"],
                    "ch": r["channel"],
                    "g": r["granted"],
                    "at": r["updated_at"],
                    "src": r["source"],
                }
                for r in updates
            ],
        )
    if inserts:
        conn.execute(insert(consents), inserts)


def require_customer(conn: Connection, customer_id: int) -> None:
    """NotFound unless a profile with this id exists (merged or not)."""
    if conn.execute(select(customers.c.id).where(customers.c.id == customer_id)).first() is None:
        raise NotFound(f"no customer with id {customer_id}")


def get_customer(engine: Engine, customer_id: int) -> Customer:
    """The live profile for an id; ids of merged profiles lead to their survivor."""
    with engine.connect() as conn:
        return _load(conn, live_id(conn, customer_id))


def find_customers(engine: Engine, identities: dict[str, str], limit: int = 50) -> list[Customer]:
    """Profiles matching any of the given (already normalised) identities."""
    with engine.connect() as conn:
        found = _lookup_identities(conn, set(identities.items()))
        return [_load(conn, cid) for cid in sorted(set(found.values()))[:limit]]


def list_customers(engine: Engine, limit: int = 50, offset: int = 0) -> list[Customer]:
    """Live profiles, newest first."""
    with engine.connect() as conn:
        ids = conn.execute(
            select(customers.c.id)
            .where(customers.c.merged_into.is_(None))
            .order_by(customers.c.id.desc())
            .limit(limit)
            .offset(offset)
        ).scalars()
        return [_load(conn, cid) for cid in ids]


def get_customers(engine: Engine, customer_ids: Sequence[int]) -> list[Customer]:
    """Live profiles by id, in the order asked, in four queries however many (a page of search
    results); ids that are not live profiles are left out."""
    with engine.connect() as conn:
        found = _load_many(conn, customer_ids, live_only=True)
    return [found[cid] for cid in dict.fromkeys(customer_ids) if cid in found]


def _load(conn: Connection, customer_id: int) -> Customer:
    found = _load_many(conn, [customer_id])
    if customer_id not in found:
        raise NotFound(f"no customer with id {customer_id}")
    return found[customer_id]


def _load_many(conn: Connection, customer_ids: Sequence[int], live_only: bool = False) -> dict[int, Customer]:
    query = select(customers).where(customers.c.id.in_(sorted(set(customer_ids))))
    if live_only:
        query = query.where(customers.c.merged_into.is_(None))
    rows = conn.execute(query).mappings().all() if customer_ids else []
    ids = [row["id"] for row in rows]
    if not ids:
        return {}
    identities: dict[int, list[Identity]] = {}
    for cid, k, v in conn.execute(
        select(customer_identities.c.customer_id, customer_identities.c.kind, customer_identities.c.value)
        .where(customer_identities.c.customer_id.in_(ids))
        .order_by(customer_identities.c.kind, customer_identities.c.id)
    ):
        identities.setdefault(cid, []).append(Identity(k, v))
    consent_lists: dict[int, list[Consent]] = {}
    consent_q = select(consents).where(consents.c.customer_id.in_(ids)).order_by(consents.c.channel)
    for r in conn.execute(consent_q):
        consent = Consent(r.channel, r.granted, r.updated_at, r.source)
        consent_lists.setdefault(r.customer_id, []).append(consent)
    merged_from: dict[int, list[int]] = {}
    for survivor, merged in conn.execute(
        select(customer_merges.c.survivor_id, customer_merges.c.merged_id)
        .where(customer_merges.c.survivor_id.in_(ids))
        .order_by(customer_merges.c.id)
    ):
        merged_from.setdefault(survivor, []).append(merged)
    return {
        row["id"]: Customer(
            id=row["id"],
            attributes=row["attributes"] or {},
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            identities=identities.get(row["id"], []),
            consents=consent_lists.get(row["id"], []),
            merged_from=merged_from.get(row["id"], []),
            **{name: row[name] for name in PROFILE_FIELDS},
        )
        for row in rows
    }
