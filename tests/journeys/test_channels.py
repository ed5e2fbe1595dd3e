"""SMS and webhook transports against a real local HTTP server, tracked opens and clicks coming
back as events, template checks, and every ready-made journey valid and runnable."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from sqlalchemy import select

from clm.channels.base import OutboundMessage
from clm.channels.sms.transport import SmsTransport
from clm.channels.templates import render, template_from_dict
from clm.channels.webhook.transport import WebhookTransport
from clm.core.errors import InvalidInput
from clm.customers.schemas import CustomerIn
from clm.customers.service import set_consent, upsert_customer
from clm.events.tables import events
from clm.journeys.definition import presets
from clm.journeys.outbox import dispatch, queue_message
from clm.journeys.service import import_journey, set_status, tick
from clm.loyalty.service import evaluate_tiers
from tests.journeys.test_cart_journey import shopper

NOW = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)


class Provider(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict, dict]]] = []
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Provider.received.append((self.path, dict(self.headers), body))
        self.send_response(Provider.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def provider() -> Iterator[str]:
    Provider.received, Provider.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_sms_and_webhooks_post_json_with_the_idempotency_key(provider):
    sms = SmsTransport(f"{provider}/sms", token="secret")
    result = sms.send(OutboundMessage("k-1", "sms", "+8613800000000", "", "Your cart is waiting"))
    assert result.ok
    path, headers, body = Provider.received[0]
    assert (
        path == "/sms" and headers["Authorization"] == "Bearer secret" and headers["Idempotency-Key"] == "k-1"
    )
    assert body == {"id": "k-1", "to": "+8613800000000", "text": "Your cart is waiting"}
    hook = WebhookTransport(None)
    assert hook.send(OutboundMessage("k-2", "webhook", f"{provider}/crm", "Hi", "text", data={"a": 1})).ok
    assert Provider.received[1][0] == "/crm" and Provider.received[1][2]["a"] == 1
    Provider.status = 400
    refused = sms.send(OutboundMessage("k-3", "sms", "+861", "", "x"))
    assert not refused.ok and refused.permanent
    Provider.status = 503
    assert not sms.send(OutboundMessage("k-4", "sms", "+861", "", "x")).permanent  # retried later
    sms.close()


def test_an_sms_journey_message_goes_to_the_provider(engine, provider, monkeypatch, smtp):
    monkeypatch.setenv("CLM_SMS_URL", f"{provider}/sms")
    cid = upsert_customer(
        engine, CustomerIn(external_id="ann", phone="+8613800000001", country="CN"), actor="t"
    )[0].id
    set_consent(engine, cid, "sms", True, source="t")
    queue_message(engine, cid, "cart-reminder-sms", key="s1", channel="sms", kind="marketing", not_before=NOW)
    assert dispatch(engine, NOW).sent == 1
    assert Provider.received[0][2]["text"] == "【Test Shop】您的购物车还有商品等您结算。回复TD退订"


def test_opens_and_clicks_come_back_as_events(engine, smtp, client):
    shopper(engine, "ann")
    html_template = {
        "name": "news",
        "channel": "email",
        "subject": "News",
        "text": "Read {{ track('https://shop.example.com/new') }}",
        "html": "<p><a href=\"{{ track('https://shop.example.com/new') }}\">new</a></p>",
    }
    client.post("/api/v1/templates", json=html_template)  # no key: refused
    from clm.channels.templates import save_template

    save_template(engine, template_from_dict(html_template))
    cid = shopper(engine, "bob")
    queue_message(engine, cid, "news", key="n1", kind="marketing", not_before=NOW)
    report = dispatch(engine, NOW)
    assert report.sent == 1
    mail = smtp.to("bob@example.com")[0]
    html = mail.get_body(preferencelist=("html",)).get_content()
    pixel = html.split('<img src="')[1].split('"')[0].replace("https://clm.example.com", "")
    link = html.split('href="')[1].split('"')[0].replace("https://clm.example.com", "").replace("&amp;", "&")
    assert client.get(pixel).headers["content-type"] == "image/gif"
    jump = client.get(link, follow_redirects=False)
    assert jump.status_code == 302 and jump.headers["location"] == "https://shop.example.com/new"
    client.get(pixel)  # a second open is the same event
    with engine.connect() as conn:
        kinds = conn.execute(select(events.c.type).where(events.c.customer_id == cid)).scalars().all()
    assert sorted(k for k in kinds if k.startswith("email_")) == ["email_click", "email_open"]


def test_a_template_with_a_syntax_error_is_refused_naming_the_line():
    with pytest.raises(InvalidInput) as err:
        template_from_dict({"name": "bad", "channel": "email", "subject": "x", "text": {"zh": "a\n{% if %}"}})
    assert err.value.field == "bad.text.zh" and "line 2" in err.value.reason
    # the sandbox: Python internals are out of reach
    escape = template_from_dict(
        {"name": "s", "channel": "sms", "text": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}
    )
    with pytest.raises(InvalidInput, match="unsafe"):
        render(escape, {})
    quiet = template_from_dict({"name": "s", "channel": "sms", "text": "[{{ ''.__class__ }}]"})
    assert render(quiet, {}).text == "[]"


def test_every_ready_made_journey_is_valid_and_the_tier_upgrade_one_runs(engine, smtp):
    assert set(presets()) == {
        "welcome", "browse-abandonment", "cart-abandonment", "post-purchase-survey", "birthday", "holiday",
        "win-back", "tier-upgrade",
    }  # fmt: skip
    from clm.feedback.service import install_builtin_surveys
    from clm.segments.service import install_builtins

    install_builtin_surveys(engine)  # what `clm init` installs; the journeys name them
    install_builtins(engine)
    for name in presets():
        import_journey(engine, name)
    set_status(engine, "tier-upgrade", "live")
    from clm.commerce.schemas import OrderIn
    from clm.commerce.service import ingest_order_batch

    shopper(engine, "ann")
    ingest_order_batch(
        engine, [OrderIn(order_id="A", external_id="ann", ordered_at=NOW, total=2500)], actor="t"
    )
    evaluate_tiers(engine, as_of=NOW + timedelta(minutes=1))
    tick(engine, NOW + timedelta(minutes=2))
    mail = smtp.to("ann@example.com")[0]
    assert mail["Subject"] == "Congratulations: you are now a Gold member"
    assert "List-Unsubscribe" not in mail  # transactional


def test_the_post_purchase_survey_journey_sends_a_working_survey_link(engine, smtp, client):
    from clm.feedback.service import install_builtin_surveys
    from tests.journeys.test_cart_journey import event

    install_builtin_surveys(engine)
    import_journey(engine, "post-purchase-survey")
    set_status(engine, "post-purchase-survey", "live")
    shopper(engine, "ann")
    event(engine, "ann", "purchase", NOW)
    tick(engine, NOW + timedelta(minutes=1))  # enters, waits three days
    tick(engine, NOW + timedelta(days=3, minutes=2))  # then until 10:00 on her clock
    tick(engine, NOW + timedelta(days=4, hours=2))
    body = smtp.to("ann@example.com")[0].get_body(preferencelist=("plain",)).get_content()
    link = body.split("https://clm.example.com")[1].split()[0]
    assert link.startswith("/s/")
    assert "How likely are you to recommend us" in client.get(link).text
    assert client.post(link, data={"score": "9"}).status_code == 200
    assert client.post(link, data={"score": "9"}).status_code == 409
