"""The worker's schedule: due jobs run once, a claimed job is not run twice, failures are kept."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from clm.cli import main
from clm.core.errors import InvalidInput
from clm.core.timeutil import utcnow
from clm.segments.service import create_segment
from clm.worker.jobs import claim, parse_every, run_due, schedule, set_interval


def test_due_jobs_run_once_and_come_back_after_their_interval(engine: Any) -> None:
    create_segment(engine, "buyers", where="orders >= 1")
    now = utcnow()
    first = run_due(engine, now)
    assert [(n, s) for n, s, _ in first] == [
        ("stages", "ok"),
        ("loyalty", "ok"),
        ("segments", "ok"),
        ("churn", "ok"),
    ]
    # no churn model trained yet: nothing to score, and not a failure
    assert first[3][2] == "skipped: no churn model trained on the store yet (clm churn train)"
    assert run_due(engine, now + timedelta(minutes=5)) == []
    later = run_due(engine, now + timedelta(hours=1, seconds=1))
    assert [n for n, _, _ in later] == ["segments"]
    jobs = {j.name: j for j in schedule(engine)}
    assert jobs["stages"].next_run_at == now + timedelta(days=1)
    assert jobs["segments"].last_message.startswith("1 segments rebuilt")


def test_a_claimed_job_is_not_claimed_again_until_its_lease_runs_out(engine: Any) -> None:
    schedule(engine)
    now = utcnow()
    assert claim(engine, "segments", now)
    assert not claim(engine, "segments", now)  # a second worker at the same moment
    assert claim(engine, "segments", now + timedelta(hours=3))  # the first one crashed


def test_a_failing_job_is_recorded_and_does_not_stop_the_others(engine: Any) -> None:
    def run(job: Any, eng: Any) -> str:
        if job.name == "stages":
            raise RuntimeError("disk full")
        return "fine"

    done = run_due(engine, utcnow(), run)
    assert done[0][:2] == ("stages", "failed") and "disk full" in done[0][2]
    assert done[1:] == [("loyalty", "ok", "fine"), ("segments", "ok", "fine"), ("churn", "ok", "fine")]
    assert {j.name: j.last_status for j in schedule(engine)} == {
        "churn": "ok",
        "loyalty": "ok",
        "segments": "ok",
        "stages": "failed",
    }


def test_intervals(engine: Any, db_url: str, capsys: Any) -> None:
    assert parse_every("30m") == 1800 and parse_every("1d") == 86_400 and parse_every("off") is None
    with pytest.raises(InvalidInput):
        parse_every("5x")
    set_interval(engine, "segments", None)
    assert run_due(engine, utcnow()) and run_due(engine, utcnow() + timedelta(days=2))[0][0] == "stages"
    assert main(["--db", db_url, "schedule", "set", "segments", "15m"]) == 0
    assert main(["--db", db_url, "schedule", "list", "--json"]) == 0
    assert '"every_seconds": 900' in capsys.readouterr().out
    assert main(["--db", db_url, "worker", "--once"]) == 0


def test_churn_scoring_is_scheduled_daily_and_can_be_changed(engine: Any, db_url: str, capsys: Any) -> None:
    jobs = {j.name: j for j in schedule(engine)}
    assert jobs["churn"].every_seconds == 86_400 and "churn risk" in jobs["churn"].description
    assert main(["--db", db_url, "schedule", "set", "churn", "6h"]) == 0
    capsys.readouterr()
    assert main(["--db", db_url, "schedule", "list", "--json"]) == 0
    listed = {j["name"]: j for j in json.loads(capsys.readouterr().out)}
    assert listed["churn"]["every_seconds"] == 21_600
