"""Streaming readers for bulk files (CSV, TSV, JSON Lines, optionally gzipped).

Rows are yielded one at a time with their line number, so an import can report exactly which
line it rejected and memory stays flat whatever the file size. `DataFile.column_chunks` reads
a delimited file a block at a time into columns instead, for imports that validate whole
columns at once.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd

from clm.core.errors import UnusableInput

FORMATS = ("csv", "tsv", "jsonl")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
BLOCK_BYTES = 2 << 20  # what `column_chunks` reads at a time: ~35,000 typical event rows


@dataclass(frozen=True)
class BadRow:
    """A line that could not even be parsed into fields; `reason` says why."""

    reason: str


@dataclass
class ColumnChunk:
    """Consecutive rows of a delimited file as columns of text ('' where a cell is empty),
    each row with its line number; `bad` holds the lines that could not be split into fields."""

    lines: np.ndarray
    columns: dict[str, np.ndarray]
    bad: list[tuple[int, str]]

    def __len__(self) -> int:
        return len(self.lines)

    def row(self, i: int) -> dict[str, str]:
        """Row `i` as `rows()` would give it: empty cells left out."""
        return {name: str(values[i]) for name, values in self.columns.items() if values[i] != ""}


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise UnusableInput(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise UnusableInput(
        f"cannot tell the format of {path.name}: name it .csv, .tsv or .jsonl (optionally .gz) "
        "or pass --format"
    )


class DataFile:
    """One bulk input file; iterate `rows()` for (line number, fields or BadRow)."""

    def __init__(
        self, path: str | Path, fmt: str | None = None, mapping: Mapping[str, str] | None = None
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UnusableInput(f"file not found: {self.path}")
        self.format = detect_format(self.path, fmt)
        self.mapping = dict(mapping or {})
        self.size = self.path.stat().st_size
        self.header: list[str] = []  # a delimited file's column names, once reading has begun
        self._raw: IO[bytes] | None = None
        self._read_elsewhere: int | None = None

    @property
    def bytes_read(self) -> int:
        """How far into the file (on disk) reading has got, for progress bars."""
        if self._raw and not self._raw.closed:
            return self._raw.tell()
        return self.size if self._read_elsewhere is None else self._read_elsewhere

    def read_elsewhere(self, position: int) -> None:
        """Another reader of this file (its own `DataFile`, often in another process) has got
        to `position`: what `bytes_read` reports while this one is not reading."""
        self._read_elsewhere = position

    def rows(self) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
        with open(self.path, "rb") as raw:
            self._raw = raw
            stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if self.path.suffix == ".gz" else raw  # type: ignore[assignment]
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
            try:
                if self.format == "jsonl":
                    yield from self._jsonl_rows(text)
                else:
                    yield from self._csv_rows(text, "\t" if self.format == "tsv" else ",")
            except (OSError, EOFError) as exc:  # truncated gzip and the like
                raise UnusableInput(f"cannot read {self.path.name}: {exc}")

    def column_chunks(self, block_bytes: int | None = None) -> Iterator[ColumnChunk]:
        """A CSV/TSV file as chunks of columns, read a block of bytes at a time.

        Blocks without quotes, NULs or ragged lines (the usual machine-written export) are split
        by pandas' C parser; from the first block that has any of those on, rows go through the
        `csv` module one by one as in `rows()`, so line numbers and reasons stay exact.
        """
        if self.format == "jsonl":
            raise ValueError("column_chunks reads delimited files; use rows() for JSON Lines")
        block_bytes = block_bytes or BLOCK_BYTES  # looked up now, so tests can make it small
        delimiter = "\t" if self.format == "tsv" else ","
        with open(self.path, "rb") as raw:
            self._raw = raw
            stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if self.path.suffix == ".gz" else raw  # type: ignore[assignment]
            try:
                first = stream.readline()
                if first.startswith(b"\xef\xbb\xbf"):
                    first = first[3:]
                if not first:
                    raise UnusableInput(f"{self.path.name} is empty: a header line is needed")
                if b'"' in first or b"\x00" in first:
                    yield from self._chunked_rows(1)
                    return
                try:
                    text = first.decode("utf-8")
                except UnicodeDecodeError:
                    yield from self._chunked_rows(1)
                    return
                header = self._header(next(csv.reader([text], delimiter=delimiter), None))
                line = 2
                rest = b""
                while True:
                    data = stream.read(block_bytes)
                    block = rest + data
                    if not data:
                        rest = b""
                    else:
                        cut = block.rfind(b"\n") + 1
                        block, rest = block[:cut], block[cut:]
                    if block:
                        chunk = _split_block(block, header, delimiter, line)
                        if chunk is None:  # quotes, NULs, bad UTF-8 or ragged lines: go row by row
                            yield from self._chunked_rows(line)
                            return
                        line += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
                        if len(chunk):
                            yield chunk
                        del chunk  # not held while the next block is read and split
                    if not data and not rest:
                        return
            except (OSError, EOFError) as exc:  # truncated gzip and the like
                raise UnusableInput(f"cannot read {self.path.name}: {exc}")

    def _chunked_rows(self, from_line: int, size: int = 50_000) -> Iterator[ColumnChunk]:
        """`rows()` from `from_line` on, gathered into chunks of columns."""
        header: list[str] | None = None
        lines: list[int] = []
        records: list[dict[str, Any]] = []
        bad: list[tuple[int, str]] = []

        def chunk() -> ColumnChunk:
            names = header or sorted({k for r in records for k in r})
            columns = {n: np.array([r.get(n, "") for r in records], dtype=object) for n in names}
            return ColumnChunk(np.array(lines, dtype=np.int64), columns, bad)

        for line, row in self.rows():
            if header is None:
                header = self.header
            if line < from_line:
                continue
            if isinstance(row, BadRow):
                bad.append((line, row.reason))
            else:
                lines.append(line)
                records.append(row)
            if len(lines) + len(bad) >= size:
                yield chunk()
                lines, records, bad = [], [], []
        if lines or bad:
            yield chunk()

    def _header(self, fields: list[str] | None) -> list[str]:
        if fields is None:
            raise UnusableInput(f"{self.path.name} is empty: a header line is needed")
        header = [self.mapping.get(h.strip(), h.strip()) for h in fields]
        if len(set(header)) != len(header):
            raise UnusableInput(f"{self.path.name} has duplicate column names: {header}")
        self.header = header
        return header

    def _csv_rows(self, text: IO[str], delimiter: str) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = self._header(next(reader))
        except StopIteration:
            raise UnusableInput(f"{self.path.name} is empty: a header line is needed")
        except csv.Error as exc:
            raise UnusableInput(f"cannot read the header of {self.path.name}: {exc}")
        width = len(header)
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, BadRow(f"malformed CSV: {exc}")
                continue
            line = reader.line_num
            if not fields:
                continue
            if len(fields) != width:
                yield line, BadRow(f"expected {width} columns, found {len(fields)}")
                continue
            problem = _text_problem("".join(fields))
            if problem:
                yield line, BadRow(problem)
                continue
            yield line, {k: v for k, v in zip(header, fields, strict=True) if v != ""}

    def _jsonl_rows(self, text: IO[str]) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
        mapping = self.mapping
        for line_no, line in enumerate(text, start=1):
            if not line.strip():
                continue
            problem = _text_problem(line) or (
                "the line contains a NUL character" if "\\u0000" in line else None
            )
            if problem:
                yield line_no, BadRow(problem)
                continue
            try:
                value = orjson.loads(line.encode("utf-8", "surrogateescape"))
            except orjson.JSONDecodeError as exc:
                yield line_no, BadRow(f"invalid JSON: {exc}")
                continue
            if not isinstance(value, dict):
                yield line_no, BadRow("each line must be a JSON object")
                continue
            if mapping:
                value = {mapping.get(k, k): v for k, v in value.items()}
            yield line_no, {k: v for k, v in value.items() if v is not None and v != ""}


def _split_block(block: bytes, header: list[str], delimiter: str, first_line: int) -> ColumnChunk | None:
    """Whole lines of a delimited file as columns, or None when the block needs the careful
    reader: a quote (a cell may then hold a delimiter or a newline), a NUL, text that is not
    UTF-8, or a line with the wrong number of cells."""
    if b'"' in block or b"\x00" in block:
        return None
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    raw = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10)
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(block))
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts
    # a line holding only "\r" (a CRLF file's empty line) is empty too
    has_cr = (lengths > 0) & (raw[np.maximum(ends - 1, 0)] == 13)
    blank = (lengths - has_cr) == 0
    delims = np.flatnonzero(raw == ord(delimiter))
    cells = np.searchsorted(delims, ends) - np.searchsorted(delims, starts) + 1
    if np.any(cells[~blank] != len(header)):
        return None
    lines = first_line + np.flatnonzero(~blank)
    if not len(lines):
        return ColumnChunk(lines, {name: np.array([], dtype=object) for name in header}, [])
    frame = pd.read_csv(
        io.BytesIO(block),
        header=None,
        names=header,
        sep=delimiter,
        dtype=str,
        na_filter=False,
        quoting=csv.QUOTE_NONE,
        skip_blank_lines=True,
        engine="c",
        encoding="utf-8",
    )
    if len(frame) != len(lines):  # pandas saw the lines differently: let the careful reader decide
        return None
    return ColumnChunk(lines, {name: frame[name].to_numpy(dtype=object) for name in header}, [])


def _text_problem(text: str) -> str | None:
    """Why a line's text cannot be stored, if it cannot."""
    if "\x00" in text:
        return "the line contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "the line is not valid UTF-8 text"
    return None


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """Turn ["file_col=field", ...] (the CLI's --map options) into a dict."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise UnusableInput(f"--map expects FILE_COLUMN=FIELD, got {pair!r}")
        mapping[source.strip()] = target.strip()
    return mapping
