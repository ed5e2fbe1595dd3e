"""The imports page in a real browser (Debian's Chromium, Playwright), in both languages: a file
with bad rows is uploaded, its columns confirmed, its progress followed until done; the rejected
rows are downloaded, one is fixed and imported again and is accepted. A viewer sees the imports
but cannot import."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from clm.commerce.service import get_order
from tests.web.test_console_browser import CJK, LATIN_OK, VISIBLE_TEXT, Watch, browser_sign_in

ORDERS = (
    "订单号,会员编号,下单时间,订单状态,商品编码,数量,单价\n"
    'B1,m1,2026/11/1 10:05,已完成,SKU1,2,"￥1,299.00"\n'
    "B2,m2,2026/11/2 09:00,已付款,SKU2,1,88元\n"
    "B3,m3,2026/11/3 08:00,待审核,SKU3,1,5\n"
    "B4,m4,不是时间,已完成,SKU4,1,5\n"
)
WORDS = {
    "zh-CN": {"stored": "将被导入", "rejected": "将被拒绝", "done": "已完成", "start": "开始导入"},
    "en-US": {
        "stored": "Will be stored",
        "rejected": "Would be rejected",
        "done": "Done",
        "start": "Start the import",
    },
}
SHOTS = Path("/tmp/clm-import-shots")


@pytest.fixture(autouse=True)
def import_folder(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CLM_IMPORT_DIR", str(tmp_path / "imports"))


def check_language(page, locale: str) -> None:  # type: ignore[no-untyped-def]
    text = page.evaluate(VISIBLE_TEXT)
    if locale == "zh-CN":
        latin = (
            set(re.findall(r"[A-Za-z]{3,}", text))
            - LATIN_OK
            - {"MB", "JSON", "Lines", "Excel", "xlsx", "UTF", "GBK"}
        )
        assert not latin, f"{page.url}: untranslated? {sorted(latin)}"
    else:
        assert not set(CJK.findall(text)), f"{page.url}: Chinese on the English page"


def upload(page, server: str, path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/imports")
    page.select_option("select[name=kind]", kind)
    page.set_input_files("input[name=file]", str(path))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/imports/\d+$"))


def start_and_wait(page, locale: str) -> None:  # type: ignore[no-untyped-def]
    page.click("#start-import")
    page.wait_for_url(re.compile(r".*/imports/\d+$"))
    expect(page.locator("#job-status")).to_have_text(WORDS[locale]["done"], timeout=60_000)


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_import_reject_fix_and_import_again(browser, server, team, engine, tmp_path, locale):
    SHOTS.mkdir(exist_ok=True)
    lang = locale[:2]
    context = browser.new_context(
        locale=locale, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    watch = Watch(page)
    browser_sign_in(page, server, "mark", "/imports")
    check_language(page, locale)
    source = tmp_path / "订单.csv"
    source.write_text(ORDERS, encoding="utf-8-sig")
    upload(page, server, source, "orders")

    # the columns, matched by their Chinese names, and the first rows read as the import reads them
    expect(page.locator("select[name='map:下单时间']")).to_have_value("ordered_at")
    expect(page.locator(".preview-row.good")).to_have_count(2)
    expect(page.locator(".preview-row.rejected")).to_have_count(2)
    assert "待审核" in page.inner_text(".preview-row.rejected >> nth=0")
    check_language(page, locale)
    page.screenshot(path=str(SHOTS / f"columns-{lang}.png"), full_page=True)
    # leaving a needed column out says so at once (htmx), choosing it again clears it
    page.select_option("select[name='map:订单号']", "")
    expect(page.locator("#missing-fields")).to_be_visible()
    page.select_option("select[name='map:订单号']", "order_id")
    expect(page.locator("#missing-fields")).to_have_count(0)

    start_and_wait(page, locale)
    first_job = page.url
    expect(page.locator("#count-accepted")).to_have_text("2")
    expect(page.locator("#count-rejected")).to_have_text("2")
    check_language(page, locale)
    page.screenshot(path=str(SHOTS / f"job-{lang}.png"), full_page=True)
    page.reload()  # the result stays after a reload
    expect(page.locator("#count-accepted")).to_have_text("2")

    with page.expect_download() as waited:
        page.click("#download-rejections")
    rejected = Path(waited.value.path()).read_bytes()
    assert rejected.startswith(b"\xef\xbb\xbf")
    lines = rejected.decode("utf-8-sig").splitlines()
    assert len(lines) == 3 and "待审核" in lines[1] and "不是时间" in lines[2]
    fixed = tmp_path / "订单.rejections.csv"
    fixed.write_text("\n".join([lines[0], lines[1].replace("待审核", "已完成")]) + "\n", encoding="utf-8-sig")

    upload(page, server, fixed, "orders")
    expect(page.locator(".preview-row.good")).to_have_count(1)
    start_and_wait(page, locale)
    expect(page.locator("#count-accepted")).to_have_text("1")
    expect(page.locator("#count-rejected")).to_have_text("0")
    assert get_order(engine, "B3").status == "completed"

    page.goto(server + "/imports")
    expect(page.locator("table.imports tbody tr")).to_have_count(2)
    check_language(page, locale)
    page.screenshot(path=str(SHOTS / f"imports-{lang}.png"), full_page=True)
    phone = context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    for name, target in (("imports", server + "/imports"), ("job", first_job)):
        phone.goto(target)
        phone.screenshot(path=str(SHOTS / f"{name}-{lang}-390.png"), full_page=True)
    assert watch.problems == []
    context.close()


def test_a_viewer_sees_the_imports_but_no_way_to_import(browser, server, team, engine):
    page = browser.new_page(locale="zh-CN")
    watch = Watch(page, allowed_statuses={403})
    browser_sign_in(page, server, "vic", "/imports")
    expect(page.locator("main h1")).to_have_text("导入")
    expect(page.locator("#upload-form")).to_have_count(0)
    assert watch.problems == []
