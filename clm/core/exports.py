"""CSV files that leave CLM (console downloads, CLI exports): one way to write them, so Excel opens
every one with Chinese intact.

Excel on Windows reads a CSV without a byte-order mark in the system's ANSI code page (GBK on a
Chinese Windows), so UTF-8 text without a BOM shows 张伟 as mojibake. The rule:

- `utf-8-sig` (default): UTF-8 with a byte-order mark; every Excel since 2016 and every other
  program reads it, on any Windows language.
- `gb18030`: what a Chinese system that reads only GBK expects (GB18030 is GBK's superset and
  encodes every Unicode character, so nothing is lost); asked for with `?encoding=gb18030` on a
  download, `--encoding gb18030` on the CLI, or store-wide with `CLM_EXPORT_ENCODING`.
- `utf-8`: plain UTF-8 without a BOM, for programs that choke on one.

Rows end with CRLF (what Excel writes); a None cell is empty; a timestamp cell is written in the
store's time zone ("2026-11-01 00:30:00"), its column header naming the zone
(`zoned_header`).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from clm.core.errors import InvalidInput
from clm.core.settings import settings, store_timezone_name
from clm.core.timeutil import as_utc, store_zone

EXPORT_ENCODINGS = ("utf-8-sig", "gb18030", "utf-8")
_ALIASES = {
    "utf-8-sig": "utf-8-sig",
    "utf8-sig": "utf-8-sig",
    "utf-8-bom": "utf-8-sig",
    "utf8-bom": "utf-8-sig",
    "bom": "utf-8-sig",
    "excel": "utf-8-sig",
    "gb18030": "gb18030",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "utf-8": "utf-8",
    "utf8": "utf-8",
}
_CHUNK_ROWS = 1_000


def export_encoding(name: str | None = None) -> str:
    """The encoding an export is written in: `name` if given, else `CLM_EXPORT_ENCODING`
    (default utf-8-sig). GBK and GB2312 mean GB18030 (a superset of both)."""
    chosen = (name or settings().export_encoding or "utf-8-sig").strip().lower().replace("_", "-")
    if chosen not in _ALIASES:
        raise InvalidInput(f"{name or chosen!r}: use utf-8-sig (Excel), gb18030 or utf-8", "encoding")
    return _ALIASES[chosen]


def zoned_header(name: str) -> str:
    """A timestamp column's header with the store's zone named: "entered_at (Asia/Shanghai)"."""
    return f"{name} ({store_timezone_name()})"


def cell(value: Any) -> Any:
    """A value as an export writes it: a timestamp as the store's wall time, None as empty."""
    if isinstance(value, datetime):
        return as_utc(value).astimezone(store_zone()).strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else value


def _lines(rows: Iterable[Sequence[Any]], writer: Any, buffer: io.StringIO) -> Iterator[str]:
    for n, row in enumerate(rows, 1):
        writer.writerow([cell(v) for v in row])
        if n % _CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def csv_chunks(rows: Iterable[Sequence[Any]], encoding: str | None = None) -> Iterator[bytes]:
    """The CSV of `rows` as encoded chunks (a byte-order mark first for utf-8-sig), for a
    streamed download that writes as it reads."""
    encoder = codecs.getincrementalencoder(export_encoding(encoding))()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for text in _lines(rows, writer, buffer):
        yield encoder.encode(text)
    tail = encoder.encode("", final=True)
    if tail:
        yield tail


def csv_bytes(rows: Iterable[Sequence[Any]], encoding: str | None = None) -> bytes:
    """The whole CSV of `rows`, encoded."""
    return b"".join(csv_chunks(rows, encoding))


def open_csv(path: Path, encoding: str | None = None) -> TextIO:
    """A CSV file opened for writing in the export encoding (newlines as csv.writer writes them)."""
    return path.open("w", newline="", encoding=export_encoding(encoding))


def write_csv(path: Path, rows: Iterable[Sequence[Any]], encoding: str | None = None) -> int:
    """Write `rows` (the header first) to `path`; returns the number of rows written."""
    count = 0
    with open_csv(path, encoding) as out:
        writer = csv.writer(out, lineterminator="\r\n")
        for row in rows:
            writer.writerow([cell(v) for v in row])
            count += 1
    return count


def media_type(encoding: str | None = None) -> str:
    """The Content-Type of a CSV download in this encoding."""
    charset = "gb18030" if export_encoding(encoding) == "gb18030" else "utf-8"
    return f"text/csv; charset={charset}"


def content_disposition(filename: str) -> str:
    """`attachment` with the file's name, which may be Chinese (RFC 6266: an ASCII fallback, then
    the UTF-8 name that browsers use)."""
    fallback = "".join(c if c.isascii() and c not in '"\\' and c.isprintable() else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
