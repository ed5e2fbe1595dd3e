"""A survey link answered in a real browser (Debian's Chromium driven by Playwright) against the
app served by uvicorn: the answer is stored once and a second use is refused politely."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.events.tables import events
from clm.feedback.service import create_survey, invite, list_tasks

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    if os.environ.get("CLM_REQUIRE_BROWSER") == "1":
        raise RuntimeError(
            "CLM_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install chromium)"
        )
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


def answers(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(events.c.type == "survey_response")).scalar_one()


def test_a_survey_link_is_answered_in_the_browser_once(engine, server, browser):
    create_survey(
        engine, "after-order", "nps", "How likely are you to recommend us?", "您有多大可能推荐我们?"
    )
    ann = upsert_customer(engine, CustomerIn(external_id="ann", first_name="Ann"), actor="test")[0].id
    link = invite(engine, "after-order", ann).link
    assert link is not None
    path = "/s/" + link.rsplit("/", 1)[1]

    page = browser.new_page()
    page.goto(server + path)
    assert "Hello Ann, How likely are you to recommend us?" in page.inner_text("h1")
    page.get_by_label("3", exact=True).check()
    page.fill("#comment", "Delivery was late")
    page.click("button[type=submit]")
    assert page.inner_text("h1") == "Thank you!"
    assert answers(engine) == 1
    assert len(list_tasks(engine)) == 1  # a detractor: a follow-up task was opened

    # the same link again: a polite refusal, on the page and on a replayed form post
    response = page.goto(server + path)
    assert response is not None and response.status == 409
    assert page.inner_text("h1") == "This survey has already been answered."
    replay = page.request.post(server + path, form={"score": "10", "comment": "again"})
    assert replay.status == 409 and "already been answered" in replay.text()
    assert answers(engine) == 1

    # in Chinese, and a link that never existed
    zh = browser.new_page(locale="zh-CN")
    zh.goto(server + path + "?lang=zh")
    assert zh.inner_text("h1") == "这份问卷已经回答过了。"
    missing = page.goto(server + "/s/not-a-real-token")
    assert missing is not None and missing.status == 404
