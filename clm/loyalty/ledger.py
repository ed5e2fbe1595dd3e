"""The points ledger: postings, balances derived from them and first-in-first-out expiry (earning
from orders and events is `clm.loyalty.accrual`).

Nothing is updated in place. A balance is the sum of a customer's postings. Every positive
posting is a lot that expires whole at its `expires_at`; spending takes the oldest lots first.
Under that rule the points expired by the k-th lot to fall due (lots ordered by expiry) follow
from running totals alone: with C_k the points of lots 1..k (less what refunds took back from
each) and D_k what was spent before lot k expired, the points expired up to lot k are
X_k = max(0, max_{j<=k}(C_j - D_j)). So expiry for every customer is one windowed SQL statement.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError

from clm.core.errors import Conflict, InvalidInput, NotFound
from clm.core.timeutil import as_utc, utcnow
from clm.customers.locks import lock_customers
from clm.customers.tables import customers
from clm.loyalty.programme import Programme, preset, programme_from_dict
from clm.loyalty.tables import loyalty_settings, points_postings
from clm.store.sql import greatest

KINDS = ("earn", "redeem", "expire", "adjust", "reverse")
MANUAL_KINDS = ("earn", "redeem", "adjust")
SYSTEM = "loyalty"
_p = points_postings
COLUMNS = (
    "customer_id", "kind", "points", "reason", "reference", "rule", "order_id", "reverses_id",
    "posted_at", "expires_at", "actor",
)  # fmt: skip


@dataclass(frozen=True)
class Posting:
    id: int
    customer_id: int
    kind: str
    points: int
    reason: str
    reference: str
    rule: str | None
    order_id: str | None
    reverses_id: int | None
    posted_at: datetime
    expires_at: datetime | None
    actor: str


def posting_of(r: Any) -> Posting:
    return Posting(
        r.id, r.customer_id, r.kind, r.points, r.reason, r.reference, r.rule, r.order_id,
        r.reverses_id, r.posted_at, r.expires_at, r.actor,
    )  # fmt: skip


# ---------------------------------------------------------------- the programme in force


def active_programme(conn: Connection) -> Programme:
    row = conn.execute(select(loyalty_settings.c.definition).where(loyalty_settings.c.id == 1)).first()
    return _parsed(None if row is None else json.dumps(row.definition, sort_keys=True))


@lru_cache(maxsize=8)
def _parsed(definition: str | None) -> Programme:
    return preset() if definition is None else programme_from_dict(json.loads(definition))


def select_programme(engine: Engine, programme: Programme, source: str) -> None:
    values = {
        "name": programme.name,
        "source": source,
        "definition": programme.as_dict(),
        "selected_at": utcnow(),
    }
    with engine.begin() as conn:
        if conn.execute(select(loyalty_settings.c.id).where(loyalty_settings.c.id == 1)).first():
            conn.execute(loyalty_settings.update().where(loyalty_settings.c.id == 1).values(**values))
        else:
            conn.execute(insert(loyalty_settings).values(id=1, **values))


def expiry_of(programme: Programme, at: datetime) -> datetime | None:
    return None if programme.expiry_days is None else at + timedelta(days=programme.expiry_days)


# ---------------------------------------------------------------- expiry


def sweep_expired(conn: Connection, now: datetime, customer_ids: Collection[int] | None = None) -> int:
    """Write an `expire` posting for every lot that fell due by `now` with points left in it
    (first in, first out; see the module docstring). Idempotent: a lot expires once."""
    due = _unswept(now, customer_ids)
    rows = select(
        due.c.customer_id,
        literal("expire"),
        -due.c.expired,
        literal("points reached their expiry date unspent"),
        due.c.reference,
        literal(None, String),
        literal(None, String),
        due.c.id,
        due.c.expires_at,
        literal(None, _p.c.expires_at.type),
        literal(SYSTEM),
    )
    return len(conn.execute(insert(_p).from_select(list(COLUMNS), rows).returning(_p.c.id)).all())


def unswept_expiry(conn: Connection, now: datetime, customer_ids: Collection[int]) -> dict[int, int]:
    """Points that fell due by `now` but have no `expire` posting yet, by customer: what the
    next sweep will write. A read subtracts them from the balance instead of writing the sweep
    itself, so that looking at an account never waits for a writer."""
    due = _unswept(now, customer_ids)
    return {
        int(cid): int(points)
        for cid, points in conn.execute(
            select(due.c.customer_id, func.sum(due.c.expired)).group_by(due.c.customer_id)
        ).all()
    }


def _unswept(now: datetime, customer_ids: Collection[int] | None) -> Any:
    """Lots that fell due by `now` with points left and not yet expired by a posting: the lot's
    id, customer, expiry time, the points that expire with it and the expiry posting's reference."""
    scope = true() if customer_ids is None else _p.c.customer_id.in_(sorted(set(customer_ids)))
    # a reversal is posted to its lot's customer: scoped alike, one account's read stays an index
    # read instead of walking every reversal in the ledger
    reversed_ = (
        select(_p.c.reverses_id.label("lot_id"), func.sum(-_p.c.points).label("taken"))
        .where(_p.c.kind == "reverse", _p.c.points < 0, scope)
        .group_by(_p.c.reverses_id)
        .subquery()
    )
    lots = (
        select(
            _p.c.id,
            _p.c.customer_id,
            _p.c.expires_at,
            (_p.c.points - func.coalesce(reversed_.c.taken, 0)).label("points"),
        )
        .select_from(_p.outerjoin(reversed_, reversed_.c.lot_id == _p.c.id))
        .where(_p.c.points > 0, _p.c.expires_at.is_not(None), _p.c.expires_at <= now, scope)
        .subquery()
    )
    d = _p.alias("spent")
    spent_before = (
        select(func.coalesce(func.sum(-d.c.points), 0))
        .where(
            d.c.customer_id == lots.c.customer_id,
            d.c.points < 0,
            d.c.kind.in_(("redeem", "adjust")),
            d.c.posted_at < lots.c.expires_at,
        )
        .scalar_subquery()
    )
    order = (lots.c.expires_at, lots.c.id)
    running = select(
        lots.c.id,
        lots.c.customer_id,
        lots.c.expires_at,
        (func.sum(lots.c.points).over(partition_by=lots.c.customer_id, order_by=order) - spent_before).label(
            "surplus"
        ),
    ).subquery()
    gone = select(
        running.c.id,
        running.c.customer_id,
        running.c.expires_at,
        greatest(
            func.max(running.c.surplus).over(
                partition_by=running.c.customer_id, order_by=(running.c.expires_at, running.c.id)
            ),
            0,
        ).label("gone"),
    ).subquery()
    step = select(
        gone.c.id,
        gone.c.customer_id,
        gone.c.expires_at,
        (
            gone.c.gone
            - func.coalesce(
                func.lag(gone.c.gone).over(
                    partition_by=gone.c.customer_id, order_by=(gone.c.expires_at, gone.c.id)
                ),
                0,
            )
        ).label("expired"),
    ).subquery()
    reference = literal("expire:", String) + cast(step.c.id, String)
    already = exists().where(_p.c.reference == reference)
    return (
        select(step.c.id, step.c.customer_id, step.c.expires_at, step.c.expired, reference.label("reference"))
        .where(step.c.expired > 0, ~already)
        .subquery()
    )


