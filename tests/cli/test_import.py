"""`clm import`: good rows kept, each bad row named, exit codes 0 / 1 / 2, idempotent re-runs."""

import csv
import json
import uuid

import pytest
from sqlalchemy import func, select

from clm.cli import imports, main
from clm.commerce.service import get_order, get_product
from clm.customers.service import find_customers
from clm.events.tables import events

EVENTS_CSV = """event_id,type,timestamp,email,channel,sku
e1,page_view,2025-01-01T10:00:00Z,ann@example.com,web,
e2,product_view,2025-01-01T10:01:00Z,ann@example.com,web,PH-100
e3,purchase,not-a-date,ann@example.com,web,
e4,signup,2025-01-02T08:00:00Z,,web,
e5,add_to_cart,2025-01-01T10:02:00Z,not-an-email,web,
e2,product_view,2025-01-01T10:01:00Z,ann@example.com,web,PH-100
e6,signup,2025-01-03T08:00:00Z,bob@example.com,app,
"""


def stored_events(engine):
    """Events from the file (not the stage_changed events the import's stage refresh adds)."""
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(events).where(events.c.channel != "system")
        ).scalar_one()


def test_good_rows_are_kept_and_each_bad_row_is_named(engine, db_url, write_file, tmp_path, capsys):
    path = write_file("events.csv", EVENTS_CSV)
    rejections = tmp_path / "bad.csv"
    code = main(["--db", db_url, "import", "events", str(path), "--rejections", str(rejections), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert (report["rows"], report["accepted"], report["duplicates"], report["rejected"]) == (
        7,
        3,
        1,
        3,
    )
    assert [(r["line"], r["reason"].split(":")[0]) for r in report["rejections"]] == [
        (4, "timestamp"),
        (5, "identity"),
        (6, "email"),
    ]
    with open(rejections, newline="", encoding="utf-8-sig") as f:
        listed = list(csv.DictReader(f))
    # each rejected row as the file has it, after its line and reason: fix it, import it again
    assert [(r["rejected_line"], r["event_id"], r["timestamp"], r["email"]) for r in listed] == [
        ("4", "e3", "not-a-date", "ann@example.com"),
        ("5", "e4", "2025-01-02T08:00:00Z", ""),
        ("6", "e5", "2025-01-01T10:02:00Z", "not-an-email"),
    ]
    assert listed[0]["rejection_reason"].startswith("timestamp:")
    assert stored_events(engine) == 3
    assert report["customers_created"] == 2

    # Importing the same file again stores nothing new.
    code = main(["--db", db_url, "import", "events", str(path), "--rejections", str(rejections), "--json"])
    again = json.loads(capsys.readouterr().out)
    assert code == 1 and again["accepted"] == 0 and again["duplicates"] == 4
    assert stored_events(engine) == 3


def test_all_good_exits_zero_and_mapping_renames_columns(engine, db_url, write_file, capsys):
    path = write_file(
        "ev.jsonl",
        '{"uid": "u1", "kind": "signup", "at": "2025-01-01"}\n'
        '{"uid": "u2", "kind": "signup", "at": 1735689600}\n',
    )
    code = main(
        [
            "--db",
            db_url,
            "import",
            "events",
            str(path),
            "--map",
            "uid=external_id",
            "--map",
            "kind=type",
            "--map",
            "at=timestamp",
        ]
    )
    assert code == 0
    assert "accepted" in capsys.readouterr().out
    assert stored_events(engine) == 2


def test_unusable_input_exits_two_with_one_line(db_url, tmp_path, write_file, capsys):
    assert main(["--db", db_url, "import", "events", str(tmp_path / "missing.csv")]) == 2
    assert capsys.readouterr().err.strip().startswith("error: file not found")
    assert main(["--db", db_url, "import", "events", str(write_file("x.xml", "<a/>"))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot tell the format") and "Traceback" not in err


def test_customers_import_with_consent_and_attributes(engine, db_url, write_file, capsys):
    path = write_file(
        "c.csv",
        "external_id,email,phone,first_name,consent_email,consent_sms,loyalty_card,birthday\n"
        "C1,ann@x.com,13812345678,Ann,yes,no,G-1,1990-02-03\n"
        "C2,bob@x.com,,Bob,maybe,,,\n"
        ",,,Nobody,,,,\n"
        "C3,cat@x.com,,Cat,,,,31/12/1990\n",
    )
    code = main(
        [
            "--db",
            db_url,
            "import",
            "customers",
            str(path),
            "--json",
            "--rejections",
            str(path) + ".rej",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    # a row naming nobody is rejected; a bad consent or birthday is left out, the row kept
    assert code == 1 and report["accepted"] == 3 and report["rejected"] == 1 and report["warned"] == 2
    assert [r["line"] for r in report["rejections"]] == [4]
    assert [(w["line"], w["reason"].split(":")[0]) for w in report["warnings"]] == [
        (3, "consent_email"),
        (5, "birthday"),
    ]
    [ann] = find_customers(engine, {"external_id": "C1"})
    assert ann.phone == "+8613812345678" and ann.attributes == {"loyalty_card": "G-1"}
    assert {c.channel: c.granted for c in ann.consents} == {"email": True, "sms": False}
    [bob] = find_customers(engine, {"external_id": "C2"})
    [cat] = find_customers(engine, {"external_id": "C3"})
    assert bob.consents == [] and cat.birthday is None and cat.first_name == "Cat"


def test_orders_csv_one_row_per_item_and_products(engine, db_url, write_file, capsys):
    products = write_file(
        "p.csv",
        "sku,name,category,price,cost\nA,Phone,phones,100,70\nB,Case,acc,10,2\nC,Bad,acc,-1,\n",
    )
    assert (
        main(
            [
                "--db",
                db_url,
                "import",
                "products",
                str(products),
                "--rejections",
                str(products) + ".rej",
            ]
        )
        == 1
    )
    assert get_product(engine, "B").price == 10.0
    capsys.readouterr()
    orders = write_file(
        "o.csv",
        "order_id,external_id,ordered_at,status,sku,quantity,unit_price\n"
        "o1,u1,2025-01-01T10:00:00Z,completed,A,1,100\n"
        "o1,u1,2025-01-01T10:00:00Z,completed,B,2,10\n"
        "o2,u2,2025-01-02T10:00:00Z,shipped,A,1,100\n",
    )
    code = main(
        [
            "--db",
            db_url,
            "import",
            "orders",
            str(orders),
            "--json",
            "--rejections",
            str(orders) + ".rej",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert (
        code == 1 and report["rejections"][0]["line"] == 4 and "status" in report["rejections"][0]["reason"]
    )
    o1 = get_order(engine, "o1")
    assert o1.total == 120.0 and len(o1.items) == 2


def test_spend_import(engine, db_url, write_file, capsys):
    path = write_file(
        "s.csv",
        "channel,campaign,period_start,period_end,amount\nads,spring,2025-03-01,2025-03-31,5000\n",
    )
    assert main(["--db", db_url, "import", "spend", str(path)]) == 0


def test_long_custom_channel_and_type_names_fit(engine, db_url, write_file, capsys):
    name = "c" * 64
    path = write_file("e.csv", f"type,timestamp,external_id,channel\n{name},2025-01-01,u1,{name}\n")
    assert main(["--db", db_url, "import", "events", str(path)]) == 0


def test_init_builds_indexes_a_killed_bulk_load_left_out(engine, db_url, capsys):
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_events_customer_time")
        if postgres:  # a bulk load there sets the events' foreign key aside too
            conn.exec_driver_sql("ALTER TABLE events DROP CONSTRAINT fk_events_customer_id_customers")
    assert main(["--db", db_url, "init"]) == 0
    expected = "ix_events_customer_time" + (", fk_events_customer_id_customers" if postgres else "")
    assert f"built missing indexes and keys: {expected}" in capsys.readouterr().out
    assert main(["--db", db_url, "init"]) == 0
    assert "built missing" not in capsys.readouterr().out


def test_the_json_report_says_how_long_import_and_follow_up_took(db_url, write_file, capsys):
    path = write_file("events.csv", EVENTS_CSV)
    main(["--db", db_url, "import", "events", str(path), "--json"])
    seconds = json.loads(capsys.readouterr().out)["seconds"]
    assert set(seconds) == {"import", "refresh"} and all(v >= 0 for v in seconds.values())


def test_a_big_import_leaves_planner_statistics_of_what_it_stored(
    engine, db_url, write_file, monkeypatch, capsys
):
    """On PostgreSQL the tables a big import filled are analysed before the refresh reads them
    (what autovacuum would do a minute or more later); a small import leaves that to autovacuum."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite plans without statistics; nothing is gathered there")
    probe = f"probe_{uuid.uuid4().hex[:12]}"  # a type no earlier run can have left in the statistics

    def probe_file(name: str) -> str:
        rows = [f"{name}{i},{probe},2025-01-0{i}T10:00:00Z,{name}{i}@example.com,web\n" for i in range(1, 5)]
        return str(write_file(f"{name}.csv", "event_id,type,timestamp,email,channel\n" + "".join(rows)))

    def common_types() -> str | None:
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT most_common_vals::text FROM pg_stats WHERE schemaname = current_schema()"
                " AND tablename = 'events' AND attname = 'type'"
            ).scalar()

    analysed: list[list[str]] = []
    gather = imports.refresh_statistics
    monkeypatch.setattr(
        imports,
        "refresh_statistics",
        lambda eng, tables: (analysed.append([t.name for t in tables]), gather(eng, tables)),
    )
    monkeypatch.setattr(imports, "STATISTICS_AFTER", 5)  # four rows are not a big import
    assert main(["--db", db_url, "import", "events", probe_file("small"), "--json"]) == 0
    assert analysed == [] and probe not in (common_types() or "")

    monkeypatch.setattr(imports, "STATISTICS_AFTER", 4)
    assert main(["--db", db_url, "import", "events", probe_file("big"), "--json"]) == 0
    capsys.readouterr()
    assert sorted(analysed[0]) == ["customer_identities", "customers", "events", "survey_answers"]
    assert probe in (common_types() or "")  # the eight stored events, beside the stage changes
