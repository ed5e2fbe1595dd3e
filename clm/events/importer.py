"""Bulk import of event files (CSV / JSON Lines) through the same ingestion as the API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, Engine

from clm.core.files import DataFile
from clm.core.imports import ChunkOutcome, ImportReport, run_transactional_import
from clm.core.timeutil import utcnow
from clm.events.schemas import ValidEvent, validate_event
from clm.events.service import ingest_events


def import_events(
    engine: Engine,
    data: DataFile,
    *,
    actor: str = "import",
    chunk_size: int = 20_000,
    rejections_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    now = utcnow()

    def store(conn: Connection, batch: list[ValidEvent]) -> ChunkOutcome:
        result = ingest_events(conn, batch, actor=actor)
        return ChunkOutcome(
            accepted=result.accepted,
            duplicates=result.duplicates,
            counters={"customers_created": result.created_customers, "merges": result.merges},
            customer_ids=result.customer_ids,
        )

    return run_transactional_import(
        "events",
        engine,
        data,
        lambda row: validate_event(row, now),
        store,
        chunk_size=chunk_size,
        rejections_path=rejections_path,
        progress=progress,
    )
