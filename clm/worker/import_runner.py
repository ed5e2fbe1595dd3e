"""Running console imports: a claimed job's file goes through the same importer `clm import`
uses, its counters are written as it goes, its lease kept moving, and loyalty, stages and segments
follow; `ImportRunner` is the server's thread that does this for every queued import."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, update

from clm.auth.service import record_audit
from clm.commerce.importer import import_orders, import_products
from clm.commerce.tables import order_days, order_items, orders, products
from clm.core.errors import ClmError
from clm.core.files import DataFile
from clm.core.imports import ImportReport, ReportWatcher
from clm.core.timeutil import utcnow
from clm.customers.importer import import_customers
from clm.customers.tables import consents, customer_identities, customers
from clm.events.importer import import_events
from clm.events.tables import events, survey_answers
from clm.lifecycle.service import assign_stages, reassess_customers
from clm.loyalty.service import refresh_loyalty
from clm.segments.service import rebuild_segments, recheck_customers
from clm.store.engine import refresh_statistics
from clm.worker.import_jobs import (
    LEASE,
    ImportJob,
    claim_next,
    get_job,
    has_unfinished,
    import_dir,
    next_lease_end,
)
from clm.worker.tables import import_jobs

log = logging.getLogger("clm.worker.imports")

HEARTBEAT_SECONDS = 15.0
PROGRESS_SECONDS = 1.0  # the counters are written at most this often while a file is read
MAX_ATTEMPTS = 3
# An import storing this many rows gathers fresh planner statistics before the refresh reads them.
STATISTICS_AFTER = 50_000
_PROFILES = (customers, customer_identities)
_TABLES = {
    "events": (events, survey_answers, *_PROFILES),
    "customers": (*_PROFILES, consents),
    "orders": (orders, order_items, order_days, *_PROFILES),
    "products": (products,),
}
# the kinds of data each import changes, for re-checking only the segments that read them
_CHANGES = {"orders": {"orders"}, "customers": {"profile", "consent"}}

_IMPORTERS: dict[str, Callable[..., ImportReport]] = {
    "customers": import_customers,
    "events": import_events,
    "orders": import_orders,
    "products": import_products,
}


class _Progress(ReportWatcher):
    """Writes the running counters to the job's row, at most once a second."""

    def __init__(self, engine: Engine, job_id: int) -> None:
        self.engine, self.job_id = engine, job_id
        self.last = 0.0

    def __call__(self, bytes_read: int) -> None:
        if time.monotonic() - self.last < PROGRESS_SECONDS:
            return
        self.last = time.monotonic()
        _write_counts(self.engine, self.job_id, bytes_read, self.report)


def _counts(report: ImportReport | None) -> dict[str, Any]:
    if report is None:
        return {}
    return {
        "rows": report.rows,
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "merged": report.counters.get("merges", 0),
        "rejected": report.rejected,
        "warned": report.warned,
        "counters": dict(report.counters),
    }


def _write_counts(
    engine: Engine, job_id: int, bytes_read: int, report: ImportReport | None, **more: Any
) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(import_jobs)
            .where(import_jobs.c.id == job_id)
            .values(bytes_read=bytes_read, **_counts(report), **more)
        )


class _Heartbeat:
    """Moves the job's lease on every `HEARTBEAT_SECONDS` while it runs, from a thread of its own
    (a chunk, or the refresh at the end, may take longer than a lease)."""

    def __init__(self, engine: Engine, job_id: int) -> None:
        self.engine, self.job_id = engine, job_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"import-{job_id}-lease", daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_SECONDS):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        update(import_jobs)
                        .where(import_jobs.c.id == self.job_id)
                        .values(lease_until=utcnow() + LEASE)
                    )
            except Exception:  # the next beat tries again; the lease is a minute long
                log.warning("could not extend the lease of import %s", self.job_id, exc_info=True)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def run_job(engine: Engine, job: ImportJob) -> ImportJob:
    """Import a claimed job's file, then bring loyalty, stages and segments up to date for the
    customers it touched; the outcome (or why it failed) is written to the job and the audit log."""
    if job.attempts > MAX_ATTEMPTS:
        return _finish(
            engine, job, "failed", None, f"stopped after {MAX_ATTEMPTS} attempts that did not finish"
        )
    name = f"{job.id}-rejections.csv"
    progress = _Progress(engine, job.id)
    try:
        with _Heartbeat(engine, job.id):
            data = DataFile(job.upload_path, job.format, job.mapping, encoding=job.encoding, sheet=job.sheet)
            kwargs: dict[str, Any] = {"rejections_path": import_dir() / name, "progress": progress}
            if job.kind != "products":
                kwargs["actor"] = job.actor
            report = _IMPORTERS[job.kind](engine, data, **kwargs)
            _write_counts(engine, job.id, job.size, report, status="refreshing")
            follow_up(engine, report)
    except (ClmError, UnicodeError, OSError) as exc:  # the file, not the code: say why
        reason = exc.message if isinstance(exc, ClmError) else f"{type(exc).__name__}: {exc}"
        return _finish(engine, job, "failed", progress.report, reason)
    except Exception as exc:
        log.exception("import %s failed", job.id)
        return _finish(engine, job, "failed", progress.report, f"{type(exc).__name__}: {exc}"[:2000])
    return _finish(engine, job, "done", report, None, name if report.rejections_file else None)


