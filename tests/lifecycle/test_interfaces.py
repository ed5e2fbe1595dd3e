"""The lifecycle through its doors: read-only API endpoints, the CLI, charts, and imports that
re-evaluate stages. The CLI's --json prints exactly what the API returns."""

import json
from datetime import UTC, datetime, timedelta

from clm.cli import main
from clm.lifecycle.service import customer_stage
from tests.lifecycle.test_metrics import small_shop

PNG = b"\x89PNG\r\n\x1a\n"


def test_endpoints_answer_a_viewer_and_match_the_cli(shop, engine, client, personas, db_url, capsys):
    small_shop(shop)
    h = personas.headers("vic")
    api = client.get(
        "/api/v1/lifecycle/kpi",
        params={"from": "2026-03-01", "to": "2026-03-31", "by": "channel", "active_days": 90},
        headers=h,
    )
    assert api.status_code == 200
    assert (
        main(
            [
                "--db",
                db_url,
                "kpi",
                "--from",
                "2026-03-01",
                "--to",
                "2026-03-31",
                "--by",
                "channel",
                "--active-days",
                "90",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == api.json()
    assert api.json()["overall"]["churn_rate"] == 0.5 and "churn_rate" in api.json()["formulas"]

    assert main(["--db", db_url, "stages", "run"]) == 0
    stages = client.get("/api/v1/lifecycle/stages", headers=h).json()
    assert stages["model"] == "clm5" and stages["stages"][0]["stage"] == "acquisition"
    assert sum(s["customers"] for s in stages["stages"]) == 6
    capsys.readouterr()
    for path, cli in (("/api/v1/lifecycle/funnel", ["funnel"]), ("/api/v1/lifecycle/cohorts", ["cohorts"])):
        got = client.get(path, headers=h)
        assert got.status_code == 200
        assert main(["--db", db_url, *cli, "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == got.json()
    projection = client.get(
        "/api/v1/lifecycle/retention/projection",
        params={"survivors": "1000,869,743,653,593,551,517,491"},
        headers=h,
    )
    assert round(projection.json()["params"]["alpha"], 3) == 0.668
    assert (
        main(
            [
                "--db",
                db_url,
                "retention",
                "project",
                "--survivors",
                "1000,869,743,653,593,551,517,491",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == projection.json()


def test_bad_requests_get_json_errors(client, personas):
    h = personas.headers("vic")
    r = client.get("/api/v1/lifecycle/kpi", params={"from": "2026-03-31", "to": "2026-03-01"}, headers=h)
    assert r.status_code == 422 and "ends before it starts" in r.json()["error"]["message"]
    r = client.get("/api/v1/lifecycle/retention/projection", params={"survivors": "1000,x"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "survivors"
    r = client.get("/api/v1/lifecycle/retention/projection", params={"survivors": "100,120,90"}, headers=h)
    assert r.status_code == 422 and "only go down" in r.json()["error"]["message"]
    assert client.get("/api/v1/lifecycle/funnel").status_code == 401


def test_charts_and_tables_from_the_cli(shop, engine, db_url, tmp_path, capsys):
    small_shop(shop)
    assert main(["--db", db_url, "stages", "backfill", "--from", "2025-05-01", "--to", "2026-04-01"]) == 0
    png = tmp_path / "cohorts.png"
    assert main(["--db", db_url, "cohorts", "--since", "2025-05-01", "--months", "6", "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG
    funnel_png = tmp_path / "funnel.png"
    assert main(["--db", db_url, "funnel", "--png", str(funnel_png)]) == 0
    assert funnel_png.read_bytes()[:8] == PNG
    out = capsys.readouterr().out
    assert "weakest link" in out and "2025-05" in out
    assert main(["--db", db_url, "kpi", "--from", "2026-03-01", "--to", "2026-03-31", "--by", "stage"]) == 0
    assert "churn rate" in capsys.readouterr().out
    assert main(["--db", db_url, "retention", "project", "--survivors", "1000,631,468,382"]) == 0
    assert "sBG fit" in capsys.readouterr().out
    assert main(["--db", db_url, "kpi", "--from", "2026-03-01", "--to", "March"]) == 1


def test_importing_orders_moves_the_customers_stage(engine, db_url, write_file, capsys):
    now = datetime.now(UTC) - timedelta(hours=1)
    events = write_file("e.csv", f"type,timestamp,external_id\nsignup,{now.isoformat()},k1\n")
    assert main(["--db", db_url, "import", "events", str(events)]) == 0
    assert "lifecycle stages re-evaluated for 1 customers, 1 changed" in capsys.readouterr().out
    orders = write_file(
        "o.csv", f"order_id,external_id,ordered_at,sku,unit_price\nk-1,k1,{now.isoformat()},A,5\n"
    )
    assert main(["--db", db_url, "import", "orders", str(orders), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stage_changes"] == 1
    from clm.customers.service import find_customers

    cid = find_customers(engine, {"external_id": "k1"})[0].id
    stage = customer_stage(engine, cid)
    assert stage.stage == "activation"
    assert [h.to_stage for h in stage.history] == ["acquisition", "activation"]
