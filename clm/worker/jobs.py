"""Periodic jobs: what they do, how often by default, and how a worker claims and runs them.

Several workers may run against one database: a job is claimed by a conditional UPDATE that
only one of them can win (the row is due and its lease expired), so each run happens once."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, insert, or_, select, update

from clm.core.errors import InvalidInput, NotFound
from clm.core.timeutil import as_utc, utcnow
from clm.lifecycle.service import assign_stages, lapsed_rule
from clm.loyalty.service import accrue, evaluate_tiers
from clm.segments.service import rebuild_segments
from clm.worker.tables import scheduled_jobs

log = logging.getLogger("clm.worker")
LEASE = timedelta(hours=2)


def _stages(engine: Engine) -> str:
    run = assign_stages(engine)
    builds = rebuild_segments(engine, depends={"features", "stage"})
    return (
        f"{run.evaluated:,} customers evaluated, {run.changed:,} stage changes; "
        f"{len(builds)} segments rebuilt"
    )


def _loyalty(engine: Engine) -> str:
    done = accrue(engine)
    run = evaluate_tiers(engine)
    return (
        f"{done.earn_postings:,} earn postings, {done.reversals:,} reversals, {done.expired:,} lots expired; "
        f"{run.upgrades:,} tier upgrades, {run.downgrades:,} downgrades"
    )


def _churn(engine: Engine) -> str:
    # scikit-learn and pandas load with the model, not with the schedule (`clm schedule list`)
    from clm.analytics.service import load_model, score_store

    try:
        load_model(engine, "store")
    except NotFound:
        return "skipped: no churn model trained on the store yet (clm churn train)"
    result = score_store(engine, lapsed_rule=lapsed_rule(engine))
    builds = rebuild_segments(engine, depends={"scores"})
    bands = ", ".join(f"{name} {n:,}" for name, n in result["bands"].items())
    scored = f"{result['customers']:,} customers scored as of {result['as_of'][:10]} ({bands})"
    return f"{scored}; {len(builds)} segments rebuilt"


def _segments(engine: Engine) -> str:
    builds = rebuild_segments(engine)
    moved = sum(b.entered + b.exited for b in builds)
    return f"{len(builds)} segments rebuilt, {moved:,} memberships changed"


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    every_seconds: int
    run: Callable[[Engine], str]


JOBS = {
    job.name: job
    for job in (
        Job(
            "stages",
            "assign every customer's lifecycle stage, then rebuild the segments that read them",
            86_400,
            _stages,
        ),
        Job(
            "loyalty",
            "post points for orders and earning events, reverse refunds, expire points, re-evaluate tiers",
            86_400,
            _loyalty,
        ),
        Job("segments", "rebuild every dynamic segment (time moves windowed conditions)", 3_600, _segments),
        Job(
            "churn",
            "score every active customer's churn risk with the newest trained model (at risk or already "
            "lost), then rebuild the segments that read the scores",
            86_400,
            _churn,
        ),
    )
}


@dataclass(frozen=True)
class Scheduled:
    name: str
    description: str
    every_seconds: int | None
    next_run_at: datetime
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_message: str | None


def _ensure(engine: Engine, now: datetime) -> None:
    with engine.begin() as conn:
        known = {n for (n,) in conn.execute(select(scheduled_jobs.c.name))}
        for job in JOBS.values():
            if job.name not in known:
                conn.execute(
                    insert(scheduled_jobs).values(
                        name=job.name, every_seconds=job.every_seconds, next_run_at=now
                    )
                )


def schedule(engine: Engine) -> list[Scheduled]:
    """Every job with its interval, next run and last outcome."""
    _ensure(engine, utcnow())
    with engine.connect() as conn:
        rows = conn.execute(select(scheduled_jobs).order_by(scheduled_jobs.c.name)).all()
    return [
        Scheduled(
            r.name,
            JOBS[r.name].description if r.name in JOBS else "",
            r.every_seconds,
            as_utc(r.next_run_at),
            as_utc(r.last_started_at) if r.last_started_at else None,
            as_utc(r.last_finished_at) if r.last_finished_at else None,
            r.last_status,
            r.last_message,
        )
        for r in rows
    ]


_EVERY = re.compile(r"^(\d+)\s*([smhd])$")


def parse_every(text: str) -> int | None:
    """`30m`, `1h`, `1d` → seconds; `off` → None (never)."""
    if text.strip().lower() == "off":
        return None
    m = _EVERY.match(text.strip().lower())
    if not m or int(m.group(1)) == 0:
        raise InvalidInput(f"{text!r} is not an interval: use e.g. 90s, 30m, 1h, 1d or off", "every")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3_600, "d": 86_400}[m.group(2)]


def set_interval(engine: Engine, name: str, every_seconds: int | None) -> None:
    if name not in JOBS:
        raise NotFound(f"no job named {name!r}; jobs: {', '.join(JOBS)}")
    _ensure(engine, utcnow())
    with engine.begin() as conn:
        conn.execute(
            update(scheduled_jobs).where(scheduled_jobs.c.name == name).values(every_seconds=every_seconds)
        )


def claim(engine: Engine, name: str, now: datetime) -> bool:
    """Take the job if it is due and nobody holds it; exactly one concurrent caller wins."""
    j = scheduled_jobs
    with engine.begin() as conn:
        taken = conn.execute(
            update(j)
            .where(
                j.c.name == name,
                j.c.every_seconds.is_not(None),
                j.c.next_run_at <= now,
                or_(j.c.lease_until.is_(None), j.c.lease_until < now),
            )
            .values(lease_until=now + LEASE, last_started_at=now)
        ).rowcount
    return bool(taken)


def run_due(
    engine: Engine, now: datetime | None = None, run: Callable[[Job, Engine], str] | None = None
) -> list[tuple[str, str, str]]:
    """Run every due job this worker can claim; returns (name, status, message) per job run.
    A failure is recorded on the job and does not stop the others."""
    now = now or utcnow()
    _ensure(engine, now)
    done = []
    for job in JOBS.values():
        if not claim(engine, job.name, now):
            continue
        try:
            message = (run or (lambda j, e: j.run(e)))(job, engine)
            status = "ok"
        except Exception as exc:  # recorded, and the next run comes as scheduled
            log.exception("job %s failed", job.name)
            status, message = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        finished = utcnow()
        with engine.begin() as conn:
            every = conn.execute(
                select(scheduled_jobs.c.every_seconds).where(scheduled_jobs.c.name == job.name)
            ).scalar_one()
            conn.execute(
                update(scheduled_jobs)
                .where(and_(scheduled_jobs.c.name == job.name))
                .values(
                    lease_until=None,
                    last_finished_at=finished,
                    last_status=status,
                    last_message=message,
                    next_run_at=now + timedelta(seconds=every or 0),
                )
            )
        done.append((job.name, status, message))
    return done


__all__ = ["JOBS", "Job", "Scheduled", "claim", "parse_every", "run_due", "schedule", "set_interval"]
