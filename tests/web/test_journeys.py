"""The journeys pages over HTTP: the list's and canvas's figures are the service's, YAML saved as a
new version (and refused with the reason, nothing saved), going live needs the confirmation and
every reference, the audience per day, a test send reaching a real SMTP server, pausing, and a
viewer who sees everything and changes nothing."""

from __future__ import annotations

import re
from datetime import timedelta

from clm.core.timeutil import utcnow
from clm.journeys.canvas import canvas_numbers
from clm.journeys.service import get_journey, save_definition, set_status
from tests.journeys.conftest import smtp  # noqa: F401  (the SMTP server fixture)
from tests.journeys.test_cart_journey import event, shopper
from tests.web.conftest import sign_in

CART = {
    "name": "cart-web",
    "title": "Cart reminder",
    "trigger": {"event": "add_to_cart"},
    "reentry": {"every_days": 7},
    "exit_when": {"event": "purchase"},
    "goal": {"event": "purchase", "within_days": 7},
    "steps": [
        {"id": "wait", "wait": {"hours": 4}},
        {"id": "remind", "send": {"channel": "email", "template": "cart-reminder"}},
    ],
}
YAML = """name: cart-web
title: Cart reminder
trigger: {event: add_to_cart}
goal: {event: purchase, within_days: 7}
steps:
  - {id: wait, wait: {hours: 2}}
  - {id: remind, send: {channel: email, template: cart-reminder}}
"""