def balance(conn: Connection, customer_id: int) -> int:
    """The customer's points: the sum of their postings (sweep expiry first for a current figure)."""
    value = conn.execute(
        select(func.coalesce(func.sum(_p.c.points), 0)).where(_p.c.customer_id == customer_id)
    ).scalar_one()
    return int(value)


def balances(conn: Connection, customer_ids: Collection[int]) -> dict[int, int]:
    query = (
        select(_p.c.customer_id, func.sum(_p.c.points))
        .where(_p.c.customer_id.in_(sorted(set(customer_ids))))
        .group_by(_p.c.customer_id)
    )
    return {cid: int(total) for cid, total in conn.execute(query)}


# ---------------------------------------------------------------- postings by people and programs


def _existing(conn: Connection, reference: str) -> Posting | None:
    row = conn.execute(select(_p).where(_p.c.reference == reference)).first()
    return None if row is None else posting_of(row)


def _replay(found: Posting, customer_id: int, kind: str, points: int) -> Posting:
    if (found.customer_id, found.kind, found.points) != (customer_id, kind, points):
        raise Conflict(
            f"reference {found.reference!r} was already used for another posting "
            f"({found.kind} {found.points:+d} for customer {found.customer_id})"
        )
    return found


def _check_customer(conn: Connection, customer_id: int) -> None:
    row = conn.execute(select(customers.c.merged_into).where(customers.c.id == customer_id)).first()
    if row is None:
        raise NotFound(f"no customer with id {customer_id}")
    if row.merged_into is not None:
        raise InvalidInput(
            f"customer {customer_id} was merged into {row.merged_into}; post to that profile", "customer_id"
        )


