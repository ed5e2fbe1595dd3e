"""Figures that are slow to compute on a large store, kept for a while in the server process.

A page's figures (the overview for one period and filter) are computed in the request. When
that took less than `slow_seconds` nothing is kept: a small store always shows its numbers as of
now. When it took longer, the result is kept; it is shown as it is for `fresh_seconds`, and after
that the old result is still shown at once (the page says how old it is) while one background
thread computes it again. So only the first view of a period and filter on a large store waits
for the database, and a figure is never older than `fresh_seconds` plus one computation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Figures:
    value: Any
    computed_at: datetime  # when the computation started (the figures are as of then)
    seconds: float  # how long it took
    cached: bool  # True when this is a kept result rather than one computed for this request


class FiguresCache:
    def __init__(self, *, slow_seconds: float = 0.25, fresh_seconds: float = 300.0, size: float = 64) -> None:
        self.slow_seconds, self.fresh_seconds, self.size = slow_seconds, fresh_seconds, int(size)
        self._kept: OrderedDict[Hashable, Figures] = OrderedDict()
        self._running: set[Hashable] = set()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Figures:
        """The figures for `key`: kept ones when there are, else computed now (see the module)."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                age = (datetime.now(UTC) - kept.computed_at).total_seconds()
                if age > self.fresh_seconds and key not in self._running:
                    self._running.add(key)
                    threading.Thread(
                        target=self._refresh, args=(key, compute), name="figures-refresh", daemon=True
                    ).start()
        if kept is not None:
            return Figures(kept.value, kept.computed_at, kept.seconds, cached=True)
        return self._compute(key, compute)

    def _compute(self, key: Hashable, compute: Callable[[], Any]) -> Figures:
        began, clock = datetime.now(UTC), time.perf_counter()
        value = compute()
        figures = Figures(value, began, time.perf_counter() - clock, cached=False)
        with self._lock:
            if figures.seconds >= self.slow_seconds:
                self._kept[key] = figures
                self._kept.move_to_end(key)
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
            else:
                self._kept.pop(key, None)  # fast again: show live numbers from now on
        return figures

    def _refresh(self, key: Hashable, compute: Callable[[], Any]) -> None:
        try:
            self._compute(key, compute)
        except Exception:  # the old figures stay (with their age shown); the next view tries again
            log.exception("recomputing figures for %r failed", key)
        finally:
            with self._lock:
                self._running.discard(key)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()


__all__ = ["Figures", "FiguresCache"]
