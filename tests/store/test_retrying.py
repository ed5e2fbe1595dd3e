"""`retrying` runs work again only when PostgreSQL rolled it back as a deadlock victim (or a
serialization failure), a bounded number of times; any other error goes straight up."""

import psycopg.errors
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from clm.store.engine import retrying


def flaky(failures: list[Exception]):
    calls = []

    def work() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"

    return work, calls


def deadlock() -> OperationalError:
    return OperationalError("SELECT 1", {}, psycopg.errors.DeadlockDetected("deadlock detected"))


def test_a_deadlock_victim_runs_again_until_it_goes_through():
    work, calls = flaky([deadlock(), deadlock()])
    assert retrying(work) == "done"
    assert len(calls) == 3


def test_a_serialization_failure_also_runs_again():
    failure = OperationalError("SELECT 1", {}, psycopg.errors.SerializationFailure("could not serialize"))
    work, calls = flaky([failure])
    assert retrying(work) == "done"
    assert len(calls) == 2


def test_other_database_errors_are_not_retried():
    clash = IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key"))
    work, calls = flaky([clash])
    with pytest.raises(IntegrityError):
        retrying(work)
    assert len(calls) == 1


def test_it_gives_up_after_its_attempts():
    work, calls = flaky([deadlock() for _ in range(5)])
    with pytest.raises(OperationalError):
        retrying(work, attempts=3)
    assert len(calls) == 3
