"""Issue 28's "done when", end to end through `clm import`: a customers file and an orders file as
Excel on a Chinese Windows machine saves them — GBK CSV and .xlsx, Chinese headers mapped with
--map (a column CLM has no field for left out with `=-`), `2026/11/1 10:05`, 是/否, ￥ amounts,
已完成 — every row accepted with the values right (times in Asia/Shanghai), and the same rows with
one bad optional field each still kept, with a warning."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from clm.commerce.service import get_order
from clm.customers.service import find_customers
from tests.cli.test_import_china import mapped, run

CUSTOMER_HEADER = "会员编号,姓名,姓,名,手机,邮箱,生日,性别,城市,接收短信,注册时间"
CUSTOMER_ROWS = [
    "V001,张伟,张,伟,138 1234 5678,zhangwei@example.cn,1990/5/12,男,上海,是,2026/11/1 10:05",
    "V002,李娜,李,娜,+86 139-8765-4321,,1988年2月29日,女,北京,否,2026/11/1 0:30",
    "V003,欧阳娜娜,欧阳,娜娜,0086 137 0000 1111,nana@example.cn,1996/6/15,女,深圳,是,2026/10/31 23:59",
]
CUSTOMER_MAP = ["会员编号=external_id", "姓名=-", "姓=last_name", "名=first_name", "手机=phone"]
CUSTOMER_MAP += ["邮箱=email", "生日=birthday", "性别=gender", "城市=city", "接收短信=consent_sms"]
CUSTOMER_MAP += ["注册时间=first_seen_at"]
ORDER_HEADER = "订单号,会员编号,下单时间,订单状态,商品编码,商品名称,数量,单价,渠道"
ORDER_ROWS = [
    'A1001,V001,2026/11/1 10:05,已完成,SKU-1,蓝牙耳机,1,"￥1,299.00",天猫',
    "A1002,V002,2026/11/1 0:30,已退款,SKU-2,手机壳,2,￥49.90,京东",
    "A1003,V003,2026/10/31 23:59,已取消,SKU-1,蓝牙耳机,1,1299元,小程序",
]
ORDER_MAP = ["订单号=order_id", "会员编号=external_id", "下单时间=ordered_at", "订单状态=status"]
ORDER_MAP += ["商品编码=sku", "商品名称=-", "数量=quantity", "单价=unit_price", "渠道=channel"]


@pytest.fixture(autouse=True)
def beijing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLM_DEFAULT_TIMEZONE", "Asia/Shanghai")


def saved(tmp_path: Path, name: str, header: str, rows: list[str]) -> Path:
    """As Excel saves "CSV (逗号分隔)" on a Chinese Windows (GBK, CRLF), or as a workbook whose
    time cells are real Excel dates and whose numbers are number cells."""
    path = tmp_path / name
    if path.suffix == ".csv":
        path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode("gbk"))
        return path
    book = Workbook()
    book.active.append(header.split(","))
    for row in rows:
        cells: list[object] = list(next(csv.reader([row])))
        for i, cell in enumerate(cells):
            if isinstance(cell, str) and cell.count("/") == 2 and ":" in cell:
                cells[i] = datetime.strptime(cell, "%Y/%m/%d %H:%M")  # a date cell, no zone
            elif isinstance(cell, str) and cell.isdigit() and len(cell) < 5:
                cells[i] = int(cell)
        book.active.append(cells)
    book.save(path)
    return path


def check_stored(engine) -> None:  # type: ignore[no-untyped-def]
    people = {x: find_customers(engine, {"external_id": x})[0] for x in ("V001", "V002", "V003")}
    zhang, li, nana = people["V001"], people["V002"], people["V003"]
    assert (zhang.last_name, zhang.first_name, zhang.city, zhang.gender) == ("张", "伟", "上海", "male")
    assert (nana.last_name, nana.first_name, nana.city) == ("欧阳", "娜娜", "深圳")
    assert [p.phone for p in (zhang, li, nana)] == ["+8613812345678", "+8613987654321", "+8613700001111"]
    assert zhang.first_seen_at == datetime(2026, 11, 1, 2, 5, tzinfo=UTC)  # 10:05 in Beijing
    assert li.first_seen_at == datetime(2026, 10, 31, 16, 30, tzinfo=UTC)  # 00:30 on the 1st there
    assert nana.first_seen_at == datetime(2026, 10, 31, 15, 59, tzinfo=UTC)
    assert [p.birthday for p in (zhang, li)] == [date(1990, 5, 12), date(1988, 2, 29)]
    assert [{c.channel: c.granted for c in p.consents} for p in (zhang, li, nana)] == [
        {"sms": True},
        {"sms": False},
        {"sms": True},
    ]
    assert all(p.attributes == {} for p in people.values())  # 姓名 left out, not an attribute

    a1001, a1002, a1003 = (get_order(engine, o) for o in ("A1001", "A1002", "A1003"))
    assert (a1001.status, a1001.ordered_at, a1001.total, a1001.currency) == (
        "completed",
        datetime(2026, 11, 1, 2, 5, tzinfo=UTC),
        1299.0,
        "CNY",
    )
    assert (a1002.status, a1002.ordered_at, a1002.total) == (
        "refunded",
        datetime(2026, 10, 31, 16, 30, tzinfo=UTC),
        pytest.approx(99.8),
    )
    assert [(i.sku, i.quantity, i.unit_price) for i in a1002.items] == [("SKU-2", 2, 49.9)]
    assert (a1003.status, a1003.total) == ("cancelled", 1299.0)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_excel_exports_of_a_chinese_shop_import_with_every_row_right(
    engine, db_url, tmp_path, capsys, suffix
):
    customers = saved(tmp_path, f"会员{suffix}", CUSTOMER_HEADER, CUSTOMER_ROWS)
    orders = saved(tmp_path, f"订单{suffix}", ORDER_HEADER, ORDER_ROWS)
    code, report = run(db_url, capsys, "customers", str(customers), *mapped(CUSTOMER_MAP))
    assert code == 0 and (report["accepted"], report["rejected"], report["warned"]) == (3, 0, 0), report
    code, report = run(db_url, capsys, "orders", str(orders), *mapped(ORDER_MAP))
    assert code == 0 and (report["accepted"], report["rejected"], report["warned"]) == (3, 0, 0), report
    check_stored(engine)
    assert [get_order(engine, o).channel for o in ("A1001", "A1002", "A1003")] == ["天猫", "京东", "小程序"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_one_bad_optional_field_keeps_the_row(engine, db_url, tmp_path, capsys, suffix):
    bad_customers = [CUSTOMER_ROWS[0], CUSTOMER_ROWS[1], CUSTOMER_ROWS[2].replace("1996/6/15", "1996/2/30")]
    bad_orders = [ORDER_ROWS[0], ORDER_ROWS[1], ORDER_ROWS[2].replace("小程序", "小程序" * 12)]  # > 32
    customers = saved(tmp_path, f"会员{suffix}", CUSTOMER_HEADER, bad_customers)
    orders = saved(tmp_path, f"订单{suffix}", ORDER_HEADER, bad_orders)
    code, report = run(db_url, capsys, "customers", str(customers), *mapped(CUSTOMER_MAP))
    assert code == 0 and (report["accepted"], report["rejected"], report["warned"]) == (3, 0, 1), report
    [warning] = report["warnings"]
    assert warning["line"] == 4 and warning["reason"].startswith("birthday: '1996/2/30' is not a date")
    code, report = run(db_url, capsys, "orders", str(orders), *mapped(ORDER_MAP))
    assert code == 0 and (report["accepted"], report["rejected"], report["warned"]) == (3, 0, 1), report
    assert report["warnings"][0]["line"] == 4 and report["warnings"][0]["reason"].startswith("channel")
    check_stored(engine)  # everything else right
    assert find_customers(engine, {"external_id": "V003"})[0].birthday is None
    assert get_order(engine, "A1003").channel is None
