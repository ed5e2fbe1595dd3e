"""A generator run in a child process: its items arrive here in order, its errors are raised
here, and the child never outlives the loop that reads it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from clm.core.apart import ChildFailed, iterate_apart
from clm.core.errors import UnusableInput


def squares(n: int) -> Iterator[tuple[int, int]]:
    for i in range(n):
        yield os.getpid(), i * i


def fails_after(n: int) -> Iterator[int]:
    yield from range(n)
    raise UnusableInput("cannot read events.csv: it ends in the middle")


class Unpicklable(Exception):
    def __init__(self, what: str, lock: object) -> None:
        super().__init__(what)
        self.lock = lock


def fails_unpicklably() -> Iterator[int]:
    yield 1
    raise Unpicklable("the disk went away", lambda: None)


def dies() -> Iterator[int]:
    yield 1
    os._exit(3)


def forever() -> Iterator[int]:
    while True:
        yield os.getpid()


def test_the_items_come_in_order_from_another_process():
    got = list(iterate_apart(squares, 5))
    assert [square for _, square in got] == [0, 1, 4, 9, 16]
    pids = {pid for pid, _ in got}
    assert len(pids) == 1 and pids != {os.getpid()}


def test_an_error_in_the_child_is_raised_here_after_the_items_before_it():
    seen = []
    with pytest.raises(UnusableInput, match="ends in the middle"):
        for item in iterate_apart(fails_after, 3):
            seen.append(item)
    assert seen == [0, 1, 2]


def test_an_error_that_cannot_be_pickled_still_says_what_it_was():
    with pytest.raises(ChildFailed, match="Unpicklable: the disk went away"):
        list(iterate_apart(fails_unpicklably))


def test_a_child_that_dies_without_a_word_is_reported_with_its_exit_code():
    with pytest.raises(ChildFailed, match="exit code 3"):
        list(iterate_apart(dies))


def test_leaving_the_loop_early_stops_the_child():
    items = iterate_apart(forever)
    pid = next(items)
    os.kill(pid, 0)  # running
    items.close()
    deadline = time.monotonic() + 5
    with pytest.raises(ProcessLookupError):  # stopped and reaped
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.05)
