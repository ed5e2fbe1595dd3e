"""Dates and times in the API are ISO 8601 text: a bare number (0, 0.5, "1700000000") is a 422
naming the field, on every date field the API has, found from its own OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest

from clm.api import create_app
from tests.conftest import Personas

_SPEC = create_app(engine=object()).openapi()  # type: ignore[arg-type]


def _formats(schema: dict[str, Any]) -> set[str]:
    found = {schema["format"]} if schema.get("format") in ("date", "date-time") else set()
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            found |= _formats(part)
    return found


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def date_inputs() -> list[tuple[str, str, str, str]]:
    """(method, path, "query" or "body", field) for every date or date-time the API reads."""
    out = []
    components = _SPEC["components"]["schemas"]
    for path, operations in _SPEC["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                if _formats(param.get("schema", {})):
                    out.append((method.upper(), path, "query", param["name"]))
            for ref in _refs(op.get("requestBody", {})):
                schema = components[ref.split("/")[-1]]
                for name, prop in schema.get("properties", {}).items():
                    if _formats(prop):
                        out.append((method.upper(), path, "body", name))
    return sorted(set(out))


DATE_INPUTS = date_inputs()
# An event's timestamp may also be Unix seconds / milliseconds, as trackers send and files allow
# (docs/ingestion.md); a number before 1990 is still refused there.
EVENT_TIME = ("POST", "/api/v1/events", "body", "timestamp")


def test_the_api_reads_dates_in_many_places():
    assert len(DATE_INPUTS) >= 17
    assert ("GET", "/api/v1/spend", "query", "start") in DATE_INPUTS
    assert ("POST", "/api/v1/tasks", "body", "due_at") in DATE_INPUTS


def _call(client: Any, personas: Personas, method: str, path: str, where: str, field: str, value: Any) -> Any:
    path = path.replace("{name}", "nps")
    if where == "query":
        return client.request(method, path, params={field: value}, headers=personas.headers("alice"))
    return client.request(method, path, json={field: value}, headers=personas.headers("alice"))


def _complaint(response: Any, field: str) -> str | None:
    body = response.json()
    if not isinstance(body, dict) or "error" not in body:
        return None
    for entry in body["error"].get("fields", []):
        if entry["field"] == field:
            return str(entry["message"])
    return None


@pytest.mark.parametrize(("method", "path", "where", "field"), [d for d in DATE_INPUTS if d != EVENT_TIME])
@pytest.mark.parametrize("number", [0, 0.5, "0", "1700000000", "-1.5e3"])
def test_a_number_is_not_a_date_anywhere(client, personas, method, path, where, field, number):
    if where == "query" and not isinstance(number, str):
        number = str(number)
    response = _call(client, personas, method, path, where, field, number)
    assert response.status_code == 422, response.text
    complaint = _complaint(response, field)
    assert complaint is not None and "ISO 8601" in complaint and "not a number" in complaint, response.text


@pytest.mark.parametrize(("method", "path", "where", "field"), DATE_INPUTS)
def test_iso_text_is_still_a_date_everywhere(client, personas, method, path, where, field):
    value = "2026-11-01"
    response = _call(client, personas, method, path, where, field, value)
    assert _complaint(response, field) is None, response.text


def test_the_reported_cases(client, personas):
    """The three inputs that were taken for dates: 422 naming the field; real dates still work."""
    alice = personas.headers("alice")
    start = client.get("/api/v1/spend", params={"start": "0"}, headers=alice)
    assert start.status_code == 422
    assert start.json()["error"]["fields"] == [
        {"field": "start", "message": "expected a date in ISO 8601 form such as 2026-11-01, not a number"}
    ]
    to = client.get("/api/v1/lifecycle/kpi", params={"from": "2026-10-01", "to": "0.5"}, headers=alice)
    assert to.status_code == 422 and [f["field"] for f in to.json()["error"]["fields"]] == ["to"]
    end = client.get("/api/v1/spend", params={"end": "0.5"}, headers=alice)
    assert end.status_code == 422 and end.json()["error"]["fields"][0]["field"] == "end"

    customer = client.post("/api/v1/customers", json={"external_id": "c1"}, headers=alice).json()["id"]
    task = {"customer_id": customer, "title": "call back", "due_at": 0}
    refused = client.post("/api/v1/tasks", json=task, headers=alice)
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "due_at"
    assert "not a number" in refused.json()["error"]["message"]

    made = client.post("/api/v1/tasks", json={**task, "due_at": "2026-11-03T09:00:00+08:00"}, headers=alice)
    assert made.status_code == 201, made.text
    assert made.json()["due_at"].startswith("2026-11-03T01:00:00")
    spend = {"channel": "wechat", "period_start": "2026-10-01", "period_end": "2026-10-31", "amount": 1200}
    assert client.post("/api/v1/spend", json=spend, headers=alice).status_code == 200
    rows = client.get("/api/v1/spend", params={"start": "2026-10-01", "end": "2026-10-31"}, headers=alice)
    assert rows.status_code == 200 and [r["amount"] for r in rows.json()] == [1200.0]


def test_an_event_time_may_be_unix_seconds_but_not_a_small_number(client, personas):
    event = {"type": "page_view", "external_id": "e1"}
    alice = personas.headers("alice")
    for number in (0, 0.5, "0"):
        response = client.post("/api/v1/events", json={**event, "timestamp": number}, headers=alice)
        assert response.status_code == 422 and "before 1990" in _complaint(response, "timestamp")
    unix = client.post("/api/v1/events", json={**event, "timestamp": 1_700_000_000}, headers=alice)
    assert unix.status_code == 200 and unix.json()["accepted"] == 1
