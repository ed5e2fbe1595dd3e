"""The follow-up ingestion asks for once its transaction has committed: refreshing what is
derived from the data: lifecycle stages, then segment membership.

Domains below the lifecycle cannot import it, so the entry point that builds the app or runs
the import passes the refresher in explicitly (`create_app` sets `app.state.refresh_customers`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import Engine

# (engine, customer ids, kinds of data that changed: "event:<type>", "orders", "profile",
# "consent"; None for "anything")
CustomersChanged = Callable[[Engine, Collection[int], Collection[str] | None], Any]
log = logging.getLogger("clm.followups")


def refresh_customers(
    state: Any, engine: Engine, customer_ids: Collection[int], changed: Collection[str] | None = None
) -> None:
    """Run the app's refresher for these customers. The data is already committed, so a
    failure here is logged, not raised: the next full `clm stages run` catches up."""
    refresher: CustomersChanged | None = getattr(state, "refresh_customers", None)
    if refresher is None or not customer_ids:
        return
    try:
        refresher(engine, customer_ids, changed)
    except Exception:
        log.exception("refreshing %d customers after ingestion failed", len(customer_ids))
