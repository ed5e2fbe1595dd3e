"""The condition builder in Chromium: a segment built from rules and a group gets the same members
as the same condition typed as text; switching between builder and text keeps the condition; a
wrong rule is marked; a viewer may explore but not save. Both languages, both stores."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.segments.service import get_segment, list_segments, members
from tests.web.test_console_browser import Watch, browser_sign_in

CONDITION = 'orders >= 1 and (city = "上海" or orders >= 2)'


@pytest.fixture
def shop(engine, tiny_shop):  # type: ignore[no-untyped-def]
    """a and b with two orders, c with one, 张伟 in 上海 with none."""
    upsert_customer(
        engine, CustomerIn(external_id="d", first_name="伟", last_name="张", city="上海"), actor="test"
    )


def member_ids(engine, name: str) -> set[int]:  # type: ignore[no-untyped-def]
    return {m.customer_id for m in members(engine, name, limit=1000)[1]}


def save_as(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("input[name=name]", name)
    page.click("#save")
    page.wait_for_url(re.compile(r"/segments/\d+\?saved=1"))
    expect(page.locator("#saved")).to_be_visible()


@pytest.mark.parametrize(("locale", "members_word"), [("zh-CN", "成员"), ("en-US", "Members")])
def test_a_built_segment_has_the_members_of_the_same_typed_condition(
    browser, server, team, engine, shop, locale, members_word
):
    page = browser.new_page(locale=locale, viewport={"width": 1280, "height": 900})
    watch = Watch(page, allowed_statuses=(422,))  # the refused switch to the builder
    browser_sign_in(page, server, "mark", "/segments/new")
    expect(page.locator(".b-rule")).to_have_count(2)  # the example condition
    while page.locator(".b-rule .b-remove").count():
        page.locator(".b-rule .b-remove").first.click()
    # orders >= 1 and (city = "上海" or orders >= 2), with the mouse
    root_close = page.locator(".b-close").last
    root_close.get_by_role("button").first.click()  # + rule: orders >= 1
    root_close.get_by_role("button").nth(1).click()  # + group
    page.locator(".b-open select.b-op").nth(1).select_option("or")
    inner = page.locator(".b-rule").nth(1)
    inner.locator("select.b-field").select_option("city")
    inner.locator("input.b-value").fill("上海")
    page.locator(".b-close").first.get_by_role("button").first.click()  # + rule in the group
    page.locator(".b-rule").nth(2).locator("input.b-value").fill("2")
    expect(page.locator("#preview-count")).to_have_attribute("data-count", "2")
    expect(page.locator("#builder-text")).to_have_text(CONDITION)
    # to the text and back: the same condition, the same rules
    page.click("#mode-text")
    expect(page.locator("#condition-text")).to_have_value(CONDITION)
    page.click("#mode-builder")
    expect(page.locator(".b-rule")).to_have_count(3)
    expect(page.locator("#builder-text")).to_have_text(CONDITION)
    save_as(page, "built")
    assert members_word in page.inner_text("body")
    # the same condition typed
    page.goto(server + "/segments/new")
    page.click("#mode-text")
    page.fill("#condition-text", CONDITION)
    expect(page.locator("#preview-count")).to_have_attribute("data-count", "2")
    save_as(page, "typed")
    assert get_segment(engine, "built").where == get_segment(engine, "typed").where == CONDITION
    assert member_ids(engine, "built") == member_ids(engine, "typed")
    assert len(member_ids(engine, "built")) == 2
    # a wrong rule is marked with the compiler's message; wrong text keeps the caret on its column
    page.goto(server + f"/segments/{get_segment(engine, 'built').id}/edit")
    rule = page.locator(".b-rule").nth(1)
    rule.locator("select.b-kind").select_option("raw")
    rule.locator("input.b-raw").fill("ordrs > 1")
    expect(page.locator(".b-wrong .b-error")).to_contain_text("ordrs")
    page.click("#mode-text")
    page.fill("#condition-text", "orders >= 1 and ((")
    page.click("#mode-builder")
    expect(page.locator("#switch-error")).to_be_visible()
    # the parser stopped at the end, where a condition was expected
    assert page.evaluate("document.getElementById('condition-text').selectionStart") == 18
    # a count still running when the condition changes again is dropped (hx-sync replace)
    stale = "/segments/preview net::ERR_ABORTED"
    assert [p for p in watch.problems if "422" not in p and stale not in p] == [], watch.problems


def test_a_viewer_explores_but_cannot_save(browser, server, team, engine, shop):
    page = browser.new_page(locale="zh-CN", viewport={"width": 390, "height": 844})
    watch = Watch(page, allowed_statuses=(403,))
    browser_sign_in(page, server, "vic", "/segments/new")
    expect(page.locator("#preview-count")).to_be_visible()
    expect(page.locator("#read-only-note")).to_be_visible()
    assert page.locator("#save").count() == 0
    status = page.evaluate(
        """async () => {
          const token = document.querySelector('input[name=csrf_token]').value;
          const body = new URLSearchParams(
            {csrf_token: token, name: 'sneaky', mode: 'text', where: 'orders >= 1'});
          return (await fetch('/segments/new', {method: 'POST', body})).status;
        }"""
    )
    assert status == 403
    assert "sneaky" not in {s.name for s in list_segments(engine)}
    assert all("403" in p for p in watch.problems), watch.problems
