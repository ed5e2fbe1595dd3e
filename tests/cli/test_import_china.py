"""`clm import` of files as a Chinese shop has them: Excel's GBK CSV and .xlsx, Chinese headers
mapped with --map, values as people write them (2026/11/1 10:05, 是/否, ￥1,299.00, 已完成),
times without a zone in the store's time zone (Asia/Shanghai: UTC+8)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from clm.cli import main
from clm.commerce.service import get_order
from clm.customers.service import find_customers

# As Excel on a Chinese Windows saves "CSV (逗号分隔)": GBK, CRLF line ends.
CUSTOMERS = (
    "会员编号,姓,名,手机,邮箱,生日,性别,城市,接收短信,注册时间\r\n"
    "V001,张,伟,138 1234 5678,zhangwei@example.cn,1990/5/12,男,上海,是,2026/11/1 10:05\r\n"
    "V002,李,娜,+86 139-8765-4321,,1988年2月29日,女,北京,否,2026年11月1日\r\n"
    "V003,王,芳,0086 137 0000 1111,wangfang@example.cn,32874,女,广州,Y,2026/10/31 23:59\r\n"
)
CUSTOMER_MAP = [
    "会员编号=external_id",
    "姓=last_name",
    "名=first_name",
    "手机=phone",
    "邮箱=email",
    "生日=birthday",
    "性别=gender",
    "城市=city",
    "接收短信=consent_sms",
    "注册时间=first_seen_at",
]
ORDER_MAP = ["订单号=order_id", "会员编号=external_id", "下单时间=ordered_at", "订单状态=status"]
ORDER_MAP += ["商品编码=sku", "数量=quantity", "单价=unit_price"]
ORDER_HEADER = ["订单号", "会员编号", "下单时间", "订单状态", "商品编码", "数量", "单价"]


def mapped(pairs: list[str]) -> list[str]:
    return [arg for pair in pairs for arg in ("--map", pair)]


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line (wrapped to the terminal's width by the console; progress left out)."""
    err = capsys.readouterr().err
    return " ".join(err[err.index("error:") :].split())


