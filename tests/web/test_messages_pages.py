"""The templates, outbox and campaign pages through the app: the editor saves what the API reads,
the preview renders for a customer, a marketer releases and retries, a viewer sees but is
refused on the server, and the campaign page and its CSV show the API's numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from clm.channels.templates import get_template
from clm.journeys.outbox import dispatch, queue_message
from clm.journeys.tables import outbox
from tests.journeys import conftest as journeys_fixtures
from tests.journeys import test_campaign_report as report_fixtures
from tests.journeys.test_guardrails import person
from tests.web.conftest import sign_in

smtp = journeys_fixtures.smtp  # the real SMTP server fixture
promo = report_fixtures.promo  # a journey with a holdout, its orders and cost


def form(token: str, **fields: str) -> dict[str, str]:
    base = {"csrf_token": token, "name": "spring", "channel": "email", "description": "Spring sale"}
    return {**base, **fields}


def test_a_marketer_writes_a_template_in_two_languages_and_previews_it(client, team, engine, personas):
    cid = person(engine, "ann", tz="Asia/Shanghai")
    token = sign_in(client, "mark")
    page = client.get("/templates")
    assert page.status_code == 200 and "cart-reminder" in page.text and "/templates/new" in page.text
    fields = form(
        token,
        subject_zh="{{ customer.first_name }},春季特卖",
        subject_en="Spring sale, {{ customer.first_name }}",
        text_zh="您好 {{ customer.first_name }}",
        text_en="Hello {{ customer.first_name }}",
        html_en="<p>Hello <b>{{ customer.first_name }}</b></p>",
        customer_id=str(cid),
        lang="en",
        new="1",
    )
    shown = client.post("/templates/preview", data=fields)
    assert shown.status_code == 200
    assert "Spring sale, Ann" in shown.text and 'sandbox=""' in shown.text
    assert "&lt;p&gt;Hello &lt;b&gt;Ann&lt;/b&gt;&lt;/p&gt;" in shown.text  # the HTML, inside srcdoc
    assert "春季特卖" in client.post("/templates/preview", data={**fields, "lang": "zh"}).text
    broken = client.post("/templates/preview", data={**fields, "text_en": "{% if %}"})
    assert "text.en" in broken.text and "line 1" in broken.text
    saved = client.post("/templates/save", data=fields, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/templates/spring?saved=1"
    t = get_template(engine, "spring")
    assert t.subject == {
        "zh": "{{ customer.first_name }},春季特卖",
        "en": "Spring sale, {{ customer.first_name }}",
    }
    assert t.html == {"en": "<p>Hello <b>{{ customer.first_name }}</b></p>"}  # no Chinese HTML: falls back
    api = {t["name"]: t for t in client.get("/api/v1/templates", headers=personas.headers("vic")).json()}
    assert api["spring"]["subject"] == t.subject  # the API reads what the page saved
    again = client.post("/templates/save", data=fields)
    assert again.status_code == 422 and "exists already" in again.text


def test_a_viewer_previews_but_cannot_save_or_send(client, team, engine):
    cid = person(engine, "ann")
    token = sign_in(client, "vic")
    page = client.get("/templates/welcome")
    assert page.status_code == 200 and 'id="read-only"' in page.text and 'id="test-send"' not in page.text
    fields = form(token, name="welcome", subject_en="Hi", text_en="Hi", customer_id=str(cid))
    assert client.post("/templates/preview", data=fields).status_code == 200
    for path in ("/templates/save", "/templates/test-send"):
        response = client.post(path, data={**fields, "address": "x@example.com"})
        assert response.status_code == 403
    assert get_template(engine, "welcome").subject["en"] != "Hi"


def test_a_test_send_arrives_and_a_bad_address_is_refused(client, team, engine, smtp):
    cid = person(engine, "ann")
    token = sign_in(client, "mark")
    fields = form(token, subject_en="Hi {{ customer.first_name }}", text_en="Body", customer_id=str(cid))
    sent = client.post("/templates/test-send", data={**fields, "address": "me@example.com"})
    assert sent.status_code == 200 and "me@example.com" in sent.text
    [message] = smtp.to("me@example.com")
    assert message["Subject"] == "[TEST] Hi Ann"
    bad = client.post("/templates/test-send", data={**fields, "address": "not an address"})
    assert bad.status_code == 422 and len(smtp.messages) == 1


def held_messages(engine, monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """Two marketing emails held by quiet hours from an hour ago to six hours from now (UTC, the
    customers' zone): still held when the page is read, whatever the time of day."""
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = now - timedelta(hours=1), now + timedelta(hours=6)
    monkeypatch.setenv("CLM_QUIET_HOURS", f"{start:%H:%M}-{end:%H:%M}")
    for name in ("ann", "bob"):
        cid = person(engine, name, tz="UTC")
        queue_message(engine, cid, "holiday", key=f"m-{name}", kind="marketing", not_before=now)
    assert dispatch(engine, now).deferred == 2
    with engine.connect() as conn:
        return [r.id for r in conn.execute(select(outbox.c.id).order_by(outbox.c.id))]


def test_a_marketer_releases_a_held_message_and_retries_a_failed_one(client, team, engine, smtp, monkeypatch):
    ann, bob = held_messages(engine, monkeypatch)
    token = sign_in(client, "mark")
    page = client.get("/outbox?state=held")
    assert page.status_code == 200 and f'data-id="{ann}"' in page.text
    assert "客户所在时区的免打扰时段" in page.text or "Quiet hours" in page.text
    done = client.post("/outbox/release", data={"csrf_token": token, "id": [str(ann)], "state": "held"})
    assert done.status_code == 200 and 'id="done"' in done.text
    dispatch(engine, datetime.now(UTC) + timedelta(seconds=1))
    assert [m["To"] for m in smtp.messages] == ["ann@example.com"]
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id == bob).values(status="failed", reason="gave up"))
    failed = client.get("/outbox?state=failed")
    assert 'formaction="/outbox/retry"' in failed.text
    client.post("/outbox/retry", data={"csrf_token": token, "id": str(bob)})
    with engine.connect() as conn:
        assert conn.execute(select(outbox.c.status).where(outbox.c.id == bob)).scalar_one() == "queued"


