"""Tracked links redirect only where a message sent them: the link a real email carried goes on
and records the click; another address, a made-up token or an old unsigned link is a 404."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from clm.channels.templates import save_template, template_from_dict
from clm.events.tables import events
from clm.journeys.links import link_key, signature
from clm.journeys.outbox import dispatch, queue_message
from tests.journeys.test_cart_journey import shopper

NOW = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)
SHOP = "https://shop.example.com/new?utm_source=email&x=1"


@pytest.fixture
def link(engine, smtp) -> str:
    """The tracked link (path and query) of a news email really sent to bob."""
    template = {
        "name": "news",
        "channel": "email",
        "subject": "News",
        "text": "Read {{ track('" + SHOP + "') }}",
        "html": "<p><a href=\"{{ track('" + SHOP + "') }}\">new</a></p>",
    }
    save_template(engine, template_from_dict(template))
    cid = shopper(engine, "bob")
    queue_message(engine, cid, "news", key="n1", kind="marketing", not_before=NOW)
    assert dispatch(engine, NOW).sent == 1
    text = smtp.to("bob@example.com")[0].get_body(preferencelist=("plain",)).get_content()
    url = text.split("Read ")[1].split()[0]
    assert url.startswith("https://clm.example.com/t/c/")
    return url.removeprefix("https://clm.example.com")


def clicks(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(events.c.properties).where(events.c.type == "email_click")).all()
    return [r.properties for r in rows]


def parts(link: str) -> tuple[str, str, str]:
    split = urlsplit(link)
    query = parse_qs(split.query)
    return split.path.removeprefix("/t/c/"), query["u"][0], query["s"][0]


def test_the_genuine_link_redirects_and_records_the_click(engine, client, link):
    token, url, sig = parts(link)
    assert url == SHOP and len(sig) == 22
    jump = client.get(link, follow_redirects=False)
    assert jump.status_code == 302 and jump.headers["location"] == SHOP
    assert [c["url"] for c in clicks(engine)] == [SHOP]
    assert sig == signature(link_key(engine), token, SHOP)  # the key is kept: the same every time


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t, u, s: f"/t/c/{t}?u=https://evil.example/phish&s={s}",  # another address
        lambda t, u, s: f"/t/c/{t}?u=https://shop.example.com/new&s={s}",  # a shortened one
        lambda t, u, s: f"/t/c/{t}?u=https://evil.example/phish",  # old unsigned form
        lambda t, u, s: f"/t/c/{t}?u=https://shop.example.com/new%3Futm_source%3Demail%26x%3D1",  # old, own
        lambda t, u, s: "/t/c/anything?u=https://evil.example/phish",  # the report's example
        lambda t, u, s: f"/t/c/{t}x?u={u}&s={s}",  # another token
        lambda t, u, s: f"/t/c/{t}?u={u}&s={s[:-1]}A" if s[-1] != "A" else f"/t/c/{t}?u={u}&s={s[:-1]}B",
        lambda t, u, s: f"/t/c/{t}?u=javascript:alert(1)&s={s}",
    ],
)
def test_any_other_link_is_404_without_redirect_or_click(engine, client, link, tamper):
    token, url, sig = parts(link)
    response = client.get(
        tamper(token, url.replace("&", "%26").replace("?", "%3F"), sig), follow_redirects=False
    )
    assert response.status_code == 404
    assert "location" not in response.headers
    assert "This link is not valid" in response.text and "链接无效" in response.text
    assert clicks(engine) == []


def test_a_link_signed_by_another_server_is_refused(engine, client, link):
    token = parts(link)[0]
    forged = signature(b"some other server's key", token, "https://evil.example/phish")
    response = client.get(f"/t/c/{token}?u=https://evil.example/phish&s={forged}", follow_redirects=False)
    assert response.status_code == 404 and clicks(engine) == []


def test_a_signed_link_of_a_message_no_longer_stored_is_404(engine, client):
    token = "never-issued-token"
    sig = signature(link_key(engine), token, SHOP)
    response = client.get(f"/t/c/{token}", params={"u": SHOP, "s": sig}, follow_redirects=False)
    assert response.status_code == 404 and clicks(engine) == []
