"""File imports started from the console, as rows of `import_jobs`: an uploaded file waits for its
columns to be confirmed, then is queued; a runner (`clm.worker.import_runner`: a thread of the
server, or `clm worker`) claims it with a lease and imports it.

Nothing accepted is lost: a job is a row, claimed by a conditional UPDATE that only one runner
wins, and held by a lease the runner keeps moving on while it works. When the server stops
mid-import, the lease runs out and the next runner (the restarted server, or a worker) imports
the file again from the start, which is safe: every import is idempotent (rows already stored
count as duplicates or updates the second time). A job that dies three times is failed.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update

from clm.auth.service import record_audit
from clm.core.errors import InvalidInput, NotFound
from clm.core.files import DataFile, detect_format
from clm.core.timeutil import as_utc, utcnow
from clm.worker.tables import import_jobs

log = logging.getLogger("clm.worker.imports")

KINDS = ("customers", "events", "orders", "products")
ACTIVE = ("queued", "running", "refreshing")  # a runner still has work to do on these
LEASE = timedelta(seconds=60)
DEFAULT_MAX_BYTES = 4 << 30
STALE_UPLOAD = timedelta(days=7)  # an upload whose columns were never confirmed is dropped then


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


def discard_stale_uploads(engine: Engine, actor: str, older_than: timedelta = STALE_UPLOAD) -> int:
    """Drop files uploaded more than `older_than` ago whose columns were never confirmed (the
    imports page calls this at each upload, so forgotten uploads do not fill the disk)."""
    with engine.connect() as conn:
        stale = (
            conn.execute(
                select(import_jobs.c.id).where(
                    import_jobs.c.status == "uploaded", import_jobs.c.created_at < utcnow() - older_than
                )
            )
            .scalars()
            .all()
        )
    for job_id in stale:
        discard_upload(engine, job_id, actor)
    return len(stale)


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


__all__ = [
    "ACTIVE",
    "KINDS",
    "LEASE",
    "ImportJob",
    "claim_next",
    "create_upload",
    "discard_stale_uploads",
    "discard_upload",
    "get_job",
    "has_unfinished",
    "import_dir",
    "list_jobs",
    "max_upload_bytes",
    "next_lease_end",
    "queue_job",
    "retry_job",
    "stored_name_for",
]