def test_the_list_and_the_canvas_show_the_services_figures(client, team, engine):
    save_definition(engine, CART)
    set_status(engine, "cart-web", "live")
    now = utcnow()
    for who in ("ann", "bob"):
        shopper(engine, who)
        event(engine, who, "add_to_cart", now - timedelta(hours=1))
    from clm.journeys.service import tick

    tick(engine, now)
    sign_in(client, "vic")  # a viewer sees it all
    page = client.get("/journeys?days=7")
    assert page.status_code == 200
    row = re.search(r'<tr data-journey="cart-web">(.*?)</tr>', page.text, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num[^"]*">([^<]*)', row.group(1))
    assert cells[:3] == ["v1", "2", "2"]  # version, in it now, entered
    assert "/journeys/new" not in page.text  # no "New journey" for a viewer

    canvas = client.get("/journeys/cart-web?days=7")
    assert canvas.status_code == 200
    numbers = canvas_numbers(engine, "cart-web", now - timedelta(days=7), utcnow(), utcnow())
    assert numbers.nodes["wait"].here_now == 2
    assert 'data-edge-count="__trigger__:"' in canvas.text
    here = re.search(r'data-step="wait".*?data-n="here">(\d+)<', canvas.text, re.S)
    assert here is not None and here.group(1) == "2"
    assert "<textarea" not in canvas.text and '<pre class="yaml"' in canvas.text  # read-only YAML
    assert 'action="/journeys/cart-web/status"' not in canvas.text


def test_a_viewer_cannot_change_a_journey(client, team, engine):
    save_definition(engine, CART)
    token = sign_in(client, "vic")
    for path, data in (
        ("/journeys/cart-web/status", {"status": "live", "confirm": "yes"}),
        ("/journeys/cart-web/definition", {"definition": YAML}),
        ("/journeys/cart-web/test-send", {"step": "remind", "address": "me@example.com"}),
        ("/journeys/new", {"definition": YAML.replace("cart-web", "other")}),
    ):
        response = client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403, path
    journey, _ = get_journey(engine, "cart-web")
    assert (journey.status, journey.version) == ("draft", 1)


def test_yaml_saved_as_a_new_version_and_refused_with_the_reason(client, team, engine):
    save_definition(engine, CART)
    token = sign_in(client, "mark")
    saved = client.post(
        "/journeys/cart-web/definition",
        data={"definition": YAML, "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/journeys/cart-web?saved=2"
    journey, d = get_journey(engine, "cart-web")
    assert journey.version == 2 and d.step("wait").args["days"] == 2 / 24

    broken = client.post(
        "/journeys/cart-web/definition", data={"definition": YAML + "  - {id: x\n", "csrf_token": token}
    )
    assert broken.status_code == 422 and "line " in broken.text
    missing = client.post(
        "/journeys/cart-web/definition",
        data={"definition": YAML.replace("cart-reminder", "cart-remindr"), "csrf_token": token},
    )
    assert missing.status_code == 422 and "no template named &#39;cart-remindr&#39;" in missing.text
    renamed = client.post(
        "/journeys/cart-web/definition",
        data={"definition": YAML.replace("cart-web", "x"), "csrf_token": token},
    )
    assert renamed.status_code == 422
    assert get_journey(engine, "cart-web")[0].version == 2  # nothing more was saved

    created = client.post(
        "/journeys/new",
        data={"definition": YAML.replace("cart-web", "cart-two"), "csrf_token": token},
        follow_redirects=False,
    )
    assert created.status_code == 303 and get_journey(engine, "cart-two")[0].status == "draft"
    again = client.post("/journeys/new", data={"definition": YAML, "csrf_token": token})
    assert again.status_code == 422 and "exists already" in again.text


def test_going_live_shows_the_audience_and_needs_the_confirmation(client, team, engine, smtp):  # noqa: F811
    save_definition(engine, CART)
    now = utcnow()
    for i in range(7):  # 7 customers with a cart in the last 7 days, one with two: 7 would enter
        shopper(engine, f"c{i}")
        event(engine, f"c{i}", "add_to_cart", now - timedelta(days=i, hours=2))
    event(engine, "c0", "add_to_cart", now - timedelta(hours=1))
    token = sign_in(client, "mark")
    page = client.get("/journeys/cart-web/go-live")
    assert page.status_code == 200
    assert 'data-audience-day="1.0"' in page.text  # 7 customers in 7 days
    assert "CLM_QUIET_HOURS" in page.text and "CLM_FREQUENCY_CAP" in page.text

    unconfirmed = client.post("/journeys/cart-web/status", data={"status": "live", "csrf_token": token})
    assert unconfirmed.status_code == 422 and 'id="status-error"' in unconfirmed.text
    assert get_journey(engine, "cart-web")[0].status == "draft"

    sent = client.post(
        "/journeys/cart-web/test-send",
        data={"step": "remind", "address": "me@example.com", "csrf_token": token},
    )
    assert sent.status_code == 200 and 'id="test-result"' in sent.text
    [mail] = smtp.to("me@example.com")
    assert mail["Subject"].startswith("[TEST] ")
    bad = client.post(
        "/journeys/cart-web/test-send",
        data={"step": "remind", "address": "not-an-address", "csrf_token": token},
    )
    assert bad.status_code == 422 and len(smtp.messages) == 1

    live = client.post(
        "/journeys/cart-web/status",
        data={"status": "live", "confirm": "yes", "csrf_token": token},
        follow_redirects=False,
    )
    assert live.status_code == 303 and get_journey(engine, "cart-web")[0].status == "live"
    paused = client.post(
        "/journeys/cart-web/status", data={"status": "paused", "csrf_token": token}, follow_redirects=False
    )
    assert paused.status_code == 303 and get_journey(engine, "cart-web")[0].status == "paused"


def test_a_missing_reference_blocks_going_live(client, team, engine):
    save_definition(engine, CART)
    with engine.begin() as conn:  # the template the journey names is gone since it was saved
        from clm.journeys.tables import journey_versions

        raw = {**CART, "steps": [CART["steps"][0], {"id": "remind", "send": {"template": "gone"}}]}
        conn.execute(journey_versions.update().values(definition=raw))
    token = sign_in(client, "alice")
    page = client.get("/journeys/cart-web/go-live")
    assert "no template named &#39;gone&#39;" in page.text and 'id="enable"' not in page.text
    refused = client.post(
        "/journeys/cart-web/status", data={"status": "live", "confirm": "yes", "csrf_token": token}
    )
    assert refused.status_code == 422 and get_journey(engine, "cart-web")[0].status == "draft"


def test_the_editor_checks_a_draft_without_saving_it(client, team, engine):
    save_definition(engine, CART)
    token = sign_in(client, "mark")
    headers = {"X-CSRF-Token": token}
    draft = {**CART, "steps": [*CART["steps"], {"id": "bye", "exit": {"reason": "done"}}]}
    good = client.post("/journeys/cart-web/draft", json={"definition": draft}, headers=headers)
    assert good.status_code == 200 and good.json()["ok"] is True
    assert 'data-step="bye"' in good.json()["svg"] and "id: bye" in good.json()["yaml"]
    typo = {**CART, "steps": [{"id": "wait", "wait": {"hourz": 4}}]}
    bad = client.post("/journeys/cart-web/draft", json={"definition": typo}, headers=headers).json()
    assert bad["ok"] is False and bad["errors"] == ["step 'wait'.wait.hourz: unknown key; a wait step takes "
                                                    "days, hours, minutes, until_local, event, timeout_days, "
                                                    "then, timeout"]  # fmt: skip
    from_yaml = client.post("/journeys/cart-web/draft", json={"yaml": YAML}, headers=headers).json()
    assert from_yaml["ok"] is True and from_yaml["definition"]["steps"][0]["wait"] == {"hours": 2}
    missing = client.post(
        "/journeys/cart-web/draft", json={"yaml": YAML.replace("cart-reminder", "nope")}, headers=headers
    ).json()
    assert missing["ok"] is False and "no template named 'nope'" in missing["errors"][0]
    assert get_journey(engine, "cart-web")[0].version == 1  # nothing saved
    client.cookies.clear()
    token = sign_in(client, "vic")
    refused = client.post("/journeys/cart-web/draft", json={"yaml": YAML}, headers={"X-CSRF-Token": token})
    assert refused.status_code == 403
