"""Tables of the worker: the schedule of periodic jobs, with a lease so that one worker runs each."""

from sqlalchemy import Column, Integer, String, Table, Text

from clm.store.schema import UTCDateTime, metadata

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
