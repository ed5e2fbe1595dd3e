"""Days and months are the store's (CLM_DEFAULT_TIMEZONE): a Beijing order at 00:30 on the 1st
belongs to the 1st, the API reads a time without a zone there as files do, and a changed
setting rebuilds the order summary. Hand-computed: Asia/Shanghai is UTC+8 all year."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from clm.commerce.order_days import day_of, ensure_order_days_zone, order_days_zone_name
from clm.commerce.schemas import OrderIn
from clm.commerce.service import ingest_order_batch
from clm.commerce.tables import order_days, orders
from clm.core.timeutil import local_iso, parse_timestamp, show_time, store_midnight
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.lifecycle.service import kpis

# Shanghai wall times and their UTC moments, on each side of midnight at a month's end
OCT31_2359 = datetime(2026, 10, 31, 15, 59, tzinfo=UTC)  # 2026-10-31 23:59 Shanghai
NOV1_0030 = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)  # 2026-11-01 00:30 Shanghai
NOV1_0800 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)  # 2026-11-01 08:00 Shanghai
OCT31, NOV1 = day_of(date(2026, 10, 31)), day_of(date(2026, 11, 1))


def shop(engine):
    ingest_order_batch(
        engine,
        [
            OrderIn(order_id="late", external_id="u1", ordered_at=OCT31_2359, total=10),
            OrderIn(order_id="early", external_id="u1", ordered_at=NOV1_0030, total=20),
            OrderIn(order_id="morning", external_id="u2", ordered_at=NOV1_0800, total=40),
        ],
        actor="t",
    )


def days(engine):
    with engine.connect() as conn:
        rows = conn.execute(select(order_days.c.day, order_days.c.orders, order_days.c.revenue))
        out: dict[int, tuple[int, float]] = {}
        for d, n, r in rows:
            before = out.get(d, (0, 0.0))
            out[d] = (before[0] + n, before[1] + float(r))
        return out


def month_orders(engine, month_start, month_end):
    r = kpis(engine, month_start, month_end).overall
    return r.orders, r.revenue


def test_a_beijing_order_at_0030_on_the_1st_belongs_to_the_1st(engine):
    shop(engine)
    assert days(engine) == {OCT31: (1, 10.0), NOV1: (2, 60.0)}
    assert month_orders(engine, date(2026, 10, 1), date(2026, 10, 31)) == (1, 10.0)
    assert month_orders(engine, date(2026, 11, 1), date(2026, 11, 30)) == (2, 60.0)
    assert month_orders(engine, date(2026, 11, 1), date(2026, 11, 1)) == (2, 60.0)


def test_a_store_in_utc_cuts_its_days_at_utc_midnight(engine, monkeypatch):
    monkeypatch.setenv("CLM_DEFAULT_TIMEZONE", "UTC")
    shop(engine)
    # all three before 2026-11-01 00:00 UTC except the 08:00 one (00:00 UTC)
    assert days(engine) == {OCT31: (2, 30.0), NOV1: (1, 40.0)}
    assert month_orders(engine, date(2026, 10, 1), date(2026, 10, 31)) == (2, 30.0)
    assert month_orders(engine, date(2026, 11, 1), date(2026, 11, 30)) == (1, 40.0)


def test_a_changed_zone_rebuilds_the_summary_once(engine, monkeypatch):
    assert ensure_order_days_zone(engine) == ""  # no zone recorded (the tables were emptied)
    shop(engine)
    assert ensure_order_days_zone(engine) is None  # written in Shanghai, still Shanghai
    with engine.connect() as conn:
        assert order_days_zone_name(conn) == "Asia/Shanghai"
    monkeypatch.setenv("CLM_DEFAULT_TIMEZONE", "UTC")
    assert ensure_order_days_zone(engine) == "Asia/Shanghai"
    assert days(engine) == {OCT31: (2, 30.0), NOV1: (1, 40.0)}
    assert ensure_order_days_zone(engine) is None
    monkeypatch.setenv("CLM_DEFAULT_TIMEZONE", "Asia/Shanghai")
    assert ensure_order_days_zone(engine) == "UTC"
    assert days(engine) == {OCT31: (1, 10.0), NOV1: (2, 60.0)}


def test_cohorts_are_the_stores_months(engine, monkeypatch):
    upsert_customer(engine, CustomerIn(external_id="c1", first_seen_at=NOV1_0030), actor="t")
    upsert_customer(engine, CustomerIn(external_id="c2", first_seen_at=OCT31_2359), actor="t")
    ingest_order_batch(
        engine,
        [OrderIn(order_id=f"o{who}", external_id=who, ordered_at=NOV1_0800, total=5) for who in ("c1", "c2")],
        actor="t",
    )

    def cohorts():
        report = kpis(engine, date(2026, 11, 1), date(2026, 11, 30), group_by="cohort")
        return {g.group: g.buyers for g in report.groups}

    assert cohorts() == {"2026-10": 1, "2026-11": 1}
    monkeypatch.setenv("CLM_DEFAULT_TIMEZONE", "UTC")
    ensure_order_days_zone(engine)
    assert cohorts() == {"2026-10": 2}


def test_the_api_reads_a_time_without_a_zone_in_the_stores_zone(client, personas, engine):
    body = {"order_id": "api1", "external_id": "u9", "ordered_at": "2026-11-01T00:30:00", "total": 8}
    response = client.post("/api/v1/orders", json=body, headers=personas.headers("alice"))
    assert response.status_code == 200, response.text
    event = {"type": "page_view", "timestamp": "2026-11-01 00:30", "external_id": "u9"}
    response = client.post("/api/v1/events", json=event, headers=personas.headers("alice"))
    assert response.status_code == 200, response.text
    with engine.connect() as conn:
        assert conn.execute(select(orders.c.ordered_at)).scalar_one() == NOV1_0030
    # a zone given is kept
    assert parse_timestamp("2026-11-01T00:30:00Z") == datetime(2026, 11, 1, 0, 30, tzinfo=UTC)
    assert parse_timestamp("2026-11-01T00:30:00+08:00") == NOV1_0030
    assert parse_timestamp(date(2026, 11, 1)) == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)


def test_the_api_and_a_file_agree_in_a_utc_store(monkeypatch):
    monkeypatch.setenv("CLM_DEFAULT_TIMEZONE", "UTC")
    assert parse_timestamp("2026-11-01 00:30") == datetime(2026, 11, 1, 0, 30, tzinfo=UTC)
    assert store_midnight(date(2026, 11, 1)) == datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "shown", "iso"),
    [
        ("Asia/Shanghai", "2026-11-01 00:30 Asia/Shanghai", "2026-11-01T00:30:00+08:00"),
        ("UTC", "2026-10-31 16:30 UTC", "2026-10-31T16:30:00+00:00"),
    ],
)
def test_times_are_shown_in_the_stores_zone_with_its_name(monkeypatch, zone, shown, iso):
    monkeypatch.setenv("CLM_DEFAULT_TIMEZONE", zone)
    assert show_time(NOV1_0030) == shown
    assert local_iso(NOV1_0030) == iso


def test_a_command_after_a_zone_change_rebuilds_the_summary_and_says_so(engine, db_url, capsys, monkeypatch):
    from clm.cli import main

    ensure_order_days_zone(engine)
    shop(engine)
    assert main(["--db", db_url, "segments", "list"]) == 0
    assert "rebuilt" not in capsys.readouterr().err  # nothing changed: nothing said
    monkeypatch.setenv("CLM_DEFAULT_TIMEZONE", "UTC")
    assert main(["--db", db_url, "segments", "list"]) == 0
    assert "order summary rebuilt in the time zone UTC (was Asia/Shanghai)" in capsys.readouterr().err
    assert days(engine) == {OCT31: (2, 30.0), NOV1: (1, 40.0)}


def test_migration_0019_cuts_the_summary_in_the_stores_zone(engine):
    from alembic import command

    from clm.migrations import config, upgrade

    shop(engine)
    try:
        command.downgrade(config(engine), "0018")  # 0019's downgrade: UTC days again
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT day, sum(orders) FROM order_days GROUP BY day").all()
        assert dict(rows) == {OCT31: 2, NOV1: 1}  # 23:59 and 00:30 Beijing are both 31 October in UTC
    finally:
        upgrade(engine)
    assert days(engine) == {OCT31: (1, 10.0), NOV1: (2, 60.0)}
    with engine.connect() as conn:
        assert order_days_zone_name(conn) == "Asia/Shanghai"
