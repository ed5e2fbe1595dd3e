"""Tables of the worker: the schedule of periodic jobs, with a lease so that one worker runs each,
and the file imports started from the console (queued, claimed and run like them)."""

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from clm.store.schema import JSONType, PKType, UTCDateTime, metadata

scheduled_jobs = Table(
    "scheduled_jobs",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("every_seconds", Integer),  # null: switched off
    Column("next_run_at", UTCDateTime, nullable=False),
    # a worker that claims the job holds it until then; a crashed worker's lease runs out
    Column("lease_until", UTCDateTime),
    Column("last_started_at", UTCDateTime),
    Column("last_finished_at", UTCDateTime),
    Column("last_status", String(16)),  # ok or failed
    Column("last_message", Text),
)

import_jobs = Table(
    "import_jobs",
    metadata,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # customers, events, orders, products
    Column("file_name", String(255), nullable=False),  # as the uploader's file was named
    Column("stored_name", String(255), nullable=False),  # the upload under CLM_IMPORT_DIR
    Column("format", String(8), nullable=False),
    Column("encoding", String(40)),
    Column("sheet", String(255)),
    Column("mapping", JSONType, nullable=False),  # file column -> field
    Column("size", BigInteger, nullable=False),  # bytes
    # uploaded (columns not yet confirmed), queued, running, refreshing, done, failed, discarded
    Column("status", String(16), nullable=False),
    Column("bytes_read", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("accepted", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("merged", BigInteger, nullable=False),
    Column("rejected", BigInteger, nullable=False),
    Column("warned", BigInteger, nullable=False),
    Column("counters", JSONType),  # every counter the importer kept (customers_created, ...)
    Column("rejections_name", String(255)),  # the rejections file under CLM_IMPORT_DIR
    Column("error", Text),  # why a failed import stopped
    Column("user_id", Integer),  # the console user who started it
    Column("actor", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("queued_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    # a runner holds a claimed job until then and keeps moving it on; a dead runner's lease runs out
    Column("lease_until", UTCDateTime),
    Column("attempts", Integer, nullable=False),
)
Index("ix_import_jobs_status", import_jobs.c.status)
