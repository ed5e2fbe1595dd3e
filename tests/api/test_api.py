"""The HTTP API as a client sees it: auth on every route, JSON errors, ingestion, the 360° view."""

import pytest

from clm.api import create_app

# Every documented operation, so a new endpoint cannot forget its permission checks.
_PATHS = create_app(engine=object()).openapi()["paths"]  # type: ignore[arg-type]
API_ROUTES = [
    (method.upper(), path)
    for path, operations in _PATHS.items()
    if path.startswith("/api/v1")
    for method in sorted(operations)
]
# a POST that only reads (a segment preview) says so in its OpenAPI operation
READ_POSTS = [(m, p) for m, p in API_ROUTES if _PATHS[p][m.lower()].get("x-read-only")]
WRITES = [
    (m, p) for m, p in API_ROUTES if m in {"POST", "PUT", "PATCH", "DELETE"} and (m, p) not in READ_POSTS
]


def concrete(path: str) -> str:
    return (
        path.replace("{customer_id}", "1")
        .replace("{order_id}", "o1")
        .replace("{sku}", "A")
        .replace("{name}", "s")
        .replace("{ticket_id}", "1")
        .replace("{task_id}", "1")
        .replace("{posting_id}", "1")
    )


def test_read_only_posts_are_few_and_open_to_readers(client, personas):
    assert READ_POSTS == [("POST", "/api/v1/segments/preview")]
    response = client.post(
        concrete(READ_POSTS[0][1]), json={"where": "orders > 0"}, headers=personas.headers("vic")
    )
    assert response.status_code == 200


def test_the_api_has_write_routes_to_check():
    assert len(WRITES) >= 6


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_every_route_needs_a_key(client, method, path):
    response = client.request(method, concrete(path), json={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    bad = client.request(method, concrete(path), json={}, headers={"Authorization": "Bearer clm_nope_nope"})
    assert bad.status_code == 401 and bad.json()["error"]["message"] == "invalid API key"


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize("who", ["vic", "ana"])
def test_read_only_roles_cannot_write(client, personas, method, path, who):
    response = client.request(method, concrete(path), json={}, headers=personas.headers(who))
    assert response.status_code == 403
    assert "may not write" in response.json()["error"]["message"]


def test_a_viewer_can_read(client, personas):
    response = client.get("/api/v1/products", headers=personas.headers("vic"))
    assert response.status_code == 200 and response.json() == []


def test_revoked_key_stops_working(client, personas, engine):
    from clm.auth.service import list_api_keys, revoke_api_key

    revoke_api_key(engine, next(k.id for k in list_api_keys(engine) if k.name == "mark"))
    response = client.get("/api/v1/products", headers=personas.headers("mark"))
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_422_names_the_bad_field_and_stores_nothing(client, personas):
    batch = {
        "events": [
            {"type": "signup", "timestamp": "2025-01-01T00:00:00Z", "email": "a@b.co"},
            {"type": "signup", "timestamp": "not a time", "email": "a@b.co"},
        ]
    }
    response = client.post("/api/v1/events", json=batch, headers=personas.headers("mark"))
    assert response.status_code == 422
    body = response.json()["error"]
    assert [f["field"] for f in body["fields"]] == ["events[1].timestamp"]
    bad_email = {"type": "signup", "timestamp": "2025-01-01T00:00:00Z", "email": "nope"}
    response = client.post("/api/v1/events", json={"events": [bad_email]}, headers=personas.headers("mark"))
    assert response.status_code == 422 and response.json()["error"]["fields"][0]["field"] == "events[0].email"
    listing = client.get("/api/v1/customers", params={"email": "a@b.co"}, headers=personas.headers("vic"))
    assert listing.json() == []


def test_batches_are_limited_to_1000(client, personas):
    event = {"type": "page_view", "timestamp": "2025-01-01T00:00:00Z", "external_id": "u"}
    response = client.post(
        "/api/v1/events", json={"events": [event] * 1001}, headers=personas.headers("mark")
    )
    assert response.status_code == 422 and "at most 1000" in response.json()["error"]["message"]


def test_ingest_then_read_the_customer(client, personas):
    h = personas.headers("mark")
    created = client.post("/api/v1/customers", json={"email": "Ann@X.com", "first_name": "Ann"}, headers=h)
    assert created.status_code == 201
    cid = created.json()["id"]
    assert (
        client.post("/api/v1/customers", json={"email": "ann@x.com", "city": "Xi'an"}, headers=h).status_code
        == 200
    )
    events = {
        "events": [
            {
                "event_id": f"e{i}",
                "type": "product_view",
                "timestamp": f"2025-01-0{i + 1}T00:00:00Z",
                "email": "ann@x.com",
                "properties": {"sku": "A"},
            }
            for i in range(3)
        ]
    }
    first = client.post("/api/v1/events", json=events, headers=h).json()
    again = client.post("/api/v1/events", json=events, headers=h).json()
    assert (first["accepted"], again["accepted"], again["duplicates"]) == (3, 0, 3)
    order = {
        "order_id": "o1",
        "email": "ann@x.com",
        "ordered_at": "2025-01-05T10:00:00Z",
        "items": [{"sku": "A", "quantity": 2, "unit_price": 15}],
    }
    assert client.post("/api/v1/orders", json=order, headers=h).json()["created"] == 1
    view = client.get(f"/api/v1/customers/{cid}", headers=personas.headers("vic")).json()
    assert view["profile"]["city"] == "Xi'an"
    assert view["orders"]["revenue"] == 30.0
    assert [e["type"] for e in view["timeline"] if e["channel"] != "system"][:2] == [
        "purchase",
        "product_view",
    ]
    # the only purchase is long ago, relative to now: acquisition, then straight to win-back
    assert [c["to_stage"] for c in view["stage"]["history"]] == ["acquisition", "win-back"]
    # newest first: two stage_changed events (now), the purchase, e2, e1, e0
    page = client.get(f"/api/v1/customers/{cid}/events", params={"limit": 2, "offset": 3}, headers=h).json()
    assert [e["event_id"] for e in page] == ["e2", "e1"]
    assert client.get("/api/v1/orders/o1", headers=h).json()["total"] == 30.0
    assert client.get("/api/v1/customers/999", headers=h).status_code == 404


def test_merge_and_consent_endpoints(client, personas):
    h = personas.headers("alice")
    a = client.post("/api/v1/customers", json={"email": "a@x.com"}, headers=h).json()["id"]
    b = client.post("/api/v1/customers", json={"phone": "+8613800000000"}, headers=h).json()["id"]
    merged = client.post(
        "/api/v1/customers/merge", json={"survivor_id": a, "merged_ids": [b]}, headers=h
    ).json()
    assert merged["merged_from"] == [b]
    consent = client.post(
        f"/api/v1/customers/{b}/consents", json={"channel": "sms", "granted": False}, headers=h
    )
    assert consent.json()["consents"][0]["granted"] is False and consent.json()["id"] == a


def test_openapi_and_docs_are_served(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/events" in spec["paths"] and spec["info"]["title"] == "CLM"
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text  # works offline
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/healthz").json()["status"] == "ok"
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
