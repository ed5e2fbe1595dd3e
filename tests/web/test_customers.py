"""The customers pages: the list (filters counted as a direct query would, sorting, pages, a CSV
export with a byte-order mark and its audit row), the 360° view (orders, stage history, the API's
numbers) and masked contact details for viewers and analysts, with audited reveals; in Chromium
in both languages too."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re

import pytest
from sqlalchemy import func, select

from clm.auth.tables import audit_log
from clm.commerce.schemas import ProductIn
from clm.commerce.service import upsert_products
from clm.customers.schemas import CustomerIn
from clm.customers.service import find_customers, upsert_customer
from clm.lifecycle.tables import customer_stages
from clm.views.customer_list import CustomerFilter, customer_page
from tests.web.conftest import sign_in
from tests.web.test_console_browser import Watch, browser_sign_in


def page_figures(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="customer-data">(.*?)</script>', html, re.S)
    assert found, "no customer figures on the page"
    return json.loads(found.group(1))


def shown_total(html: str) -> int:
    found = re.search(r'id="customer-count" data-total="(\d+)"', html)
    assert found, "no count on the list"
    return int(found.group(1))


def customer_id(engine, external_id: str) -> int:  # type: ignore[no-untyped-def]
    return find_customers(engine, {"external_id": external_id})[0].id


@pytest.fixture
def wei(engine):  # type: ignore[no-untyped-def]
    """张伟, with an email and a phone, from Shanghai, no orders."""
    customer, _ = upsert_customer(
        engine,
        CustomerIn(
            external_id="w1",
            email="zhang.wei@example.com",
            phone="13812345678",
            first_name="伟",
            last_name="张",
            city="上海",
            acquisition_channel="wechat",
        ),
        actor="test",
    )
    return customer


def test_the_360_page_shows_orders_stage_history_and_the_apis_numbers(
    client, team, personas, engine, tiny_shop
):
    b = customer_id(engine, "b")
    with engine.begin() as conn:
        upsert_products(conn, [ProductIn(sku="A", name="Tea", price=100.0, cost=30.0)])
    sign_in(client, "ana")
    html = client.get(f"/customers/{b}").text
    figures = page_figures(html)
    api = client.get(f"/api/v1/customers/{b}", headers=personas.headers("vic")).json()
    # by hand: b ordered 200 forty days ago and 80 three days ago, both completed
    assert (figures["orders"], figures["completed"], figures["revenue"]) == (2, 2, 280.0)
    assert figures["historical_clv"] == 220.0  # 280 less two units of A at a cost of 30
    assert (api["orders"]["orders"], api["orders"]["revenue"]) == (figures["orders"], figures["revenue"])
    assert figures["stage"] == api["stage"]["stage"] is not None
    assert figures["stage_history"] == [[h["from_stage"], h["to_stage"]] for h in api["stage"]["history"]]
    assert figures["stage_history"] and figures["stage_history"][0][0] is None
    assert figures["loyalty_balance"] == api["loyalty"]["balance"]
    assert figures["tier"] == api["loyalty"]["tier"]
    assert figures["segments"] == [s["segment"] for s in api["segments"]]
    assert figures["event_counts"] == api["event_counts"]
    # the orders with their items, and each stage move with its rule
    orders = html[html.index('id="orders"') :]
    assert "b0" in orders and "b1" in orders and "A × 1" in orders
    assert "¥200.00" in orders and "¥80.00" in orders
    history = html[html.index('id="stage-history"') :]
    assert history.count("<li>") == len(figures["stage_history"])
    assert api["stage"]["history"][-1]["rule"].split()[0] in history
    # P(alive) is not scored here: said in words, not as 0
    assert "无定义" in html


def test_the_360_page_of_an_unknown_customer_is_a_404(client, team, engine):
    sign_in(client, "vic")
    assert client.get("/customers/999999").status_code == 404


def test_the_list_filters_by_stage_and_counts_as_a_direct_query(client, team, engine, tiny_shop, wei):
    sign_in(client, "ana")
    html = client.get("/customers").text
    assert shown_total(html) == 4
    with engine.connect() as conn:
        by_stage = dict(
            conn.execute(
                select(customer_stages.c.stage, func.count()).group_by(customer_stages.c.stage)
            ).all()
        )
    assert sum(by_stage.values()) == 3  # 张伟 has no order, so no stage
    for stage, count in by_stage.items():
        html = client.get("/customers", params={"stage": stage}).text
        assert shown_total(html) == count
        with engine.connect() as conn:
            ids = set(
                conn.execute(
                    select(customer_stages.c.customer_id).where(customer_stages.c.stage == stage)
                ).scalars()
            )
        assert {
            int(i) for i in re.findall(r'<td translate="no"><a href="/customers/(\d+)">\d+</a>', html)
        } == ids
    # search and the other filters narrow the same query
    assert shown_total(client.get("/customers", params={"q": "张伟"}).text) == 1
    assert shown_total(client.get("/customers", params={"city": "上海"}).text) == 1
    assert shown_total(client.get("/customers", params={"channel": "web"}).text) == 3
    assert shown_total(client.get("/customers", params={"channel": "web", "q": "张"}).text) == 0


def test_the_list_sorts_and_pages(engine, tiny_shop, wei):
    first = customer_page(engine, CustomerFilter(), "-id", page=1, per_page=3)
    second = customer_page(engine, CustomerFilter(), "-id", page=2, per_page=3)
    ids = [r.id for r in first.rows + second.rows]
    assert first.total == 4 and first.pages == 2 and len(second.rows) == 1
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    by_name = customer_page(engine, CustomerFilter(), "name", per_page=10).rows
    assert by_name[0].id == wei.id  # the only one with a name; nameless customers come last


def test_the_csv_export_has_a_bom_and_is_audited(client, team, engine, tiny_shop, wei):
    sign_in(client, "mark")
    response = client.get("/customers/export.csv", params={"channel": "web"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["id", "name", "email"]
    assert sorted(r[4] for r in rows[1:]) == ["a", "b", "c"]  # external ids of the web customers
    everyone = client.get("/customers/export.csv").content.decode("utf-8-sig")
    assert "张伟" in everyone and "zhang.wei@example.com" in everyone  # a marketer exports in full
    with engine.connect() as conn:
        audits = conn.execute(
            select(audit_log.c.actor, audit_log.c.details)
            .where(audit_log.c.action == "customers.export")
            .order_by(audit_log.c.id)
        ).all()
    assert len(audits) == 2
    assert "mark@example.com" in audits[0].actor
    assert audits[0].details["filter"] == {"channel": "web"} and audits[0].details["rows"] == 3
    assert audits[1].details["rows"] == 4


def test_a_viewer_sees_masked_contact_details_and_may_not_reveal(client, team, engine, wei):
    for who in ("vic", "ana"):
        client.cookies.clear()
        token = sign_in(client, who)
        for path in ("/customers", f"/customers/{wei.id}"):
            html = client.get(path).text
            assert "138****5678" in html and "z****@example.com" in html
            assert "13812345678" not in html and "zhang.wei@" not in html
        exported = client.get("/customers/export.csv").content.decode("utf-8-sig")
        assert "138****5678" in exported and "13812345678" not in exported
        refused = client.post(f"/customers/{wei.id}/reveal", headers={"X-CSRF-Token": token})
        assert refused.status_code == 403 and "13812345678" not in refused.text
    with engine.connect() as conn:
        assert not conn.execute(select(audit_log).where(audit_log.c.action == "customer.reveal")).all()
    # a marketer sees them masked on the 360° page too, until revealing them, which is recorded
    client.cookies.clear()
    token = sign_in(client, "mark")
    assert "13812345678" not in client.get(f"/customers/{wei.id}").text
    shown = client.post(f"/customers/{wei.id}/reveal", headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert shown.status_code == 200 and "13812345678" in shown.text and "zhang.wei@example.com" in shown.text
    with engine.connect() as conn:
        reveal = conn.execute(select(audit_log).where(audit_log.c.action == "customer.reveal")).one()
    assert reveal.entity_id == str(wei.id) and "mark@example.com" in reveal.actor


@pytest.mark.parametrize(
    ("locale", "orders_word", "history_word"),
    [("zh-CN", "订单", "生命周期阶段"), ("en-US", "Orders", "Lifecycle stage")],
)
def test_the_customer_pages_in_the_browser(
    browser, server, team, engine, tiny_shop, wei, regular, locale, orders_word, history_word
):
    b = customer_id(engine, "b")
    for width in (1280, 390):
        page = browser.new_page(locale=locale, viewport={"width": width, "height": 900})
        watch = Watch(page)
        browser_sign_in(page, server, "vic", f"/customers/{b}")
        assert page.locator("#orders tbody tr").count() == 2
        assert page.locator("#stage-history li").count() >= 1
        assert page.get_by_role("heading", name=orders_word).is_visible()
        assert page.get_by_role("heading", name=history_word).is_visible()
        # the event timeline filters by type in place (htmx)
        page.select_option("#events select[name=type]", "purchase")
        page.wait_for_function("() => document.querySelectorAll('#events tbody tr').length === 2")
        if width == 1280:  # a regular's older orders swap in, in place (htmx)
            page.goto(f"{server}/customers/{regular.id}")
            assert page.locator("#orders tbody tr").count() == 10
            page.click("#orders-part .pager a")
            page.wait_for_selector('#orders-page[data-page="2"]')
            assert page.locator("#orders tbody tr").count() == 2
            assert page.url.endswith(f"/customers/{regular.id}")  # the rest of the page stayed
        # the list, filtered by stage from its drop-down
        page.goto(server + "/customers")
        stage = page.locator("select[name=stage] option").nth(1).get_attribute("value")
        page.select_option("select[name=stage]", stage)
        page.click(".filters button[type=submit]")
        page.wait_for_url(re.compile(r".*stage=.*"))
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).where(customer_stages.c.stage == stage)).scalar_one()
        assert int(page.get_attribute("#customer-count", "data-total")) == count
        assert watch.problems == [], watch.problems
        page.close()


def test_a_marketer_reveals_contact_details_in_the_browser(browser, server, team, engine, wei):
    page = browser.new_page(locale="zh-CN")
    watch = Watch(page)
    browser_sign_in(page, server, "mark", f"/customers/{wei.id}")
    contact = page.locator("#contact")
    assert "138****5678" in contact.inner_text() and "13812345678" not in contact.inner_text()
    page.click("text=显示邮箱和手机号")
    page.wait_for_function("() => document.querySelector('#contact').innerText.includes('13812345678')")
    assert "zhang.wei@example.com" in contact.inner_text() and "已记入审计日志" in contact.inner_text()
    assert page.inner_text("main h1") == "张伟"  # family name first, no space
    with engine.connect() as conn:
        reveals = select(func.count()).where(audit_log.c.action == "customer.reveal")
        assert conn.execute(reveals).scalar_one() == 1
    assert watch.problems == [], watch.problems
    page.close()


def test_the_360_page_shows_the_journey_trace(client, team, engine, wei):
    from datetime import UTC, datetime, timedelta

    from clm.journeys.service import save_definition, scan_triggers, set_status
    from clm.journeys.steps import run_steps
    from tests.journeys.test_cart_journey import event as record_event

    t0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    steps = [{"update": {"attribute": "welcomed", "value": True}}]
    save_definition(engine, {"name": "mark-welcomed", "trigger": {"event": "signup"}, "steps": steps})
    set_status(engine, "mark-welcomed", "live")
    record_event(engine, "w1", "signup", t0)
    assert scan_triggers(engine, t0 + timedelta(minutes=1)) == {"mark-welcomed": 1}
    run_steps(engine, t0 + timedelta(minutes=2))
    sign_in(client, "vic")
    html = client.get(f"/customers/{wei.id}").text
    journeys = html[html.index("旅程与消息") : html.index("推荐")]
    assert "mark-welcomed" in journeys and '<ol class="trace">' in journeys
    assert "update" in journeys[journeys.index('<ol class="trace">') :]
    assert "welcomed" in html[html.index("自定义属性") :]  # the step's attribute, among the custom ones


def test_the_list_names_tiers_as_the_programme_does(client, team, engine, tiny_shop, wei):
    from clm.loyalty.service import programme
    from clm.loyalty.tables import customer_tiers
    from clm.loyalty.tiers import evaluate_tiers

    evaluate_tiers(engine)
    with engine.connect() as conn:
        counted = select(customer_tiers.c.tier, func.count()).group_by(customer_tiers.c.tier)
        rows = dict(conn.execute(counted).all())
    tiers = programme(engine).tiers
    lowest = programme(engine).lowest.name
    # a customer without a tier row is in the lowest tier: 4 customers in all
    without = 4 - sum(rows.values())
    expected = {t.name: rows.get(t.name, 0) + (without if t.name == lowest else 0) for t in tiers}
    assert sum(expected.values()) == 4 and expected[lowest] >= 1
    sign_in(client, "vic")
    for tier in tiers:
        html = client.get("/customers", params={"tier": tier.name}).text
        assert shown_total(html) == expected[tier.name]
        assert f'<option value="{tier.name}" selected>{tier.title_zh}</option>' in html
        assert html.count(f'<td class="wide-only">{tier.title_zh}</td>') == expected[tier.name]


@pytest.fixture
def regular(engine):  # type: ignore[no-untyped-def]
    """李娜, a regular: twelve orders a month apart (r0 the newest, r11 the oldest), a closed
    ticket and an open one, a done follow-up task, in the static segment "vip" since she joined."""
    from datetime import UTC, datetime, timedelta

    from clm.commerce.schemas import OrderIn
    from clm.commerce.service import ingest_order_batch
    from clm.feedback.service import create_task, finish_task, open_ticket, update_ticket
    from clm.segments.service import create_segment

    customer, _ = upsert_customer(
        engine, CustomerIn(external_id="r1", first_name="娜", last_name="李", city="杭州"), actor="test"
    )
    today = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0)
    ingest_order_batch(
        engine,
        [
            OrderIn(
                order_id=f"r{n}",
                external_id="r1",
                ordered_at=today - timedelta(days=1 + 30 * n),
                status="completed",
                total=10.0 + n,
                items=[{"sku": f"SKU-{n}", "unit_price": 10.0 + n}],
            )
            for n in range(12)
        ],
        actor="test",
    )
    closed = open_ticket(engine, customer.id, "发票抬头错了", "请帮我改一下发票抬头")
    update_ticket(engine, closed.id, status="closed")
    open_ticket(engine, customer.id, "Where is my parcel?", "It has not arrived")
    task = create_task(engine, customer.id, "回访：发票是否收到", due_at=today + timedelta(days=1))
    finish_task(engine, task.id)
    create_segment(engine, "vip", static=True, customer_ids=[customer.id])
    return customer


def test_the_360_page_shows_everything_of_a_regular(client, team, engine, regular):
    from clm.segments.service import customer_segments

    sign_in(client, "vic")
    html = client.get(f"/customers/{regular.id}").text
    orders = html[html.index('id="orders-part"') : html.index("</table>", html.index('id="orders"'))]
    assert [f"r{n}" for n in range(10)] == re.findall(r'<td translate="no">(r\d+)</td>', orders)
    assert "第 1 / 2 页" in html and "12 个订单" in html
    # page 2 holds the two oldest orders with their items, as a part (htmx) and as the whole page
    part = client.get(f"/customers/{regular.id}/orders", params={"op": 2}).text
    assert re.findall(r'<td translate="no">(r\d+)</td>', part) == ["r10", "r11"]
    assert "SKU-11 × 1" in part and 'data-page="2"' in part and "较新" in part
    whole = client.get(f"/customers/{regular.id}", params={"op": 2}).text
    assert re.findall(r'<td translate="no">(r\d+)</td>', whole) == ["r10", "r11"]
    # a closed ticket, an open one and a done task, each with its status
    cases = html[html.index('id="cases"') : html.index("</table>", html.index('id="cases"'))]
    assert cases.count('class="ticket status-closed"') == 1 and "发票抬头错了" in cases
    assert cases.count('class="ticket status-open"') == 1 and "已关闭" in cases
    assert 'class="task status-done"' in cases and "已完成" in cases
    # the segment with the day she entered it, in the store's time zone
    (name, entered_at), *_ = customer_segments(engine, regular.id)
    assert name == "vip"
    from clm.web.i18n import Formats

    when = Formats("zh_CN").datetime(entered_at)
    shown = rf'<span translate="no">vip</span> <span class="muted">自 {re.escape(when)} 起</span>'
    assert re.search(shown, html)
