"""File imports started from the console: an uploaded file waits for its columns to be confirmed,
then is queued; a runner (a thread of the server, or `clm worker`) claims it with a lease, imports
it with the same importer `clm import` uses, keeps its progress counters current, and brings
loyalty, stages and segments up to date afterwards.

Nothing accepted is lost: a job is a row, claimed by a conditional UPDATE that only one runner
wins, and held by a lease the runner keeps moving on while it works. When the server stops
mid-import, the lease runs out and the next runner (the restarted server, or a worker) imports
the file again from the start, which is safe: every import is idempotent (rows already stored
count as duplicates or updates the second time). A job that dies `MAX_ATTEMPTS` times is failed.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update

from clm.auth.service import record_audit
from clm.commerce.importer import import_orders, import_products
from clm.commerce.tables import order_days, order_items, orders, products
from clm.core.errors import ClmError, InvalidInput, NotFound
from clm.core.files import DataFile, detect_format
from clm.core.imports import ImportReport, ReportWatcher
from clm.core.timeutil import as_utc, utcnow
from clm.customers.importer import import_customers
from clm.customers.tables import consents, customer_identities, customers
from clm.events.importer import import_events
from clm.events.tables import events, survey_answers
from clm.lifecycle.service import assign_stages, reassess_customers
from clm.loyalty.service import refresh_loyalty
from clm.segments.service import rebuild_segments, recheck_customers
from clm.store.engine import refresh_statistics
from clm.worker.tables import import_jobs

log = logging.getLogger("clm.worker.imports")

KINDS = ("customers", "events", "orders", "products")
ACTIVE = ("queued", "running", "refreshing")  # a runner still has work to do on these
LEASE = timedelta(seconds=60)
HEARTBEAT_SECONDS = 15.0
PROGRESS_SECONDS = 1.0  # the counters are written at most this often while a file is read
MAX_ATTEMPTS = 3
DEFAULT_MAX_BYTES = 4 << 30
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


def import_dir() -> Path:
    """Where uploaded files and rejections files are kept (`CLM_IMPORT_DIR`, default
    `./clm-imports`); every server and worker that runs imports must see the same folder."""
    path = Path(os.environ.get("CLM_IMPORT_DIR", "").strip() or "clm-imports")
    (path / "uploads").mkdir(parents=True, exist_ok=True)
    return path


def max_upload_bytes() -> int:
    """The largest file the console accepts (`CLM_IMPORT_MAX_BYTES`, default 4 GiB)."""
    return int(os.environ.get("CLM_IMPORT_MAX_BYTES", "").strip() or DEFAULT_MAX_BYTES)


@dataclass(frozen=True)
class ImportJob:
    id: int
    kind: str
    file_name: str
    stored_name: str
    format: str
    encoding: str | None
    sheet: str | None
    mapping: dict[str, str]
    size: int
    status: str
    bytes_read: int
    rows: int
    accepted: int
    duplicates: int
    merged: int
    rejected: int
    warned: int
    counters: dict[str, int]
    rejections_name: str | None
    error: str | None
    user_id: int | None
    actor: str
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def percent(self) -> float:
        """How far the file has been read, 0-100 (100 while loyalty, stages and segments follow)."""
        if self.status in ("done", "refreshing"):
            return 100.0
        return min(100.0, 100.0 * self.bytes_read / self.size) if self.size else 0.0

    @property
    def by(self) -> str:
        """Who started it: the email in `user:ID:EMAIL`, else the actor as recorded."""
        parts = self.actor.split(":", 2)
        return parts[2] if len(parts) == 3 and parts[0] == "user" else self.actor

    @property
    def upload_path(self) -> Path:
        return import_dir() / "uploads" / self.stored_name

    @property
    def rejections_path(self) -> Path | None:
        return import_dir() / self.rejections_name if self.rejections_name else None


def _job(row: Any) -> ImportJob:
    values = dict(row._mapping)
    for name in ("created_at", "queued_at", "started_at", "finished_at"):
        values[name] = as_utc(values[name]) if values[name] else None
    values.pop("lease_until", None)
    values["mapping"] = dict(values["mapping"] or {})
    values["counters"] = dict(values["counters"] or {})
    return ImportJob(**values)


def stored_name_for(file_name: str) -> str:
    """A fresh name for an upload that keeps what its format is read from (`.csv.gz`, `.xlsx`)."""
    suffixes = "".join(s.lower() for s in Path(file_name).suffixes[-2:] if len(s) <= 8)
    return f"{secrets.token_hex(12)}{suffixes}"


def check_upload_name(file_name: str) -> str:
    """The format of a file by its name (as `clm import` tells it), or UnusableInput saying why not."""
    return detect_format(Path(file_name))


def create_upload(
    engine: Engine, kind: str, file_name: str, stored_name: str, size: int, actor: str, user_id: int | None
) -> ImportJob:
    """Record a file stored under `import_dir()/uploads`: it waits for its columns to be confirmed."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown kind of file; use {', '.join(KINDS)}", "kind")
    fmt = check_upload_name(file_name)
    with engine.begin() as conn:
        job_id = conn.execute(
            insert(import_jobs)
            .values(
                kind=kind,
                file_name=file_name[:255],
                stored_name=stored_name,
                format=fmt,
                mapping={},
                size=size,
                status="uploaded",
                bytes_read=0,
                rows=0,
                accepted=0,
                duplicates=0,
                merged=0,
                rejected=0,
                warned=0,
                counters={},
                user_id=user_id,
                actor=actor,
                created_at=utcnow(),
                attempts=0,
            )
            .returning(import_jobs.c.id)
        ).scalar_one()
        record_audit(
            conn,
            actor,
            "import.upload",
            "import_job",
            str(job_id),
            {"kind": kind, "file": file_name, "size": size},
        )
    return get_job(engine, job_id)


