"""Templates through the real API and CLI: what is accepted always loads (one model for saving
and loading), a plain-text/SMS template is valid, one bad stored template does not hide the
others, and rendering is guarded (any Python error, loops, output size) with a clear 422."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from clm.channels.tables import message_templates
from clm.channels.templates import render, template_from_dict
from clm.cli import main
from clm.core.errors import InvalidInput
from clm.core.timeutil import utcnow
from tests.journeys.test_cart_journey import shopper

SMS_TEXT = {"zh": "【店】{{ customer.first_name }}，您好", "en": "Hi"}
SMS = {"name": "sms-only", "channel": "sms", "text": SMS_TEXT}
PLAIN = {"name": "plain-mail", "channel": "email", "subject": "Hello", "text": "Hi {{ customer.first_name }}"}


def test_text_only_templates_save_list_and_preview(engine, client, personas, db_url, capsys):
    cid = shopper(engine, "ann")
    h = personas.headers("mark")
    for body in (SMS, PLAIN):
        saved = client.post("/api/v1/templates", json=body, headers=h)
        assert saved.status_code == 201, saved.text
        assert saved.json()["html"] == {}
    listed = client.get("/api/v1/templates", headers=h)
    assert listed.status_code == 200
    by_name = {t["name"]: t for t in listed.json()}
    assert by_name["sms-only"]["text"] == SMS_TEXT
    assert by_name["plain-mail"]["subject"] == {"en": "Hello"}
    preview = client.get(f"/api/v1/templates/plain-mail/preview/{cid}?lang=en", headers=h)
    assert preview.status_code == 200 and preview.json() == {
        "subject": "Hello", "text": "Hi Ann", "html": None, "lang": "en"
    }  # fmt: skip
    sms = client.get(f"/api/v1/templates/sms-only/preview/{cid}?lang=zh", headers=h).json()
    assert sms["text"] == "【店】Ann，您好" and sms["subject"] == ""
    assert main(["--db", db_url, "templates", "list"]) == 0
    out = capsys.readouterr().out
    assert "sms-only" in out and "plain-mail" in out and "en, zh" in out


def test_what_the_loader_would_refuse_is_refused_when_saving(client, personas):
    h = personas.headers("mark")
    mail = {"name": "m", "channel": "email", "text": "x"}
    no_subject = client.post("/api/v1/templates", json=mail, headers=h)
    assert no_subject.status_code == 422 and "subject" in no_subject.json()["error"]["message"]
    empty = client.post("/api/v1/templates", json={"name": "m", "channel": "sms", "text": {}}, headers=h)
    assert empty.status_code == 422 and "text is required" in empty.json()["error"]["message"]
    broken = client.post(
        "/api/v1/templates", json={"name": "m", "channel": "sms", "text": {"zh": "{{ a"}}, headers=h
    )
    assert broken.status_code == 422 and "line 1" in broken.json()["error"]["message"]
    unknown = client.post("/api/v1/templates", json={**SMS, "name": "m", "footer": "x"}, headers=h)
    assert unknown.status_code == 422
    assert {t["name"] for t in client.get("/api/v1/templates", headers=h).json()}.isdisjoint({"m"})


def test_one_bad_stored_template_is_listed_with_its_error_and_breaks_nothing_else(
    engine, client, personas, db_url, capsys
):
    cid = shopper(engine, "ann")
    with engine.begin() as conn:  # as an older CLM stored it: a definition no check accepts now
        conn.execute(
            insert(message_templates).values(
                name="old-one", channel="email", updated_at=utcnow(),
                definition={"name": "old-one", "channel": "email", "subject": {}, "text": {"en": "x"}},
            )
        )  # fmt: skip
    h = personas.headers("vic")
    listed = client.get("/api/v1/templates", headers=h)
    assert listed.status_code == 200
    by_name = {t["name"]: t for t in listed.json()}
    assert "welcome" in by_name and "subject" in by_name["old-one"]["error"]
    bad = client.get(f"/api/v1/templates/old-one/preview/{cid}", headers=h)
    assert bad.status_code == 422 and "old-one" in bad.json()["error"]["message"]
    assert client.get(f"/api/v1/templates/welcome/preview/{cid}", headers=h).status_code == 200
    assert main(["--db", db_url, "templates", "list"]) == 0
    out = capsys.readouterr().out
    assert "cannot be used" in out and "welcome" in out


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("{{ 1/0 }}", "ZeroDivisionError"),
        ("{{ loyalty.balance + ' points' }}", "TypeError"),
        ("{% for i in range(90000) %}{% for j in range(90000) %}{% endfor %}{% endfor %}", "loops ran"),
        ("{{ range(10**9) | list }}", "Range too big"),
        ("{{ 'a' * 20000000 }}", "CLM_TEMPLATE_MAX_BYTES"),
        ("{{ 7 ** 100000 }}", "too large a number"),
    ],
)
def test_any_error_in_a_template_is_a_clear_invalid_input(source, why):
    template = template_from_dict({"name": "t", "channel": "sms", "text": source})
    with pytest.raises(InvalidInput, match=why) as err:
        render(template, {"loyalty": {"balance": 120}})
    assert err.value.field == "t"


def test_rendered_output_is_capped_with_a_clear_422(engine, client, personas, monkeypatch):
    cid = shopper(engine, "ann")
    h = personas.headers("mark")
    big = {"name": "big", "channel": "sms", "text": "{{ 'a' * 20000000 }}"}
    assert client.post("/api/v1/templates", json=big, headers=h).status_code == 201
    refused = client.get(f"/api/v1/templates/big/preview/{cid}", headers=h)
    assert refused.status_code == 422
    assert "CLM_TEMPLATE_MAX_BYTES (262,144" in refused.json()["error"]["message"]
    # output that grows piece by piece is stopped at the limit too, counted in UTF-8 bytes
    monkeypatch.setenv("CLM_TEMPLATE_MAX_BYTES", "2000")
    loop = {"name": "loop", "channel": "sms", "text": "{% for i in range(700) %}好{% endfor %}"}
    assert client.post("/api/v1/templates", json=loop, headers=h).status_code == 201
    refused = client.get(f"/api/v1/templates/loop/preview/{cid}", headers=h)
    assert refused.status_code == 422 and "(2,000 bytes)" in refused.json()["error"]["message"]
    monkeypatch.setenv("CLM_TEMPLATE_MAX_BYTES", "2100")  # 700 × 3 bytes fits
    assert client.get(f"/api/v1/templates/loop/preview/{cid}", headers=h).json()["text"] == "好" * 700
