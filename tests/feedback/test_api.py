"""The feedback routes as a client sees them: results by stage through the app's grouping,
tickets and tasks with roles."""

from __future__ import annotations

from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.feedback.service import install_builtin_surveys
from clm.lifecycle.service import assign_stages


def test_results_tickets_and_tasks_over_http(client, personas, engine):
    install_builtin_surveys(engine)
    ann = upsert_customer(engine, CustomerIn(external_id="ann"), actor="test")[0].id
    assign_stages(engine)
    mark, vic = personas.headers("mark"), personas.headers("vic")
    for score, ref in ((10, "a"), (3, "b")):
        answer = {"customer_id": ann, "score": score, "comment": f"c{ref}", "event_id": f"ans-{ref}"}
        assert client.post("/api/v1/surveys/nps/responses", json=answer, headers=mark).status_code == 201
    results = client.get("/api/v1/surveys/nps/results", params={"by": "stage"}, headers=vic).json()
    assert results["overall"]["nps"] == 0.0 and results["overall"]["responses"] == 2
    assert [g["label"] for g in results["groups"]] == ["acquisition"]
    flagged = client.get("/api/v1/surveys/nps/comments", params={"flagged": True}, headers=vic).json()
    assert [(c["score"], c["task_id"] is not None) for c in flagged] == [(3, True)]

    ticket = {"customer_id": ann, "subject": "Broken", "body": "it broke", "priority": "urgent"}
    assert client.post("/api/v1/tickets", json=ticket, headers=vic).status_code == 403
    made = client.post("/api/v1/tickets", json=ticket, headers=mark).json()
    assert made["sla"]["first_response_hours"] == 1
    reply = {"body": "on it"}
    client.post(f"/api/v1/tickets/{made['id']}/messages", json=reply, headers=mark)
    done = client.patch(
        f"/api/v1/tickets/{made['id']}",
        json={"status": "resolved", "csat_survey": "support-csat"},
        headers=mark,
    ).json()
    assert done["status"] == "resolved" and done["survey"]["link"].startswith("http")
    bad = client.patch(f"/api/v1/tickets/{made['id']}", json={"status": "waiting"}, headers=mark)
    assert (
        bad.status_code == 422
        and "resolved ticket can move to closed, open" in bad.json()["error"]["message"]
    )
    stats = client.get("/api/v1/tickets/stats", headers=vic).json()
    assert stats[0]["priority"] == "urgent" and stats[0]["tickets"] == 1

    tasks = client.get("/api/v1/tasks", headers=vic).json()
    assert [t["source"] for t in tasks] == ["detractor"]
    finished = client.patch(f"/api/v1/tasks/{tasks[0]['id']}", json={"status": "done"}, headers=mark).json()
    assert finished["status"] == "done"
