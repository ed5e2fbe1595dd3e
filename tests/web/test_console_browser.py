"""The console in a real browser (Debian's Chromium driven by Playwright) against the app served
by uvicorn: sign-in and sign-out, lock-out, every page in both languages without console errors
or failed requests, refusals a viewer meets, CSRF, and the narrow-screen menu."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clm.auth.tables import audit_log
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from tests.web.conftest import email, password

# Words allowed in Latin letters on a Chinese page: names of things that are written so in Chinese too.
LATIN_OK = {
    "CLM",
    "API",
    "NPS",
    "CSAT",
    "CNY",
    "CSV",
    "Asia",
    "Shanghai",
    "English",
    "Mark",
    "Lee",
    "Vic",
    "Chen",
    "Ann",
}
CJK = re.compile(r"[\u4e00-\u9fff]")
PAGES = [
    "/",
    "/customers",
    "/segments",
    "/journeys",
    "/campaigns",
    "/templates",
    "/templates/welcome",
    "/outbox",
    "/loyalty",
    "/feedback",
    "/service",
    "/settings",
    "/account/password",
    "/search?q=%E5%BC%A0%E4%BC%9F",
    "/search?q=nobody",
    "/customers/{wei}",
]
VISIBLE_TEXT = """() => {
  const skip = (el) => el.closest('code, [translate=no], [lang]:not(html), script, style, [x-cloak], input');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const parts = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!el || skip(el) || !el.offsetParent && getComputedStyle(el).position !== 'fixed') continue;
    parts.push(node.textContent);
  }
  parts.push(...[...document.querySelectorAll('input[placeholder]')].map(i => i.placeholder));
  return parts.join(' ');
}"""


@pytest.fixture
def fast_refusals(monkeypatch):  # type: ignore[no-untyped-def]
    import clm.web.frame as frame

    monkeypatch.setattr(frame, "FAILED_SIGN_IN_DELAY", 0.05)


class Watch:
    """Console errors, page errors and failed or refused requests seen by one page."""

    def __init__(self, page, allowed_statuses=()) -> None:  # type: ignore[no-untyped-def]
        self.problems: list[str] = []
        self.allowed = set(allowed_statuses)
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)
        page.on(
            "response",
            lambda r: (
                r.status >= 400
                and r.status not in self.allowed
                and self.problems.append(f"{r.status}: {r.url}")
            ),
        )

    def _failed(self, request) -> None:  # type: ignore[no-untyped-def]
        # the browser drops its favicon request when the test moves on to the next page first
        if request.url.endswith("/favicon.svg") and "ERR_ABORTED" in (request.failure or ""):
            return
        self.problems.append(f"failed: {request.url} {request.failure}")


def browser_sign_in(page, server: str, who: str, target: str = "/") -> None:  # type: ignore[no-untyped-def]
    page.goto(server + target)
    assert "/login" in page.url
    page.fill("input[name=email]", email(who))
    page.fill("input[name=password]", password(who))
    page.click("button[type=submit].primary")
    page.wait_for_url(server + target)
    page.wait_for_function("() => window.Alpine !== undefined")  # menus answer clicks only then


def test_sign_in_and_sign_out(browser, server, team):
    page = browser.new_page(locale="zh-CN")
    watch = Watch(page)
    page.goto(server + "/")
    assert page.url == server + "/login" and page.inner_text("h1") == "登录"
    browser_sign_in(page, server, "alice")
    assert page.inner_text("main h1") == "概览"
    page.click(".user-button")
    page.click("text=退出登录")
    page.wait_for_url(server + "/login")
    page.goto(server + "/settings")
    assert page.url == server + "/login?next=/settings"
    assert watch.problems == []


def test_wrong_password_then_lock_out(browser, server, team, engine, fast_refusals):
    from clm.auth.users import MAX_FAILURES

    page = browser.new_page(locale="en-US")
    Watch(page, allowed_statuses={401, 429})
    page.goto(server + "/login")
    for attempt in range(MAX_FAILURES):
        page.fill("input[name=email]", email("mark"))
        page.fill("input[name=password]", f"wrong-{attempt}")
        page.click("button[type=submit].primary")
        page.wait_for_selector(".alert")
        if attempt < MAX_FAILURES - 1:
            assert "Wrong email or password." in page.inner_text(".alert")
    assert "this account is locked until" in page.inner_text(".alert")
    # the right password is refused while the lock lasts
    page.fill("input[name=email]", email("mark"))
    page.fill("input[name=password]", password("mark"))
    page.click("button[type=submit].primary")
    page.wait_for_selector(".alert")
    assert "locked" in page.inner_text(".alert") and "/login" in page.url
    with engine.connect() as conn:
        reasons = [
            r.details["reason"]
            for r in conn.execute(select(audit_log).where(audit_log.c.action == "user.sign_in_failed"))
        ]
    assert reasons == ["invalid"] * (MAX_FAILURES - 1) + ["locked", "locked"]


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_every_page_renders_in_both_languages_without_errors(browser, server, team, engine, locale):
    wei = upsert_customer(
        engine,
        CustomerIn(
            external_id="w1", email="wei@example.com", phone="13812345678", first_name="伟", last_name="张"
        ),
        actor="test",
    )[0]
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    watch = Watch(page)
    browser_sign_in(page, server, "alice")
    for path in PAGES:
        page.goto(server + path.format(wei=wei.id))
        assert page.locator("main h1").first.is_visible(), path
        text = page.evaluate(VISIBLE_TEXT)
        if locale == "zh-CN":
            assert page.get_attribute("html", "lang") == "zh-CN"
            latin = set(re.findall(r"[A-Za-z]{3,}", text)) - LATIN_OK
            assert not latin, f"{path}: untranslated? {sorted(latin)}"
        else:
            assert page.get_attribute("html", "lang") == "en"
            assert not set(CJK.findall(text)) - set("张伟王丽"), f"{path}: Chinese on the English page"
    assert watch.problems == []
    context.close()


def test_a_viewer_cannot_reach_an_admin_action(browser, server, team, engine):
    from clm.auth.users import find_user

    page = browser.new_page(locale="zh-CN")
    Watch(page, allowed_statuses={403})
    browser_sign_in(page, server, "vic")
    assert page.locator(".sidebar a[href='/settings']").count() == 0  # not offered
    response = page.goto(server + "/settings")
    assert response is not None and response.status == 403 and page.inner_text("main h1") == "无权访问"
    token = page.get_attribute("input[name=csrf_token]", "value")
    refused = page.request.post(
        server + "/settings/users/disable", form={"csrf_token": token, "email": email("mark")}
    )
    assert refused.status == 403  # refused on the server, not only hidden
    assert not find_user(engine, email("mark")).disabled


def test_a_post_without_the_csrf_token_is_refused(browser, server, team):
    page = browser.new_page(locale="en-US")
    browser_sign_in(page, server, "mark")
    refused = page.request.post(server + "/logout", form={})
    assert refused.status == 403 and "没有执行任何操作" in refused.text()  # (no Accept-Language: Chinese)
    page.goto(server + "/")
    assert page.url == server + "/"  # still signed in: the forged sign-out did nothing


def test_the_menu_slides_in_on_a_phone(browser, server, team):
    context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    watch = Watch(page)
    browser_sign_in(page, server, "ana")
    sidebar = page.locator("#sidebar")
    assert sidebar.bounding_box()["x"] + sidebar.bounding_box()["width"] <= 1  # off screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    for part in (".user-button", ".search", ".menu-toggle"):  # the top bar fits too
        box = page.locator(part).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, part
    page.click(".user-button")
    expect(page.locator(".user-popup .language")).to_be_visible()  # the language switch lives here
    page.click(".user-button")
    page.click(".menu-toggle")
    page.wait_for_timeout(300)  # the slide
    assert sidebar.bounding_box()["x"] >= 0
    page.click("#sidebar >> text=客户细分")
    page.wait_for_url(server + "/segments")
    assert page.inner_text("main h1") == "客户细分"
    assert watch.problems == []
    context.close()


def test_the_overview_draws_its_charts_and_explains_each_figure(browser, server, team, tiny_shop):
    page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
    watch = Watch(page)
    browser_sign_in(page, server, "mark")
    page.wait_for_selector("#stage-chart svg")
    page.wait_for_selector("#funnel-chart svg")
    assert "获取" in page.inner_text("#stage-chart")  # stage names in Chinese, drawn by ECharts
    page.wait_for_selector("#flow-chart svg")
    page.wait_for_selector("#channel-chart svg")
    page.wait_for_selector("#cohort-chart svg")
    assert page.locator("#risk-chart").count() == 0  # no churn scores: the card says how to make them
    assert "新进入" in page.inner_text("#flow-chart")  # the Sankey's left column: customers' first stages
    charts = (
        "#stage-chart svg",
        "#funnel-chart svg",
        "#flow-chart svg",
        "#channel-chart svg",
        "#cohort-chart svg",
    )
    for chart in charts:
        box = page.locator(chart).first.bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 250, chart
    churn = page.locator(".kpi[data-kpi=churn_rate]")
    assert churn.locator(".kpi-value").inner_text() == "0.0%"
    assert not churn.locator(".tip").is_visible()
    churn.locator(".info").hover()
    assert churn.locator(".tip").inner_text() == "流失客户数 / 期初客户数"
    page.click("text=近 7 天")
    page.wait_for_url(server + "/?period=7")
    assert page.locator(".kpi[data-kpi=revenue] .kpi-value").inner_text() == "¥130.00"
    assert watch.problems == []
