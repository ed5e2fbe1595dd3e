"""Stage assignment: features → stage for every customer (or the ones an event touched),
with each change stored as a transition and emitted as a `stage_changed` event.

A run is a handful of set-based statements in one transaction, whatever the number of
customers: rebuild the features rows (with the stage computed by one CASE over the rules),
insert a transition for every customer whose stage differs from the stored one, move
`customer_stages` to the new stages, and write one `stage_changed` event per transition.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    String,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter

from clm.conditions import compile_condition, first_match
from clm.core.errors import Conflict
from clm.core.timeutil import as_utc, store_day, store_midnight, utcnow
from clm.customers.locks import lock_customers
from clm.customers.tables import customers
from clm.events.schemas import SYSTEM_ID_PREFIX
from clm.events.tables import events
from clm.features import (
    SYSTEM_CHANNEL,
    CustomerSpace,
    feature_params,
    feature_query,
    plan_for_everyone,
    purchase_gaps_query,
)
from clm.lifecycle.models import DEFAULT_MODEL, StageModel, model_from_dict, preset
from clm.lifecycle.tables import customer_features, customer_stages, lifecycle_settings, stage_transitions
from clm.store.schema import UTCDateTime
from clm.store.sql import create_temp_table_as, in_ids, json_object

STAGE_CHANGED = "stage_changed"
# Re-evaluating a handful of customers per request; bigger sets go in slices of this size.
SCOPE_SLICE = 5_000
_LOCK_KEY = 0x5374616765  # "Stage": one PostgreSQL advisory lock guards runs against each other
_STAGED_FEATURES = "_stage_features"


@dataclass
class StageRun:
    """What a run did."""

    model: str
    as_of: datetime
    evaluated: int = 0
    changed: int = 0
    moves: dict[tuple[str | None, str], int] = field(default_factory=dict)

    def add(self, other: StageRun) -> None:
        self.evaluated += other.evaluated
        self.changed += other.changed
        for k, v in other.moves.items():
            self.moves[k] = self.moves.get(k, 0) + v


def active_model(conn: Connection) -> StageModel:
    """The selected stage model (clm5 until another is chosen)."""
    return _settings(conn)[0]


def _settings(conn: Connection) -> tuple[StageModel, float | None]:
    row = conn.execute(
        select(lifecycle_settings.c.definition, lifecycle_settings.c.shop_purchase_gap_days).where(
            lifecycle_settings.c.id == 1
        )
    ).first()
    if row is None:
        return _parsed(None), None
    return _parsed(json.dumps(row.definition, sort_keys=True)), row.shop_purchase_gap_days


@lru_cache(maxsize=16)
def _parsed(definition: str | None) -> StageModel:
    """Validating a model compiles every rule; re-evaluating one customer should not pay for it."""
    return preset(DEFAULT_MODEL) if definition is None else model_from_dict(json.loads(definition))


def select_model(engine: Engine, model: StageModel, source: str) -> None:
    """Make `model` the one every run uses from now on."""
    values = {"name": model.name, "source": source, "definition": model.as_dict(), "selected_at": utcnow()}
    with engine.begin() as conn:
        _save_settings(conn, model, values)


def _save_settings(conn: Connection, model: StageModel, values: dict[str, Any]) -> None:
    """Update the single settings row, creating it (with `model` as the selection) if missing."""
    if conn.execute(select(lifecycle_settings.c.id).where(lifecycle_settings.c.id == 1)).first():
        conn.execute(update(lifecycle_settings).where(lifecycle_settings.c.id == 1).values(**values))
        return
    selection = {
        "name": model.name,
        "source": model.name,
        "definition": model.as_dict(),
        "selected_at": utcnow(),
    }
    conn.execute(insert(lifecycle_settings).values(id=1, **{**selection, **values}))


def shop_purchase_gap(conn: Connection, as_of: datetime) -> float | None:
    """Median over repeat buyers of their typical gap between purchases, in days."""
    rows = conn.execute(purchase_gaps_query(), {"as_of": as_of})
    gaps = np.array([g for (g,) in rows if g is not None], dtype=float)
    return float(np.median(gaps)) if gaps.size else None


def _lock(conn: Connection, shared: bool) -> None:
    if conn.dialect.name == "postgresql":
        fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(text(f"SELECT {fn}(:k)"), {"k": _LOCK_KEY})


def _latest_change(conn: Connection, model: str) -> datetime | None:
    value = conn.execute(
        select(func.max(stage_transitions.c.changed_at)).where(stage_transitions.c.model == model)
    ).scalar()
    return None if value is None else as_utc(value)


@dataclass(frozen=True)
class _Plan:
    """The statements of a run for one model, built once: only bound parameters change."""

    steps: tuple[tuple[str, Any, frozenset[str]], ...]  # (name, statement, its parameter names)
    windows: frozenset[int]


def _params(statement: Any) -> frozenset[str]:
    """The names of the statement's named bound parameters (an INSERT refuses unknown ones)."""
    return frozenset(
        node.key
        for node in visitors.iterate(statement)
        if isinstance(node, BindParameter) and not node.unique
    )


