"""The bulk-import loop shared by every kind of file: read, validate row by row, write in chunks.

Good rows are written chunk by chunk, each chunk in its own transaction, so memory stays flat
and a crash loses at most the chunk in flight (re-running the import is safe: writes are
idempotent). Each bad row is named by its line number and reason, and never stops the rest.
A row kept without a bad optional field (a birthday, say) is named too, as a warning.
`run_prepared_import` is the same loop for importers that check a whole chunk at once.

The rejections file (UTF-8 with a byte-order mark, so Excel shows Chinese) lists each rejected
row, and each row kept with a warning, as the file had it (its own column names, every cell)
after `rejected_line`, `rejected_sheet` (workbooks) and `rejection_reason`: fix the cells and
import the file again, with the same --map; those columns are skipped on the way in.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from pydantic import ValidationError
from sqlalchemy import Connection, Engine

from clm.core.errors import ClmError, InvalidInput
from clm.core.files import REJECTION_COLUMNS, BadRow, DataFile

T = TypeVar("T")
MAX_LISTED_REJECTIONS = 20
# Customers an import touched are remembered up to this many; past it, a full refresh is cheaper.
MAX_TRACKED_CUSTOMERS = 50_000


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    sheet: str | None = None  # the Excel sheet, when a workbook is imported
    row: dict[str, Any] | None = field(default=None, compare=False)  # as in the file, when known
    warning: bool = False  # the row was kept, without the field the reason names


@dataclass(frozen=True)
class Checked(Generic[T]):
    """A parsed row kept with warnings: the optional fields it had to leave out, and why."""

    item: T
    warnings: list[str]


@dataclass
class ChunkOutcome:
    """What the writer did with one chunk of valid rows."""

    accepted: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    customer_ids: set[int] = field(default_factory=set)


@dataclass
class Prepared(Generic[T]):
    """A chunk checked as a whole: how many rows it read, what to store, and what it rejected."""

    rows: int
    items: T
    rejections: list[Rejection] = field(default_factory=list)


@dataclass
class ImportReport:
    kind: str
    file: str
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)  # the first few, for display
    warned: int = 0  # rows kept without a bad optional field
    warnings: list[Rejection] = field(default_factory=list)  # the first few, for display
    rejections_file: str | None = None
    # the customers whose data changed (None: too many to list, refresh everyone)
    customer_ids: set[int] | None = field(default_factory=set)

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "file": self.file,
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            **self.counters,
            "rejections": [_listed(r) for r in self.rejections],
            "warned": self.warned,
            "warnings": [_listed(r) for r in self.warnings],
            "rejections_file": self.rejections_file,
        }


def _listed(r: Rejection) -> dict[str, Any]:
    return {"line": r.line, **({"sheet": r.sheet} if r.sheet else {}), "reason": r.reason}


def describe_error(exc: Exception) -> str:
    """One readable line for a validation failure (ours or Pydantic's)."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{where}: {msg}" if where else msg)
        return "; ".join(parts)
    if isinstance(exc, ClmError):
        return exc.message
    return str(exc)


class _RejectionLog:
    """Writes every rejection to a CSV file, opened only once there is something to write:
    line, sheet (workbooks), reason, then the row's cells under the file's own column names."""

    def __init__(self, path: Path | None, data: DataFile) -> None:
        self.path = path
        self.data = data
        self._file: IO[str] | None = None
        self._writer: Any = None
        self._columns: list[str] = []

    def write(self, rejection: Rejection) -> None:
        if self.path is None:
            return
        if self._writer is None:
            self._file = open(self.path, "w", newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed in close()
            self._writer = csv.writer(self._file)
            self._columns = [c for c in self.data.columns if c not in REJECTION_COLUMNS]
            workbook = self.data.format == "xlsx"
            own = REJECTION_COLUMNS if workbook else (REJECTION_COLUMNS[0], REJECTION_COLUMNS[2])
            self._writer.writerow([*own, *self._columns])
        reason = f"kept without {rejection.reason}" if rejection.warning else rejection.reason
        where = [rejection.line, rejection.sheet or ""] if self.data.format == "xlsx" else [rejection.line]
        row = rejection.row or {}
        self._writer.writerow([*where, reason, *(row.get(c, "") for c in self._columns)])

    def close(self) -> None:
        if self._file:
            self._file.close()


def run_import(
    kind: str,
    data: DataFile,
    parse: Callable[[dict[str, Any]], T | Checked[T]],
    write: Callable[[Sequence[tuple[int, T]]], ChunkOutcome],
    *,
    chunk_size: int = 20_000,
    rejections_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import `data`: `parse` validates one row (raising on bad input), `write` stores a chunk."""
    books = _Books(kind, data, rejections_path)
    _watch(progress, books.report)

    def flush(chunk: list[tuple[int, T]]) -> None:
        books.absorb(write(chunk))
        if progress:
            progress(data.bytes_read)

    chunk: list[tuple[int, T]] = []
    try:
        for line, row in data.rows():
            books.report.rows += 1
            if isinstance(row, BadRow):
                books.reject(Rejection(line, row.reason, data.sheet, data.original()))
                continue
            try:
                parsed = parse(row)
            except (InvalidInput, ValidationError, ValueError, TypeError) as exc:
                books.reject(Rejection(line, describe_error(exc), data.sheet, data.original()))
                continue
            if isinstance(parsed, Checked):
                original = data.original()
                for warning in parsed.warnings:
                    books.warn(Rejection(line, warning, data.sheet, original, warning=True))
                parsed = parsed.item
            chunk.append((line, parsed))
            if len(chunk) >= chunk_size:
                flush(chunk)
                chunk = []
        if chunk:
            flush(chunk)
    finally:
        books.close()
    if progress:
        progress(data.size)
    return books.report


@dataclass
class Matched:
    """A chunk whose first part is committed (its rows matched to profiles, say); `then`
    writes the rest in a transaction of its own while the next chunk's first part runs."""

    outcome: ChunkOutcome
    then: Callable[[Connection], ChunkOutcome]


def run_prepared_import(
    kind: str,
    engine: Engine,
    data: DataFile,
    chunks: Iterable[Prepared[T]],
    store: Callable[[Connection, T], ChunkOutcome | Matched],
    *,
    rejections_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import chunks that `chunks` has already read and checked, each in a transaction of its own.

    The next chunk is read and checked in this thread while the previous one is written in
    another: the database does its work outside Python's interpreter lock, so both cores work.
    A writer that answers `Matched` has the second part of each chunk written in a third thread,
    one chunk behind the first part.
    """
    books = _Books(kind, data, rejections_path)
    _watch(progress, books.report)

    def write(items: T) -> ChunkOutcome | Matched:
        with engine.begin() as conn:
            return store(conn, items)

    def write_rest(then: Callable[[Connection], ChunkOutcome]) -> ChunkOutcome:
        with engine.begin() as conn:
            return then(conn)

    pending: Future[ChunkOutcome | Matched] | None = None
    rest: Future[ChunkOutcome] | None = None
    try:
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"import-{kind}") as writer,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"import-{kind}-rest") as second,
        ):

            def settle(done: ChunkOutcome | Matched) -> None:
                nonlocal rest
                if isinstance(done, Matched):
                    books.absorb(done.outcome)
                    if rest is not None:  # one chunk in the second stage at a time
                        books.absorb(rest.result())
                    rest = second.submit(write_rest, done.then)
                else:
                    books.absorb(done)
                if progress:
                    progress(data.bytes_read)

            for chunk in chunks:
                books.report.rows += chunk.rows
                for rejection in chunk.rejections:
                    books.reject(rejection)
                if pending is not None:
                    settle(pending.result())
                pending = writer.submit(write, chunk.items)
            if pending is not None:
                settle(pending.result())
            if rest is not None:
                books.absorb(rest.result())
    finally:
        books.close()
    if progress:
        progress(data.size)
    return books.report


class ReportWatcher:
    """A `progress` callback that also sees the running report (rows read, accepted, rejected so
    far) when it is called after each chunk: give one to an importer for live counters."""

    report: ImportReport | None = None

    def __call__(self, bytes_read: int) -> None:
        """Called after each chunk is stored, with how far into the file reading has got."""


def _watch(progress: Callable[[int], None] | None, report: ImportReport) -> None:
    if isinstance(progress, ReportWatcher):
        progress.report = report


class _Books:
    """The running report of an import and its rejection log."""

    def __init__(self, kind: str, data: DataFile, rejections_path: Path | None) -> None:
        self.report = ImportReport(kind=kind, file=str(data.path))
        self.path = rejections_path
        self.log = _RejectionLog(rejections_path, data)
        self.warned_line: tuple[str | None, int] | None = None

    def reject(self, rejection: Rejection) -> None:
        report = self.report
        report.rejected += 1
        if len(report.rejections) < MAX_LISTED_REJECTIONS:
            report.rejections.append(rejection)
        self.log.write(rejection)

    def warn(self, warning: Rejection) -> None:
        """A row kept without an optional field: counted once, each field's reason listed."""
        report = self.report
        if self.warned_line != (warning.sheet, warning.line):
            report.warned += 1
            self.warned_line = (warning.sheet, warning.line)
        if len(report.warnings) < MAX_LISTED_REJECTIONS:
            report.warnings.append(warning)
        self.log.write(warning)

    def absorb(self, outcome: ChunkOutcome) -> None:
        report = self.report
        report.accepted += outcome.accepted
        report.duplicates += outcome.duplicates
        for name, value in outcome.counters.items():
            report.counters[name] = report.counters.get(name, 0) + value
        for rejection in outcome.rejections:
            self.reject(rejection)
        if report.customer_ids is not None:
            report.customer_ids |= outcome.customer_ids
            if len(report.customer_ids) > MAX_TRACKED_CUSTOMERS:
                report.customer_ids = None

    def close(self) -> None:
        self.log.close()
        if (self.report.rejected or self.report.warned) and self.path is not None:
            self.report.rejections_file = str(self.path)


def run_transactional_import(
    kind: str,
    engine: Engine,
    data: DataFile,
    parse: Callable[[dict[str, Any]], T | Checked[T]],
    store: Callable[[Connection, list[T]], ChunkOutcome],
    *,
    chunk_size: int,
    rejections_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """`run_import` where `store(conn, items)` writes each chunk in a transaction of its own,
    so a crash loses at most the chunk in flight."""

    def write(chunk: Sequence[tuple[int, T]]) -> ChunkOutcome:
        with engine.begin() as conn:
            return store(conn, [item for _, item in chunk])

    return run_import(
        kind, data, parse, write, chunk_size=chunk_size, rejections_path=rejections_path, progress=progress
    )
