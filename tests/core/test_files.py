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


def test_timestamps_are_utc_and_without_a_zone_in_the_stores():
    assert parse_timestamp("2025-01-01T08:00:00+08:00") == datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
    assert parse_timestamp("2025-01-01 08:00") == datetime(2025, 1, 1, 0, 0, tzinfo=UTC)  # Shanghai
    assert parse_timestamp("2025-01-01T00:00:00Z") == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_timestamp(1735689600) == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_timestamp("1735689600000") == datetime(2025, 1, 1, tzinfo=UTC)  # milliseconds
    with pytest.raises(InvalidInput, match="timestamp"):
        parse_timestamp("yesterday")
    assert str(parse_date("2025-02-03T10:00")) == "2025-02-03"


def test_the_first_non_ascii_line_decides_the_encoding(tmp_path):
    ascii_first = "sku,name\n" + "".join(f"A{i},plain\n" for i in range(3)) + "B1,蓝牙耳机\n"
    (tmp_path / "gbk.csv").write_bytes(ascii_first.encode("gbk"))
    data = DataFile(tmp_path / "gbk.csv")
    assert list(data.rows())[-1] == (5, {"sku": "B1", "name": "蓝牙耳机"}) and data.encoding == "gb18030"

    (tmp_path / "utf8.csv").write_bytes(ascii_first.encode("utf-8"))
    data = DataFile(tmp_path / "utf8.csv")
    assert list(data.rows())[-1] == (5, {"sku": "B1", "name": "蓝牙耳机"}) and data.encoding == "utf-8"

    with gzip.open(tmp_path / "gbk.tsv.gz", "wb") as f:
        f.write("编号\t名称\nB1\t耳机\n".encode("gb18030"))
    assert list(DataFile(tmp_path / "gbk.tsv.gz").rows()) == [(2, {"编号": "B1", "名称": "耳机"})]


def test_a_byte_order_mark_or_encoding_given_wins(tmp_path):
    (tmp_path / "u16.txt").write_bytes("编号\t名称\r\nB1\t耳机\r\n".encode("utf-16"))
    data = DataFile(tmp_path / "u16.txt")
    assert data.format == "tsv" and list(data.rows()) == [(2, {"编号": "B1", "名称": "耳机"})]
    assert data.columns == ["编号", "名称"]

    (tmp_path / "u16le.csv").write_bytes("编号,名称\nB1,耳机\n".encode("utf-16-le"))
    data = DataFile(tmp_path / "u16le.csv", encoding="utf-16-le")
    assert list(data.rows()) == [(2, {"编号": "B1", "名称": "耳机"})]
    with pytest.raises(UnusableInput, match="not a text file"):  # no mark: NULs everywhere
        DataFile(tmp_path / "u16le.csv")

    (tmp_path / "big5.csv").write_bytes("編號,名稱\nB1,耳機\n".encode("big5"))
    assert list(DataFile(tmp_path / "big5.csv", encoding="big5").rows()) == [
        (2, {"編號": "B1", "名稱": "耳機"})
    ]
    assert DataFile(tmp_path / "big5.csv", encoding="GBK").encoding == "gb18030"


def test_a_line_in_another_encoding_is_named(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes("编号,名称\n".encode("gbk") + b"B1,ok\n" + "B2,耳机\n".encode())
    with pytest.raises(UnusableInput, match=r"line 3 of mixed\.csv is UTF-8 text"):
        list(DataFile(path).rows())
    with pytest.raises(UnusableInput, match=r"line 3 of mixed\.csv is UTF-8 text"):
        list(DataFile(path).column_chunks())  # the same on the column path
    path.write_bytes("编号,名称\n".encode() + "B2,耳机\n".encode("gbk"))
    with pytest.raises(UnusableInput, match=r"line 2 of mixed\.csv is not UTF-8 text as the lines before"):
        list(DataFile(path).column_chunks())


def test_a_rejections_file_reads_back_without_its_own_columns(write_file):
    path = write_file("r.csv", "rejected_line,rejection_reason,sku,name\n3,name: too long,A,Phone\n")
    assert list(DataFile(path).rows()) == [(2, {"sku": "A", "name": "Phone"})]
    [chunk] = list(DataFile(path).column_chunks())
    assert chunk.row(0) == {"sku": "A", "name": "Phone"}


def test_workbook_rows_as_excel_means_them(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "会员"
    sheet.append([])  # a blank row above the header
    sheet.append(["编号", "生日", "注册", "手机", "积分", "VIP", None])
    sheet.append(["V1", datetime(1990, 5, 12), datetime(2026, 11, 1, 10, 5), 13812345678, 12.5, True])
    sheet.append([None, None, None])  # an empty row is skipped
    sheet.append([1002, "1990/5/12", 46327.42013888889, "138 1234 5678", 3, False, "extra"])
    book.create_sheet("空白")  # an empty sheet has no rows
    book.save(tmp_path / "m.xlsx")

    data = DataFile(tmp_path / "m.xlsx")
    assert data.columns == ["编号", "生日", "注册", "手机", "积分", "VIP"]
    rows = list(data.rows())
    assert rows[0] == (
        3,
        {
            "编号": "V1",
            "生日": "1990-05-12",
            "注册": "2026-11-01 10:05:00",
            "手机": "13812345678",
            "积分": "12.5",
            "VIP": "TRUE",
        },
    )
    assert rows[1] == (5, BadRow("expected 6 columns, found 7"))
    with pytest.raises(UnusableInput, match="no sheet 'Sheet1'; its sheets: 会员, 空白"):
        DataFile(tmp_path / "m.xlsx", sheet="Sheet1")
    with pytest.raises(UnusableInput, match="--sheet is for Excel"):
        DataFile(write_file_bytes(tmp_path / "x.csv", b"a\n1\n"), sheet="x")


def write_file_bytes(path, content: bytes):
    path.write_bytes(content)
    return path