def post_points(
    engine: Engine,
    customer_id: int,
    kind: str,
    points: int,
    reason: str,
    reference: str,
    *,
    actor: str,
    now: datetime | None = None,
) -> tuple[Posting, bool]:
    """Earn, redeem or adjust points for one customer; returns (posting, created).

    `points` is the size of the posting: positive for earn and redeem (a redemption is stored as
    a negative amount), signed for adjust. The same `reference` again returns the first posting
    instead of posting twice. A redemption or negative adjustment larger than the balance is
    refused; the customer's row lock makes concurrent redemptions wait for each other."""
    if kind not in MANUAL_KINDS:
        raise InvalidInput(
            f"kind must be one of {', '.join(MANUAL_KINDS)} (expiry and reversals are posted by the ledger)",
            "kind",
        )
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise InvalidInput("must be a whole number other than 0", "points")
    if kind in ("earn", "redeem") and points < 0:
        raise InvalidInput(f"give a positive number of points to {kind}", "points")
    if not reason.strip():
        raise InvalidInput("say why (shown in the customer's history)", "reason")
    reference = reference.strip()
    if not reference or len(reference) > 300:
        raise InvalidInput("must be 1 to 300 characters", "reference")
    signed = -points if kind == "redeem" else points
    now = as_utc(now or utcnow())
    try:
        with engine.begin() as conn:
            _check_customer(conn, customer_id)
            lock_customers(conn, [customer_id])
            found = _existing(conn, reference)
            if found is not None:
                return _replay(found, customer_id, kind, signed), False
            if signed < 0:
                sweep_expired(conn, now, [customer_id])
                have = balance(conn, customer_id)
                if have + signed < 0:
                    raise InvalidInput(
                        f"not enough points: the balance is {have:,}, the posting needs {-signed:,}",
                        "points",
                    )
            programme = active_programme(conn)
            new_id = conn.execute(
                insert(_p)
                .values(
                    customer_id=customer_id,
                    kind=kind,
                    points=signed,
                    reason=reason.strip(),
                    reference=reference,
                    posted_at=now,
                    expires_at=expiry_of(programme, now) if signed > 0 else None,
                    actor=actor,
                )
                .returning(_p.c.id)
            ).scalar_one()
            return posting_of(conn.execute(select(_p).where(_p.c.id == new_id)).one()), True
    except IntegrityError:
        # another request with the same reference won the race: answer with its posting
        with engine.connect() as conn:
            found = _existing(conn, reference)
        if found is None:
            raise
        return _replay(found, customer_id, kind, signed), False


def reverse_posting(engine: Engine, posting_id: int, reason: str, *, actor: str) -> tuple[Posting, bool]:
    """Take back an earn (as far as the balance allows, never below zero) or give back a
    redemption. Reversing the same posting again returns the first reversal."""
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(_p).where(_p.c.id == posting_id)).first()
        if row is None:
            raise NotFound(f"no posting with id {posting_id}")
        original = posting_of(row)
        if original.kind in ("expire", "reverse"):
            raise InvalidInput(f"a {original.kind} posting cannot be reversed", "posting_id")
        lock_customers(conn, [original.customer_id])
        found = _existing(conn, f"reverse:{posting_id}")
        if found is not None:
            return found, False
        sweep_expired(conn, now, [original.customer_id])
        if original.points > 0:
            points = -take_back(conn, original, now, balance(conn, original.customer_id))
        else:
            points = -original.points
        programme = active_programme(conn)
        conn.execute(
            insert(_p).values(
                customer_id=original.customer_id,
                kind="reverse",
                points=points,
                reason=reason.strip() or f"reversal of posting {posting_id}",
                reference=f"reverse:{posting_id}",
                order_id=original.order_id,
                reverses_id=posting_id,
                posted_at=now,
                expires_at=expiry_of(programme, now) if points > 0 else None,
                actor=actor,
            )
        )
        reversal = conn.execute(select(_p).where(_p.c.reference == f"reverse:{posting_id}")).one()
        return posting_of(reversal), True


def take_back(conn: Connection, lot: Posting, now: datetime, have: int) -> int:
    """How much of an earned lot a reversal can take: nothing once it expired, never more than
    the balance (points already spent stay spent)."""
    if lot.expires_at is not None and lot.expires_at <= now:
        return 0
    return max(0, min(lot.points, have))


# ---------------------------------------------------------------- reading


def history(engine: Engine, customer_id: int, limit: int = 100, offset: int = 0) -> list[Posting]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(_p)
            .where(_p.c.customer_id == customer_id)
            .order_by(_p.c.posted_at.desc(), _p.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [posting_of(r) for r in rows]


def expiring(conn: Connection, customer_id: int, until: datetime) -> int:
    """Points that will expire by `until` if the customer spends nothing more (same FIFO rule)."""
    lots = conn.execute(
        select(_p.c.id, _p.c.points, _p.c.expires_at)
        .where(_p.c.customer_id == customer_id, _p.c.points > 0, _p.c.expires_at.is_not(None))
        .order_by(_p.c.expires_at, _p.c.id)
    ).all()
    taken = dict(
        conn.execute(
            select(_p.c.reverses_id, func.sum(-_p.c.points))
            .where(_p.c.customer_id == customer_id, _p.c.kind == "reverse", _p.c.points < 0)
            .group_by(_p.c.reverses_id)
        ).all()
    )
    spent = -int(
        conn.execute(
            select(func.coalesce(func.sum(_p.c.points), 0)).where(
                _p.c.customer_id == customer_id, _p.c.points < 0, _p.c.kind.in_(("redeem", "adjust"))
            )
        ).scalar_one()
    )
    expired_already = -int(
        conn.execute(
            select(func.coalesce(func.sum(_p.c.points), 0)).where(
                _p.c.customer_id == customer_id, _p.c.kind == "expire"
            )
        ).scalar_one()
    )
    cumulative, gone = 0, 0
    for lot_id, points, expires_at in lots:
        if expires_at > until:
            break
        cumulative += points - int(taken.get(lot_id, 0))
        gone = max(gone, cumulative - spent)
    return max(0, gone - expired_already)
