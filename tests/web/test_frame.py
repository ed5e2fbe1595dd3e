"""The console's frame through a real HTTP client: sign-in and sessions, cookies, language,
money and time formats, search, masking by role."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from clm.auth.tables import audit_log
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.web.access import safe_next
from clm.web.i18n import Formats, negotiate
from clm.web.session import COOKIE
from tests.web.conftest import csrf_of, email, password, sign_in


def test_sign_in_sets_a_signed_http_only_same_site_cookie_and_records_it(client, team, engine):
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"email": email("ana"), "password": password("ana"), "csrf_token": token, "next": "/segments"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/segments"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = client.get("/segments")
    assert page.status_code == 200 and "李娜" in page.text
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(audit_log.c.action).order_by(audit_log.c.id))]
    assert "user.sign_in" in actions


def test_a_forged_cookie_is_a_signed_out_visitor(client, team):
    sign_in(client, "alice")
    value = client.cookies.get(COOKIE)
    client.cookies.set(COOKIE, value[:-3] + "abc")
    response = client.get("/settings", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/settings"


def test_wrong_password_is_slow_and_says_so_in_chinese(client, team, monkeypatch):
    import clm.web.frame as frame

    monkeypatch.setattr(frame, "FAILED_SIGN_IN_DELAY", 0.3)
    token = csrf_of(client.get("/login").text)
    started = datetime.now(UTC)
    response = client.post("/login", data={"email": email("ana"), "password": "nope", "csrf_token": token})
    assert (datetime.now(UTC) - started).total_seconds() >= 0.3
    assert response.status_code == 401 and "邮箱或密码错误" in response.text
    assert client.get("/", follow_redirects=False).status_code == 303  # still signed out


def test_sign_out_ends_the_session(client, team, engine):
    token = sign_in(client, "mark")
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_password_change_ends_the_other_sessions(client, team, engine):
    from fastapi.testclient import TestClient

    other = TestClient(client.app)
    sign_in(other, "mark")
    token = sign_in(client, "mark")
    response = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current": password("mark"),
            "new": "a-new-password",
            "confirm": "a-new-password",
        },
    )
    assert response.status_code == 200 and "密码已修改" in response.text
    assert client.get("/").status_code == 200  # this session goes on
    assert other.get("/", follow_redirects=False).status_code == 303  # the other one ended
    token = csrf_of(client.get("/account/password").text)  # a new session: a new token
    mismatch = client.post(
        "/account/password",
        data={"csrf_token": token, "current": "a-new-password", "new": "x" * 9, "confirm": "y" * 9},
    )
    assert mismatch.status_code == 422 and "不一致" in mismatch.text


def test_a_disabled_user_is_signed_out_at_the_next_request(client, team, engine):
    from clm.auth.users import disable_user

    sign_in(client, "vic")
    assert client.get("/").status_code == 200
    disable_user(engine, email("vic"))
    assert client.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "zh_CN"),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("fr-FR, en;q=0.5, zh;q=0.4", "en"),
        ("de, zh-TW;q=0.3", "zh_CN"),
        ("en;q=0, zh;q=0.1", "zh_CN"),
        ("ja", "zh_CN"),
    ],
)
def test_the_language_follows_the_browser_with_chinese_first(header, locale):
    assert negotiate(header) == locale


def test_the_language_switch_is_kept_in_a_cookie(client, team):
    client.headers["Accept-Language"] = "zh-CN"
    token = sign_in(client, "alice")
    assert "概览" in client.get("/").text
    response = client.post(
        "/lang", data={"csrf_token": token, "lang": "en", "next": "/segments"}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/segments"
    page = client.get("/segments").text
    assert '<html lang="en">' in page and "Segments" in page and "概览" not in page


def test_only_local_paths_are_followed_after_sign_in():
    assert safe_next("/customers?q=1") == "/customers?q=1"
    for bad in ("https://evil.example/", "//evil.example/", "/\\evil.example", None, ""):
        assert safe_next(bad) == "/"


def test_money_numbers_and_times_in_the_store_currency_and_zone():
    zh, en = Formats("zh_CN"), Formats("en")
    assert zh.money(1299) == "¥1,299.00" and en.money(1299) == "CN¥1,299.00"
    assert zh.percent(0.1234) == "12.3%" and zh.number(1234567) == "1,234,567"
    moment = datetime(2026, 11, 1, 2, 5, tzinfo=UTC)  # 10:05 in Shanghai
    assert zh.datetime(moment) == "2026年11月1日 10:05:00"
    assert "10:05:00" in en.datetime(moment) and "Nov 1, 2026" in en.datetime(moment)


def test_search_finds_by_name_email_phone_external_id_and_id_and_masks_by_role(client, team, engine):
    wei = upsert_customer(
        engine,
        CustomerIn(
            external_id="crm-7",
            email="wei.zhang@example.com",
            phone="13812345678",
            first_name="伟",
            last_name="张",
        ),
        actor="test",
    )[0]
    ann = upsert_customer(
        engine, CustomerIn(external_id="ann", first_name="Ann", last_name="Lee", city="上海"), actor="test"
    )[0]
    sign_in(client, "mark")  # a marketer sees contact details in full
    for query in ("张伟", "张", "WEI.ZHANG@example.com", "138 1234 5678", "crm-7", str(wei.id)):
        page = client.get("/search", params={"q": query}).text
        assert f'href="/customers/{wei.id}"' in page and "张伟" in page, query
        assert "wei.zhang@example.com" in page and "+8613812345678" in page
    page = client.get("/search", params={"q": "ann l"}).text
    assert "Ann Lee" in page and f'href="/customers/{ann.id}"' in page and "张伟" not in page
    nobody = client.get("/search", params={"q": "nobody at all"}).text
    assert "没有与" in nobody and "还没有客户" not in nobody  # the store has customers
    client.cookies.clear()
    sign_in(client, "ana")  # an analyst sees them masked
    page = client.get("/search", params={"q": "张伟"}).text
    assert "w****@example.com" in page and "+86 138****5678" in page
    assert "wei.zhang@example.com" not in page and "13812345678" not in page
    card = client.get(f"/customers/{wei.id}").text
    assert "张伟" in card and "w****@example.com" in card and "crm-7" in card
    assert client.get("/customers/999999").status_code == 404
