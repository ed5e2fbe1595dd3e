"""The messages pages in Chromium against the served app: a template previewed for a customer
(the HTML with their cart as product cards in a sandboxed frame, the text beside it) and a test
send that arrives at a real SMTP server; a held message released from the outbox; a viewer who
sees the outbox but is refused on the server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clm.commerce.schemas import ProductIn
from clm.commerce.service import upsert_products
from clm.journeys.outbox import dispatch, queue_message
from clm.journeys.tables import outbox
from tests.journeys import conftest as journeys_fixtures
from tests.journeys.test_cart_journey import event
from tests.journeys.test_guardrails import person
from tests.web.test_console_browser import Watch, browser_sign_in

smtp = journeys_fixtures.smtp  # the real SMTP server fixture


def shopper_with_a_cart(engine, image: str) -> int:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        upsert_products(
            conn,
            [
                ProductIn(
                    sku="SH-1",
                    name="红色跑鞋",
                    price=299,
                    attributes={"image_url": image},
                )
            ],
        )
    cid = person(engine, "ann", tz="Asia/Shanghai")
    event(engine, "ann", "add_to_cart", datetime(2026, 11, 2, 2, 0, tzinfo=UTC), sku="SH-1", name="红色跑鞋")
    return cid


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_template_is_previewed_for_a_customer_and_a_test_send_arrives(
    browser,
    server,
    team,
    engine,
    smtp,
    locale,
):
    image = f"{server}/static/favicon.svg"  # a picture the browser can load
    cid = shopper_with_a_cart(engine, image)
    page = browser.new_page(locale=locale, viewport={"width": 1280, "height": 900})
    watch = Watch(page)
    browser_sign_in(page, server, "mark", "/templates")
    page.click("a[href='/templates/cart-reminder']")
    page.fill("#preview-customer", str(cid))
    page.select_option("select[name=lang]", "zh")
    frame = page.frame_locator("#preview-html")
    expect(frame.locator("text=红色跑鞋").first).to_be_visible()  # the cart as a product card
    expect(frame.locator("text=¥299.00")).to_be_visible()
    expect(frame.locator(f"img[src='{image}']")).to_be_visible()
    assert page.get_attribute("#preview-html", "sandbox") == ""  # no scripts, no same origin
    expect(page.locator("#preview-text")).to_contain_text("购物车")
    # edit the English subject; the preview follows
    page.select_option("select[name=lang]", "en")
    page.fill("input[name=subject_en]", "Still thinking, {{ customer.first_name }}?")
    expect(page.locator("#preview-subject")).to_contain_text("Still thinking, Ann?")
    page.fill("#test-address", "me@example.com")
    page.click("#test-send")
    expect(page.locator("#sent-result")).to_contain_text("me@example.com")
    [message] = smtp.to("me@example.com")
    assert message["Subject"] == "[TEST] Still thinking, Ann?"
    html = message.get_body(("html",)).get_content()
    assert "红色跑鞋" in html and image in html and "max-width:600px" in html
    assert watch.problems == []


def held(engine, monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)  # quiet from an hour ago to six hours on: held whatever the time of day
    start, end = now - timedelta(hours=1), now + timedelta(hours=6)
    monkeypatch.setenv("CLM_QUIET_HOURS", f"{start:%H:%M}-{end:%H:%M}")
    for name in ("ann", "bob"):
        queue_message(engine, person(engine, name, tz="UTC"), "holiday", key=f"m-{name}", kind="marketing")
    assert dispatch(engine, datetime.now(UTC)).deferred == 2  # after queueing: both are due
    with engine.connect() as conn:
        return [r.id for r in conn.execute(select(outbox.c.id).order_by(outbox.c.id))]


def test_a_marketer_releases_a_held_message(browser, server, team, engine, smtp, monkeypatch):
    ann, bob = held(engine, monkeypatch)
    page = browser.new_page(locale="zh-CN")
    watch = Watch(page)
    browser_sign_in(page, server, "mark", "/outbox")
    expect(page.locator(f"tr[data-id='{ann}']")).to_contain_text("免打扰")
    page.check(f"tr[data-id='{ann}'] input[name=id]")
    page.click("#release")
    expect(page.locator("#done")).to_contain_text("已放行 1 条消息")
    expect(page.locator(f"tr[data-id='{ann}']")).to_have_count(0)
    dispatch(engine, datetime.now(UTC))
    assert [m["To"] for m in smtp.messages] == ["ann@example.com"]
    with engine.connect() as conn:
        assert conn.execute(select(outbox.c.status).where(outbox.c.id == bob)).scalar_one() == "queued"
    assert watch.problems == []


def test_a_viewer_sees_the_outbox_but_cannot_release_or_retry(browser, server, team, engine, monkeypatch):
    ann, _ = held(engine, monkeypatch)
    page = browser.new_page(locale="en-US")
    Watch(page, allowed_statuses={403})
    browser_sign_in(page, server, "vic", "/outbox")
    expect(page.locator(f"tr[data-id='{ann}']")).to_contain_text("Quiet hours")
    assert page.locator("#release").count() == 0 and page.locator("input[name=id]").count() == 0
    token = page.get_attribute("input[name=csrf_token]", "value")
    for path in ("/outbox/release", "/outbox/retry", "/outbox/cancel"):
        refused = page.request.post(server + path, form={"csrf_token": token, "id": str(ann)})
        assert refused.status == 403  # refused on the server, not only hidden
    with engine.connect() as conn:
        row = conn.execute(select(outbox.c.status, outbox.c.reason).where(outbox.c.id == ann)).one()
    assert row.status == "queued" and "quiet hours" in row.reason
