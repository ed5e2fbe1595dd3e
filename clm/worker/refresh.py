"""What ingestion asks for once it has committed: the touched customers' loyalty postings and
tiers, then their lifecycle stages and segments (see clm.core.followups)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Engine

from clm.loyalty.service import TIER_CHANGED, programme, refresh_loyalty
from clm.segments.service import Changes
from clm.segments.service import refresh_customers as refresh_stages_and_segments
from clm.store.engine import retrying


def _earning(engine: Engine) -> set[str]:
    """Kinds of change that can earn or cost points: orders, and the event types rules earn on."""
    return {"orders"} | {f"event:{r.event}" for r in programme(engine).earn if r.on == "event"}


def refresh_customers(
    engine: Engine, customer_ids: Collection[int], changed: Collection[str] | None = None
) -> Changes:
    """Run again if PostgreSQL picked it as a deadlock victim: every step is a re-evaluation."""
    return retrying(lambda: _refresh(engine, customer_ids, changed))


def _refresh(engine: Engine, customer_ids: Collection[int], changed: Collection[str] | None) -> Changes:
    if changed is None or set(changed) & _earning(engine):
        refresh_loyalty(engine, customer_ids)
        if changed is not None:
            changed = {*changed, f"event:{TIER_CHANGED}"}
    return refresh_stages_and_segments(engine, customer_ids, changed)