def _finish(
    engine: Engine,
    job: ImportJob,
    status: str,
    report: ImportReport | None,
    error: str | None,
    rejections_name: str | None = None,
) -> ImportJob:
    counts = _counts(report)
    with engine.begin() as conn:
        conn.execute(
            update(import_jobs)
            .where(import_jobs.c.id == job.id)
            .values(
                status=status,
                error=error,
                rejections_name=rejections_name,
                finished_at=utcnow(),
                lease_until=None,
                **({"bytes_read": job.size} if status == "done" else {}),
                **counts,
            )
        )
        details = {"kind": job.kind, "file": job.file_name, "status": status, **counts}
        details.pop("counters", None)
        if error:
            details["error"] = error
        record_audit(conn, job.actor, "import.finish", "import_job", str(job.id), details)
    if status == "done":
        job.upload_path.unlink(missing_ok=True)  # the rejections file keeps every row not stored
    return get_job(engine, job.id)


def follow_up(engine: Engine, report: ImportReport) -> None:
    """What `clm import` does after a file: loyalty for orders and events, then stages and
    segments for the customers the file touched (everyone, after a big file)."""
    if report.accepted >= STATISTICS_AFTER:
        refresh_statistics(engine, _TABLES.get(report.kind, ()))
    ids = report.customer_ids
    if report.kind in ("orders", "events") and ids != set():
        refresh_loyalty(engine, ids)
    if ids is None:
        assign_stages(engine)
    elif ids:
        reassess_customers(engine, ids)
    kinds = _CHANGES.get(report.kind)
    if ids is None:
        rebuild_segments(engine, depends=kinds | {"features", "stage"} if kinds else None)
    elif ids:
        recheck_customers(engine, ids, kinds)


def run_queued(engine: Engine) -> list[ImportJob]:
    """Claim and run every import that is waiting (`clm worker` calls this each round)."""
    done = []
    while (job := claim_next(engine)) is not None:
        done.append(run_job(engine, job))
    return done


class ImportRunner:
    """The server's own runner: a thread started when a file is queued (and at start-up when
    imports are unfinished), which runs claimable jobs one after another and, while another
    runner holds a job, waits to take it over should that runner's lease run out."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def wake(self) -> None:
        with self._lock:
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="clm-imports", daemon=True)
                self._thread.start()

    def resume(self) -> None:
        """At start-up: imports a stopped server left queued or half done are taken up again."""
        try:
            unfinished = has_unfinished(self.engine)
        except Exception:  # a store without the table yet (`clm init` not run): nothing to resume
            log.warning("could not look for unfinished imports", exc_info=True)
            return
        if unfinished:
            self.wake()

    def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                if run_queued(self.engine):
                    continue
                lease_end = next_lease_end(self.engine)
            except Exception:
                log.exception("the import runner failed; it starts again with the next import")
                return
            if lease_end is None:
                with self._lock:  # a wake() between the look and here starts a new thread
                    if not self._wake.is_set():
                        self._thread = None
                        return
                continue
            wait = (lease_end - utcnow()).total_seconds() + 0.5
            self._wake.wait(min(max(wait, 0.5), HEARTBEAT_SECONDS))


__all__ = ["ImportRunner", "follow_up", "run_job", "run_queued"]
