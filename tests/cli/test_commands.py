"""The other CLI commands, run as a user would: init, apikey, customers, errors."""

import json

from clm.auth.service import authenticate
from clm.cli import main
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer


def test_init_is_idempotent(db_url, capsys):
    assert main(["--db", db_url, "init"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_init_warns_when_postgresql_runs_without_autovacuum(engine, db_url, capsys):
    """Stale planner statistics turn per-customer queries into full scans: said at init, on
    stderr, exactly when the server has autovacuum off (the test server's own setting decides)."""
    off = False
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            off = conn.exec_driver_sql("SHOW autovacuum").scalar() == "off"
    assert main(["--db", db_url, "init"]) == 0
    err = capsys.readouterr().err
    assert ("warning: PostgreSQL's autovacuum is off" in err) is off
    assert ("ANALYZE" in err) is off


def test_apikey_create_prints_the_key_once_and_it_works(engine, db_url, capsys):
    assert main(["--db", db_url, "apikey", "create", "--role", "viewer", "--name", "dashboard"]) == 0
    token = capsys.readouterr().out.strip()
    assert authenticate(engine, f"Bearer {token}").role == "viewer"
    assert main(["--db", db_url, "apikey", "list"]) == 0
    listing = capsys.readouterr().out
    assert "dashboard" in listing and token not in listing


def test_unknown_role_is_one_clear_line(db_url, capsys):
    assert main(["--db", db_url, "apikey", "create", "--role", "boss", "--name", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: role: unknown role 'boss'") and err.count("\n") == 1


def test_customers_show_find_merge(engine, db_url, capsys):
    a, _ = upsert_customer(engine, CustomerIn(email="a@x.com", first_name="Wei", last_name="Li"), actor="t")
    b, _ = upsert_customer(engine, CustomerIn(email="a@y.com", first_name="Wei", last_name="Li"), actor="t")
    assert main(["--db", db_url, "customers", "duplicates", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["reason"] == "same name and email user name"
    assert main(["--db", db_url, "customers", "merge", str(a.id), str(b.id)]) == 0
    capsys.readouterr()
    assert main(["--db", db_url, "customers", "show", str(b.id), "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["requested_id"] == b.id and view["profile"]["id"] == a.id
    assert main(["--db", db_url, "customers", "show", str(a.id)]) == 0
    assert "a@y.com" in capsys.readouterr().out
    assert main(["--db", db_url, "customers", "find", "--email", "A@Y.COM"]) == 0
    assert str(a.id) in capsys.readouterr().out


def test_missing_customer_and_bad_database_are_one_line_errors(db_url, tmp_path, capsys):
    assert main(["--db", db_url, "customers", "show", "424242"]) == 1
    assert capsys.readouterr().err.strip() == "error: no customer with id 424242"
    assert main(["--db", "mysql://nope/x", "init"]) == 2
    assert "unsupported database" in capsys.readouterr().err


def test_money_in_the_demo_table_is_compact_and_right():
    from clm.cli.demo import _compact

    assert [_compact(x) for x in (950.0, 9_999.0, 25_718.9, 257_189.0, 3_218_086.0, 1.35e9)] == [
        "950",
        "9,999",
        "25.7K",
        "257.2K",
        "3.2M",
        "1.4B",
    ]
