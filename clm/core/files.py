"""Streaming readers for bulk files (CSV, TSV, JSON Lines, optionally gzipped; Excel .xlsx).

Rows are yielded one at a time with their line number, so an import can report exactly which
line it rejected and memory stays flat whatever the file size. `DataFile.column_chunks` reads
a delimited file a block at a time into columns instead, for imports that validate whole
columns at once.

Text files are decoded by this rule (`--encoding` overrides it): a byte-order mark says
UTF-8 or UTF-16; without one, the first line that is not plain ASCII decides: UTF-8 if it is
valid UTF-8, else GB18030 (a superset of GBK and GB2312, what Chinese Windows and most Chinese
systems export). A later line that is not text in that encoding stops the import naming the
line (a file saved in two encodings), as does, in a file read as GB18030, a line that is valid
UTF-8. A file that looks binary (control bytes, NULs) is refused at once.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import chain
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd

from clm.core.encodings import (
    ascii_based,
    bom_encoding,
    check_encoding,
    first_guess,
    is_utf8,
    looks_binary,
)
from clm.core.errors import UnusableInput

FORMATS = ("csv", "tsv", "jsonl", "xlsx")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",  # Excel's "Unicode text" and "text (tab-delimited)"
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".xlsx": "xlsx",
}
# Columns a rejections file adds to the rows it lists: dropped when such a file is read back in.
REJECTION_COLUMNS = ("rejected_line", "rejected_sheet", "rejection_reason")
SKIP = "-"  # `--map 商品名称=-`: a column of the file left out (an export's columns CLM has no field for)
SAMPLE_BYTES = 64 << 10  # what is looked at for a byte-order mark and binary content

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
    sheet: str | None = None  # the Excel sheet the rows are on

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
    if suffixes and suffixes[-1] in (".xls", ".xlsb", ".et"):
        raise UnusableInput(f"{path.name} is an old Excel format: save it as .xlsx or CSV and import that")
    raise UnusableInput(
        f"cannot tell the format of {path.name}: name it .csv, .tsv, .txt, .jsonl (optionally .gz) "
        "or .xlsx, or pass --format"
    )


class DataFile:
    """One bulk input file; iterate `rows()` for (line number, fields or BadRow)."""

    def __init__(
        self,
        path: str | Path,
        fmt: str | None = None,
        mapping: Mapping[str, str] | None = None,
        *,
        encoding: str | None = None,
        sheet: str | None = None,
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
        self.given_encoding = check_encoding(encoding)
        # the encoding text is read in: given, from a byte-order mark, or once a line decides it
        self.encoding: str | None = self.given_encoding
        self.sheet_name = sheet
        if sheet and self.format != "xlsx":
            raise UnusableInput("--sheet is for Excel workbooks (.xlsx)")
        self.sheet: str | None = None  # the sheet being read (Excel)
        # the file's own column names (as in the file, before --map), all sheets' together
        self.columns: list[str] = []
        self._raw_header: list[str] = []
        self._keys: list[str | None] = []  # each column's name after --map (None: left out)
        self._fields: list[Any] | None = None  # the cells of the row last yielded
        if self.format == "xlsx":
            self.columns = self._xlsx_columns()
        else:
            self._check_text()

    def original(self) -> dict[str, Any]:
        """The row last yielded as the file has it: its own column names, every cell (for a
        rejections file that can be fixed and imported again)."""
        if self._fields is None:
            return {}
        return {k: v for k, v in zip(self._raw_header, self._fields, strict=False) if k}

    def _open_stream(self, raw: IO[bytes]) -> IO[bytes]:
        if self.path.suffix.lower() == ".gz":
            return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
        return raw

    def _check_text(self) -> None:
        """A byte-order mark sets the encoding; a file that looks binary is refused now."""
        try:
            with open(self.path, "rb") as raw:
                sample = self._open_stream(raw).read(SAMPLE_BYTES)
        except (OSError, EOFError) as exc:
            raise UnusableInput(f"cannot read {self.path.name}: {exc}")
        bom = bom_encoding(sample)
        if bom and not (self.given_encoding or "").startswith(bom.removesuffix("-sig")):
            self.encoding = bom  # a byte-order mark is surer than anything said about the file
        if self.encoding is None and looks_binary(sample):
            kind = "an Excel workbook (name it .xlsx)" if sample.startswith(b"PK\x03\x04") else "binary data"
            raise UnusableInput(
                f"{self.path.name} is not a text file (it looks like {kind}); "
                "import .csv, .tsv, .txt, .jsonl or .xlsx files"
            )
        if self.format != "jsonl":  # the column names, for a rejections file written before reading
            encoding = self.encoding or ("utf-8" if is_utf8(sample.split(b"\n", 1)[0]) else "gb18030")
            first = sample.decode(encoding, errors="replace").removeprefix("\ufeff").split("\n", 1)[0]
            fields = next(csv.reader([first.rstrip("\r")], delimiter=self._delimiter(first)), [])
            self.columns = [f.strip() for f in fields if f.strip()]

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
        if self.format == "xlsx":
            yield from self._xlsx_rows()
            return
        with open(self.path, "rb") as raw:
            self._raw = raw
            text = self._text_lines(self._open_stream(raw))
            try:
                if self.format == "jsonl":
                    yield from self._jsonl_rows(text)
                else:
                    yield from self._csv_rows(text, "\t" if self.format == "tsv" else ",")
            except (OSError, EOFError) as exc:  # truncated gzip and the like
                raise UnusableInput(f"cannot read {self.path.name}: {exc}")

    def _text_lines(self, stream: IO[bytes]) -> Iterator[str]:
        """The file's lines as text (line endings kept), decoded by the rule in the module's
        docstring; a line that breaks it stops the import with its number."""
        encoding = self.encoding
        if encoding is not None and not ascii_based(encoding):  # UTF-16/32: no byte lines
            text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")
            line = 0
            try:
                for line, decoded in enumerate(text, start=1):
                    yield decoded.removeprefix("\ufeff") if line == 1 else decoded
            except UnicodeDecodeError as exc:
                raise self._not_text(line + 1, encoding, exc)
            return
        decided = self.given_encoding is not None  # said, or from a byte-order mark: no second guess
        for line, raw in enumerate(stream, start=1):
            if raw.isascii():
                yield raw.decode("ascii")
                continue
            if line == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[3:]
            if encoding is None:
                encoding = self.encoding = first_guess(raw)
                decided = decided or encoding == "utf-8-sig"
            if not decided and encoding == "gb18030" and is_utf8(raw):
                raise UnusableInput(
                    f"line {line} of {self.path.name} is UTF-8 text, but the lines before it are "
                    "GB18030 (GBK): the file holds two encodings; save it in one (or pass --encoding)"
                )
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise self._not_text(line, encoding, exc)

    def _not_text(self, line: int, encoding: str, exc: UnicodeDecodeError) -> UnusableInput:
        name = "UTF-8" if encoding.startswith("utf-8") else encoding.upper()
        said = "as given by --encoding" if self.given_encoding else "as the lines before it"
        return UnusableInput(
            f"line {line} of {self.path.name} is not {name} text {said} (byte {exc.start + 1} of the "
            f"line): the file may hold two encodings; save it in one, or pass --encoding"
        )

    def column_chunks(self, block_bytes: int | None = None) -> Iterator[ColumnChunk]:
        """A CSV/TSV file as chunks of columns, read a block of bytes at a time.

        Blocks without quotes, NULs or ragged lines (the usual machine-written export) are split
        by pandas' C parser; from the first block that has any of those on, rows go through the
        `csv` module one by one as in `rows()`, so line numbers and reasons stay exact.
        """
        if self.format == "jsonl":
            raise ValueError("column_chunks reads delimited files; use rows() for JSON Lines")
        block_bytes = block_bytes or BLOCK_BYTES  # looked up now, so tests can make it small
        if self.format == "xlsx" or self.encoding not in (None, "utf-8", "utf-8-sig"):
            yield from self._chunked_rows(1)  # workbooks, and text the C parser is not given
            return
        with open(self.path, "rb") as raw:
            self._raw = raw
            stream = self._open_stream(raw)
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
                delimiter = self._delimiter(text)
                header = self._header(next(csv.reader([text], delimiter=delimiter), None))
                if len(self._keys) != len(header):  # a rejections file read back: columns to drop
                    yield from self._chunked_rows(1)
                    return
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

        sheet = self.sheet

        def chunk() -> ColumnChunk:
            names = header or sorted({k for r in records for k in r})
            columns = {n: np.array([r.get(n, "") for r in records], dtype=object) for n in names}
            return ColumnChunk(np.array(lines, dtype=np.int64), columns, bad, sheet)

        for line, row in self.rows():
            if self.sheet != sheet:  # a workbook's next sheet: its own chunks, its own columns
                if lines or bad:
                    yield chunk()
                    lines, records, bad = [], [], []
                sheet, header = self.sheet, None
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
        """The columns' names after --map; a rejections file's own columns are left out
        (`self._keys` has None for them, by position)."""
        if fields is None:
            raise UnusableInput(f"{self.path.name} is empty: a header line is needed")
        raw = [h.strip() for h in fields]
        if self.format != "xlsx":
            self.columns = [h for h in raw if h]
        self._raw_header = raw
        keys = [
            None if h in REJECTION_COLUMNS or self.mapping.get(h) == SKIP else self.mapping.get(h, h)
            for h in raw
        ]
        header = [k for k in keys if k is not None]
        if len(set(header)) != len(header):
            raise UnusableInput(f"{self.path.name} has duplicate column names: {header}")
        self.header = header
        self._keys = keys
        return header

    def _delimiter(self, first_line: str) -> str:
        """A tab for TSV; for CSV too when the header has tabs and no comma (Excel's "Unicode
        text" saved as .csv)."""
        if self.format == "tsv" or ("\t" in first_line and "," not in first_line):
            return "\t"
        return ","

    def _csv_rows(self, text: Iterator[str], delimiter: str) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
        first = next(text, None)
        if first is None:
            raise UnusableInput(f"{self.path.name} is empty: a header line is needed")
        reader = csv.reader(chain([first], text), delimiter=self._delimiter(first))
        try:
            self._header(next(reader))
        except StopIteration:
            raise UnusableInput(f"{self.path.name} is empty: a header line is needed")
        except csv.Error as exc:
            raise UnusableInput(f"cannot read the header of {self.path.name}: {exc}")
        keys = self._keys
        width = len(keys)
        dropping = None in keys
        while True:
            self._fields = None
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
            self._fields = fields
            if len(fields) != width:
                yield line, BadRow(f"expected {width} columns, found {len(fields)}")
                continue
            problem = _text_problem("".join(fields))
            if problem:
                yield line, BadRow(problem)
                continue
            if dropping:
                yield line, {k: v for k, v in zip(keys, fields, strict=True) if v != "" and k is not None}
            else:
                yield line, {k: v for k, v in zip(keys, fields, strict=True) if v != ""}  # type: ignore[misc]

    def _workbook(self) -> Any:
        from openpyxl import load_workbook  # only when a workbook is read: it is not small

        try:
            return load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:  # not a zip, not a workbook, damaged: openpyxl raises many kinds
            raise UnusableInput(f"cannot read {self.path.name} as an Excel workbook (.xlsx): {exc}")

    def _sheets(self, book: Any) -> list[Any]:
        if self.sheet_name is None:
            return list(book.worksheets)
        if self.sheet_name not in book.sheetnames:
            raise UnusableInput(
                f"{self.path.name} has no sheet {self.sheet_name!r}; its sheets: {', '.join(book.sheetnames)}"
            )
        return [book[self.sheet_name]]

    def _xlsx_columns(self) -> list[str]:
        """Every read sheet's column names (first non-empty row), in order, each once."""
        book = self._workbook()
        try:
            names: list[str] = []
            for sheet in self._sheets(book):
                sheet.reset_dimensions()  # some writers record a wrong used range
                for values in sheet.iter_rows(min_row=1, values_only=True):
                    cells = [_cell_text(v).strip() for v in values]
                    if any(cells):
                        names += [c for c in cells if c and c not in names]
                        break
            return names
        finally:
            book.close()

    def _xlsx_rows(self) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
        """Each sheet (or the one named) in turn, streamed: its first non-empty row is its
        header; a row's number is the one Excel shows beside it."""
        book = self._workbook()
        try:
            for sheet in self._sheets(book):
                self.sheet = sheet.title
                sheet.reset_dimensions()
                keys: list[str | None] | None = None
                for line, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
                    self._fields = None
                    cells = [_cell_text(v) for v in values]
                    while cells and cells[-1] == "":
                        cells.pop()
                    if not cells:
                        continue
                    if keys is None:
                        self._header(cells)
                        keys = self._keys
                        continue
                    self._fields = cells
                    if len(cells) > len(keys):
                        yield line, BadRow(f"expected {len(keys)} columns, found {len(cells)}")
                        continue
                    problem = _text_problem("".join(cells))
                    if problem:
                        yield line, BadRow(problem)
                        continue
                    yield line, {k: v for k, v in zip(keys, cells, strict=False) if v != "" and k is not None}
        finally:
            self.sheet = None
            book.close()

    def _jsonl_rows(self, text: Iterator[str]) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
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
                value = {mapping.get(k, k): v for k, v in value.items() if mapping.get(k) != SKIP}
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


def _cell_text(value: Any) -> str:
    """A workbook cell as the text a CSV export of it would hold: whole numbers without '.0',
    dates as YYYY-MM-DD, date-times as YYYY-MM-DD HH:MM:SS (no zone: Excel has none)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds" if not value.microsecond else "microseconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


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
    """Turn ["file_col=field", ...] (the CLI's --map options) into a dict; `file_col=-` leaves
    the column out."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise UnusableInput(f"--map expects FILE_COLUMN=FIELD, got {pair!r}")
        mapping[source.strip()] = target.strip()
    return mapping
