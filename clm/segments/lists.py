"""Static lists from a file: each row names a customer by id or by an identity (email, phone,
external id, anonymous id); rows that name nobody are rejected one by one, the rest are added."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from clm.core.errors import InvalidInput
from clm.core.files import DataFile
from clm.core.imports import ChunkOutcome, ImportReport, Rejection, run_import
from clm.core.timeutil import utcnow
from clm.customers.identities import IDENTITY_KINDS, normalize_identity
from clm.customers.tables import customer_identities, customers
from clm.segments.evaluate import record_size
from clm.segments.service import STATIC, _enter, _load, create_segment, list_segments, rebuild_segments
from clm.segments.tables import segments

Reference = tuple[str, str]  # ("customer_id", "42") or (identity kind, normalised value)


def parse_reference(row: dict[str, Any]) -> Reference:
    """The customer a row names: `customer_id`, else the first identity column filled in."""
    raw = row.get("customer_id")
    if raw not in (None, ""):
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise InvalidInput(f"{raw!r} is not a customer id", "customer_id")
        if value < 1:
            raise InvalidInput(f"{raw!r} is not a customer id", "customer_id")
        return ("customer_id", str(value))
    for kind in IDENTITY_KINDS:
        if row.get(kind) not in (None, ""):
            return (kind, normalize_identity(kind, row[kind]))
    raise InvalidInput(
        f"the row names no customer: give customer_id or one of {', '.join(IDENTITY_KINDS)}", "row"
    )


def import_list(
    engine: Engine,
    name: str,
    data: DataFile,
    *,
    description: str = "",
    rejections_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Add the customers a file names to the static list `name` (created if missing)."""
    if not _exists(engine, name):
        create_segment(engine, name, description=description, static=True)
    with engine.connect() as conn:
        row = _load(conn, name)
    if row.kind != STATIC:
        raise InvalidInput(f"{name!r} is a dynamic segment: its condition decides who is in it", "name")

    def write(chunk: Sequence[tuple[int, Reference]]) -> ChunkOutcome:
        outcome = ChunkOutcome()
        with engine.begin() as conn:
            found = _resolve(conn, [ref for _, ref in chunk])
            ids = []
            for line, ref in chunk:
                cid = found.get(ref)
                if cid is None:
                    what = "id" if ref[0] == "customer_id" else ref[0].replace("_", " ")
                    outcome.rejections.append(Rejection(line, f"no customer with {what} {ref[1]}"))
                else:
                    ids.append(cid)
            entered = _enter(conn, row.id, name, sorted(set(ids)), utcnow()) if ids else 0
        outcome.accepted = entered
        outcome.duplicates = len(ids) - entered
        return outcome

    report = run_import(
        "list",
        data,
        parse_reference,
        write,
        chunk_size=5_000,
        rejections_path=rejections_path,
        progress=progress,
    )
    if report.accepted:
        with engine.begin() as conn:
            record_size(conn, row.id, utcnow(), report.accepted, 0)
    readers = [s.name for s in list_segments(engine) if f"segment:{name}" in s.depends]
    if readers and report.accepted:  # segments that read the list follow it
        rebuild_segments(engine, readers)
    return report


def _exists(engine: Engine, name: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(segments.c.id).where(segments.c.name == name)).first() is not None


def _resolve(conn: Any, refs: list[Reference]) -> dict[Reference, int]:
    """The live customer each reference names (merged profiles lead to their survivor)."""
    found: dict[Reference, int] = {}
    ids = [int(v) for k, v in refs if k == "customer_id"]
    if ids:
        for cid, merged in conn.execute(
            select(customers.c.id, customers.c.merged_into).where(customers.c.id.in_(ids))
        ):
            found[("customer_id", str(cid))] = merged or cid
    by_kind: dict[str, list[str]] = {}
    for kind, value in refs:
        if kind != "customer_id":
            by_kind.setdefault(kind, []).append(value)
    for kind, values in by_kind.items():
        rows = conn.execute(
            select(customer_identities.c.value, customers.c.id, customers.c.merged_into)
            .select_from(
                customer_identities.join(customers, customers.c.id == customer_identities.c.customer_id)
            )
            .where(customer_identities.c.kind == kind, customer_identities.c.value.in_(values))
        )
        for value, cid, merged in rows:
            found[(kind, value)] = merged or cid
    return found
