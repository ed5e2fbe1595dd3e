"""Streaming file reading: formats, line numbers of bad rows, mapping, unusable files."""

import gzip
from datetime import UTC, datetime

import pytest

from clm.core.errors import InvalidInput, UnusableInput
from clm.core.files import BadRow, DataFile, parse_mapping
from clm.core.timeutil import parse_date, parse_timestamp


def test_csv_rows_carry_their_line_numbers_and_skip_empty_cells(write_file):
    path = write_file(
        "e.csv", 'type,timestamp,note\npage_view,2025-01-01,"multi\nline"\nsignup,2025-01-02,\n'
    )
    rows = list(DataFile(path).rows())
    assert rows == [
        (3, {"type": "page_view", "timestamp": "2025-01-01", "note": "multi\nline"}),
        (4, {"type": "signup", "timestamp": "2025-01-02"}),
    ]


def test_csv_row_with_wrong_width_is_a_bad_row(write_file):
    path = write_file("e.csv", "a,b\n1,2\n1,2,3\n")
    rows = list(DataFile(path).rows())
    assert rows[1] == (3, BadRow("expected 2 columns, found 3"))


def test_jsonl_bad_json_and_non_objects_are_bad_rows(write_file):
    path = write_file("e.jsonl", '{"a": 1}\n{oops\n[1]\n\n{"b": null, "c": 2}\n')
    rows = list(DataFile(path).rows())
    assert rows[0] == (1, {"a": 1})
    assert rows[1][0] == 2 and isinstance(rows[1][1], BadRow) and "invalid JSON" in rows[1][1].reason
    assert rows[2] == (3, BadRow("each line must be a JSON object"))
    assert rows[3] == (5, {"c": 2})


def test_gzip_and_mapping(tmp_path):
    path = tmp_path / "e.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("user,when\nu1,2025-01-01\n")
    data = DataFile(path, mapping=parse_mapping(["user=external_id", "when=timestamp"]))
    assert list(data.rows()) == [(2, {"external_id": "u1", "timestamp": "2025-01-01"})]
    assert data.bytes_read == data.size


@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [
        ("e.xml", None, "cannot tell the format"),
        ("e.xls", None, "old Excel format"),
        ("e.csv", "xml", "unknown format"),
    ],
)
def test_unusable_formats(write_file, name, fmt, message):
    path = write_file(name, "x")
    with pytest.raises(UnusableInput, match=message):
        DataFile(path, fmt)


def test_missing_file_and_empty_csv(tmp_path, write_file):
    with pytest.raises(UnusableInput, match="file not found"):
        DataFile(tmp_path / "nope.csv")
    with pytest.raises(UnusableInput, match="empty"):
        list(DataFile(write_file("e.csv", "")).rows())


def test_bad_mapping_option():
    with pytest.raises(UnusableInput, match="FILE_COLUMN=FIELD"):
        parse_mapping(["nope"])


def test_timestamps_are_utc():
    assert parse_timestamp("2025-01-01T08:00:00+08:00") == datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
    assert parse_timestamp("2025-01-01 08:00") == datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
    assert parse_timestamp("2025-01-01T00:00:00Z") == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_timestamp(1735689600) == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_timestamp("1735689600000") == datetime(2025, 1, 1, tzinfo=UTC)  # milliseconds
    with pytest.raises(InvalidInput, match="timestamp"):
        parse_timestamp("yesterday")
    assert str(parse_date("2025-02-03T10:00")) == "2025-02-03"
