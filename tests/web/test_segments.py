"""The segments pages: the list (sizes, the size trend stored at each rebuild, who reads each
segment), the builder's round trip with the text form, its preview and errors with their place,
saving (who entered and left), static lists from typed ids and files, members page by page, the
audited CSV export with a byte-order mark, and what a viewer may not do."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from clm.auth.tables import audit_log
from clm.conditions import parse_text, to_text
from clm.customers.schemas import CustomerIn
from clm.customers.service import find_customers, upsert_customer
from clm.segments.builder import from_builder, to_builder
from clm.segments.builtin import BUILTINS
from clm.segments.fields import field_space
from clm.segments.service import (
    create_segment,
    customers_matching,
    get_segment,
    list_segments,
    rebuild_segments,
    size_history,
)
from clm.segments.space import SegmentSpace
from clm.web.segments import daily_sizes
from tests.web.conftest import sign_in


def ids_of(engine, *external: str) -> list[int]:  # type: ignore[no-untyped-def]
    return [find_customers(engine, {"external_id": e})[0].id for e in external]


def shown_count(html: str) -> int:
    found = re.search(r'id="preview-count" data-count="(\d+)"', html)
    assert found, html[:500]
    return int(found.group(1))


KINDS = {f.name: f.kind for f in field_space()}
ROUND_TRIPS = [
    *(b.where for b in BUILTINS),
    'not (city = "上海" or attr.vip = "yes") and consent.email',
    'events(product_view, add_to_cart, last 14d, category = "shoes") >= 3'
    ' and not purchased(last 60d, sku = "A")',
    'in_segment("vip") or spent(last 30d, category = "tea") > 100.5 or orders(last 7d) = 0',
    "not not orders > 1",
    'city is not null and age not in [18, 19] and churn_band in ["high", "medium"]',
    "(orders + 1) * 2 > 3 or true",
]


@pytest.mark.parametrize("text", ROUND_TRIPS)
def test_the_builder_tree_gives_back_the_same_condition(text):
    cond = parse_text(text)
    tree = to_builder(cond, KINDS)
    assert tree["kind"] == "group"
    assert from_builder(json.loads(json.dumps(tree)), KINDS) == cond
    assert to_text(from_builder(tree, KINDS)) == to_text(cond)


def test_the_builder_lists_every_field_the_space_knows():
    listed = {f.name for f in field_space()}
    for name in SegmentSpace().names():
        assert (name if name != "attr.<name>" else "attr.") in listed
    # and each is what the compiler says it is
    for f in field_space():
        probe = SegmentSpace().field(f.name + "x" if f.name == "attr." else f.name)
        assert probe is not None and probe.kind == f.kind


def test_values_typed_into_the_builder_become_numbers_where_the_field_is_one():
    tree = {
        "kind": "group",
        "op": "and",
        "items": [
            {"kind": "field", "field": "orders", "op": ">=", "value": "2"},
            {"kind": "field", "field": "city", "op": "in", "value": ["上海", "北京"]},
            {
                "kind": "count",
                "fn": "events",
                "types": ["product_view"],
                "days": "14",
                "filters": [],
                "op": ">=",
                "value": 3,
            },
            {
                "kind": "purchased",
                "not": True,
                "days": 14,
                "filters": [{"key": "category", "op": "=", "value": "tea"}],
            },
        ],
    }
    assert to_text(from_builder(tree, KINDS)) == (
        'orders >= 2 and city in ["上海", "北京"] and events(product_view, last 14d) >= 3 '
        'and not purchased(last 14d, category = "tea")'
    )


def test_daily_sizes_carry_the_last_size_of_each_day_forward():
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    now = datetime.now(UTC)
    from datetime import timedelta

    history = [
        (now - timedelta(days=3, hours=1), 5),
        (now - timedelta(days=3), 7),
        (now - timedelta(days=1), 9),
    ]
    points = daily_sizes(history, 5, 10, tz)
    assert [p[1] for p in points] == [None, 7, 7, 9, 10]


@pytest.fixture
def shop(engine, tiny_shop):  # type: ignore[no-untyped-def]
    """tiny_shop (a, b, c with orders) and d, 张伟 in 上海 without orders."""
    upsert_customer(
        engine,
        CustomerIn(
            external_id="d",
            email="zhang.wei@example.com",
            phone="13812345678",
            first_name="伟",
            last_name="张",
            city="上海",
        ),
        actor="test",
    )
    return ids_of(engine, "a", "b", "c", "d")


def test_the_list_shows_sizes_trends_and_readers(client, team, engine, shop):
    create_segment(engine, "buyers", where="orders >= 1")
    create_segment(engine, "repeat", where='orders >= 2 and in_segment("buyers")')
    rebuild_segments(engine, ["buyers"])
    sign_in(client, "vic")
    html = client.get("/segments").text
    assert "repeat" in html and "buyers" in html
    buyers = get_segment(engine, "buyers")
    row = html[html.index(f'data-segment="{buyers.id}"') :]
    row = row[: row.index("</tr>")]
    assert 'data-members="3"' in row
    assert "repeat" in row  # read by the other segment
    trend = json.loads(re.search(r'data-trend="([^"]+)"', row).group(1).replace("&#34;", '"'))
    assert len(trend) == 30 and trend[-1][1] == 3
    # every rebuild is measured: created (3) and rebuilt (3)
    history = size_history(engine, [buyers.id], datetime(2000, 1, 1, tzinfo=UTC))[buyers.id]
    assert [size for _, size in history] == [3, 3]


def test_preview_counts_as_the_service_does_and_points_at_errors(client, team, engine, shop):
    token = sign_in(client, "vic")
    headers = {"X-CSRF-Token": token}
    where = "orders >= 2"
    html = client.post("/segments/preview", data={"mode": "text", "where": where}, headers=headers).text
    with engine.connect() as conn:
        assert shown_count(html) == len(customers_matching(conn, where)) == 2
    tree = to_builder(parse_text(where), KINDS)
    html = client.post(
        "/segments/preview", data={"mode": "builder", "tree": json.dumps(tree)}, headers=headers
    ).text
    assert shown_count(html) == 2
    # a wrong text: the column; a wrong rule in the builder: which rule
    bad = client.post(
        "/segments/preview", data={"mode": "text", "where": "orders >= 2 and ordrs > 1"}, headers=headers
    )
    detail = json.loads(bad.headers["HX-Trigger"])["preview-result"]["problem"]
    assert detail["pos"] == 16 and "ordrs" in detail["message"]
    assert "第 17 列" in bad.text
    tree = {
        "kind": "group",
        "op": "and",
        "id": 1,
        "items": [
            {"kind": "field", "id": 2, "field": "orders", "op": ">=", "value": 1},
            {"kind": "field", "id": 3, "field": "city", "op": ">", "value": 3},
        ],
    }
    bad = client.post(
        "/segments/preview", data={"mode": "builder", "tree": json.dumps(tree)}, headers=headers
    )
    detail = json.loads(bad.headers["HX-Trigger"])["preview-result"]["problem"]
    assert detail["node"] == 3 and "cannot compare" in detail["message"]


def test_switching_between_builder_and_text_loses_nothing(client, team, engine, shop):
    token = sign_in(client, "ana")
    headers = {"X-CSRF-Token": token}
    text = BUILTINS[2].where  # churn_risk: arithmetic the builder keeps as written text
    tree = client.post("/segments/condition", data={"mode": "text", "where": text}, headers=headers).json()[
        "tree"
    ]
    back = client.post(
        "/segments/condition", data={"mode": "builder", "tree": json.dumps(tree)}, headers=headers
    ).json()
    assert parse_text(back["text"]) == parse_text(text)
    wrong = client.post("/segments/condition", data={"mode": "text", "where": "orders >= "}, headers=headers)
    assert wrong.status_code == 422 and wrong.json()["error"]["pos"] == 10


def test_saving_from_the_builder_builds_and_says_who_entered(client, team, engine, shop):
    token = sign_in(client, "mark")
    tree = to_builder(parse_text("orders >= 2"), KINDS)
    saved = client.post(
        "/segments/new",
        data={"csrf_token": token, "name": "two_plus", "mode": "builder", "tree": json.dumps(tree)},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text[:500]
    segment = get_segment(engine, "two_plus")
    assert saved.headers["location"] == f"/segments/{segment.id}?saved=1&entered=2&exited=0"
    page = client.get(saved.headers["location"]).text
    assert "2 人进入" in page or "2 entered" in page
    # a narrower condition typed as text: one leaves
    changed = client.post(
        f"/segments/{segment.id}/edit",
        data={"csrf_token": token, "mode": "text", "where": "orders >= 2 and revenue > 200"},
        follow_redirects=False,
    )
    assert changed.headers["location"].endswith("entered=0&exited=1")
    assert get_segment(engine, "two_plus").where == "orders >= 2 and revenue > 200"
    # a bad condition is not saved and the form keeps what was typed
    refused = client.post(
        f"/segments/{segment.id}/edit", data={"csrf_token": token, "mode": "text", "where": "orders >= x1 +"}
    )
    assert refused.status_code == 422 and "x1 +" in refused.text and "save-error" in refused.text
    assert get_segment(engine, "two_plus").where == "orders >= 2 and revenue > 200"
    # a name taken already: said on the page, the typed condition kept
    taken = client.post(
        "/segments/new",
        data={"csrf_token": token, "name": "two_plus", "mode": "text", "where": "orders >= 3"},
    )
    assert taken.status_code == 422 and "already exists" in taken.text and "orders \\u003e= 3" in taken.text
    # a segment another one reads is not deleted
    create_segment(engine, "reads_it", where='in_segment("two_plus")')
    kept = client.post(f"/segments/{segment.id}/delete", data={"csrf_token": token})
    assert kept.status_code == 409 and "reads_it" in kept.text
    assert get_segment(engine, "two_plus")


def test_a_viewer_may_explore_but_not_save(client, team, engine, shop):
    token = sign_in(client, "vic")
    assert client.get("/segments/new").status_code == 200
    refused = client.post(
        "/segments/new", data={"csrf_token": token, "name": "nope", "mode": "text", "where": "orders >= 1"}
    )
    assert refused.status_code == 403
    assert not [s for s in list_segments(engine) if s.name == "nope"]


def test_static_lists_take_typed_ids_emails_and_phones_and_files(client, team, engine, shop):
    a, b, c, _ = shop
    segment, _ = create_segment(engine, "vip", static=True)
    token = sign_in(client, "mark")
    page = client.post(
        f"/segments/{segment.id}/members/add",
        data={"csrf_token": token, "typed": f"{a}\nzhang.wei@example.com\n13812345678\nnobody@example.com"},
    )
    assert page.status_code == 200
    assert get_segment(engine, "vip").members == 2  # a and 张伟 (named twice)
    assert "nobody@example.com" in page.text
    upload = "email,phone\n,138 1234 5678\n".encode("utf-8-sig")
    client.post(
        f"/segments/{segment.id}/members/add",
        data={"csrf_token": token},
        files={"upload": ("list.csv", upload, "text/csv")},
    )
    assert get_segment(engine, "vip").members == 2
    client.post(
        f"/segments/{segment.id}/members/add",
        data={"csrf_token": token},
        files={"upload": ("more.csv", f"customer_id\n{b}\n{c}\n".encode(), "text/csv")},
    )
    assert get_segment(engine, "vip").members == 4
    gone = client.post(
        f"/segments/{segment.id}/members/remove",
        data={"csrf_token": token, "customer_id": str(b)},
        follow_redirects=False,
    )
    assert gone.status_code == 303 and get_segment(engine, "vip").members == 3


def test_members_page_and_the_audited_export(client, team, engine, shop):
    segment, _ = create_segment(engine, "everyone", where="true")
    sign_in(client, "ana")
    html = client.get(f"/segments/{segment.id}/members").text
    assert re.search(r'id="member-count" data-total="4"', html)
    for cid in shop:
        assert f'href="/customers/{cid}"' in html
    assert "z****@example.com" in html and "zhang.wei@" not in html  # masked for an analyst
    response = client.get(f"/segments/{segment.id}/export.csv")
    assert response.content.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][0] == "customer_id" and len(rows) == 5
    assert any("张伟" in r for r in rows) and not any("13812345678" in r for r in rows)
    with engine.connect() as conn:
        audit = conn.execute(select(audit_log).where(audit_log.c.action == "segments.export")).one()
    assert (
        audit.entity_id == str(segment.id) and audit.details["rows"] == 4 and "ana@example.com" in audit.actor
    )


def test_an_unknown_segment_is_a_404(client, team, engine):
    sign_in(client, "vic")
    for path in ("/segments/999", "/segments/999/members", "/segments/999/edit", "/segments/999/export.csv"):
        assert client.get(path).status_code == 404
