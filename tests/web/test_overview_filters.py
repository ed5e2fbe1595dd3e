"""The overview filtered to an acquisition channel and a segment: every card and chart counts
only those customers, the CSVs and the shared address carry the filter, and the API answers the
same numbers with the same filter (hand-computed on a tiny shop with two channels)."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from clm.commerce.schemas import OrderIn, SpendIn
from clm.commerce.service import ingest_order_batch, record_spend
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.lifecycle.service import assign_stages
from clm.segments.service import create_segment
from clm.web import overview
from clm.web.overview import CARDS
from tests.web.conftest import sign_in
from tests.web.test_overview import page_data


@pytest.fixture(autouse=True)
def live_figures(monkeypatch):  # type: ignore[no-untyped-def]
    """Never keep figures, however slow the machine: these tests change data between views."""
    monkeypatch.setattr(overview, "FIGURES", {"slow_seconds": 1e9, "fresh_seconds": 0.0})


def _orders(engine, ext: str, placed: list[tuple[int, float]], tag: str = "") -> None:  # type: ignore[no-untyped-def]
    today = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0)
    ingest_order_batch(
        engine,
        [
            OrderIn(
                order_id=f"{ext}{tag}{n}",
                external_id=ext,
                ordered_at=today - timedelta(days=ago),
                status="completed",
                total=total,
                items=[{"sku": "A", "unit_price": total}],
            )
            for n, (ago, total) in enumerate(placed)
        ],
        actor="test",
    )


@pytest.fixture
def two_channels(engine, tiny_shop):  # type: ignore[no-untyped-def]
    """The tiny shop (a, b, c from `web`) and d from `shop`: orders 15 and 2 days ago (300 + 100);
    the static list `vip` holds a and d."""
    d, _ = upsert_customer(engine, CustomerIn(external_id="d", acquisition_channel="shop"), actor="test")
    _orders(engine, "d", [(15, 300.0), (2, 100.0)])
    assign_stages(engine)
    a = next(c for c in _customers(engine) if c[1] == "a")[0]
    create_segment(engine, "vip", static=True, customer_ids=[a, d.id])
    return {"a": a, "d": d.id}


def _customers(engine):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from clm.customers.tables import customers

    with engine.connect() as conn:
        return conn.execute(select(customers.c.id, customers.c.external_id)).all()


def _spend(engine, channel: str, start: str, end: str, amount: float) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        record_spend(
            conn,
            [
                SpendIn(
                    channel=channel,
                    period_start=date.fromisoformat(start),
                    period_end=date.fromisoformat(end),
                    amount=amount,
                )
            ],
        )


def test_a_channel_filter_counts_only_its_customers(client, team, engine, two_channels):
    sign_in(client, "ana")
    everyone = page_data(client.get("/", params={"period": 30}).text)
    period = everyone["period"]
    _spend(engine, "shop", period["from"], period["to"], 300.0)
    _spend(engine, "web", period["from"], period["to"], 500.0)
    html = client.get("/", params={"period": 30, "channel": "shop"}).text
    shop = page_data(html)["kpi"]
    # by hand: only d; first order 15 days ago (new), 2 orders worth 400, bought twice;
    # nobody from `shop` was active at the start; CAC = shop's 300 / its 1 new customer
    assert (shop["new_customers"], shop["customers_at_end"]) == (1, 1)
    assert shop["revenue"] == pytest.approx(400.0) and shop["aov"] == pytest.approx(200.0)
    assert shop["repurchase_rate"] == pytest.approx(1.0)
    assert shop["churn_rate"] is None and shop["retention_rate"] is None
    assert shop["cac"] == pytest.approx(300.0)
    web = page_data(client.get("/", params={"period": 30, "channel": "web"}).text)["kpi"]
    # the tiny shop's own figures, and web's 500 over its 2 new customers
    assert (web["new_customers"], web["revenue"], web["cac"]) == (
        2,
        pytest.approx(350.0),
        pytest.approx(250.0),
    )
    everyone = page_data(client.get("/", params={"period": 30}).text)["kpi"]
    assert everyone["revenue"] == pytest.approx(750.0) and everyone["cac"] == pytest.approx(800 / 3)
    # the filter shows on the page, stays in the period links, and says what is counted
    assert 'value="shop" selected' in html and "/?period=7&amp;channel=shop" in html
    assert "以下所有数字只统计：通过 shop 获取的客户" in html


def test_a_segment_filter_and_both_together(client, team, engine, two_channels):
    sign_in(client, "vic")
    vip = page_data(client.get("/", params={"period": 30, "segment": "vip"}).text)
    # by hand: a (150 in 2 orders, new) and d (400 in 2 orders, new); spend is per channel: no CAC
    assert (vip["kpi"]["new_customers"], vip["kpi"]["revenue"]) == (2, pytest.approx(550.0))
    assert vip["kpi"]["aov"] == pytest.approx(137.5) and vip["kpi"]["repurchase_rate"] == pytest.approx(1.0)
    assert vip["kpi"]["cac"] is None
    assert any("not per segment" in n for n in vip["notes"])
    assert sum(s["customers"] for s in vip["stages"]) == 2
    assert sum(f["moves"] for f in vip["flows"] if f["from"] is None) == 2
    assert sum(c["customers"] for c in vip["cohorts"]) == 2
    assert [(c["channel"], c["new_customers"]) for c in vip["channels"]] == [("shop", 1), ("web", 1)]
    both = page_data(client.get("/", params={"period": 30, "segment": "vip", "channel": "web"}).text)
    assert (both["kpi"]["new_customers"], both["kpi"]["revenue"]) == (1, pytest.approx(150.0))  # a alone
    assert sum(s["customers"] for s in both["stages"]) == 1


def test_the_api_answers_the_pages_numbers_with_the_same_filter(client, team, personas, engine, two_channels):
    sign_in(client, "ana")
    filters = {"channel": "web", "segment": "vip"}
    data = page_data(client.get("/", params={"period": 30, **filters}).text)
    key = personas.headers("vic")
    period = {"from": data["period"]["from"], "to": data["period"]["to"]}
    kpi = client.get("/api/v1/lifecycle/kpi", params={**period, **filters}, headers=key).json()["overall"]
    assert {card.key: kpi[card.key] for card in CARDS} == data["kpi"]
    assert kpi["revenue"] == pytest.approx(150.0)
    stages = client.get("/api/v1/lifecycle/stages", params=filters, headers=key).json()["stages"]
    assert [(s["stage"], s["customers"]) for s in stages] == [
        (s["stage"], s["customers"]) for s in data["stages"]
    ]
    steps = client.get("/api/v1/lifecycle/funnel", params=filters, headers=key).json()["steps"]
    assert [(s["from_stage"], s["reached"], s["converted"]) for s in steps] == [
        (s["from"], s["reached"], s["converted"]) for s in data["funnel"]["steps"]
    ]
    flows = client.get("/api/v1/lifecycle/flows", params={**period, **filters}, headers=key).json()["flows"]
    assert [(f["from_stage"], f["to_stage"], f["moves"]) for f in flows] == [
        (f["from"], f["to"], f["moves"]) for f in data["flows"]
    ]
    assert sum(f["moves"] for f in flows) >= 1
    rows = client.get("/api/v1/lifecycle/cohorts", params=filters, headers=key).json()["cohorts"]
    assert [(c["cohort"], c["customers"], c["active"]) for c in rows] == [
        (c["cohort"], c["customers"], c["active"]) for c in data["cohorts"]
    ]
    risk = client.get("/api/v1/analytics/churn/summary", params=filters, headers=key).json()
    assert risk["customers"] == data["risk"]["customers"]
    unknown = client.get("/api/v1/lifecycle/kpi", params={**period, "segment": "nope"}, headers=key)
    assert unknown.status_code == 422 and unknown.json()["error"]["fields"][0]["field"] == "segment"


def test_the_csv_carries_the_filter_and_an_unknown_segment_is_said(client, team, engine, two_channels):
    sign_in(client, "ana")
    html = client.get("/", params={"period": 30, "channel": "shop"}).text
    assert "/overview.csv?part=kpi&amp;from=" in html and "&amp;channel=shop" in html
    response = client.get("/overview.csv", params={"part": "kpi", "period": 30, "channel": "shop"})
    assert 'filename="clm-kpi-' in response.headers["content-disposition"]
    assert '-shop.csv"' in response.headers["content-disposition"]
    values = {r[0]: r[1] for r in csv.reader(io.StringIO(response.content.decode("utf-8-sig")))}
    assert float(values["revenue"]) == 400.0 and int(values["new_customers"]) == 1
    channels = client.get("/overview.csv", params={"part": "channels", "period": 30, "channel": "shop"}).text
    assert channels.lstrip("\ufeff").splitlines()[1:] == ["shop,1,400.0,0.0,"]
    page = client.get("/", params={"segment": "no-such-list"})
    assert page.status_code == 200 and "找不到名为“no-such-list”的分群" in page.text
    assert client.get("/overview.csv", params={"segment": "no-such-list"}).status_code == 422
    assert client.get("/", params={"channel": "x" * 101}).status_code == 422


def test_slow_figures_are_kept_and_say_how_old_they_are(client, team, engine, two_channels, monkeypatch):
    monkeypatch.setattr(overview, "FIGURES", {"slow_seconds": 0.0, "fresh_seconds": 0.0})
    sign_in(client, "vic")
    first = page_data(client.get("/", params={"period": 30}).text)["kpi"]["revenue"]
    cache = client.app.state.overview_figures
    [(key, kept)] = [(k, v) for k, v in cache._kept.items() if k[0] == "overview"]
    # pretend the kept figures are ten minutes old, then a new order comes in
    cache._kept[key] = type(kept)(kept.value, kept.computed_at - timedelta(minutes=10), kept.seconds, False)
    _orders(engine, "c", [(1, 1000.0)], tag="-late")
    html = client.get("/", params={"period": 30}).text
    assert page_data(html)["kpi"]["revenue"] == first  # shown at once, as they were
    assert "数据更新于" in html and "10 分钟前" in html
    for _ in range(600):  # meanwhile one background thread computes them again
        if not cache._running:
            break
        time.sleep(0.05)
    fresh = client.get("/", params={"period": 30}).text
    assert page_data(fresh)["kpi"]["revenue"] == pytest.approx(first + 1000.0)
    assert "数据更新于" not in fresh
    for _ in range(600):  # that view began one more recomputation (fresh for 0 s): let it end
        if not cache._running:
            break
        time.sleep(0.05)


def test_choosing_a_channel_in_the_browser_changes_the_cards(browser, server, team, two_channels):
    from tests.web.test_console_browser import Watch, browser_sign_in

    for locale, width in (("zh-CN", 1280), ("en-US", 390)):
        page = browser.new_page(locale=locale, viewport={"width": width, "height": 900})
        watch = Watch(page)
        browser_sign_in(page, server, "ana", "/?period=30")
        revenue = page.locator(".kpi[data-kpi=revenue] .kpi-value")
        assert revenue.inner_text().endswith("¥750.00")
        page.select_option("select[name=channel]", "shop")  # applies at once, no button needed
        page.wait_for_url(server + "/?period=30&channel=shop&segment=")
        assert revenue.inner_text().endswith("¥400.00")
        assert page.locator(".kpi[data-kpi=new_customers] .kpi-value").inner_text() == "1"
        page.wait_for_selector("#stage-chart svg")
        assert page.locator("[data-filter]").is_visible()
        page.select_option("select[name=segment]", "vip")
        page.wait_for_url(server + "/?period=30&channel=shop&segment=vip")
        assert revenue.inner_text().endswith("¥400.00")  # d is in vip
        page.click("a.chip[href='/?period=7&channel=shop&segment=vip']")
        page.wait_for_url(server + "/?period=7&channel=shop&segment=vip")
        assert revenue.inner_text().endswith("¥100.00")  # d's order two days ago
        assert watch.problems == []
        page.close()