@lru_cache(maxsize=32)
def _plan(model: StageModel, scoped: bool) -> _Plan:
    features = feature_query(scoped).subquery("f")
    space = CustomerSpace(features.c)
    branches = [(compile_condition(model.stage(key).rule, space), key) for key in model.evaluation_order]
    columns = [c.name for c in customer_features.columns if c.name != "stage"]
    rows = select(*(features.c[name] for name in columns), first_match(branches).label("stage")).select_from(
        features.join(customers, customers.c.id == features.c.customer_id)
    )
    f, cs, t = customer_features, customer_stages, stage_transitions

    def in_scope(col: Any) -> Any:
        return in_ids(col) if scoped else literal(True)

    rule_of = case({s.key: s.rule_text for s in model.stages}, value=f.c.stage, else_="")
    previous = case((cs.c.model == model.name, cs.c.stage), else_=None)
    run_id = bindparam("run_id", type_=String(36))
    changed = (
        select(
            run_id,
            f.c.customer_id,
            literal(model.name, String(64)),
            previous,
            f.c.stage,
            bindparam("as_of", type_=UTCDateTime),
            rule_of,
        )
        .select_from(f.outerjoin(cs, cs.c.customer_id == f.c.customer_id))
        .where(
            f.c.stage.is_not(None),
            or_(cs.c.stage.is_(None), cs.c.model != model.name, cs.c.stage != f.c.stage),
            in_scope(f.c.customer_id),
        )
    )
    this_run = t.c.run_id == run_id
    staged = table(_STAGED_FEATURES, *(column(name) for name in [*columns, "stage"]))
    statements = {
        "clear": delete(f).where(in_scope(f.c.customer_id)),
        "features": insert(f).from_select([*columns, "stage"], rows),
        # everyone on PostgreSQL: the SELECT in parallel into a temporary table, then copied
        "stage_features": create_temp_table_as(_STAGED_FEATURES, rows),
        "staged_features": insert(f).from_select([*columns, "stage"], select(staged)),
        "transitions": insert(t).from_select(
            ["run_id", "customer_id", "model", "from_stage", "to_stage", "changed_at", "rule"], changed
        ),
        "moves": select(t.c.from_stage, t.c.to_stage, func.count())
        .where(this_run)
        .group_by(t.c.from_stage, t.c.to_stage),
        "unassigned": delete(cs).where(
            cs.c.customer_id.in_(
                select(f.c.customer_id).where(f.c.stage.is_(None), in_scope(f.c.customer_id))
            )
        ),
        "leave": delete(cs).where(cs.c.customer_id.in_(select(t.c.customer_id).where(this_run))),
        "enter": insert(cs).from_select(
            ["customer_id", "model", "stage", "since"],
            select(t.c.customer_id, t.c.model, t.c.to_stage, t.c.changed_at).where(this_run),
        ),
        "events": insert(events).from_select(
            ["event_id", "customer_id", "type", "channel", "occurred_at", "received_at", "properties"],
            select(
                literal(f"{SYSTEM_ID_PREFIX}stage:") + cast(t.c.id, String),
                t.c.customer_id,
                literal(STAGE_CHANGED),
                literal(SYSTEM_CHANNEL),
                t.c.changed_at,
                bindparam("now", type_=UTCDateTime),
                json_object("model", t.c.model, "from", t.c.from_stage, "to", t.c.to_stage, "rule", t.c.rule),
            ).where(this_run),
        ),
        # counted afterwards: INSERT … SELECT does not report a row count on every driver
        "count": select(func.count()).select_from(f).where(in_scope(f.c.customer_id)),
    }
    return _Plan(
        tuple((name, stmt, _params(stmt)) for name, stmt in statements.items()), frozenset(space.windows)
    )