def run(db_url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["--db", db_url, "import", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


@pytest.fixture(autouse=True)
def beijing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLM_DEFAULT_TIMEZONE", "Asia/Shanghai")


def gbk_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("gbk"))
    return path


def test_a_gbk_customers_file_with_chinese_headers(engine, db_url, tmp_path, capsys):
    path = gbk_file(tmp_path, "会员.csv", CUSTOMERS)
    code, report = run(db_url, capsys, "customers", str(path), *mapped(CUSTOMER_MAP))
    assert code == 0 and (report["accepted"], report["rejected"], report["warned"]) == (3, 0, 0)

    [zhang] = find_customers(engine, {"external_id": "V001"})
    assert (zhang.last_name, zhang.first_name, zhang.city, zhang.gender) == ("张", "伟", "上海", "male")
    assert zhang.phone == "+8613812345678" and zhang.email == "zhangwei@example.cn"
    assert zhang.birthday == date(1990, 5, 12)
    assert zhang.first_seen_at == datetime(2026, 11, 1, 2, 5, tzinfo=UTC)  # 10:05 in Beijing
    assert {c.channel: c.granted for c in zhang.consents} == {"sms": True}

    [li] = find_customers(engine, {"external_id": "V002"})
    assert li.phone == "+8613987654321" and li.birthday == date(1988, 2, 29) and li.gender == "female"
    assert li.first_seen_at == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # midnight in Beijing
    assert {c.channel: c.granted for c in li.consents} == {"sms": False}

    [wang] = find_customers(engine, {"external_id": "V003"})
    assert wang.phone == "+8613700001111"
    assert wang.birthday == date(1990, 1, 1)  # Excel's serial day 32874
    assert wang.first_seen_at == datetime(2026, 10, 31, 15, 59, tzinfo=UTC)
    assert {c.channel: c.granted for c in wang.consents} == {"sms": True}


def test_one_bad_birthday_keeps_the_row_without_it(engine, db_url, tmp_path, capsys):
    text = CUSTOMERS.replace("1988年2月29日", "1987年2月29日")  # no such day
    path = gbk_file(tmp_path, "会员.csv", text)
    rejections = tmp_path / "kept.csv"
    code, report = run(
        db_url, capsys, "customers", str(path), *mapped(CUSTOMER_MAP), "--rejections", str(rejections)
    )
    assert code == 0 and (report["accepted"], report["rejected"], report["warned"]) == (3, 0, 1)
    [warning] = report["warnings"]
    assert warning["line"] == 3 and warning["reason"].startswith("birthday: '1987年2月29日' is not a date")
    [li] = find_customers(engine, {"external_id": "V002"})
    assert li.birthday is None and li.city == "北京" and li.phone == "+8613987654321"

    # the rejections file holds the row as it was (UTF-8 with BOM, the file's own headers):
    # fixed and imported again with the same --map, the birthday goes in
    with open(rejections, encoding="utf-8-sig", newline="") as f:
        [row] = list(csv.DictReader(f))
    assert row["rejected_line"] == "3" and row["rejection_reason"].startswith("kept without birthday")
    assert (row["会员编号"], row["生日"], row["手机"]) == ("V002", "1987年2月29日", "+86 139-8765-4321")
    row["生日"] = "1987/2/28"
    with open(rejections, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    code, report = run(db_url, capsys, "customers", str(rejections), *mapped(CUSTOMER_MAP))
    assert code == 0 and report["accepted"] == 1
    [li] = find_customers(engine, {"external_id": "V002"})
    assert li.birthday == date(1987, 2, 28) and li.attributes == {}


def test_a_bad_required_cell_rejects_the_row(engine, db_url, tmp_path, capsys):
    text = CUSTOMERS.replace("V003,王,芳,0086 137 0000 1111,wangfang@example.cn", "V003,王,芳,0086 137,王芳@")
    path = gbk_file(tmp_path, "会员.csv", text)
    code, report = run(db_url, capsys, "customers", str(path), *mapped(CUSTOMER_MAP))
    assert code == 1 and (report["accepted"], report["rejected"]) == (2, 1)
    assert report["rejections"][0]["line"] == 4 and "phone" in report["rejections"][0]["reason"]
    assert find_customers(engine, {"external_id": "V003"}) == []


def orders_workbook(path: Path) -> Path:
    """Two sheets as Excel has them: real date cells, number cells, text a person typed."""
    book = Workbook()
    first = book.active
    first.title = "订单"
    first.append(ORDER_HEADER)
    first.append(["A1001", "V001", datetime(2026, 11, 1, 10, 5), "已完成", "SKU-1", 1, "￥1,299.00"])
    first.append(["A1001", "V001", datetime(2026, 11, 1, 10, 5), "已完成", "SKU-2", 2, 49.9])
    first.append(["A1002", "V002", "2026/11/1 0:30", "已退款", "SKU-1", 1, "1,299元"])
    first.append(["A1003", "V003", 46327.42013888889, "交易成功", "SKU-3", 3, "¥1299"])  # a serial number
    second = book.create_sheet("第二页")
    second.append(ORDER_HEADER)
    second.append(["A1004", "V001", "2026年11月1日 10:05", "已取消", "SKU-3", 1, 1299])
    book.save(path)
    return path


def test_an_xlsx_orders_workbook_every_sheet(engine, db_url, tmp_path, capsys):
    path = orders_workbook(tmp_path / "订单.xlsx")
    code, report = run(db_url, capsys, "orders", str(path), *mapped(ORDER_MAP))
    assert code == 0 and (report["rows"], report["accepted"], report["rejected"]) == (5, 5, 0)
    beijing_1005 = datetime(2026, 11, 1, 2, 5, tzinfo=UTC)

    a1001 = get_order(engine, "A1001")
    assert (a1001.status, a1001.ordered_at, a1001.currency) == ("completed", beijing_1005, "CNY")
    assert a1001.total == pytest.approx(1299.00 + 2 * 49.90)
    assert sorted((i.sku, i.quantity, i.unit_price) for i in a1001.items) == [
        ("SKU-1", 1, 1299.0),
        ("SKU-2", 2, 49.9),
    ]
    a1002 = get_order(engine, "A1002")  # 00:30 on 1 November in Beijing is still 31 October in UTC
    assert (a1002.status, a1002.ordered_at, a1002.total) == (
        "refunded",
        datetime(2026, 10, 31, 16, 30, tzinfo=UTC),
        1299.0,
    )
    a1003 = get_order(engine, "A1003")
    assert (a1003.status, a1003.ordered_at, a1003.total) == ("completed", beijing_1005, 3 * 1299.0)
    a1004 = get_order(engine, "A1004")
    assert (a1004.status, a1004.ordered_at, a1004.total) == ("cancelled", beijing_1005, 1299.0)


def test_one_named_sheet_and_rejections_name_their_sheet(engine, db_url, tmp_path, capsys):
    path = orders_workbook(tmp_path / "订单.xlsx")
    code, report = run(db_url, capsys, "orders", str(path), *mapped(ORDER_MAP), "--sheet", "第二页")
    assert code == 0 and report["rows"] == 1 and get_order(engine, "A1004").status == "cancelled"

    code, report = run(db_url, capsys, "orders", str(path), "--sheet", "Sheet9")
    assert code == 2

    book = Workbook()
    book.active.append(ORDER_HEADER)
    book.active.append(["A2001", "V001", "2026/11/1 10:05", "待发货?", "SKU-1", 1, "￥12"])
    book.save(tmp_path / "bad.xlsx")
    rejections = tmp_path / "bad.rej.csv"
    code, report = run(
        db_url,
        capsys,
        "orders",
        str(tmp_path / "bad.xlsx"),
        *mapped(ORDER_MAP),
        "--rejections",
        str(rejections),
    )
    assert code == 1 and report["rejections"][0]["sheet"] == "Sheet" and report["rejections"][0]["line"] == 2
    with open(rejections, encoding="utf-8-sig", newline="") as f:
        [row] = list(csv.DictReader(f))
    assert (row["rejected_sheet"], row["订单状态"], row["单价"]) == ("Sheet", "待发货?", "￥12")


def test_utf16_unicode_text_and_utf8_with_bom(engine, db_url, tmp_path, capsys):
    """Excel's "Unicode text": UTF-16 with a byte-order mark, tab-separated, saved as .txt."""
    text = CUSTOMERS.replace(",", "\t")
    (tmp_path / "会员.txt").write_bytes(text.encode("utf-16"))
    code, report = run(db_url, capsys, "customers", str(tmp_path / "会员.txt"), *mapped(CUSTOMER_MAP))
    assert code == 0 and report["accepted"] == 3
    assert find_customers(engine, {"external_id": "V002"})[0].city == "北京"

    (tmp_path / "bom.csv").write_bytes(CUSTOMERS.replace("V00", "B00").encode("utf-8-sig"))
    code, report = run(db_url, capsys, "customers", str(tmp_path / "bom.csv"), *mapped(CUSTOMER_MAP))
    assert code == 0 and find_customers(engine, {"external_id": "B003"})[0].city == "广州"


def test_two_encodings_in_one_file_is_an_error_naming_the_line(engine, db_url, tmp_path, capsys):
    lines = CUSTOMERS.splitlines(keepends=True)
    gbk_head = tmp_path / "a.csv"  # header and first row in GBK, the rest in UTF-8
    gbk_head.write_bytes("".join(lines[:2]).encode("gbk") + "".join(lines[2:]).encode("utf-8"))
    assert main(["--db", db_url, "import", "customers", str(gbk_head), *mapped(CUSTOMER_MAP)]) == 2
    assert error_line(capsys).startswith("error: line 3 of a.csv is UTF-8 text, but the lines before")

    utf8_head = tmp_path / "b.csv"  # and the other way round
    utf8_head.write_bytes(lines[0].encode("utf-8") + "".join(lines[1:]).encode("gbk"))
    assert main(["--db", db_url, "import", "customers", str(utf8_head), *mapped(CUSTOMER_MAP)]) == 2
    assert error_line(capsys).startswith("error: line 2 of b.csv is not UTF-8 text as the lines before")

    # told the encoding, a file read as it says
    code, report = run(
        db_url,
        capsys,
        "customers",
        str(gbk_file(tmp_path, "c.csv", CUSTOMERS)),
        "--encoding",
        "gbk",
        *mapped(CUSTOMER_MAP),
    )
    assert code == 0 and report["accepted"] == 3
    assert main(["--db", db_url, "import", "customers", str(utf8_head), "--encoding", "klingon"]) == 2
    assert "unknown encoding" in capsys.readouterr().err


def test_binary_input_exits_two_with_one_line(db_url, tmp_path, capsys):
    workbook = orders_workbook(tmp_path / "o.xlsx")
    disguised = tmp_path / "orders.csv"
    disguised.write_bytes(workbook.read_bytes())
    assert main(["--db", db_url, "import", "orders", str(disguised)]) == 2
    err = error_line(capsys)
    assert err.startswith("error: orders.csv is not a text file (it looks like an Excel workbook")
    assert "Traceback" not in err and err.count("error:") == 1

    noise = tmp_path / "noise.csv"
    noise.write_bytes(bytes(range(256)) * 64)
    assert main(["--db", db_url, "import", "events", str(noise)]) == 2
    assert "is not a text file" in capsys.readouterr().err

    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip at all")
    assert main(["--db", db_url, "import", "orders", str(broken)]) == 2
    assert "cannot read broken.xlsx as an Excel workbook" in capsys.readouterr().err


def test_events_in_gbk_and_in_a_workbook(engine, db_url, tmp_path, capsys):
    from sqlalchemy import select

    from clm.events.tables import events

    text = "event_id,type,timestamp,external_id,商品\r\n"
    text += "e1,product_view,2026-11-01T10:05:00+08:00,V001,蓝牙耳机\r\n"
    code, report = run(db_url, capsys, "events", str(gbk_file(tmp_path, "e.csv", text)))
    assert code == 0 and report["accepted"] == 1
    book = Workbook()
    book.active.append(["event_id", "type", "timestamp", "external_id", "商品"])
    book.active.append(["e2", "add_to_cart", "2026-11-01T10:06:00+08:00", "V001", "手机壳"])
    book.active.append(["e3", "add_to_cart", "someday", "V001", "手机壳"])
    book.save(tmp_path / "e.xlsx")
    rejections = tmp_path / "e.rej.csv"
    code, report = run(db_url, capsys, "events", str(tmp_path / "e.xlsx"), "--rejections", str(rejections))
    assert code == 1 and report["accepted"] == 1
    assert [(r["sheet"], r["line"]) for r in report["rejections"]] == [("Sheet", 3)]
    with open(rejections, encoding="utf-8-sig", newline="") as f:
        [row] = list(csv.DictReader(f))
    assert (row["rejected_sheet"], row["event_id"], row["timestamp"], row["商品"]) == (
        "Sheet",
        "e3",
        "someday",
        "手机壳",
    )
    with engine.connect() as conn:
        query = select(events.c.event_id, events.c.properties).where(events.c.channel != "system")
        stored = {r.event_id: r.properties for r in conn.execute(query)}
    assert stored == {"e1": {"商品": "蓝牙耳机"}, "e2": {"商品": "手机壳"}}


def test_status_words_are_configurable(engine, db_url, tmp_path, capsys, monkeypatch):
    text = "订单号,会员编号,下单时间,订单状态,实付金额\r\nB1,V001,2026/11/1 10:05,待发货,￥88.00\r\n"
    path = gbk_file(tmp_path, "o.csv", text)
    args = [*mapped(ORDER_MAP), "--map", "实付金额=total"]
    code, report = run(db_url, capsys, "orders", str(path), *args)
    assert code == 1 and "CLM_ORDER_STATUSES" in report["rejections"][0]["reason"]
    monkeypatch.setenv("CLM_ORDER_STATUSES", "待发货=completed, 已作废=cancelled")
    code, report = run(db_url, capsys, "orders", str(path), *args)
    assert code == 0 and (get_order(engine, "B1").status, get_order(engine, "B1").total) == (
        "completed",
        88.0,
    )
    monkeypatch.setenv("CLM_ORDER_STATUSES", "待发货=shipped")
    assert main(["--db", db_url, "import", "orders", str(path), *args]) == 2
    assert "CLM_ORDER_STATUSES" in error_line(capsys)


def test_exports_open_in_excel_with_chinese(engine, db_url, tmp_path, capsys):
    """UTF-8 with a byte-order mark by default (Excel then shows Chinese); GB18030 on request."""
    path = gbk_file(tmp_path, "会员.csv", CUSTOMERS)
    assert main(["--db", db_url, "import", "customers", str(path), *mapped(CUSTOMER_MAP)]) == 0
    where = 'city in ["上海", "北京"]'
    assert main(["--db", db_url, "segments", "create", "tier1", "--where", where]) == 0
    plain, gbk = tmp_path / "out.csv", tmp_path / "out-gbk.csv"
    assert main(["--db", db_url, "segments", "export", "tier1", str(plain)]) == 0
    assert main(["--db", db_url, "segments", "export", "tier1", str(gbk), "--encoding", "gb18030"]) == 0
    assert main(["--db", db_url, "segments", "export", "tier1", str(gbk), "--encoding", "latin-1"]) == 2
    capsys.readouterr()
    raw = plain.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert [(r["external_id"], r["last_name"], r["first_name"], r["city"]) for r in rows] == [
        ("V001", "张", "伟", "上海"),
        ("V002", "李", "娜", "北京"),
    ]
    assert list(csv.DictReader(gbk.read_bytes().decode("gb18030").splitlines())) == rows
    # and either reads back in as it is
    for export in (plain, gbk):
        code, report = run(db_url, capsys, "customers", str(export), "--map", "customer_id=attr.old_id")
        assert code == 0 and report["accepted"] == 2 and report["customers_created"] == 0


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_event_times_without_a_zone_are_in_the_stores_zone(engine, db_url, tmp_path, capsys, suffix):
    from sqlalchemy import select

    from clm.events.bulk import iso_cells
    from clm.events.tables import events

    cells = [
        "2026-11-01 00:30",
        "2026-10-31T23:59:59",
        "2026-11-01T00:30:00+08:00",
        "2026-11-01T00:30Z",
        "2026-11-01",
    ]
    assert iso_cells(cells)[1].tolist() == [False, False, True, True, False]
    times = [*cells, "2026/11/1 10:05"]  # the last one only the row check reads
    path = tmp_path / f"e.{suffix}"
    if suffix == "csv":
        path.write_text(
            "event_id,type,timestamp,external_id\n"
            + "".join(f"e{i},page_view,{t},V1\n" for i, t in enumerate(times))
        )
    else:
        path.write_text(
            "".join(
                json.dumps({"event_id": f"e{i}", "type": "page_view", "timestamp": t, "external_id": "V1"})
                + "\n"
                for i, t in enumerate(times)
            )
        )
    code, report = run(db_url, capsys, "events", str(path))
    assert code == 0 and report["accepted"] == 6
    with engine.connect() as conn:
        query = select(events.c.event_id, events.c.occurred_at).where(events.c.channel != "system")
        stored = {r.event_id: r.occurred_at.replace(tzinfo=UTC) for r in conn.execute(query)}
    assert stored == {
        "e0": datetime(2026, 10, 31, 16, 30, tzinfo=UTC),  # 00:30 on 1 November in Beijing
        "e1": datetime(2026, 10, 31, 15, 59, 59, tzinfo=UTC),
        "e2": datetime(2026, 10, 31, 16, 30, tzinfo=UTC),
        "e3": datetime(2026, 11, 1, 0, 30, tzinfo=UTC),  # a zone given is kept
        "e4": datetime(2026, 10, 31, 16, 0, tzinfo=UTC),
        "e5": datetime(2026, 11, 1, 2, 5, tzinfo=UTC),
    }


def test_products_and_spend_as_written(engine, db_url, tmp_path, capsys):
    from clm.commerce.service import get_product, list_spend

    products = '商品编码,名称,价格,成本,在售\r\nSKU-1,蓝牙耳机,"￥1,299.00",￥800,是\r\n'
    products += "SKU-2,手机壳,49.9元,10,否\r\n"
    path = gbk_file(tmp_path, "商品.csv", products)
    pmap = ["商品编码=sku", "名称=name", "价格=price", "成本=cost", "在售=active"]
    code, report = run(db_url, capsys, "products", str(path), *mapped(pmap))
    assert code == 0 and report["accepted"] == 2
    one, two = get_product(engine, "SKU-1"), get_product(engine, "SKU-2")
    assert (one.name, one.price, one.cost, one.active) == ("蓝牙耳机", 1299.0, 800.0, True)
    assert (two.price, two.cost, two.active) == (49.9, 10.0, False)

    spend = '渠道,开始,结束,金额\r\n微信广告,2026/10/1,2026年10月31日,"￥12,000.50"\r\n'
    path = gbk_file(tmp_path, "投放.csv", spend)
    smap = ["渠道=channel", "开始=period_start", "结束=period_end", "金额=amount"]
    code, report = run(db_url, capsys, "spend", str(path), *mapped(smap))
    assert code == 0 and report["accepted"] == 1
    [row] = list_spend(engine)
    assert (row.channel, row.period_start, row.period_end, row.amount) == (
        "微信广告",
        date(2026, 10, 1),
        date(2026, 10, 31),
        12000.5,
    )
