"""Journeys do not go live unchecked: a journey naming a template, segment, survey or stage that
does not exist is refused when saved or enabled, with every missing name (API: 422 JSON; CLI: a
message and a non-zero exit), and enabling first says how many customers it enrols now, counted
by the same selection the worker's enrolment inserts, then asks (--yes skips; no terminal and no
--yes: refused)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from clm.cli import main
from clm.core.errors import InvalidInput
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.feedback.service import install_builtin_surveys
from clm.feedback.tables import surveys
from clm.journeys.checks import MissingReferences
from clm.journeys.service import enable_preview, get_journey, list_journeys, save_definition, set_status, tick
from clm.segments.service import create_segment, delete_segment
from tests.journeys.test_cart_journey import event

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
BROKEN = {
    "name": "broken",
    "trigger": {"segment_entered": "vipp"},
    "steps": [
        {"branch": {"if": 'in_segment("ghost") or orders >= 1', "then": "mail", "else": "sms"}},
        {"id": "mail", "send": {"template": "cart-remindr", "survey": "nope"}, "next": "end"},
        {"id": "sms", "send": {"channel": "sms", "template": "welcome"}},
        {"id": "end", "exit": {}},
    ],
}  # fmt: skip


def people(engine, n: int, country: str, prefix: str = "") -> list[int]:
    ids = []
    for i in range(n):
        who = f"{prefix or country}{i}"
        profile = CustomerIn(external_id=who, email=f"{who}@example.com", country=country)
        ids.append(upsert_customer(engine, profile, actor="t")[0].id)
    return ids


def by_condition(name: str = "cn-welcome", **extra) -> dict:
    return {
        "name": name,
        "trigger": {"condition": 'country = "CN"', "every_days": 1},
        "steps": [{"send": {"channel": "email", "template": "welcome"}}],
        **extra,
    }


def test_a_journey_naming_what_does_not_exist_is_refused_with_every_name(engine):
    with pytest.raises(MissingReferences) as refused:
        save_definition(engine, BROKEN)
    found = {(m.kind, m.name, m.where) for m in refused.value.missing}
    assert found == {
        ("segment", "vipp", "trigger.segment_entered"),
        ("segment", "ghost", "step 'step-1'.branch.if"),
        ("template", "cart-remindr", "step 'mail'.send.template"),
        ("survey", "nope", "step 'mail'.send.survey"),
        ("template", "welcome", "step 'sms'.send.template"),  # an email template on the SMS channel
    }
    problems = {m.name: m.problem for m in refused.value.missing}
    assert problems["welcome"] == "template 'welcome' is for email, the step sends sms"
    assert problems["cart-remindr"] == "no template named 'cart-remindr'"
    assert list_journeys(engine) == []  # nothing saved
    with pytest.raises(MissingReferences, match="no stage 'nowhere' in the stage model"):
        save_definition(engine, {**by_condition(), "trigger": {"stage_changed": "nowhere"}})
    with pytest.raises(InvalidInput, match=r"trigger\.tier_changed: up or down"):
        save_definition(engine, {**by_condition(), "trigger": {"tier_changed": "gold"}})


def test_what_exists_is_accepted_and_a_closed_survey_or_deleted_segment_stops_going_live(engine):
    install_builtin_surveys(engine)
    create_segment(engine, "vipp", where="orders >= 5")
    journey = {
        "name": "fine",
        "trigger": {"broadcast": {"segment": "vipp", "at": "2026-11-01T00:00:00+00:00"}},
        "steps": [{"send": {"template": "post-purchase-survey", "survey": "nps"}}],
    }
    assert save_definition(engine, journey) == ("fine", 1)
    delete_segment(engine, "vipp")
    with engine.begin() as conn:  # closed (there is no command for it yet)
        conn.execute(update(surveys).where(surveys.c.name == "nps").values(active=False))
    with pytest.raises(MissingReferences) as refused:
        set_status(engine, "fine", "live")
    assert [m.problem for m in refused.value.missing] == [
        "no segment named 'vipp'",
        "survey 'nps' is closed",
    ]
    assert get_journey(engine, "fine")[0].status == "draft"


def test_the_estimate_is_what_enrolment_then_does(engine):
    people(engine, 5, "CN")
    people(engine, 3, "GB")
    save_definition(engine, by_condition())
    preview = enable_preview(engine, "cn-welcome", T0)
    assert (preview.entering, preview.runs_at, preview.missing) == (5, T0, [])
    assert get_journey(engine, "cn-welcome")[0].status == "draft"  # the preview changed nothing
    set_status(engine, "cn-welcome", "live")
    assert tick(engine, T0, send=False).enrolled == {"cn-welcome": 5}
    # paused; two more Chinese customers; the five who entered may not enter again (once)
    set_status(engine, "cn-welcome", "paused")
    people(engine, 2, "CN", prefix="new")
    people(engine, 1, "GB", prefix="uk")
    later = T0 + timedelta(hours=2)
    preview = enable_preview(engine, "cn-welcome", later)
    # the trigger ran at T0 and runs daily: its next run is at T0 + 1 day and would enrol 2
    assert (preview.entering, preview.runs_at) == (2, T0 + timedelta(days=1))
    set_status(engine, "cn-welcome", "live")
    assert tick(engine, later, send=False).enrolled == {}
    assert tick(engine, T0 + timedelta(days=1), send=False).enrolled == {"cn-welcome": 2}


def test_a_past_broadcast_enrols_its_whole_audience_at_once_and_the_estimate_says_so(engine):
    people(engine, 4, "CN")
    save_definition(
        engine,
        {
            "name": "blast",
            "trigger": {"broadcast": {"condition": 'country = "CN"', "at": "2026-10-01T00:00:00+00:00"}},
            "steps": [{"send": {"template": "holiday"}}],
        },
    )
    assert enable_preview(engine, "blast", T0).entering == 4
    future = T0 - timedelta(days=40)  # before its time: nobody now, four at 2026-10-01
    preview = enable_preview(engine, "blast", future)
    assert (preview.entering, preview.runs_at) == (4, datetime(2026, 10, 1, tzinfo=UTC))
    set_status(engine, "blast", "live")
    assert tick(engine, T0, send=False).enrolled == {"blast": 4}
    assert enable_preview(engine, "blast", T0 + timedelta(minutes=1)).runs_at is None  # done


def test_an_event_trigger_enrols_from_new_events_and_the_estimate_reads_the_last_week(engine):
    people(engine, 3, "CN")
    save_definition(engine, {**by_condition("carts"), "trigger": {"event": "add_to_cart"}})
    event(engine, "CN0", "add_to_cart", T0 - timedelta(days=1))
    event(engine, "CN0", "add_to_cart", T0 - timedelta(days=2))  # the same customer: once
    event(engine, "CN1", "add_to_cart", T0 - timedelta(days=3))
    event(engine, "CN2", "add_to_cart", T0 - timedelta(days=9))  # before the week
    preview = enable_preview(engine, "carts", T0)
    assert (preview.entering, preview.recent_days, preview.recent_entrants) == (0, 7, 2)


def test_the_api_refuses_with_422_naming_each_and_previews_without_changing(client, personas, engine):
    mark = personas.headers("mark")
    answer = client.post("/api/v1/journeys", json={"definition": BROKEN}, headers=mark)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "missing_references"
    assert {(f["kind"], f["name"]) for f in error["fields"]} == {
        ("segment", "vipp"), ("segment", "ghost"), ("template", "cart-remindr"), ("survey", "nope"),
        ("template", "welcome"),
    }  # fmt: skip
    assert "no template named 'cart-remindr'" in error["message"]
    assert client.get("/api/v1/journeys", headers=mark).json() == []

    people(engine, 2, "CN")
    create_segment(engine, "cn", where='country = "CN"')
    journey = {**by_condition("cn-seg"), "trigger": {"condition": 'in_segment("cn")'}}
    assert client.post("/api/v1/journeys", json={"definition": journey}, headers=mark).status_code == 201
    vic = personas.headers("vic")
    preview = client.get("/api/v1/journeys/cn-seg/enable-preview", headers=vic)
    assert preview.status_code == 200
    body = preview.json()
    assert (body["entering"], body["missing"], body["status"]) == (2, [], "draft")
    delete_segment(engine, "cn")
    body = client.get("/api/v1/journeys/cn-seg/enable-preview", headers=vic).json()
    assert body["missing"] == [
        {"kind": "segment", "name": "cn", "where": "trigger", "problem": "no segment named 'cn'"}
    ]
    live = client.put("/api/v1/journeys/cn-seg/status", json={"status": "live"}, headers=mark)
    assert live.status_code == 422 and live.json()["error"]["fields"][0]["name"] == "cn"
    assert client.get("/api/v1/journeys/cn-seg", headers=vic).json()["journey"]["status"] == "draft"
    assert client.get("/api/v1/journeys/nobody/enable-preview", headers=vic).status_code == 404


def _file(tmp_path: Path, journey: dict) -> str:
    path = tmp_path / f"{journey['name']}.json"
    path.write_text(json.dumps(journey), "utf-8")
    return str(path)


def test_cli_import_enable_refuses_missing_names_and_asks_before_going_live(engine, db_url, tmp_path, capsys):
    assert main(["--db", db_url, "journeys", "import", _file(tmp_path, BROKEN), "--enable", "--yes"]) == 1
    err = " ".join(capsys.readouterr().err.split())  # the terminal wraps long lines
    assert "no template named 'cart-remindr'" in err and "no segment named 'vipp'" in err
    people(engine, 3, "CN")
    source = _file(tmp_path, by_condition())
    # no terminal to ask on and no --yes: saved, not live
    assert main(["--db", db_url, "journeys", "import", source, "--enable"]) == 1
    out = capsys.readouterr()
    assert "will enrol 3 customers now" in " ".join(out.out.split())
    assert "run again with --yes" in " ".join(out.err.split())
    assert get_journey(engine, "cn-welcome")[0].status == "draft"
    assert main(["--db", db_url, "journeys", "enable", "cn-welcome", "--dry-run"]) == 0
    assert "will enrol 3 customers now" in " ".join(capsys.readouterr().out.split())
    assert main(["--db", db_url, "journeys", "enable", "cn-welcome", "--yes"]) == 0
    assert "journey 'cn-welcome' is live" in capsys.readouterr().out
    assert get_journey(engine, "cn-welcome")[0].status == "live"


@pytest.mark.parametrize(("answer", "status", "code"), [("n", "draft", 1), ("y", "live", 0)])
def test_cli_enable_asks_on_a_terminal(engine, db_url, answer, status, code):
    people(engine, 2, "CN")
    save_definition(engine, by_condition())
    leader, follower = pty.openpty()
    command = ["--db", db_url, "journeys", "enable", "cn-welcome"]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from clm.cli import run; run()", *command],
        stdin=follower, stdout=follower, stderr=follower, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    os.close(follower)
    seen = b""
    while b"live? [y/N]" not in seen:
        chunk = os.read(leader, 1024)
        assert chunk, seen
        seen += chunk
    assert b"will enrol 2 customers now" in seen
    os.write(leader, answer.encode() + b"\n")
    assert proc.wait(timeout=60) == code
    os.close(leader)
    assert get_journey(engine, "cn-welcome")[0].status == status
