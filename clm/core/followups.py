"""The follow-up ingestion asks for once its transaction has committed: refreshing what is
derived from the data: lifecycle stages, then segment membership.

Domains below the lifecycle cannot import it, so the entry point that builds the app or runs
the import passes the refresher in explicitly (`create_app` sets `app.state.refresh_customers`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
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


@dataclass(eq=False)
class _Ask:
    engine: Engine
    customer_ids: frozenset[int]
    changed: frozenset[str] | None
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # this caller runs the next refresh, for everyone waiting
    error: BaseException | None = None


class CoalescingRefresher:
    """The refresher, shared by requests that ask at the same time: while one refresh runs, the
    asks that arrive wait, and the next refresh covers all of them at once (their customers
    together, every kind of change any of them made). Re-evaluating 1,500 customers in one go
    costs little more than 500 (a statement's cost is mostly its own, not per customer), so
    concurrent API batches share the work. Each caller still returns only once a refresh that
    started after it asked has covered its customers, as if it had run its own; a caller whose
    ask was covered by another's refresh hands the lead to the next waiting one, so nobody
    refreshes for others for ever."""

    def __init__(self, refresher: CustomersChanged) -> None:
        self._refresher = refresher
        self._lock = threading.Lock()
        self._pending: list[_Ask] = []
        self._running = False

    def __call__(
        self, engine: Engine, customer_ids: Collection[int], changed: Collection[str] | None = None
    ) -> None:
        ask = _Ask(engine, frozenset(customer_ids), None if changed is None else frozenset(changed))
        with self._lock:
            self._pending.append(ask)
            if not self._running:
                self._running = ask.lead = True
        if not ask.lead:
            ask.wake.wait()
        if ask.lead:
            with self._lock:
                batch, self._pending = self._pending, []
            try:
                self._run(batch)
            finally:  # whatever happened, nobody may be left waiting for a lead that is gone
                with self._lock:
                    if self._pending:
                        successor = self._pending[0]
                        successor.lead = True
                        successor.wake.set()
                    else:
                        self._running = False
        if ask.error is not None:
            raise ask.error

    def _run(self, batch: list[_Ask]) -> None:
        for engine in dict.fromkeys(a.engine for a in batch):  # one engine per app in practice
            asks = [a for a in batch if a.engine is engine]
            ids = frozenset().union(*(a.customer_ids for a in asks))
            changed: frozenset[str] | None = frozenset()
            for a in asks:
                changed = None if changed is None or a.changed is None else changed | a.changed
            try:
                self._refresher(engine, ids, changed)
            except Exception as exc:  # each caller logs it (see refresh_customers)
                for a in asks:
                    a.error = exc
            finally:
                for a in asks:
                    if not a.lead:
                        a.wake.set()