def _run(
    conn: Connection, model: StageModel, as_of: datetime, shop_gap: float | None, scope: Sequence[int] | None
) -> StageRun:
    """Rebuild features and stages for everyone (scope None) or the given customers."""
    plan = _plan(model, scope is not None)
    values: dict[str, Any] = {
        **feature_params(as_of, shop_gap),
        **{f"since_{d}d": as_of - timedelta(days=d) for d in plan.windows},
        "run_id": str(uuid.uuid4()),
        "now": utcnow(),
    }
    if scope is not None:
        values["scope"] = list(scope)
    steps = {name: (stmt, names) for name, stmt, names in plan.steps}

    def execute(name: str) -> Any:
        stmt, names = steps[name]
        return conn.execute(stmt, {k: v for k, v in values.items() if k in names})

    execute("clear")
    if scope is None and conn.dialect.name == "postgresql":
        execute("stage_features")
        execute("staged_features")
        conn.exec_driver_sql(f"DROP TABLE {_STAGED_FEATURES}")
    else:
        execute("features")
    execute("transitions")
    moves = {(a, b): int(n) for a, b, n in execute("moves")}
    execute("unassigned")
    if moves:  # most re-evaluations after an event change nothing
        execute("leave")
        execute("enter")
        execute("events")
    evaluated = int(execute("count").scalar_one())
    return StageRun(model.name, as_of, evaluated=evaluated, changed=sum(moves.values()), moves=moves)


def assign_stages(
    engine: Engine, *, as_of: datetime | None = None, model: StageModel | None = None
) -> StageRun:
    """Evaluate every customer (`clm stages run`). `as_of` replays the rules at a past moment;
    it may not be earlier than the history already recorded for the model."""
    as_of = as_utc(as_of) if as_of else utcnow()
    with engine.begin() as conn:
        _lock(conn, shared=False)
        chosen = model or active_model(conn)
        latest = _latest_change(conn, chosen.name)
        if latest is not None and as_of < latest:
            raise Conflict(
                f"the {chosen.name} stage history already reaches {latest:%Y-%m-%d %H:%M}; a run as of "
                f"{as_of:%Y-%m-%d %H:%M} would rewrite the past (use `clm stages backfill --rebuild`)"
            )
        gap = shop_purchase_gap(conn, as_of)
        plan_for_everyone(conn)
        result = _run(conn, chosen, as_of, gap, None)
        _save_settings(conn, chosen, {"shop_purchase_gap_days": gap, "last_full_run_at": as_of})
    return result


def reassess_customers(engine: Engine, customer_ids: Iterable[int]) -> StageRun:
    """Re-evaluate just these customers now: what ingestion calls after it commits, so a first
    purchase moves the customer out of acquisition at once."""
    ids = sorted(set(customer_ids))
    as_of = utcnow()
    total: StageRun | None = None
    for start in range(0, len(ids), SCOPE_SLICE):
        part = ids[start : start + SCOPE_SLICE]
        with engine.begin() as conn:
            _lock(conn, shared=True)
            lock_customers(conn, part)  # two requests about the same customer wait for each other
            model, shop_gap = _settings(conn)
            result = _run(conn, model, as_of, shop_gap, part)
        if total is None:
            total = result
        else:
            total.add(result)
    return total or StageRun(DEFAULT_MODEL, as_of)


def clear_history(engine: Engine, model: str) -> int:
    """Forget the stage history of a model (before replaying it); returns transitions removed."""
    with engine.begin() as conn:
        _lock(conn, shared=False)
        t = stage_transitions
        ids = select(t.c.id).where(t.c.model == model)
        conn.execute(
            delete(events).where(
                and_(events.c.type == STAGE_CHANGED, events.c.channel == SYSTEM_CHANNEL),
                events.c.event_id.in_(
                    select(literal(f"{SYSTEM_ID_PREFIX}stage:") + cast(t.c.id, String)).where(
                        t.c.model == model
                    )
                ),
            )
        )
        removed = conn.execute(delete(t).where(t.c.id.in_(ids))).rowcount
        conn.execute(delete(customer_stages).where(customer_stages.c.model == model))
        conn.execute(delete(customer_features))
    return int(removed)


def latest_change(engine: Engine, model: str) -> datetime | None:
    with engine.connect() as conn:
        return _latest_change(conn, model)


def month_starts(start: datetime, end: datetime) -> list[datetime]:
    """The first instant of every month (of the store's time zone) after `start` up to `end`,
    then `end` itself."""
    start, end = as_utc(start), as_utc(end)
    moments = []
    local = store_day(start)
    year, month = local.year, local.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        moment = store_midnight(date(year, month, 1))
        if moment >= end:
            break
        moments.append(moment)
    return [*moments, end]


def replay_stages(
    engine: Engine,
    start: datetime,
    end: datetime | None = None,
    *,
    rebuild: bool = False,
    progress: Any = None,
) -> list[StageRun]:
    """Build stage history by running the rules at the start of every month from `start` to
    `end` (default now), as the customers were then. `rebuild` first forgets the model's history."""
    end = as_utc(end) if end else utcnow()
    with engine.connect() as conn:
        model = active_model(conn)
    if rebuild:
        clear_history(engine, model.name)
    runs = []
    for moment in month_starts(start, end):
        runs.append(assign_stages(engine, as_of=moment, model=model))
        if progress:
            progress(moment)
    return runs
