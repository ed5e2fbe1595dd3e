"""Every CSV that leaves CLM is written one way (clm.core.exports): Excel opens it with Chinese."""

import codecs
import csv
import io
from datetime import UTC, datetime

import pytest

from clm.core.errors import InvalidInput
from clm.core.exports import (
    content_disposition,
    csv_bytes,
    csv_chunks,
    export_encoding,
    media_type,
    write_csv,
    zoned_header,
)

ROWS = [["name", "city", zoned_header("at")], ["张伟", "上海", datetime(2026, 10, 31, 16, 30, tzinfo=UTC)]]


def test_utf8_with_a_bom_by_default_with_crlf_and_store_times():
    data = csv_bytes(ROWS)
    assert data.startswith(codecs.BOM_UTF8) and data.count(codecs.BOM_UTF8) == 1
    text = data.decode("utf-8-sig")
    assert text == "name,city,at (Asia/Shanghai)\r\n张伟,上海,2026-11-01 00:30:00\r\n"


def test_gb18030_on_request_and_by_setting(monkeypatch):
    data = csv_bytes(ROWS, "gbk")
    assert not data.startswith(codecs.BOM_UTF8)
    assert "张伟,上海" in data.decode("gb18030") and "张伟".encode("gb18030") in data
    monkeypatch.setenv("CLM_EXPORT_ENCODING", "gb18030")
    assert export_encoding() == "gb18030" and media_type() == "text/csv; charset=gb18030"
    assert csv_bytes(ROWS) == data
    assert export_encoding("utf_8") == "utf-8"  # a request beats the setting


def test_an_unknown_encoding_is_refused_by_name():
    with pytest.raises(InvalidInput, match=r"latin-1.*gb18030"):
        export_encoding("latin-1")


def test_streamed_chunks_carry_one_bom_and_join_to_the_whole():
    rows = [["n", "名字"], *([i, "王芳"] for i in range(2_500))]
    chunks = list(csv_chunks(rows))
    assert len(chunks) >= 3 and b"".join(chunks) == csv_bytes(rows)
    assert sum(c.count(codecs.BOM_UTF8) for c in chunks) == 1
    assert len(list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))) == 2_501


def test_a_file_and_a_chinese_download_name(tmp_path):
    path = tmp_path / "out.csv"
    assert write_csv(path, ROWS, "gb18030") == 2
    assert path.read_bytes().decode("gb18030").splitlines()[1] == "张伟,上海,2026-11-01 00:30:00"
    header = content_disposition("高价值客户.csv")
    assert header.startswith('attachment; filename="_____.csv"')
    assert "filename*=UTF-8''%E9%AB%98%E4%BB%B7%E5%80%BC%E5%AE%A2%E6%88%B7.csv" in header