def get_job(engine: Engine, job_id: int) -> ImportJob:
    with engine.connect() as conn:
        row = conn.execute(select(import_jobs).where(import_jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no import {job_id}")
    return _job(row)


def list_jobs(engine: Engine, limit: int = 100) -> list[ImportJob]:
    """The latest imports first (files still waiting for their columns too, not discarded ones)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(import_jobs)
            .where(import_jobs.c.status != "discarded")
            .order_by(import_jobs.c.id.desc())
            .limit(limit)
        ).all()
    return [_job(r) for r in rows]


def queue_job(
    engine: Engine, job_id: int, mapping: dict[str, str], encoding: str | None, sheet: str | None, actor: str
) -> ImportJob:
    """Confirm an uploaded file's columns and queue it; the file is checked once more with them."""
    job = get_job(engine, job_id)
    if job.status != "uploaded":
        raise InvalidInput("this import has already been started", "status")
    DataFile(job.upload_path, job.format, mapping, encoding=encoding, sheet=sheet)  # UnusableInput if not
    with engine.begin() as conn:
        taken = conn.execute(
            update(import_jobs)
            .where(import_jobs.c.id == job_id, import_jobs.c.status == "uploaded")
            .values(status="queued", mapping=mapping, encoding=encoding, sheet=sheet, queued_at=utcnow())
        ).rowcount
        if not taken:
            raise InvalidInput("this import has already been started", "status")
        record_audit(
            conn,
            actor,
            "import.start",
            "import_job",
            str(job_id),
            {
                "kind": job.kind,
                "file": job.file_name,
                "mapping": mapping,
                "encoding": encoding,
                "sheet": sheet,
            },
        )
    return get_job(engine, job_id)


def discard_upload(engine: Engine, job_id: int, actor: str) -> None:
    """Drop a file whose import was never started (its row stays, marked discarded)."""
    job = get_job(engine, job_id)
    with engine.begin() as conn:
        taken = conn.execute(
            update(import_jobs)
            .where(import_jobs.c.id == job_id, import_jobs.c.status == "uploaded")
            .values(status="discarded", finished_at=utcnow())
        ).rowcount
        if taken:
            record_audit(conn, actor, "import.discard", "import_job", str(job_id), {"file": job.file_name})
    if taken:
        job.upload_path.unlink(missing_ok=True)


def claim_next(engine: Engine, now: datetime | None = None) -> ImportJob | None:
    """Take the oldest queued job, or one whose runner's lease ran out; one caller wins each."""
    now = now or utcnow()
    j = import_jobs
    claimable = or_(
        j.c.status == "queued",
        and_(
            j.c.status.in_(("running", "refreshing")), or_(j.c.lease_until.is_(None), j.c.lease_until < now)
        ),
    )
    with engine.connect() as conn:
        candidates = conn.execute(select(j.c.id).where(claimable).order_by(j.c.id).limit(5)).scalars().all()
    for job_id in candidates:
        with engine.begin() as conn:
            taken = conn.execute(
                update(j)
                .where(j.c.id == job_id, claimable)
                .values(
                    status="running",
                    lease_until=now + LEASE,
                    started_at=now,
                    finished_at=None,
                    attempts=j.c.attempts + 1,
                    bytes_read=0,
                    rows=0,
                    accepted=0,
                    duplicates=0,
                    merged=0,
                    rejected=0,
                    warned=0,
                    counters={},
                    error=None,
                )
            ).rowcount
        if taken:
            return get_job(engine, job_id)
    return None


def next_lease_end(engine: Engine) -> datetime | None:
    """When the earliest lease of a job another runner holds runs out (None: no such job)."""
    with engine.connect() as conn:
        at = conn.execute(
            select(func.min(import_jobs.c.lease_until)).where(import_jobs.c.status.in_(ACTIVE))
        ).scalar()
    return as_utc(at) if at else None


def has_unfinished(engine: Engine) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(select(import_jobs.c.id).where(import_jobs.c.status.in_(ACTIVE)).limit(1)).first()
            is not None
        )


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


def retry_job(engine: Engine, job_id: int, actor: str) -> ImportJob:
    """Queue a failed import again (its file is kept until an import of it is done)."""
    job = get_job(engine, job_id)
    if job.status != "failed" or not job.upload_path.exists():
        raise InvalidInput("only a failed import whose file is still there can be tried again", "status")
    with engine.begin() as conn:
        conn.execute(
            update(import_jobs)
            .where(import_jobs.c.id == job_id, import_jobs.c.status == "failed")
            .values(status="queued", queued_at=utcnow(), attempts=0, error=None)
        )
        record_audit(conn, actor, "import.retry", "import_job", str(job_id), {"file": job.file_name})
    return get_job(engine, job_id)


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


__all__ = [
    "KINDS",
    "ImportJob",
    "ImportRunner",
    "claim_next",
    "create_upload",
    "discard_upload",
    "get_job",
    "import_dir",
    "list_jobs",
    "max_upload_bytes",
    "queue_job",
    "retry_job",
    "run_job",
    "run_queued",
    "stored_name_for",
]