def test_a_viewer_sees_the_outbox_but_cannot_release_cancel_or_retry(client, team, engine, monkeypatch):
    ann, bob = held_messages(engine, monkeypatch)
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id == bob).values(status="failed", reason="gave up"))
    token = sign_in(client, "vic")
    page = client.get("/outbox?state=held")
    assert page.status_code == 200 and f'data-id="{ann}"' in page.text and 'id="release"' not in page.text
    assert 'formaction="/outbox/retry"' not in client.get("/outbox?state=failed").text
    for path, message in (("/outbox/release", ann), ("/outbox/cancel", ann), ("/outbox/retry", bob)):
        assert client.post(path, data={"csrf_token": token, "id": str(message)}).status_code == 403
    with engine.connect() as conn:
        assert [r.status for r in conn.execute(select(outbox.c.status).order_by(outbox.c.id))] == [
            "queued",
            "failed",
        ]


def test_the_campaign_page_and_its_csv_show_the_apis_numbers(client, team, engine, personas, promo):
    sign_in(client, "ana")
    api = {
        r["campaign"]: r for r in client.get("/api/v1/campaigns/roi", headers=personas.headers("ana")).json()
    }
    listed = client.get("/campaigns")
    assert listed.status_code == 200 and 'data-campaign="promo"' in listed.text
    rows = list(csv.DictReader(io.StringIO(client.get("/campaigns.csv").text.lstrip("\ufeff"))))
    assert {r["campaign"]: float(r["attributed_revenue"]) for r in rows} == {"promo": api["promo"]["revenue"]}
    assert float(rows[0]["incremental_roi"]) == api["promo"]["incremental_roi"]
    page = client.get("/campaigns/promo")
    assert page.status_code == 200 and "campaign-chart" in page.text and 'id="attribution-rule"' in page.text
    summary = dict(
        csv.reader(io.StringIO(client.get("/campaigns/promo/export.csv?table=summary").text.lstrip("\ufeff")))
    )
    assert float(summary["attributed_revenue"]) == api["promo"]["revenue"] == 200.0
    assert float(summary["roi"]) == api["promo"]["roi"]
    assert (summary["sent"], summary["entered"], summary["converted"]) == ("4", "6", "3")
    inc = list(
        csv.reader(
            io.StringIO(client.get("/campaigns/promo/export.csv?table=incremental").text.lstrip("\ufeff"))
        )
    )
    by_name = {r[0]: r for r in inc}
    assert float(by_name["incremental_revenue"][4]) == api["promo"]["incremental_revenue"] == 120.0
    experiments = client.get("/campaigns/promo/export.csv?table=experiments").text
    exp = client.get("/api/v1/experiments/promo-test", headers=personas.headers("ana")).json()
    arms = {r["arm"]: r for r in csv.DictReader(io.StringIO(experiments.lstrip("\ufeff")))}
    assert {a["name"]: int(arms[a["name"]]["customers"]) for a in exp["arms"]} == {"mail": 4, "holdout": 2}
    c = exp["comparisons"][0]
    assert float(arms["mail"]["p_value"]) == c["p_value"]
    days = client.get("/campaigns/promo/export.csv?table=days").text
    assert days.lstrip("\ufeff").startswith("day,entered,sent,opened,clicked,converted")
    assert client.get("/campaigns/nope").status_code == 404
    assert client.get("/campaigns/promo/export.csv?table=nope").status_code == 404
