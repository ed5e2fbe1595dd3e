"""The loyalty routes as a client sees them: roles, idempotency, a clear error on overdraw,
and an order sent through the API earning its points before the call returns."""

from __future__ import annotations


def test_orders_earn_points_at_once_and_postings_follow_the_roles(client, personas):
    order = {"order_id": "A-1", "external_id": "ann", "ordered_at": "2026-11-01T10:00:00Z", "total": 120}
    assert client.post("/api/v1/orders", json=order, headers=personas.headers("mark")).status_code in (
        200,
        201,
    )
    ann = client.get(
        "/api/v1/customers", params={"external_id": "ann"}, headers=personas.headers("vic")
    ).json()
    cid = ann[0]["id"] if isinstance(ann, list) else ann["customers"][0]["id"]
    me = client.get(f"/api/v1/loyalty/customers/{cid}", headers=personas.headers("vic")).json()
    assert me["balance"] == 120 and me["tier"] == "member" and me["to_next_tier"] == 380

    redeem = {"kind": "redeem", "points": 50, "reason": "voucher", "reference": "checkout-1"}
    path = f"/api/v1/loyalty/customers/{cid}/postings"
    denied = client.post(path, json=redeem, headers=personas.headers("vic"))
    assert denied.status_code == 403
    first = client.post(path, json=redeem, headers=personas.headers("mark"))
    assert first.status_code == 201 and first.json()["balance"] == 70 and first.json()["created"]
    again = client.post(path, json=redeem, headers=personas.headers("mark"))
    assert again.json()["created"] is False and again.json()["balance"] == 70
    too_much = client.post(
        path, json={**redeem, "points": 500, "reference": "checkout-2"}, headers=personas.headers("mark")
    )
    assert too_much.status_code == 422
    error = too_much.json()["error"]
    assert "balance is 70" in error["message"] and error["fields"][0]["field"] == "points"
    history = client.get(path, headers=personas.headers("ana")).json()
    assert [(p["kind"], p["points"]) for p in history] == [("redeem", -50), ("earn", 120)]

    refunded = {**order, "status": "refunded", "refunded_at": "2026-11-02T10:00:00Z"}
    client.post("/api/v1/orders", json=refunded, headers=personas.headers("mark"))
    assert (
        client.get(f"/api/v1/loyalty/customers/{cid}", headers=personas.headers("vic")).json()["balance"] == 0
    )
