"""The shared bulk-import loop: chunks written in order, a second stage one chunk behind."""

import threading

import pytest
from sqlalchemy import Connection

from clm.core.files import DataFile
from clm.core.imports import ChunkOutcome, Matched, Prepared, run_prepared_import


def _chunks(n: int) -> list[Prepared[int]]:
    return [Prepared(rows=10, items=i) for i in range(n)]


def test_a_second_stage_runs_one_chunk_behind_and_every_outcome_counts(engine, write_file):
    log: list[str] = []
    lock = threading.Lock()

    def store(conn: Connection, i: int) -> Matched:
        with lock:
            log.append(f"match {i}")

        def then(later: Connection) -> ChunkOutcome:
            with lock:
                log.append(f"store {i}")
            return ChunkOutcome(accepted=9, duplicates=1)

        return Matched(ChunkOutcome(counters={"customers_created": 2}, customer_ids={i}), then)

    data = DataFile(write_file("x.csv", "a\n1\n"))
    report = run_prepared_import("events", engine, data, _chunks(4), store)
    assert (report.rows, report.accepted, report.duplicates) == (40, 36, 4)
    assert report.counters == {"customers_created": 8} and report.customer_ids == {0, 1, 2, 3}
    for i in range(4):  # each chunk stored after it was matched, the chunks in order
        assert log.index(f"match {i}") < log.index(f"store {i}")
        assert i == 0 or log.index(f"store {i - 1}") < log.index(f"store {i}")


def test_a_failing_second_stage_stops_the_import_with_its_error(engine, write_file):
    stored: list[int] = []

    def store(conn: Connection, i: int) -> Matched:
        def then(later: Connection) -> ChunkOutcome:
            if i == 1:
                raise RuntimeError("COPY refused chunk 1")
            stored.append(i)
            return ChunkOutcome(accepted=10)

        return Matched(ChunkOutcome(), then)

    data = DataFile(write_file("x.csv", "a\n1\n"))
    with pytest.raises(RuntimeError, match="chunk 1"):
        run_prepared_import("events", engine, data, _chunks(5), store)
    assert stored == [0]  # nothing after the failed chunk is stored
