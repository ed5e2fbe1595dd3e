"""Concurrent requests share follow-up refreshes: fewer, larger runs, and still every caller
returns only after a run that started after it asked has covered its customers."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from clm.core.followups import CoalescingRefresher

ENGINE: Any = object()


class SlowRefresher:
    """Records each run: when it started, for whom, and for which kinds of change."""

    def __init__(self, fail: bool = False) -> None:
        self.runs: list[tuple[float, frozenset[int], frozenset[str] | None]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, engine: Any, ids: Any, changed: Any) -> None:
        with self.lock:
            self.runs.append((time.perf_counter(), frozenset(ids), changed))
        time.sleep(0.05)
        if self.fail:
            raise RuntimeError("store went away")


def test_concurrent_asks_share_runs_and_each_waits_for_one_that_covers_it() -> None:
    slow = SlowRefresher()
    refresh = CoalescingRefresher(slow)

    def ask(k: int) -> tuple[float, float]:
        asked = time.perf_counter()
        refresh(ENGINE, {k, 100 + k}, {f"event:type{k}"})
        return asked, time.perf_counter()

    with ThreadPoolExecutor(8) as pool:
        timings = list(pool.map(ask, range(8)))

    assert 2 <= len(slow.runs) < 8  # the first alone, the others together (give or take)
    for k, (asked, returned) in enumerate(timings):
        covering = [
            (start, changed)
            for start, ids, changed in slow.runs
            if {k, 100 + k} <= ids and asked <= start <= returned
        ]
        assert covering, f"caller {k} returned without a run of its own customers"
        assert all(changed is not None and f"event:type{k}" in changed for _, changed in covering)


def test_anything_changed_wins_over_named_kinds() -> None:
    slow = SlowRefresher()
    refresh = CoalescingRefresher(slow)
    asks = [({1}, {"orders"}), ({2}, None), ({3}, {"profile"})]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda a: refresh(ENGINE, *a), asks))
    for _, ids, changed in slow.runs:
        assert (changed is None) == (2 in ids)
        if changed is not None:  # exactly the kinds of the callers it covered
            assert changed == {kind for k, kind in ((1, "orders"), (3, "profile")) if k in ids}


def test_a_failed_run_is_raised_to_every_caller_it_covered_and_the_next_ones_still_run() -> None:
    slow = SlowRefresher(fail=True)
    refresh = CoalescingRefresher(slow)

    def ask(k: int) -> str:
        try:
            refresh(ENGINE, {k}, None)
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(ask, range(4))) == ["store went away"] * 4
    slow.fail = False
    refresh(ENGINE, {9}, None)  # not stuck: the lead was handed on or given up
    assert slow.runs[-1][1] == frozenset({9})


def test_one_caller_alone_runs_its_own_refresh_at_once() -> None:
    slow = SlowRefresher()
    refresh = CoalescingRefresher(slow)
    refresh(ENGINE, [3, 4], ["orders"])
    refresh(ENGINE, [5], None)
    assert [(ids, changed) for _, ids, changed in slow.runs] == [
        (frozenset({3, 4}), frozenset({"orders"})),
        (frozenset({5}), None),
    ]


@pytest.mark.parametrize("callers", [2, 16])
def test_no_caller_is_left_waiting(callers: int) -> None:
    refresh = CoalescingRefresher(SlowRefresher())
    with ThreadPoolExecutor(callers) as pool:
        futures = [pool.submit(refresh, ENGINE, {k}, None) for k in range(callers * 3)]
        for f in futures:
            f.result(timeout=30)


def test_a_lead_that_dies_does_not_leave_the_others_waiting() -> None:
    """Even an error that is not an Exception (the thread being stopped) hands the lead on."""
    calls: list[frozenset[int]] = []

    def dying(engine: Any, ids: Any, changed: Any) -> None:
        calls.append(frozenset(ids))
        time.sleep(0.05)
        if len(calls) == 1:
            raise KeyboardInterrupt

    refresh = CoalescingRefresher(dying)

    def ask(k: int) -> str:
        try:
            refresh(ENGINE, {k}, None)
        except KeyboardInterrupt:
            return "stopped"
        return "done"

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(ask, 0)
        time.sleep(0.01)  # the others ask while the first runs
        rest = [pool.submit(ask, k) for k in (1, 2, 3)]
        assert first.result(timeout=10) == "stopped"
        assert [f.result(timeout=10) for f in rest] == ["done"] * 3
    assert frozenset({1, 2, 3}) <= frozenset().union(*calls[1:])
