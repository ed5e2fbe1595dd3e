"""The loyalty domain's public door: accounts (balance, tier, perks), postings, accrual from
orders and events, tier evaluation, and the programme in force."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from clm.core.timeutil import utcnow
from clm.customers.service import require_customer
from clm.loyalty.accrual import Accrual, accrue
from clm.loyalty.ledger import (
    KINDS,
    MANUAL_KINDS,
    Posting,
    active_programme,
    balance,
    balances,
    expiring,
    history,
    post_points,
    reverse_posting,
    select_programme,
    unswept_expiry,
)
from clm.loyalty.programme import Programme, load_programme, preset
from clm.loyalty.tiers import (
    TIER_CHANGED,
    TierRun,
    basis_values,
    evaluate_tiers,
    tier_counts,
    tier_history,
    tier_of,
)

EXPIRING_WINDOW_DAYS = 30


@dataclass(frozen=True)
class TierChange:
    from_tier: str
    to_tier: str
    direction: str
    basis_value: float
    changed_at: datetime


@dataclass(frozen=True)
class Account:
    """A customer's standing in the programme, as a template or a person would want it."""

    customer_id: int
    balance: int
    expiring_soon: int  # points that expire within EXPIRING_WINDOW_DAYS unless spent
    tier: str
    tier_title: dict[str, str]
    tier_since: datetime | None
    perks: dict[str, Any]
    basis: str  # spend or points
    basis_value: float  # over the rolling window, as of now
    next_tier: str | None
    to_next_tier: float | None  # how much more spend/points the next tier needs
    tier_history: list[TierChange]


def account(engine: Engine, customer_id: int, now: datetime | None = None) -> Account:
    """The customer's points and tier as of `now`. It only reads (points already due to expire
    are left out, not swept), so a look-up never waits for a writer."""
    now = now or utcnow()
    with engine.connect() as conn:
        require_customer(conn, customer_id)
        programme = active_programme(conn)
        due = unswept_expiry(conn, now, [customer_id]).get(customer_id, 0)
        points = balance(conn, customer_id) - due
        soon = expiring(conn, customer_id, now + timedelta(days=EXPIRING_WINDOW_DAYS)) - due
        tier_name, since, _ = tier_of(conn, customer_id)
        basis = basis_values(programme, now, [customer_id])
        value = float(conn.execute(select(basis.c.value)).scalar() or 0)
        changes = [TierChange(*row) for row in tier_history(conn, customer_id)]
    tier = programme.tier(tier_name)
    higher = [t for t in programme.tiers if t.min > tier.min]
    return Account(
        customer_id,
        points,
        soon,
        tier.name,
        {"en": tier.title_en, "zh": tier.title_zh},
        since,
        tier.perks,
        programme.basis,
        round(value, 2),
        higher[0].name if higher else None,
        round(max(0.0, higher[0].min - value), 2) if higher else None,
        changes,
    )


def standings(
    engine: Engine, customer_ids: Collection[int], now: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """Balance, tier, tier titles and perks of many customers at once (for message templates)."""
    from clm.loyalty.tables import customer_tiers

    ids = sorted(set(customer_ids))
    with engine.connect() as conn:  # reads only, as `account` does
        p = active_programme(conn)
        due = unswept_expiry(conn, now or utcnow(), ids)
        held = {cid: points - due.get(cid, 0) for cid, points in balances(conn, ids).items()}
        tiers = dict(
            conn.execute(
                select(customer_tiers.c.customer_id, customer_tiers.c.tier).where(
                    customer_tiers.c.customer_id.in_(ids)
                )
            ).all()
        )
    out = {}
    for cid in ids:
        tier = p.tier(tiers.get(cid, p.lowest.name))
        out[cid] = {
            "balance": held.get(cid, 0),
            "tier": tier.name,
            "tier_title": {"en": tier.title_en, "zh": tier.title_zh},
            "perks": tier.perks,
        }
    return out


def refresh_loyalty(engine: Engine, customer_ids: Collection[int] | None) -> Accrual:
    """After new orders or events for these customers (None: everybody): post what they earned
    or lost, then re-evaluate their tiers."""
    done = accrue(engine, customer_ids)
    evaluate_tiers(engine, customer_ids=customer_ids)
    return done


def programme(engine: Engine) -> Programme:
    with engine.connect() as conn:
        return active_programme(conn)


def use_programme(engine: Engine, source: str) -> Programme:
    """Select the default programme ('default') or one from a YAML/JSON file."""
    chosen = preset() if source == "default" else load_programme(Path(source))
    select_programme(engine, chosen, source)
    return chosen


def tiers_overview(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return tier_counts(conn)


__all__ = [
    "KINDS",
    "MANUAL_KINDS",
    "TIER_CHANGED",
    "Account",
    "Accrual",
    "Posting",
    "Programme",
    "TierChange",
    "TierRun",
    "account",
    "accrue",
    "evaluate_tiers",
    "history",
    "post_points",
    "programme",
    "refresh_loyalty",
    "reverse_posting",
    "standings",
    "tiers_overview",
    "use_programme",
]
