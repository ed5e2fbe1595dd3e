"""Streaming readers for bulk files (CSV, TSV, JSON Lines, optionally gzipped).

Rows are yielded one at a time with their line number, so an import can report exactly which
line it rejected and memory stays flat whatever the file size.
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

import orjson

from clm.core.errors import UnusableInput

FORMATS = ("csv", "tsv", "jsonl")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class BadRow:
    """A line that could not even be parsed into fields; `reason` says why."""

    reason: str


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
        self._raw: IO[bytes] | None = None

    @property
    def bytes_read(self) -> int:
        """How far into the file (on disk) reading has got, for progress bars."""
        return self._raw.tell() if self._raw and not self._raw.closed else self.size

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

    def _csv_rows(self, text: IO[str], delimiter: str) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise UnusableInput(f"{self.path.name} is empty: a header line is needed")
        except csv.Error as exc:
            raise UnusableInput(f"cannot read the header of {self.path.name}: {exc}")
        header = [self.mapping.get(h.strip(), h.strip()) for h in header]
        if len(set(header)) != len(header):
            raise UnusableInput(f"{self.path.name} has duplicate column names: {header}")
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
