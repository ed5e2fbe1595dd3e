"""The overview page shows the lifecycle service's numbers, the same the API gives: KPIs for a
period and the one before, the stage distribution and the funnel (hand-computed on a tiny shop)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.lifecycle.funnel import FunnelReport, FunnelStep
from clm.lifecycle.kpi import FORMULAS
from clm.web.overview import CARDS, weak_link
from tests.web.conftest import sign_in


def page_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="overview-data">(.*?)</script>', html, re.S)
    assert found, "no overview data on the page"
    return json.loads(found.group(1))


def test_the_overview_shows_the_apis_numbers(client, team, personas, engine, tiny_shop):
    sign_in(client, "ana")
    html = client.get("/", params={"period": 30}).text
    data = page_data(html)
    kpi = data["kpi"]
    # by hand: new a and c; 4 orders worth 350 in the period; 1 of 3 buyers bought twice;
    # only b was active at the start, and all three at the end
    assert (kpi["new_customers"], kpi["customers_at_end"]) == (2, 3)
    assert kpi["revenue"] == pytest.approx(350.0) and kpi["aov"] == pytest.approx(87.5)
    assert kpi["repurchase_rate"] == pytest.approx(1 / 3)
    assert kpi["churn_rate"] == 0 and kpi["retention_rate"] == pytest.approx(1.0)
    assert data["kpi_previous"]["revenue"] == pytest.approx(200.0)
    assert data["kpi_previous"]["new_customers"] == 1

    api = client.get(
        "/api/v1/lifecycle/kpi",
        params={"from": data["period"]["from"], "to": data["period"]["to"]},
        headers=personas.headers("vic"),
    ).json()["overall"]
    assert {card.key: api[card.key] for card in CARDS} == kpi
    previous = client.get(
        "/api/v1/lifecycle/kpi",
        params={"from": data["previous"]["from"], "to": data["previous"]["to"]},
        headers=personas.headers("vic"),
    ).json()["overall"]
    assert {card.key: previous[card.key] for card in CARDS} == data["kpi_previous"]
    stages = client.get("/api/v1/lifecycle/stages", headers=personas.headers("vic")).json()
    assert [(s["stage"], s["customers"]) for s in stages["stages"]] == [
        (s["stage"], s["customers"]) for s in data["stages"]
    ]
    assert sum(s["customers"] for s in data["stages"]) == 3
    flow = client.get("/api/v1/lifecycle/funnel", headers=personas.headers("vic")).json()
    assert [(s["from_stage"], s["reached"], s["converted"]) for s in flow["steps"]] == [
        (s["from"], s["reached"], s["converted"]) for s in data["funnel"]["steps"]
    ]
    moved = client.get(
        "/api/v1/lifecycle/flows",
        params={"from": data["period"]["from"], "to": data["period"]["to"]},
        headers=personas.headers("vic"),
    ).json()["flows"]
    assert [(f["from_stage"], f["to_stage"], f["moves"], f["customers"]) for f in moved] == [
        (f["from"], f["to"], f["moves"], f["customers"]) for f in data["flows"]
    ]
    assert sum(f["moves"] for f in data["flows"] if f["from"] is None) == 3  # all three got a first stage
    channels = client.get(
        "/api/v1/lifecycle/kpi",
        params={"from": data["period"]["from"], "to": data["period"]["to"], "by": "channel"},
        headers=personas.headers("vic"),
    ).json()["groups"]
    assert [(g["group"], g["new_customers"], g["revenue"], g["cac"]) for g in channels] == [
        (c["channel"], c["new_customers"], c["revenue"], c["cac"]) for c in data["channels"]
    ]
    assert [(c["channel"], c["new_customers"], c["revenue"]) for c in data["channels"]] == [("web", 2, 350.0)]
    retention = client.get("/api/v1/lifecycle/cohorts", headers=personas.headers("vic")).json()["cohorts"]
    assert [(c["cohort"], c["customers"], c["active"], c["partial"]) for c in retention] == [
        (c["cohort"], c["customers"], c["active"], c["partial"]) for c in data["cohorts"]
    ]
    assert sum(c["customers"] for c in data["cohorts"]) == 3  # a, b and c were first seen this year
    summary = client.get("/api/v1/analytics/churn/summary", headers=personas.headers("vic")).json()
    assert {b["band"]: b["customers"] for b in data["risk"]["bands"]} == {
        band: summary["bands"][band]["customers"] for band in ("high", "medium", "low", "lost")
    }
    assert data["risk"]["customers"] == summary["customers"] == 0  # no churn model on a tiny shop
    assert "还没有流失评分" in html
    # the numbers are on the page as people read them, in Chinese
    assert "¥350.00" in html and "33.3%" in html and "客户生命周期五阶段" in html


def test_the_period_picker_and_its_comparison(client, team, engine, tiny_shop):
    sign_in(client, "vic")
    seven = page_data(client.get("/", params={"period": 7}).text)
    assert seven["period"]["days"] == 7 and seven["kpi"]["revenue"] == pytest.approx(130.0)  # a's 50, b's 80
    assert seven["kpi_previous"]["revenue"] == pytest.approx(100.0)  # a's first order, 10 days ago
    today = datetime.fromisoformat(seven["period"]["to"]).date()
    custom = page_data(
        client.get(
            "/", params={"from": (today - timedelta(days=45)).isoformat(), "to": today.isoformat()}
        ).text
    )
    assert custom["period"]["days"] == 46 and custom["kpi"]["revenue"] == pytest.approx(550.0)
    odd = page_data(client.get("/", params={"period": 12}).text)  # not offered: the default 30
    assert odd["period"]["days"] == 30


def test_an_empty_store_says_what_to_do(client, team):
    sign_in(client, "vic")
    html = client.get("/").text
    assert "还没有有订单的客户" in html and "clm import orders orders.csv" in html


def test_card_formulas_are_the_services():
    for card in CARDS:
        if card.formula:
            assert card.formula == FORMULAS[card.key], card.key


def _report(*conversions: float | None) -> FunnelReport:
    steps = [
        FunnelStep(
            from_stage=f"s{i}",
            to_stage=f"s{i + 1}",
            reached=100,
            converted=0,
            conversion=c,
            median_days_to_convert=None,
        )
        for i, c in enumerate(conversions)
    ]
    return FunnelReport(model="m", window_days=180, stages=[], steps=steps, weakest_link=None)


def test_the_weak_link_is_marked_only_when_clearly_weaker():
    assert weak_link(_report(0.72, 0.70, 0.74)) is None  # within 80% of the others' median
    marked = weak_link(_report(0.72, 0.40, 0.74))
    assert marked is not None and marked.from_stage == "s1"
    assert weak_link(_report(0.9, 0.1)) is None  # too few steps to say
    assert weak_link(_report(0.8, None, 0.3, 0.7)).from_stage == "s2"


def test_each_chart_downloads_its_numbers_as_csv_for_excel(client, team, engine, tiny_shop):
    import csv
    import io

    sign_in(client, "ana")
    data = page_data(client.get("/", params={"period": 30}).text)
    response = client.get("/overview.csv", params={"part": "kpi", "period": 30})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())  # the BOM that makes Excel read UTF-8
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["kpi", "value", "previous_value"]
    values = {r[0]: r[1] for r in rows[1:]}
    assert float(values["revenue"]) == data["kpi"]["revenue"] == 350.0
    assert int(values["new_customers"]) == 2
    stages = list(
        csv.reader(io.StringIO(client.get("/overview.csv", params={"part": "stages"}).text.lstrip("\ufeff")))
    )
    assert stages[0] == ["stage", "name", "customers"]
    assert [(r[0], int(r[2])) for r in stages[1:]] == [(s["stage"], s["customers"]) for s in data["stages"]]
    assert stages[1][1] == "获取"  # named in the reader's language
    flows = client.get("/overview.csv", params={"part": "flows", "period": 30}).text
    assert flows.lstrip("\ufeff").startswith(
        "from_stage,to_stage,moves,customers\r\n,"
    )  # first stages: no from
    cohort_rows = list(
        csv.reader(io.StringIO(client.get("/overview.csv", params={"part": "cohorts"}).text.lstrip("\ufeff")))
    )
    assert cohort_rows[0][:4] == ["cohort", "customers", "partial_month", "active_month_0"]
    assert [r[0] for r in cohort_rows[1:]] == [c["cohort"] for c in data["cohorts"]]
    assert client.get("/overview.csv", params={"part": "nope"}).status_code == 422


def test_nps_and_csat_by_month_are_the_feedback_services(client, team, engine):
    from clm.events.schemas import EventIn
    from clm.events.service import ingest

    now = datetime.now(UTC).replace(day=1, hour=6, minute=0, second=0, microsecond=0)
    upsert_customer(engine, CustomerIn(external_id="s1"), actor="test")
    answers = [("nps", 10), ("nps", 9), ("nps", 3), ("csat", 5), ("csat", 2)]  # this month
    items = [
        EventIn(
            type="survey_response",
            timestamp=now,
            channel="email",
            external_id="s1",
            properties={"survey": kind, "survey_name": f"q-{kind}", "score": score},
        )
        for kind, score in answers
    ]
    ingest(engine, [i.to_valid(datetime.now(UTC) + timedelta(days=1)) for i in items], actor="test")
    sign_in(client, "vic")
    data = page_data(client.get("/").text)
    [month] = data["satisfaction"]
    # by hand: NPS = 2/3 promoters - 1/3 detractors = 33.3; CSAT = 1 of 2 answers 4-5 = 50%
    assert month["month"] == now.strftime("%Y-%m")
    assert month["nps"] == pytest.approx(100 / 3) and month["nps_responses"] == 3
    assert month["csat"] == pytest.approx(50.0) and month["csat_responses"] == 2
    rows = client.get("/overview.csv", params={"part": "satisfaction"}).text.lstrip("\ufeff").splitlines()
    assert rows[0] == "month,nps,nps_responses,csat,csat_responses" and rows[1].endswith(",3,50.0,2")
