"""Segments end to end: events move customers in and out at once, every entry and exit is
stored and emitted, static lists, built-in segments, and the CLI and REST interfaces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from clm.cli import main
from clm.events.tables import events
from clm.segments.builtin import BUILTINS
from clm.segments.service import (
    create_segment,
    delete_segment,
    get_segment,
    install_builtins,
    members,
    rebuild_segments,
    recheck_customers,
    update_segment,
)
from clm.segments.space import affected
from clm.segments.tables import segment_exits, segment_members
from tests.conftest import Personas


def now() -> datetime:
    return datetime.now(UTC)


def post_event(
    client: Any, personas: Personas, ext: str, kind: str, days_ago: float = 0, **props: Any
) -> None:
    body = {
        "type": kind,
        "timestamp": (now() - timedelta(days=days_ago)).isoformat(),
        "channel": "web",
        "external_id": ext,
        "properties": props,
    }
    response = client.post("/api/v1/events", json=body, headers=personas.headers("mark"))
    assert response.status_code == 200, response.text


def post_order(client: Any, personas: Personas, ext: str, days_ago: float, total: float = 5) -> None:
    body = {
        "order_id": f"{ext}-{days_ago}",
        "external_id": ext,
        "ordered_at": (now() - timedelta(days=days_ago)).isoformat(),
        "total": total,
        "items": [{"sku": "S", "unit_price": total}],
    }
    response = client.post("/api/v1/orders", json=body, headers=personas.headers("mark"))
    assert response.status_code == 200, response.text


def member_ids(engine: Any, name: str) -> set[int]:
    return {m.customer_id for m in members(engine, name, limit=1000)[1]}


def stored(engine: Any, kind: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(events).where(events.c.type == kind)))


def test_a_new_event_moves_a_customer_into_a_segment_at_once(
    engine: Any, client: Any, personas: Personas
) -> None:
    post_event(client, personas, "ann", "page_view")
    post_event(client, personas, "bob", "page_view")
    created = client.post(
        "/api/v1/segments",
        json={"name": "shoe_browsers", "where": 'events(product_view, last 14d, category = "shoes") >= 2'},
        headers=personas.headers("mark"),
    )
    assert created.status_code == 201, created.text
    assert created.json()["segment"]["members"] == 0
    assert created.json()["segment"]["depends"] == ["event:product_view"]

    post_event(client, personas, "ann", "product_view", category="shoes")
    assert member_ids(engine, "shoe_browsers") == set()
    post_event(client, personas, "ann", "product_view", category="shoes")
    post_event(client, personas, "bob", "product_view", category="bags")
    page = client.get("/api/v1/segments/shoe_browsers/members", headers=personas.headers("vic")).json()
    assert page["total"] == 1 and page["members"][0]["external_id"] == "ann"
    entered = stored(engine, "segment_entered")
    assert len(entered) == 1
    assert entered[0].properties["segment"] == "shoe_browsers"
    assert entered[0].customer_id == page["members"][0]["customer_id"]
    assert get_segment(engine, "shoe_browsers").members == 1

    # time passes: a full rebuild (the scheduled job) sees the window close and records the exit
    rebuild_segments(engine, ["shoe_browsers"], as_of=now() + timedelta(days=15))
    assert member_ids(engine, "shoe_browsers") == set()
    with engine.connect() as conn:
        (exit_row,) = conn.execute(select(segment_exits))
    assert exit_row.exited_at > exit_row.entered_at
    assert len(stored(engine, "segment_exited")) == 1
    assert get_segment(engine, "shoe_browsers").members == 0


def test_bad_conditions_get_a_pointed_error(client: Any, personas: Personas) -> None:
    bad = client.post(
        "/api/v1/segments/preview",
        json={"where": "orders >= 2 and events(product_view, last 14x) > 1"},
        headers=personas.headers("vic"),
    )
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["fields"][0]["field"] == "where"
    assert "column 43" in error["message"] and "⟶" in error["message"]
    unknown = client.post(
        "/api/v1/segments",
        json={"name": "x", "where": "stag = 'retention'"},
        headers=personas.headers("mark"),
    )
    assert unknown.status_code == 422 and "did you mean 'stage'" in unknown.json()["error"]["message"]
    both = client.post(
        "/api/v1/segments/preview",
        json={"where": "orders > 1", "condition": {"field": "orders", "op": ">", "value": 1}},
        headers=personas.headers("vic"),
    )
    assert both.status_code == 422
    json_form = client.post(
        "/api/v1/segments/preview",
        json={"condition": {"and": [{"field": "orders", "op": ">=", "value": 1}, {"fn": "nope"}]}},
        headers=personas.headers("vic"),
    )
    assert (
        json_form.status_code == 422 and "condition.and[1]" in json_form.json()["error"]["fields"][0]["field"]
    )


def test_preview_counts_and_samples_without_saving(engine: Any, client: Any, personas: Personas) -> None:
    for ext in ("a", "b", "c"):
        post_event(client, personas, ext, "add_to_cart")
    body = client.post(
        "/api/v1/segments/preview",
        json={"where": "events(add_to_cart, last 7d) >= 1", "sample": 2},
        headers=personas.headers("vic"),
    ).json()
    assert body["count"] == 3 and len(body["sample"]) == 2
    assert client.get("/api/v1/segments", headers=personas.headers("vic")).json() == []


def test_incremental_rechecks_agree_with_a_full_rebuild(engine: Any, client: Any, personas: Personas) -> None:
    create_segment(engine, "viewers", where="events(page_view, last 30d) >= 2")
    create_segment(engine, "buyers", where="purchased(last 30d)")
    create_segment(engine, "viewers_not_buyers", where='in_segment("viewers") and not in_segment("buyers")')
    for i in range(6):
        for _ in range(i % 3):
            post_event(client, personas, f"c{i}", "page_view")
        if i % 2:
            order = {
                "order_id": f"o{i}",
                "external_id": f"c{i}",
                "ordered_at": now().isoformat(),
                "total": 10,
                "items": [{"sku": "S", "unit_price": 10}],
            }
            assert (
                client.post("/api/v1/orders", json=order, headers=personas.headers("mark")).status_code == 200
            )
    incremental = {name: member_ids(engine, name) for name in ("viewers", "buyers", "viewers_not_buyers")}
    assert incremental["viewers_not_buyers"] == incremental["viewers"] - incremental["buyers"]
    assert incremental["viewers"] and incremental["buyers"] and incremental["viewers_not_buyers"]
    builds = rebuild_segments(engine)
    assert all(b.entered == 0 and b.exited == 0 for b in builds), builds
    assert [b.name for b in builds].index("viewers_not_buyers") == 2  # upstream segments first


def test_only_segments_that_read_the_changed_data_are_rechecked(engine: Any) -> None:
    assert affected(["event:product_view"], {"event:product_view"})
    assert not affected(["event:email_open"], {"event:page_view"})
    assert affected(["event:*"], {"event:page_view"})
    assert affected(["features"], {"event:email_open"})  # any event moves last activity
    assert affected(["stage"], {"orders"})
    assert not affected(["profile"], {"event:page_view"})
    assert not affected(["scores"], {"orders", "profile"})
    assert affected(["consent"], {"consent"})


def test_a_profile_only_segment_is_not_rechecked_after_an_event(
    engine: Any, client: Any, personas: Personas
) -> None:
    post_event(client, personas, "ann", "page_view")
    create_segment(engine, "everyone", where="orders >= 0")
    create_segment(engine, "no_city", where="city is null")
    changes = recheck_customers(engine, [1], {"event:email_open"})
    assert changes.total == 0
    with engine.begin() as conn:
        conn.execute(segment_members.delete())
    # a missing membership is only repaired for the segments the change can affect
    recheck_customers(engine, [1], {"event:email_open"})
    assert member_ids(engine, "everyone") == {1} and member_ids(engine, "no_city") == set()


def test_segments_cannot_read_themselves_and_a_read_segment_cannot_go(engine: Any) -> None:
    create_segment(engine, "a", where="orders >= 1")
    create_segment(engine, "b", where='in_segment("a")')
    with pytest.raises(Exception, match="depend on itself"):
        update_segment(engine, "a", where='in_segment("b")')
    with pytest.raises(Exception, match="used by b"):
        delete_segment(engine, "a")
    with pytest.raises(Exception, match="no segment named 'zzz'"):
        create_segment(engine, "c", where='in_segment("zzz")')
    with pytest.raises(Exception, match="already exists"):
        create_segment(engine, "a", where="orders >= 2")


def test_static_lists_by_api_and_by_file(
    engine: Any, client: Any, personas: Personas, tmp_path: Path, db_url: str
) -> None:
    for ext in ("a", "b", "c"):
        client.post(
            "/api/v1/customers",
            json={"external_id": ext, "email": f"{ext}@x.com"},
            headers=personas.headers("mark"),
        )
    created = client.post(
        "/api/v1/segments",
        json={"name": "vip", "static": True, "customer_ids": [1, 2]},
        headers=personas.headers("mark"),
    )
    assert created.status_code == 201 and created.json()["segment"]["members"] == 2
    create_segment(engine, "vip_shanghai", where='in_segment("vip") and city is null')
    assert member_ids(engine, "vip_shanghai") == {1, 2}
    assert client.post(
        "/api/v1/segments/vip/members", json={"customer_ids": [2, 3]}, headers=personas.headers("mark")
    ).json() == {"changed": 1}
    assert client.delete("/api/v1/segments/vip/members/1", headers=personas.headers("mark")).json() == {
        "changed": 1
    }
    assert member_ids(engine, "vip") == {2, 3}
    assert member_ids(engine, "vip_shanghai") == {2, 3}  # the reader followed the list at once
    missing = client.post(
        "/api/v1/segments/vip/members", json={"customer_ids": [99]}, headers=personas.headers("mark")
    )
    assert missing.status_code == 404 and "99" in missing.json()["error"]["message"]
    assert (
        client.post(
            "/api/v1/segments/vip/members", json={"customer_ids": [1]}, headers=personas.headers("vic")
        ).status_code
        == 403
    )

    listing = tmp_path / "list.csv"
    listing.write_text(
        "email,customer_id\na@x.com,\n,3\nnobody@x.com,\nnot-an-email,\n,77\n", encoding="utf-8"
    )
    rejected = tmp_path / "rej.csv"
    create_segment(engine, "newsletter", static=True)
    create_segment(engine, "newsletter_vips", where='in_segment("newsletter") and in_segment("vip")')
    code = main(
        ["--db", db_url, "segments", "import", "newsletter", str(listing), "--rejections", str(rejected)]
    )
    assert code == 1  # some rows were rejected
    assert member_ids(engine, "newsletter") == {1, 3}
    assert member_ids(engine, "newsletter_vips") == {3}
    reasons = rejected.read_text(encoding="utf-8")
    assert (
        "no customer with email nobody@x.com" in reasons
        and "not an email" in reasons
        and "no customer with id 77" in reasons
    )


def test_builtin_segments_on_a_hand_made_shop(engine: Any, client: Any, personas: Personas) -> None:
    # ann: 2 orders in 90 days (active); bob: 6 views, never buys (potential);
    # cat: bought 300 and 250 days ago (gap 50, so 100 days is "long"), 4 touches 31-60 days ago
    # and 1 since (churn risk)
    for days in (10, 50):
        post_order(client, personas, "ann", days_ago=days)
    for _ in range(6):
        post_event(client, personas, "bob", "product_view", days_ago=2)
    for days in (300, 250):
        post_order(client, personas, "cat", days_ago=days)
    for days in (35, 40, 45, 50, 5):
        post_event(client, personas, "cat", "page_view", days_ago=days)
    added = install_builtins(engine)
    assert added == [b.name for b in BUILTINS]
    ann, bob, cat = (
        client.get(f"/api/v1/customers/{i}", headers=personas.headers("vic")).json()["profile"]["id"]
        for i in (1, 2, 3)
    )
    assert member_ids(engine, "active_users") == {ann}
    assert member_ids(engine, "potential_customers") == {bob}
    assert member_ids(engine, "churn_risk") == {cat}
    assert install_builtins(engine) == []


def test_cli_segments_commands(
    engine: Any, db_url: str, client: Any, personas: Personas, tmp_path: Path, capsys: Any
) -> None:
    post_event(client, personas, "ann", "add_to_cart")
    assert main(["--db", db_url, "segments", "preview", "--where", "events(add_to_cart) >= 1"]) == 0
    assert "1 customers match" in capsys.readouterr().out
    assert main(["--db", db_url, "segments", "create", "carts", "--where", "events(add_to_cart) >= 1"]) == 0
    assert main(["--db", db_url, "segments", "list"]) == 0
    assert "carts" in capsys.readouterr().out
    out = tmp_path / "carts.csv"
    assert main(["--db", db_url, "segments", "export", "carts", str(out)]) == 0
    assert out.read_text(encoding="utf-8").splitlines()[1].split(",")[1] == "ann"
    assert main(["--db", db_url, "segments", "rebuild", "--json"]) == 0
    assert main(["--db", db_url, "segments", "members", "carts", "--json"]) == 0
    assert '"total": 1' in capsys.readouterr().out
    assert main(["--db", db_url, "segments", "preview", "--where", "orders >"]) == 1
    assert "column 9" in capsys.readouterr().err
    assert main(["--db", db_url, "segments", "update", "carts", "--where", "events(add_to_cart) >= 2"]) == 0
    assert "-1 left" in capsys.readouterr().out
    assert main(["--db", db_url, "segments", "delete", "carts"]) == 0


def test_consent_and_profile_changes_move_customers_and_the_view_lists_segments(
    engine: Any, client: Any, personas: Personas
) -> None:
    create_segment(engine, "emailable", where="consent.email")
    create_segment(engine, "shanghai", where='city = "Shanghai"')
    made = client.post(
        "/api/v1/customers", json={"external_id": "ann"}, headers=personas.headers("mark")
    ).json()
    cid = made["id"]
    assert member_ids(engine, "emailable") == set()
    consent = {"channel": "email", "granted": True, "source": "signup form"}
    assert (
        client.post(
            f"/api/v1/customers/{cid}/consents", json=consent, headers=personas.headers("mark")
        ).status_code
        == 200
    )
    assert member_ids(engine, "emailable") == {cid}
    client.post(
        "/api/v1/customers", json={"external_id": "ann", "city": "Shanghai"}, headers=personas.headers("mark")
    )
    assert member_ids(engine, "shanghai") == {cid}
    view = client.get(f"/api/v1/customers/{cid}", headers=personas.headers("vic")).json()
    assert [m["segment"] for m in view["segments"]] == ["emailable", "shanghai"]
    withdrawn = {"channel": "email", "granted": False, "source": "unsubscribe link"}
    client.post(f"/api/v1/customers/{cid}/consents", json=withdrawn, headers=personas.headers("mark"))
    assert member_ids(engine, "emailable") == set()
    assert len(stored(engine, "segment_exited")) == 1


def test_a_merged_profile_leaves_its_segments_and_the_survivor_takes_its_place(
    engine: Any, client: Any, personas: Personas
) -> None:
    post_event(client, personas, "old", "page_view")
    post_event(client, personas, "new", "add_to_cart")
    old, new = 1, 2
    create_segment(engine, "viewers", where="events(page_view) >= 1")
    create_segment(engine, "listed", static=True, customer_ids=[old])
    assert member_ids(engine, "viewers") == {old}
    merged = client.post(
        "/api/v1/customers/merge",
        json={"survivor_id": new, "merged_ids": [old], "reason": "same person"},
        headers=personas.headers("mark"),
    )
    assert merged.status_code == 200, merged.text
    assert member_ids(engine, "viewers") == {new}  # the page view moved to the survivor
    assert member_ids(engine, "listed") == {new}
    assert get_segment(engine, "viewers").members == 1 and get_segment(engine, "listed").members == 1
