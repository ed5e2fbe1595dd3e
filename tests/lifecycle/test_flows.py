"""Stage flows over a period: each recorded move counted once, by from/to stage, in the model in
use, on whole UTC days; the API answers the same."""

from datetime import UTC, date, datetime

from sqlalchemy import insert

from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.lifecycle.flows import stage_flows
from clm.lifecycle.tables import stage_transitions


def moves(engine, rows):
    ids = {}
    for ext, *_ in rows:
        if ext not in ids:
            ids[ext] = upsert_customer(engine, CustomerIn(external_id=ext), actor="test")[0].id
    with engine.begin() as conn:
        conn.execute(
            insert(stage_transitions),
            [
                {
                    "run_id": "r",
                    "customer_id": ids[ext],
                    "model": model,
                    "from_stage": f,
                    "to_stage": t,
                    "changed_at": datetime.fromisoformat(when).replace(tzinfo=UTC),
                    "rule": "test",
                }
                for ext, model, f, t, when in rows
            ],
        )


def test_flows_count_each_move_in_the_period(engine, client, personas):
    moves(
        engine,
        [
            ("c1", "clm5", None, "acquisition", "2026-03-01T00:00:00"),
            ("c1", "clm5", "acquisition", "activation", "2026-03-05T10:00:00"),
            ("c1", "clm5", "activation", "retention", "2026-04-09T00:00:00"),  # after the period
            ("c2", "clm5", None, "acquisition", "2026-03-03T08:00:00"),
            ("c2", "clm5", "acquisition", "activation", "2026-03-10T23:59:59"),  # last second of the last day
            ("c3", "clm5", "retention", "win-back", "2026-03-07T00:00:00"),
            ("c3", "clm5", "win-back", "retention", "2026-03-08T00:00:00"),
            ("c3", "clm5", "retention", "win-back", "2026-03-09T00:00:00"),
            ("c4", "clm5", None, "acquisition", "2026-02-28T23:59:59"),  # the day before
            ("c4", "funnel5", None, "awareness", "2026-03-02T00:00:00"),  # another model
        ],
    )
    report = stage_flows(engine, date(2026, 3, 1), date(2026, 3, 10), "clm5")
    got = [(f.from_stage, f.to_stage, f.moves, f.customers) for f in report.flows]
    assert got == [
        (None, "acquisition", 2, 2),  # largest first; entering the model before moving on
        ("acquisition", "activation", 2, 2),
        ("retention", "win-back", 2, 1),
        ("win-back", "retention", 1, 1),
    ]
    api = client.get(
        "/api/v1/lifecycle/flows",
        params={"from": "2026-03-01", "to": "2026-03-10"},
        headers=personas.headers("vic"),
    )
    assert api.status_code == 200
    assert api.json()["flows"] == [f.model_dump() for f in report.flows]
    bad = client.get(
        "/api/v1/lifecycle/flows",
        params={"from": "2026-03-10", "to": "2026-03-01"},
        headers=personas.headers("vic"),
    )
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "to"
